"""Imports go on past a bad line, name it by number with a short reason, and always print the
summary (issue 16, item 11): the regressions as the issue found them, then properties over
random lines mixed with good ones, through the real commands on real files."""

import csv
import io
import itertools
import json
import re

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanners.darkwatch.models import Breach, BreachRecord
from scanners.hometitle.models import RecordedDocument

pytestmark = pytest.mark.django_db

BREACH_HEADER = "breach,kind,identifier,breach_date,data_classes,title,domain\n"
RECORDING_COLUMNS = [
    "county", "document_number", "parcel_number", "document_type", "recorded_date", "grantor", "grantee", "amount",
]  # fmt: skip
CSV_FIELD_LIMIT = 131_072


def run(command, path):
    out, err = io.StringIO(), io.StringIO()
    call_command(command, str(path), "--batch-size", "3", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def rejected_lines(err, path) -> dict[int, str]:
    return {int(n): reason for n, reason in re.findall(rf"^{re.escape(str(path))}:(\d+): rejected: (.*)$", err, re.M)}


def test_a_csv_field_over_the_csv_limit_rejects_its_line_and_the_import_goes_on(tmp_path):
    lines = [f"Leak,email,user{n}@example.com,,,,\n" for n in range(12)]
    lines.insert(7, "Leak,email," + "x" * (CSV_FIELD_LIMIT + 1) + ",,,,\n")  # file line 9
    path = tmp_path / "breaches.csv"
    path.write_text(BREACH_HEADER + "".join(lines))
    out, err = run("import_breaches", path)
    assert BreachRecord.objects.count() == 12
    rejected = rejected_lines(err, path)
    assert list(rejected) == [9] and "field larger than field limit" in rejected[9]
    assert "13 lines read, 12 breach records added, 0 already present, 1 rejected" in out


def test_a_line_that_is_not_utf8_is_rejected_by_its_number_and_the_summary_prints(tmp_path):
    path = tmp_path / "breaches.csv"
    good = [f"Leak,email,user{n}@example.com,,,,\n".encode() for n in range(10)]
    path.write_bytes(
        BREACH_HEADER.encode() + b"".join(good[:4]) + b"Leak,email,caf\xe9@example.com,,,,\n" + b"".join(good[4:])
    )
    out, err = run("import_breaches", path)
    assert BreachRecord.objects.count() == 10
    rejected = rejected_lines(err, path)
    assert list(rejected) == [6] and "not UTF-8" in rejected[6]
    assert "11 lines read, 10 breach records added, 0 already present, 1 rejected" in out


def test_wrong_json_types_are_rejected_never_stored_as_python_text(tmp_path):
    path = tmp_path / "breaches.jsonl"
    lines = [
        {"breach": ["x"], "kind": "email", "identifier": "a@example.com"},
        {"breach": "T", "kind": "email", "identifier": "b@example.com", "title": {"x": 1}},
        {"breach": "D", "kind": "email", "identifier": "c@example.com", "data_classes": [{"x": 1}, "Passwords"]},
        {"breach": "K", "kind": True, "identifier": "d@example.com"},
        {"breach": "Good", "kind": "email", "identifier": "e@example.com", "title": "Fine"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out, err = run("import_breaches", path)
    rejected = rejected_lines(err, path)
    assert sorted(rejected) == [1, 2, 3, 4]
    assert "breach must be text, not a list" in rejected[1]
    assert "title must be text, not an object" in rejected[2]
    assert list(Breach.objects.values_list("name", "title")) == [("Good", "Fine")]
    assert "1 breach records added" in out

    recordings = tmp_path / "recordings.jsonl"
    good = {"county": "c", "document_number": "1", "parcel_number": "p", "document_type": "deed",
            "recorded_date": "2024-01-02"}  # fmt: skip
    recordings.write_text(
        json.dumps({**good, "grantor": ["Jane"]}) + "\n" + json.dumps({**good, "document_number": 2, "amount": 12.5})
    )
    out, err = run("import_recordings", recordings)
    assert "grantor must be text, not a list" in rejected_lines(err, recordings)[1]
    assert list(RecordedDocument.objects.values_list("document_number", "amount")) == [("2", 12.5)]


def test_a_numeric_identifier_is_read_as_its_digits(tmp_path):
    path = tmp_path / "breaches.jsonl"
    path.write_text(
        json.dumps({"breach": "N", "kind": "phone", "identifier": 14155550142})
        + "\n"
        + json.dumps({"breach": "N", "kind": "email", "identifier": 12345})
        + "\n"
    )
    _, err = run("import_breaches", path)
    assert BreachRecord.objects.filter(kind="phone").count() == 1
    reason = rejected_lines(err, path)[2]
    assert "is empty" not in reason and "not an email address" in reason


@pytest.mark.parametrize("field", ["identifier", "kind", "breach_date", "breach"])
def test_a_reason_quotes_a_100_kb_value_in_a_few_characters(tmp_path, field):
    record = {"breach": "Big", "kind": "email", "identifier": "a@example.com", field: "v" * 100_000}
    path = tmp_path / "breaches.jsonl"
    path.write_text(json.dumps(record) + "\n")
    out, err = run("import_breaches", path)
    (reason,) = rejected_lines(err, path).values()
    assert len(reason) < 120, reason
    assert "1 rejected" in out


# --- properties: random bad lines among good ones ------------------------------------------

SAFE_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\n"), max_size=20).map(str.strip)
NOT_TEXT = st.one_of(
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.booleans()
)
UNSTORABLE = st.sampled_from(["\x00", "\ud800", "a\udfffb", "x\x00y"])
counter = itertools.count()


def recording(number: str, grantor: str) -> dict:
    return {
        "county": "prop-county", "document_number": number, "parcel_number": "P-1", "document_type": "deed",
        "recorded_date": "2024-01-02", "grantor": grantor, "grantee": "", "amount": "",
    }  # fmt: skip


@st.composite
def bad_jsonl(draw, number: str) -> bytes:
    base = recording(number, "x")
    kind = draw(st.sampled_from(["utf8", "not-object", "broken", "wrong-type", "huge", "unstorable", "missing"]))
    if kind == "utf8":
        return draw(st.binary(max_size=10)).replace(b"\n", b"") + b"\xff\xfe" + json.dumps(base).encode()
    if kind == "not-object":
        return json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text()))).encode()
    if kind == "broken":
        return ("{" + draw(st.text(max_size=20)).replace("\n", " ").replace("\r", " ")).encode("utf-8", "surrogatepass")
    field = draw(st.sampled_from(RECORDING_COLUMNS))
    if kind == "wrong-type":
        base[field] = draw(NOT_TEXT)
    elif kind == "huge":
        base[field] = "9" * 100_001
    elif kind == "unstorable":
        base[field] = draw(UNSTORABLE)
    else:
        base.pop(draw(st.sampled_from(RECORDING_COLUMNS[:5])))
    return json.dumps(base).encode()


@st.composite
def bad_csv(draw, number: str) -> str:
    row = recording(number, "x")
    kind = draw(st.sampled_from(["utf8", "extra", "huge", "unstorable", "empty", "date"]))
    if kind == "extra":
        return csv_line([*row.values(), "surplus"])
    if kind == "huge":
        row[draw(st.sampled_from(RECORDING_COLUMNS))] = "9" * (CSV_FIELD_LIMIT + 1)
    elif kind == "unstorable":
        row[draw(st.sampled_from(RECORDING_COLUMNS[:6]))] = "\x00"
    elif kind == "empty":
        row[draw(st.sampled_from(RECORDING_COLUMNS[:5]))] = " "
    elif kind == "date":
        row["recorded_date"] = draw(SAFE_TEXT.filter(lambda t: not re.match(r"\d{4}-\d\d-\d\d", t)))
    elif kind == "utf8":
        return csv_line(row.values()).replace("prop-county", "prop-county\udcff")
    return csv_line(row.values())


def csv_line(values) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def check(path, out, err, good: dict[str, str], bad: list[int], prefix: str, read: int):
    """Every good line imported as written, every bad line rejected by its number, the summary printed."""
    stored = dict(
        RecordedDocument.objects.filter(document_number__startswith=prefix).values_list("document_number", "grantor")
    )
    assert stored == good  # and so no bad line stored anything, and no value is a Python repr
    assert sorted(rejected_lines(err, path)) == bad
    assert f"{read} lines read, {len(good)} documents added, 0 already present, {len(bad)} rejected" in out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), kinds=st.lists(st.booleans(), min_size=1, max_size=12))
def test_jsonl_property_good_lines_imported_bad_lines_rejected_by_number(tmp_path, data, kinds):
    prefix = f"J{next(counter)}-"
    good, bad, lines = {}, [], []
    for n, is_good in enumerate(kinds, start=1):
        number = f"{prefix}{n}"
        if is_good:
            grantor = data.draw(SAFE_TEXT)
            good[number] = grantor
            lines.append(json.dumps(recording(number, grantor)).encode())
        else:
            bad.append(n)
            lines.append(data.draw(bad_jsonl(number)))
    path = tmp_path / f"{prefix}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out, err = run("import_recordings", path)
    check(path, out, err, good, bad, prefix, read=len(kinds))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), kinds=st.lists(st.booleans(), min_size=1, max_size=12))
def test_csv_property_good_lines_imported_bad_lines_rejected_by_number(tmp_path, data, kinds):
    prefix = f"C{next(counter)}-"
    good, bad, text = {}, [], csv_line(RECORDING_COLUMNS)
    for n, is_good in enumerate(kinds, start=1):
        number = f"{prefix}{n}"
        line = text.count("\n") + 1
        if is_good:
            grantor = data.draw(SAFE_TEXT)
            good[number] = grantor
            text += csv_line(recording(number, grantor).values())
        else:
            bad.append(line)
            text += data.draw(bad_csv(number))
    path = tmp_path / f"{prefix}.csv"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    out, err = run("import_recordings", path)
    check(path, out, err, good, bad, prefix, read=len(kinds))

import io
import json

import pytest

from scanners.darkwatch.identifiers import IdentifierInvalid, identifier_hash
from scanners.darkwatch.models import Breach, BreachRecord, WatchlistItem
from scanners.darkwatch.services import (
    ItemAlreadyWatched,
    breach_severity,
    breaches_import,
    watchlist_item_add,
    watchlist_item_update,
)
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

CSV = """breach,breach_date,data_classes,kind,identifier,title
LinkedOut,2021-06-22,Email addresses|Passwords,email,Jane@Example.com,LinkedOut
LinkedOut,2021-06-22,Email addresses|Passwords,email,not-an-address,LinkedOut
LinkedOut,,,phone,+1 415 555 0132,
ShopLeak,2019-02-30,Email addresses,email,x@example.com,
ShopLeak,2019-02-01,Names;Physical addresses,username,jdoe,
ShopLeak,2019-02-01,Names,fax,123,
,2019-02-01,Names,email,y@example.com,
"""


def test_csv_import_keeps_good_lines_and_reports_bad_ones_with_line_numbers():
    report = breaches_import(io.StringIO(CSV), "csv")
    assert (report.read, report.added, report.rejected_count) == (7, 3, 4)
    assert [line for line, _ in report.rejected] == [3, 5, 7, 8]
    reasons = dict(report.rejected)
    assert "not an email address" in reasons[3]
    assert "breach_date '2019-02-30' is not a YYYY-MM-DD date" in reasons[5]
    assert "kind 'fax'" in reasons[7]
    assert "breach is empty" in reasons[8]
    linked = Breach.objects.get(name="LinkedOut")
    assert linked.data_classes == ["Email addresses", "Passwords"]
    assert linked.severity == "critical"
    assert Breach.objects.get(name="ShopLeak").severity == "high"  # first good line's details: addresses
    assert BreachRecord.objects.filter(identifier_hash=identifier_hash("email", "jane@example.com")).exists()
    assert BreachRecord.objects.filter(identifier_hash=identifier_hash("phone", "+14155550132")).exists()


def test_reimporting_the_same_file_adds_nothing():
    breaches_import(io.StringIO(CSV), "csv")
    again = breaches_import(io.StringIO(CSV), "csv")
    assert (again.added, again.duplicates) == (0, 3)
    assert BreachRecord.objects.count() == 3
    assert Breach.objects.count() == 2


def test_json_lines_import_with_a_broken_line():
    lines = [
        json.dumps({"breach": "Forum", "kind": "username", "identifier": "DarkKnight", "data_classes": ["Usernames"]}),
        "{not json",
        json.dumps(["a", "list"]),
        "",
        json.dumps({"breach": "Forum", "kind": "username", "identifier": "darkknight"}),  # same, normalized
    ]
    report = breaches_import(io.StringIO("\n".join(lines)), "jsonl", batch_size=1)
    assert report.added == 1
    assert report.duplicates == 1
    assert [line for line, _ in report.rejected] == [2, 3]
    assert "not valid JSON" in report.rejected[0][1]


def test_adding_an_item_validates_first_and_refuses_duplicates():
    subscription = SubscriptionFactory()
    item = watchlist_item_add(subscription, "email", " Jane@Example.com ", label="personal")
    assert item.masked == "j***@example.com"
    with pytest.raises(ItemAlreadyWatched):
        watchlist_item_add(subscription, "email", "jane@example.com")
    with pytest.raises(IdentifierInvalid):
        watchlist_item_add(subscription, "phone", "not a number")
    assert WatchlistItem.objects.count() == 1
    watchlist_item_update(item, value="jane.doe@example.com", active=False)
    item.refresh_from_db()
    assert (item.value, item.active) == ("jane.doe@example.com", False)


@pytest.mark.parametrize(
    ("classes", "severity"),
    [
        (["Email addresses", "Passwords"], "critical"),
        (["Names", "Dates of birth"], "high"),
        (["Email addresses", "Usernames"], "medium"),
        ([], "medium"),
    ],
)
def test_breach_severity_follows_what_was_exposed(classes, severity):
    assert breach_severity(classes) == severity


def test_import_command_reports_progress_and_rejections(tmp_path):
    from django.core.management import call_command

    path = tmp_path / "breaches.csv"
    path.write_text(CSV)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_breaches", str(path), stdout=out, stderr=err)
    assert "7 lines read, 3 breach records added, 0 already present, 4 rejected" in out.getvalue()
    assert f"{path}:3: rejected:" in err.getvalue()


def test_import_command_refuses_a_file_without_the_columns(tmp_path):
    from django.core.management import CommandError, call_command

    path = tmp_path / "breaches.csv"
    path.write_text("name,email\nx,y@example.com\n")
    with pytest.raises(CommandError, match="lacks column"):
        call_command("import_breaches", str(path))
    assert BreachRecord.objects.count() == 0

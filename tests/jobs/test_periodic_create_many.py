"""periodic_jobs_create_many validates each row as full_clean validates one job (less
uniqueness, which the database's constraints check for the whole batch).

Its fast path accepts a row only when Django's checks surely pass; every other row gets
Django's own checks. These tests hold it to `PeriodicJob(**fields).full_clean()` row by row:
the same rows refused, with the same messages, in the same order, and the same rows stored.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jobs.models import JobRun, PeriodicJob, Schedule
from jobs.periodic import periodic_jobs_create_many
from jobs.scheduling import schedules_fire
from tests.postgres import analyze, foreign_keys_checked_at_once, rows_read_by_scans

pytestmark = pytest.mark.django_db

PING = {"message": "x"}


class NotJson:
    """A value json.dumps refuses (JSONField.validate's own check)."""


def full_clean_lines(fields: dict) -> list[str] | None:
    """What full_clean says of one job, in periodic_jobs_create_many's "field: message" lines."""
    return full_clean_of(fields)[0]


def full_clean_of(fields: dict) -> tuple[list[str] | None, PeriodicJob]:
    job = PeriodicJob(**fields)
    try:
        job.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        return [f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()], job
    return None, job


def create_many_outcome(jobs: list[dict]):
    """("refused", {index: lines}) or ("stored", [(name, payload), ...]) or ("raised", type);
    nothing stays behind."""
    try:
        with transaction.atomic():
            ids = periodic_jobs_create_many(jobs)
            stored = list(PeriodicJob.objects.filter(pk__in=ids).order_by("pk").values_list("name", "payload"))
            assert Schedule.objects.filter(periodic_job__in=ids).count() == len(jobs)
            transaction.set_rollback(True)
    except ValidationError as exc:
        return "refused", {int(key[5:-1]): lines for key, lines in exc.message_dict.items()}
    except Exception as exc:
        return "raised", type(exc)
    return "stored", stored


def full_clean_outcome(jobs: list[dict]):
    try:
        checked = [full_clean_of(job) for job in jobs]
    except Exception as exc:  # create_many must raise the same
        return "raised", type(exc)
    refused = {index: lines for index, (lines, _) in enumerate(checked) if lines}
    if refused:
        return "refused", refused
    try:  # what full_clean passes, the database may still refuse (a description of None)
        with transaction.atomic():
            for _, job in checked:
                job.save()
            transaction.set_rollback(True)
    except Exception as exc:  # create_many must raise the same
        return "raised", type(exc)
    return "stored", [(job.name, job.payload) for _, job in checked]  # as cleaned, as a save stores them


# Values that pass and values that fail each check, including the edges of the fast path:
# the longest name and one character more, blank and None, a payload the schema refuses,
# one json.dumps refuses, one that is not an object, an empty one.
# PostgreSQL stores no NUL character in text or jsonb: a refusal of the database, not of full_clean.
text = st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=8)
names = st.one_of(
    text.filter(bool),
    st.sampled_from(["", " ", "n" * 200, "n" * 201, "é" * 200, "é" * 201]),
    st.sampled_from([None, 7]),
)
descriptions = st.one_of(text, st.sampled_from(["", "d" * 300, "d" * 301, None, 3]))
payloads = st.one_of(
    st.builds(lambda message: {"message": message}, text),
    st.sampled_from(
        [{}, None, [], "text", 3, {"message": 5}, {"wrong": 1}, {"message": "x", "extra": 1}, [1, 2]],
    ),
    st.builds(lambda: {"message": NotJson()}),
    st.builds(lambda: {"message": {1, 2}}),
)
shared = st.fixed_dictionaries(
    {},
    optional={
        "job_type": st.sampled_from(["jobs.ping", "no.such.type"]),
        "timezone": st.sampled_from(["UTC", "Europe/Berlin", "Mars/Olympus", ""]),
        "max_attempts": st.sampled_from([None, 1, 26, 0, 27]),
        "retry_delays": st.sampled_from([None, [60, 300], [-1], "soon", []]),
        "overlap": st.sampled_from(["skip", "allow", "bogus"]),
        "priority": st.sampled_from(["", "high", "nope"]),
        "enabled": st.sampled_from([True, False]),
    },
)
timings = st.sampled_from(
    [
        {"frequency": "hourly"},
        {"frequency": "daily"},
        {"cron_expression": "0 9 * * 1"},
        {"cron_expression": "not a cron"},
        {"frequency": "fortnightly"},
        {"frequency": "hourly", "cron_expression": "0 * * * *"},
        {},
    ]
)


@st.composite
def batches(draw):
    """A few jobs sharing most values (as a real batch does), each with its own name, description
    and payload; names distinct, so the only errors are each row's own."""
    common = {"job_type": "jobs.ping", **draw(shared), **draw(timings)}
    size = draw(st.integers(min_value=1, max_value=5))
    jobs = []
    for index in range(size):
        job = {**common, "name": draw(names), "payload": draw(payloads), "description": draw(descriptions)}
        if isinstance(job["name"], str) and job["name"]:
            job["name"] = f"{index}{job['name'][1:]}"  # distinct, and as long as drawn
        if draw(st.booleans()):
            job.update(draw(shared))  # now and then a row of its own in other fields too
        jobs.append(job)
    return jobs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
@example([{"name": "a", "job_type": "jobs.ping", "payload": PING, "frequency": "hourly"}])
@example([{"name": "a" * 201, "job_type": "jobs.ping", "payload": {"message": NotJson()}, "frequency": "hourly"}])
@example(
    [
        {"name": "a", "job_type": "jobs.ping", "payload": {"wrong": 1}, "frequency": "hourly"},
        {"name": "b", "job_type": "jobs.ping", "payload": PING, "frequency": "hourly"},
        {"name": "c", "job_type": "jobs.ping", "payload": {"message": 5}, "frequency": "hourly"},
    ]
)
@example([{"name": "a", "job_type": "jobs.ping", "payload": None, "frequency": "hourly", "max_attempts": 0}])
# A name no database can be sent, in a batch refused for its payload: refused, not a driver error.
@example([{"name": "0\ud800", "job_type": "jobs.ping", "payload": {}, "frequency": "hourly"}])
def test_each_row_is_refused_or_stored_exactly_as_full_clean_says(jobs):
    names = [job["name"] for job in jobs]
    if len({repr(name) for name in names}) < len(names):
        return  # a name twice in the batch is refused by the batch itself, not full_clean
    assert create_many_outcome(jobs) == full_clean_outcome(jobs)


@pytest.mark.parametrize(
    ("fields", "first_line"),
    [
        ({"name": ""}, "name: This field cannot be blank."),
        ({"name": "n" * 201}, "name: Ensure this value has at most 200 characters (it has 201)."),
        ({"name": None}, "name: This field cannot be null."),
        ({"description": "d" * 301}, "description: Ensure this value has at most 300 characters (it has 301)."),
        ({"payload": {"message": NotJson()}}, "payload: Value must be valid JSON. message: Input should be a valid"),
        ({"payload": {"message": 5}}, "payload: message: Input should be a valid string"),
    ],
)
def test_a_row_the_fast_path_cannot_vouch_for_gets_djangos_own_message(fields, first_line):
    job = {"name": "a", "job_type": "jobs.ping", "payload": PING, "frequency": "hourly", **fields}
    # The rows before it are clean and take the fast path; this one must not.
    batch = [{**job, "name": f"clean {n}", "payload": PING, "description": ""} for n in range(3)] + [job]
    with pytest.raises(ValidationError) as caught:
        periodic_jobs_create_many(batch)
    assert caught.value.message_dict == {"jobs[3]": full_clean_lines(job)}
    assert full_clean_lines(job)[0].startswith(first_line)


def test_values_are_stored_as_full_clean_leaves_them():
    # full_clean turns 7 into the name "7" and "3" into 3 attempts before a save stores them.
    [pk] = periodic_jobs_create_many(
        [{"name": 7, "job_type": "jobs.ping", "payload": PING, "frequency": "hourly", "max_attempts": "3"}]
    )
    assert PeriodicJob.objects.filter(pk=pk).values_list("name", "max_attempts").get() == ("7", 3)


def test_a_taken_name_is_reported_by_the_insert_and_leaves_the_callers_transaction_usable():
    PeriodicJob.objects.create(name="taken", job_type="jobs.ping", payload=PING, frequency="daily")
    batch = [{"name": name, "job_type": "jobs.ping", "payload": PING, "frequency": "hourly"} for name in ("a", "taken")]
    with transaction.atomic():
        with pytest.raises(ValidationError) as caught:
            periodic_jobs_create_many(batch)
        assert caught.value.message_dict == {"jobs[1]": ["name: a periodic job named 'taken' exists already."]}
        assert not PeriodicJob.objects.filter(name="a").exists()  # nothing of the batch, and still usable
    assert not Schedule.objects.filter(periodic_job__name="a").exists()


def test_payloads_are_stored_as_given():
    payloads = [PING, {"message": 'quote " and \\ and ünïcode'}, {"message": ""}]
    batch = [
        {"name": f"p{n}", "job_type": "jobs.ping", "payload": payload, "frequency": "hourly"}
        for n, payload in enumerate(payloads)
    ]
    ids = periodic_jobs_create_many(batch)
    assert [PeriodicJob.objects.get(pk=pk).payload for pk in ids] == payloads


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's cached foreign-key check plans")
def test_a_large_import_into_a_small_table_is_checked_by_index_not_by_scanning_it_per_row():
    # A process that created a few periodic jobs while the table held a handful of rows has
    # a cached plan for the schedule rows' foreign-key check that scans the table (cheapest
    # for one page). Used for an import's 2,000 checks, it read the growing table 2,000
    # times over: quadratic, minutes for 100,000 jobs in the benchmark.
    table = PeriodicJob._meta.db_table
    analyze(table)  # a few rows, as statistics say after a quiet day
    foreign_keys_checked_at_once()
    for i in range(8):
        periodic_jobs_create_many(
            [{"name": f"early {i}", "job_type": "jobs.ping", "payload": PING, "frequency": "hourly"}]
        )
    before = rows_read_by_scans(table)
    jobs = [
        {"name": f"imported {i}", "job_type": "jobs.ping", "payload": PING, "frequency": "hourly"} for i in range(2000)
    ]

    periodic_jobs_create_many(jobs)

    # A scan or two of the whole table at most, not one per row (millions of rows read before).
    assert rows_read_by_scans(table) - before < 3 * len(jobs)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's cached foreign-key check plans")
def test_a_pass_firing_many_into_a_small_runs_table_is_checked_by_index_not_by_scanning_it_per_run():
    periodic_jobs_create_many(
        [{"name": f"job {i}", "job_type": "jobs.ping", "payload": PING, "frequency": "hourly"} for i in range(2008)]
    )
    schedules = list(Schedule.objects.filter(periodic_job__builtin=False).order_by("pk").values_list("pk", flat=True))
    Schedule.objects.filter(pk__in=schedules).update(next_run_at=timezone.now() - timedelta(minutes=1))
    table = JobRun._meta.db_table
    analyze(table)
    foreign_keys_checked_at_once()
    for pk in schedules[:8]:  # a quiet start: passes of one tick each
        schedules_fire([pk])
    before = rows_read_by_scans(table)

    report = schedules_fire(schedules[8:])

    assert report.queued == 2000
    # A scan or two of the whole table at most, not one per run.
    assert rows_read_by_scans(table) - before < 3 * 2000

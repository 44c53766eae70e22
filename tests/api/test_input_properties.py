"""Properties of what users and attackers feed the API (issue 16): payloads, periods, filters, logins.

Whatever is generated, the answer is a 2xx or a 4xx in the error shape, never a 5xx, and a 4xx
leaves the database as it was. Run on PostgreSQL too: it refuses more than SQLite does.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.exceptions import ParseError

from api.parsers import MAX_DEPTH, JSONParser, checked_value
from jobs.models import JobEvent, JobRun, SchedulerConfig
from jobs.registry import registry
from reports.periods import period_problems
from tests.api.conftest import error_of
from tests.api.test_hostile_input import forget_throttles, list_operations

pytestmark = pytest.mark.django_db

PROPERTY = hypothesis_settings(
    max_examples=60,
    deadline=None,  # the database is involved
    derandomize=True,  # CI does not flake; the examples differ per property, not per run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text as attackers write it: any code point, NUL and lone surrogates included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
offsets = st.integers(min_value=-24 * 60 + 1, max_value=24 * 60 - 1).map(
    lambda minutes: f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
)
instants = st.builds(lambda day, offset: f"{day.isoformat()}{offset}", st.datetimes(), offsets | st.just("Z"))


def state() -> tuple:
    """What a refused request must not change."""
    return (
        sorted(JobRun.objects.values_list("pk", "status")),
        JobEvent.objects.count(),
        sorted(SchedulerConfig.objects.values_list("pk", "frequency", "cron_expression", "enabled")),
    )


def assert_answer_in_contract(response, before):
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        error_of(response)
        assert state() == before


def post_json(client, path, body):
    # ensure_ascii: lone surrogates travel as \\udXXX escapes, as a hostile client would send them.
    return client.post(path, json.dumps(body, ensure_ascii=True, allow_nan=True), content_type="application/json")


# --- the parser on its own --------------------------------------------------------------------


def storable(value, depth: int = 1) -> bool:
    """What every database we run on stores, said independently of api.parsers."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, str):
        return not any(char == "\x00" or 0xD800 <= ord(char) <= 0xDFFF for char in value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -(2**63) < value < 2**63
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(storable(item, depth + 1) for item in value)
    return all(storable(key, depth) and storable(item, depth + 1) for key, item in value.items())


@given(json_values)
@example({"a\x00": 1})
@example([float("nan")])
@example({"n": 2**63})
@PROPERTY
def test_the_parser_accepts_exactly_what_every_database_can_store(value):
    text = json.dumps(value, ensure_ascii=True, allow_nan=True).encode()
    try:
        parsed = JSONParser().parse(io.BytesIO(text))
    except ParseError:
        assert not storable(value), value
    else:
        assert storable(value), value
        assert parsed == value
        json.dumps(parsed, allow_nan=False).encode("utf-8")  # what is accepted can be written back out


@given(st.integers(min_value=1, max_value=MAX_DEPTH + 5))
@PROPERTY
def test_nesting_is_refused_exactly_past_the_depth_limit(depth):
    value = 1
    for _ in range(depth - 1):
        value = [value]
    if depth <= MAX_DEPTH:
        assert checked_value(value) == value
    else:
        with pytest.raises(Exception, match="nested deeper"):
            checked_value(value)


# --- enqueue payloads -------------------------------------------------------------------------


@given(
    job_type=st.sampled_from(sorted(registry.names())) | any_text,
    payload=json_values | st.dictionaries(st.sampled_from(["message", "subscription_id", "n", "kind"]), scalars),
    extra=st.dictionaries(
        st.sampled_from(["priority", "delay_seconds", "run_at", "dedupe_key"]), scalars | instants, max_size=3
    ),
)
@example(job_type="jobs.ping", payload={"message": "a\x00b"}, extra={})
@example(job_type="jobs.ping", payload={"message": "\ud800"}, extra={})
@example(job_type="jobs.ping", payload={"message": "hi"}, extra={"run_at": "9999-12-31T00:00:00Z"})
@PROPERTY
def test_any_enqueue_is_answered_within_the_contract(api, staff, redis_conn, job_type, payload, extra):
    forget_throttles(redis_conn)
    before = state()
    response = post_json(api.as_user(staff), "/api/v1/jobs/", {"job_type": job_type, "payload": payload, **extra})
    assert_answer_in_contract(response, before)


# --- report periods ---------------------------------------------------------------------------


@given(start=st.dates(), end=st.dates())
@example(start=dt.date(1, 1, 1), end=dt.date(9999, 12, 31))
@example(start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31))
@PROPERTY
def test_a_report_is_queued_exactly_when_its_period_is_allowed(api, alice, redis_conn, settings, start, end):
    settings.REPORTS_MAX_QUEUED_PER_CUSTOMER = 10**6  # the period is under test here, not the queue limit
    forget_throttles(redis_conn)
    before = state()
    body = {"subscription": alice.subscriptions.get().pk, "period_start": str(start), "period_end": str(end)}
    response = post_json(api.as_user(alice), "/api/v1/reports/", body)
    assert_answer_in_contract(response, before)
    assert (response.status_code == 202) == (not period_problems(start, end)), (start, end, response.content)


@given(body=st.dictionaries(st.sampled_from(["subscription", "period_start", "period_end", "kind"]), json_values))
@PROPERTY
def test_any_report_request_body_is_answered_within_the_contract(api, alice, redis_conn, body):
    forget_throttles(redis_conn)
    before = state()
    assert_answer_in_contract(post_json(api.as_user(alice), "/api/v1/reports/", body), before)


# --- filters ----------------------------------------------------------------------------------

LISTS = list_operations()


@given(
    data=st.data(),
    value=any_text.filter(lambda text: "\n" not in text) | instants | st.integers().map(str),
)
@PROPERTY
def test_any_filter_value_on_any_list_is_answered_within_the_contract(api, alice, staff, redis_conn, data, value):
    path, parameters = data.draw(st.sampled_from(LISTS))
    names = [parameter["name"] for parameter in parameters] or ["anything"]
    name = data.draw(st.sampled_from(names))
    user = data.draw(st.sampled_from([alice, staff]))
    forget_throttles(redis_conn)
    response = api.as_user(user).get(path, {name: value})
    assert response.status_code < 500, (path, name, value)
    if response.status_code >= 400:
        error_of(response)


# --- logins -----------------------------------------------------------------------------------


@given(body=json_values)
@PROPERTY
def test_any_login_body_is_a_4xx_in_the_error_shape(api, redis_conn, body):
    forget_throttles(redis_conn)
    before = state()
    response = post_json(api, "/api/v1/auth/token/", body)
    assert 400 <= response.status_code < 500, response.content[:300]
    assert_answer_in_contract(response, before)

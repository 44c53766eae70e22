import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.factories import OperatorFactory, SubscriptionFactory, UserFactory


@pytest.fixture
def api():
    """An API client: `api.as_user(user)` logs a user in with a real token, as a script would."""
    from api.services import api_token_issue

    class Client(APIClient):
        def as_user(self, user):
            self.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user)}")
            return self

    return Client()


@pytest.fixture
def alice(db):
    return SubscriptionFactory(user=UserFactory(username="alice")).user


@pytest.fixture
def bob(db):
    return SubscriptionFactory(user=UserFactory(username="bob")).user


@pytest.fixture
def staff(db):
    """An operator who may do everything the API offers staff (tests/api/test_permissions.py tries the others):
    the operators group, jobs.schedulers, and changing customers' schedules and findings."""
    from django.contrib.auth.models import Permission

    user = OperatorFactory(username="operator", operator_permissions__schedulers=True)
    codenames = ("change_schedule", "change_alert", "change_titlechange")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def error_of(response) -> dict:
    """The one error shape; fails the test if the body has any other."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


@pytest.fixture
def throttle_window():
    """Time stands still mid-minute, so requests counted against a per-minute limit share one window."""
    with time_machine.travel(dt.datetime(2026, 12, 2, 9, 0, 30, tzinfo=dt.UTC), tick=False):
        yield


def queries_per_page_size(client, path: str, sizes=(5, 50)) -> dict[int, int]:
    """{page size: queries one list request made}, checking each page came back full."""
    counts = {}
    for size in sizes:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"{path}?page_size={size}")
        assert len(response.json()["results"]) == size, response.json()
        counts[size] = len(queries)
    return counts

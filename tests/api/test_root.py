"""GET /api/v1/: the API's root lists its endpoints (issue 17.4: it answered 404)."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_root_lists_every_endpoint_as_a_link_that_answers(api, staff):
    root = api.get("/api/v1/", HTTP_ACCEPT="application/json")
    assert root.status_code == 200
    links = root.json()
    expected = {
        "jobs", "job-types", "schedules", "scheduler-configs", "subscriptions", "alerts", "title-changes",
        "removal-requests", "voice-analyses", "reports", "auth/token", "stats", "metrics", "webhooks/keys",
        "periodic-jobs", "scheduler", "scheduler/forecast",
        "webhook-endpoints", "webhook-events", "webhook-deliveries",
    }  # fmt: skip
    assert set(links) == expected
    assert links["jobs"] == "http://testserver/api/v1/jobs/"
    api.as_user(staff)
    for name, url in links.items():
        method = api.post if name == "auth/token" else api.get
        assert method(url).status_code not in (404, 405, 500), (name, url)


def test_the_root_is_public_json_and_not_in_the_contract(api):
    root = api.get("/api/v1/")
    assert root.status_code == 200 and root["Content-Type"].startswith("application/json")
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/" not in schema["paths"]
    assert api.get("/api/v1/nothing-here/").status_code == 404  # the catch-all still answers 404

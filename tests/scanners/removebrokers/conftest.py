import json
import threading

import pytest
from werkzeug import Request, Response

from scanners.removebrokers.models import DataBroker
from tests.factories import SubscriptionFactory

PERSON = {"full_name": "Avery Quinn", "email": "avery@example.com", "postal_address": "1 Elm St, Springfield"}


class BrokerAPI:
    """A data broker's opt-out API on the test's local HTTP server: records every call, answers as told."""

    def __init__(self, httpserver, name="peoplefinder"):
        self.httpserver = httpserver
        self.name = name
        self.posts: list[dict] = []
        self.searches: list[dict] = []
        self.listed = set()  # emails the search still finds
        self.answers: list[tuple[int, dict, dict]] = []  # queued (status, body, headers) for the next POSTs
        self.lock = threading.Lock()
        httpserver.expect_request(f"/{name}/optout", method="POST").respond_with_handler(self._post)
        httpserver.expect_request(f"/{name}/search", method="GET").respond_with_handler(self._search)

    @property
    def endpoint(self) -> str:
        return self.httpserver.url_for(f"/{self.name}/optout")

    @property
    def search_url(self) -> str:
        return self.httpserver.url_for(f"/{self.name}/search")

    def _post(self, request: Request) -> Response:
        with self.lock:
            body = request.get_json()
            self.posts.append({**body, "idempotency_key": request.headers.get("Idempotency-Key")})
            if self.answers:
                status, answer, headers = self.answers.pop(0)
            else:
                status, answer, headers = 201, {"reference": f"{self.name}-{len(self.posts)}"}, {}
        return Response(json.dumps(answer), status=status, headers=headers, content_type="application/json")

    def _search(self, request: Request) -> Response:
        with self.lock:
            self.searches.append(request.args.to_dict())
            listed = request.args.get("email") in self.listed
        return Response(json.dumps({"listed": listed}), content_type="application/json")

    def broker(self, **overrides) -> DataBroker:
        values = {
            "name": self.name,
            "method": DataBroker.Method.API,
            "endpoint": self.endpoint,
            "search_url": self.search_url,
            "required_fields": ["full_name", "email"],
            "rate_limit_per_minute": 100,
            "recheck_after_days": 30,
        }
        return DataBroker.objects.create(**{**values, **overrides})


@pytest.fixture
def broker_api(httpserver):
    return BrokerAPI(httpserver)


@pytest.fixture
def subscription(transactional_db):
    return SubscriptionFactory(user__first_name="Avery", user__last_name="Quinn")

"""The SODA client against a local server that pages a dataset the way Socrata's /resource endpoint does."""

import json
from datetime import date

import pytest
from werkzeug import Request, Response

from jobs.errors import ProviderRejected, ProviderUnavailable
from scanners.hometitle.models import RecordedDocument, parcel_key
from scanners.hometitle.providers import ParcelQuery, SodaProvider
from tests.provider_server import ProviderServer

pytestmark = pytest.mark.django_db

TOKEN = "soda-app-token"
DATASET = "abcd-1234"
ROWS = [
    {
        "county": "sangamon",
        "document_number": f"2026-00{n}",
        "parcel_number": "14-000001",
        "document_type": "MORTGAGE",
        "recorded_date": f"2026-04-2{n}T00:00:00.000",
        "grantor": "Jane Doe",
        "grantee": "FIRST BANK",
        "amount": "100000",
    }
    for n in range(5)
]
PARCEL = ParcelQuery(parcel_key("sangamon", "14-000001"), "sangamon", "14-000001", date(2026, 4, 1))


@pytest.fixture
def soda(httpserver):
    with SodaProvider(base_url=httpserver.url_for(""), dataset=DATASET, app_token=TOKEN) as provider:
        provider.PAGE = 2
        yield provider


def dataset(request: Request) -> Response:
    """Socrata's answer: the rows of the page $offset/$limit ask for, ordered as $order says."""
    assert request.headers["X-App-Token"] == TOKEN
    assert request.args["$order"] == "document_number"
    assert request.args["$where"] == (
        "county = 'sangamon' AND parcel_number in('14-000001', 'O''BRIEN-1') AND recorded_date >= '2026-04-01T00:00:00'"
    )
    offset, limit = int(request.args["$offset"]), int(request.args["$limit"])
    return Response(json.dumps(ROWS[offset : offset + limit]), content_type="application/json")


def test_documents_are_fetched_page_by_page_stored_once_and_matched(httpserver, soda):
    httpserver.expect_request(f"/resource/{DATASET}.json").respond_with_handler(dataset)
    quoted = ParcelQuery(parcel_key("sangamon", "O'BRIEN-1"), "sangamon", "O'BRIEN-1", date(2026, 4, 10))
    hits = soda.lookup([PARCEL, quoted])
    assert len(httpserver.log) == 3  # pages of 2, 2 and 1 rows
    assert sorted(hit.document_type for hit in hits) == ["mortgage"] * 5
    assert RecordedDocument.objects.filter(source=f"soda:{DATASET}").count() == 5
    soda.lookup([PARCEL, quoted])
    assert RecordedDocument.objects.count() == 5


def test_malformed_json_is_a_clear_error_and_nothing_is_stored(httpserver, soda):
    httpserver.expect_request(f"/resource/{DATASET}.json").respond_with_data("{oops", content_type="application/json")
    with pytest.raises(ProviderUnavailable, match="not valid JSON"):
        soda.lookup([PARCEL])
    assert not RecordedDocument.objects.exists()


def test_rows_without_the_documented_columns_store_nothing(httpserver, soda):
    httpserver.expect_request(f"/resource/{DATASET}.json").respond_with_json([ROWS[0], {"document_number": "x"}])
    with pytest.raises(ProviderUnavailable, match="rows with document_number"):
        soda.lookup([PARCEL])
    assert not RecordedDocument.objects.exists()


def test_a_bad_app_token_fails_permanently(httpserver, soda):
    httpserver.expect_request(f"/resource/{DATASET}.json").respond_with_json(
        {"code": "invalid_app_token", "error": True, "message": "Invalid app_token specified"}, status=403
    )
    with pytest.raises(ProviderRejected, match="403: Invalid app_token"):
        soda.lookup([PARCEL])


def county_rows(method: str, path: str, query: dict, body: bytes) -> tuple[int, object]:
    """A SODA dataset with one mortgage per county, whatever county the $where names."""
    county = query["$where"][0].split("'")[1]
    if int(query["$offset"][0]):
        return 200, []
    return 200, [{**ROWS[0], "county": county, "document_number": f"{county}-1"}]


def test_counties_are_queried_at_once_up_to_the_configured_concurrency_with_the_sequential_result():
    parcels = [ParcelQuery(parcel_key(f"c{n}", "14-000001"), f"c{n}", "14-000001", date(2026, 4, 1)) for n in range(9)]
    with ProviderServer(county_rows, delay=0.05) as server:
        with SodaProvider(base_url=server.url, dataset=DATASET, concurrency=1) as soda:
            sequential = sorted(soda.lookup(parcels), key=lambda hit: hit.parcel_key)
        assert server.max_in_flight == 1
        RecordedDocument.objects.all().delete()
        server.reset_counts()
        with SodaProvider(base_url=server.url, dataset=DATASET, concurrency=3) as soda:
            overlapped = sorted(soda.lookup(parcels), key=lambda hit: hit.parcel_key)
    assert server.max_in_flight == 3 and server.requests == 9
    assert [(h.parcel_key, h.document_type, h.grantee) for h in overlapped] == [
        (h.parcel_key, h.document_type, h.grantee) for h in sequential
    ]
    assert len(overlapped) == 9 and RecordedDocument.objects.count() == 9

import pytest

from scanners.darkwatch.models import Alert, WatchlistItem
from tests.scanners.factories import BreachFactory, WatchlistFactory, WatchlistItemFactory

pytestmark = pytest.mark.django_db


def test_an_operator_adds_an_item_and_sees_it_only_masked(admin_client):
    watchlist = WatchlistFactory()
    response = admin_client.post(
        "/admin/scanners/watchlistitem/add/",
        {"watchlist": watchlist.pk, "kind": "email", "value": "Jane.Doe@Example.com", "label": "home", "active": "on"},
    )
    assert response.status_code == 302, response.content
    item = WatchlistItem.objects.get()
    assert item.value == "jane.doe@example.com"
    listing = admin_client.get("/admin/scanners/watchlistitem/").content.decode()
    assert "j***@example.com" in listing
    assert "jane.doe" not in listing
    change = admin_client.get(f"/admin/scanners/watchlistitem/{item.pk}/change/").content.decode()
    assert "jane.doe" not in change


def test_a_bad_identifier_is_refused_in_the_form_and_nothing_is_saved(admin_client):
    watchlist = WatchlistFactory()
    response = admin_client.post(
        "/admin/scanners/watchlistitem/add/", {"watchlist": watchlist.pk, "kind": "phone", "value": "call me maybe"}
    )
    assert response.status_code == 200
    assert "is not a phone number" in response.content.decode()
    assert not WatchlistItem.objects.exists()


def test_alerts_are_acknowledged_in_bulk(admin_client):
    item = WatchlistItemFactory()
    alert = Alert.objects.create(
        subscription=item.watchlist.subscription,
        item=item,
        breach=BreachFactory(),
        severity="critical",
        first_seen="2026-06-01T00:00:00Z",
    )
    admin_client.post("/admin/scanners/alert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.status == "acknowledged"

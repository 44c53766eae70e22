"""The console at 1366 px on a lived-in database: each main list fits the screen, and a screenshot of each."""

import pytest

from tests.lived_in import lived_in_build

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The lists an operator lives in (no horizontal scrolling allowed), then the products' lists
# (screenshots only: some still scroll sideways at 1366 px, see the README).
MAIN_LISTS = [
    ("jobs/jobrun", "admin-jobruns.png"),
    ("jobs/schedule", "admin-schedules.png"),
    ("jobs/schedulerconfig", "admin-schedulerconfigs.png"),
    ("jobs/periodicjob", "admin-periodicjobs.png"),
    ("kordant/subscription", "admin-subscriptions.png"),
    ("reports/report", "admin-reports.png"),
]
OTHER_LISTS = [
    ("scanners/alert", "admin-alerts.png"),
    ("scanners/removalrequest", "admin-removalrequests.png"),
    ("notifications/notification", "admin-notifications.png"),
]
# The page, and the admin's results box (it scrolls on its own: a clipped table shows no page scrollbar).
SCROLL = """() => [document.documentElement, ...document.querySelectorAll('#changelist .results')]
    .map(box => box.scrollWidth - box.clientWidth)"""


def test_the_main_lists_fit_1366_px_without_scrolling_sideways(
    page, live_server, screenshot, tmp_path, run_worker, tier_configs, settings
):
    lived_in_build(tmp_path, run_worker, settings)
    page.set_viewport_size({"width": 1366, "height": 768})
    too_wide = {}
    for path, name in MAIN_LISTS:
        page.goto(f"{live_server.url}/admin/{path}/")
        assert page.locator("#result_list tbody tr").count() > 0, f"{path}: the lived-in list is empty"
        screenshot(page, name)
        overflow = max(page.evaluate(SCROLL))
        if overflow > 0:
            too_wide[path] = overflow
    for path, name in OTHER_LISTS:
        page.goto(f"{live_server.url}/admin/{path}/")
        screenshot(page, name)
    assert too_wide == {}, f"lists scrolling sideways at 1366 px (pixels hidden): {too_wide}"

"""Demo data for `make run`: a small synthetic breach corpus and recorder dataset, and watched
items and properties for the demo subscribers, so their first scans find something.

Everything is fictional: example.com addresses, 555-01xx phone numbers, made-up parcels.
The files are written to var/demo/ and loaded through the same import services as
`manage.py import_breaches` / `import_recordings`; `python -m scanners.demo DIR` writes
them without loading, to look at or to import by hand.
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import date, timedelta
from pathlib import Path

BREACHES = [
    ("ShopNorth", "2024-02-11", "Email addresses|Names|Physical addresses"),
    ("GameForge", "2023-07-30", "Email addresses|Usernames|Passwords"),
    ("FitTrackr", "2025-01-05", "Email addresses|Dates of birth|Phone numbers"),
    ("PetPals", "2022-10-19", "Email addresses|Names"),
    ("CloudNotes", "2025-09-02", "Email addresses|Passwords|Auth tokens"),
]
# Who the demo subscribers watch, and which of it the corpus contains.
WATCHED = {
    "demo-basic": [("email", "demo-basic@example.com"), ("username", "basic_tester")],
    "demo-plus": [("email", "demo-plus@example.com"), ("phone", "+1 202 555 0143")],
    "demo-premium": [("email", "demo-premium@example.com"), ("username", "premium_pat"), ("domain", "example.com")],
    "demo-premium-2": [("email", "demo-premium-2@example.com")],
}
BREACHED = [
    ("GameForge", "email", "demo-basic@example.com"),
    ("GameForge", "username", "basic_tester"),
    ("ShopNorth", "email", "demo-plus@example.com"),
    ("FitTrackr", "phone", "+12025550143"),
    ("CloudNotes", "email", "demo-premium@example.com"),
    ("PetPals", "email", "demo-premium@example.com"),
    ("GameForge", "username", "premium_pat"),
]
OWNERS = {
    "demo-basic": "Bailey Basic",
    "demo-plus": "Pat Plus",
    "demo-premium": "Priya Premium",
    "demo-premium-2": "Quinn Premium",
}
COUNTY = "demo-county"


def write_breaches(path: Path, *, filler: int = 2000) -> Path:
    """The demo corpus: the demo subscribers' exposures among `filler` unrelated records."""
    rng = random.Random(2026)
    details = {name: (when, classes) for name, when, classes in BREACHES}
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["breach", "breach_date", "data_classes", "kind", "identifier"])
        for name, kind, value in BREACHED:
            writer.writerow([name, *details[name], kind, value])
        for n in range(filler):
            name, when, classes = rng.choice(BREACHES)
            writer.writerow([name, when, classes, "email", f"someone{n}@example.com"])
    return path


def write_recordings(path: Path, today: date, *, filler: int = 1000) -> Path:
    """The demo recorder data: each demo parcel's purchase years ago plus something new this month."""
    from scanners.hometitle.services import RECORDING_COLUMNS

    rng = random.Random(2026)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(RECORDING_COLUMNS)
        for n, (username, owner) in enumerate(OWNERS.items(), start=1):
            parcel = f"DEMO-{n:04d}"
            writer.writerow(
                [COUNTY, f"D-2019-{n:04d}", parcel, "WARRANTY DEED", "2019-05-01", "Previous Owner", owner, ""]
            )
            recent = (today - timedelta(days=3 + n)).isoformat()
            if username.startswith("demo-premium"):  # the fraud HomeTitle exists for
                writer.writerow(
                    [COUNTY, f"D-NEW-{n:04d}", parcel, "QUITCLAIM DEED", recent, owner, "Shady Holdings LLC", "10"]
                )
            else:
                writer.writerow([COUNTY, f"D-NEW-{n:04d}", parcel, "MORTGAGE", recent, owner, "Demo Bank NA", "180000"])
        for n in range(filler):
            when = today - timedelta(days=rng.randrange(3000))
            writer.writerow(
                [
                    COUNTY,
                    f"F-{n:06d}",
                    f"FILL-{n % 400:04d}",
                    rng.choice(["DEED", "MORTGAGE", "LIEN"]),
                    when.isoformat(),
                    "A Seller",
                    "A Buyer",
                    f"{rng.randrange(1000, 500000)}",
                ]
            )
    return path


def scanners_demo_ensure(directory: Path) -> str:
    """Load the demo corpus and recorder data, watch items and properties for the demo subscribers,
    and start their first scans; does nothing for subscribers that already watch something."""
    from django.utils import timezone

    from jobs.models import Schedule
    from jobs.scheduling import schedule_trigger_now
    from kordant.models import Subscription
    from scanners.darkwatch.models import WatchlistItem
    from scanners.darkwatch.services import breaches_import, watchlist_item_add
    from scanners.hometitle.services import property_add, recordings_import

    directory.mkdir(parents=True, exist_ok=True)
    with write_breaches(directory / "breaches.csv").open(newline="") as stream:
        breaches = breaches_import(stream, "csv", source="demo")
    with write_recordings(directory / "recordings.csv", timezone.now().date()).open(newline="") as stream:
        recordings = recordings_import(stream, "csv", source="demo")
    made = []
    for n, (username, owner) in enumerate(OWNERS.items(), start=1):
        subscription = Subscription.objects.filter(user__username=username).first()
        if subscription is None or WatchlistItem.objects.filter(watchlist__subscription=subscription).exists():
            continue
        for kind, value in WATCHED[username]:
            watchlist_item_add(subscription, kind, value, label="demo")
        property_add(
            subscription,
            address=f"{n} Demo Lane, Springfield",
            county=COUNTY,
            parcel_number=f"DEMO-{n:04d}",
            owner_names=owner,
        )
        # Their tier's schedules run monthly or weekly: scan now, so the results are there to see.
        for schedule in Schedule.objects.filter(
            subscription=subscription, config__job_type__in=["darkwatch.scan", "hometitle.scan"]
        ):
            schedule_trigger_now(schedule)
        made.append(username)
    return (
        f"Scanner demo data: {breaches.added:,} breach records and {recordings.added:,} recorded documents added; "
        + (
            f"watching items and properties for {', '.join(made)} (first scans queued)."
            if made
            else "watchlists already there."
        )
    )


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kordant.settings")
    django.setup()  # the recordings header comes from the import service
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    print(write_breaches(target / "breaches.csv"), write_recordings(target / "recordings.csv", date.today()))

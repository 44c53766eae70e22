"""`make run`'s demo data: the demo subscribers' first scans find exposures and title changes."""

import pytest
from django.core.management import call_command

from jobs.models import JobRun
from scanners.darkwatch.models import Alert
from scanners.hometitle.models import TitleChange

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_scans_produce_alerts_and_title_changes(run_worker, settings, tmp_path, mailoutbox, tier_configs):
    settings.VAR_DIR = tmp_path
    call_command("demo_data")
    call_command("demo_scanners")
    run_worker()

    scans = JobRun.objects.filter(job_type__in=["darkwatch.scan", "hometitle.scan"], trigger="manual")
    assert scans.count() == 8
    assert set(scans.values_list("status", flat=True)) == {"completed"}
    premium = Alert.objects.filter(subscription__user__username="demo-premium")
    assert {alert.breach.name for alert in premium} == {"CloudNotes", "PetPals", "GameForge"}
    fraud = TitleChange.objects.get(property__subscription__user__username="demo-premium")
    assert (fraud.severity, fraud.document.grantee) == ("critical", "Shady Holdings LLC")
    assert any("demo-premium@example.com" in message.to for message in mailoutbox)

    call_command("demo_scanners")  # again: nothing new
    assert JobRun.objects.filter(trigger="manual", job_type="darkwatch.scan").count() == 4

"""`hometitle.scan`: the RQ entry point for a subscription's property-title scan."""

from django.conf import settings

from jobs import job_type
from jobs.registry import subscription_schedule_payload
from scanners.hometitle.engine import properties_scan
from scanners.hometitle.providers import providers_from_settings
from scanners.hometitle.services import title_changes_notify_pending
from scanners.scanning import ScanPayload, scan_singleton_key, subscription_scan_run


@job_type(
    "hometitle.scan",
    payload=ScanPayload,
    queue="default",
    timeout=1800,
    singleton_key=scan_singleton_key,
    schedule_payload=subscription_schedule_payload,
)
def hometitle_scan(ctx, payload: ScanPayload) -> dict:
    """Fetch recorded documents for a subscription's properties, record title changes and alert."""
    return subscription_scan_run(
        ctx,
        payload.subscription_id,
        providers_from_settings=providers_from_settings,
        scan=properties_scan,
        batch_size=settings.HOMETITLE_BATCH_SIZE,
        notify_pending=title_changes_notify_pending,
        notified_key="notified_changes",
    )

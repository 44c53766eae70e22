"""What every per-subscription scan job does around its engine: check the subscription, run
the engine over the configured sources, close them, and tell the subscriber what is new."""

from collections.abc import Callable

from django.conf import settings
from pydantic import Field

from jobs import Payload
from jobs.errors import PermanentJobError
from kordant.models import Subscription


class ScanPayload(Payload):
    subscription_id: int = Field(description="The subscription whose watched items are scanned.")


def providers_named(setting: str, factories: dict[str, Callable[[], object]]) -> list:
    """The providers the setting of that name lists, in its order, each made by its factory;
    PermanentJobError for a name with no factory. The caller closes them."""
    providers = []
    for name in getattr(settings, setting):
        if name not in factories:
            raise PermanentJobError(f"{setting} names an unknown provider {name!r}; known: {', '.join(factories)}")
        providers.append(factories[name]())
    return providers


def scan_singleton_key(payload: ScanPayload) -> str:
    # Two scans of one subscription at once would only race each other to the same findings.
    return f"subscription:{payload.subscription_id}"


def subscription_scan_run(
    ctx,
    subscription_id: int,
    *,
    providers_from_settings: Callable[[], list],
    scan: Callable[..., object],
    batch_size: int,
    notify_pending: Callable[[int], int],
    notified_key: str,
) -> dict:
    """Run `scan` for the subscription with ctx's progress and cancellation, then `notify_pending`."""
    if not Subscription.objects.filter(pk=subscription_id).exists():
        raise PermanentJobError(f"subscription {subscription_id} does not exist")
    providers = providers_from_settings()
    try:
        report = scan(
            subscription_id,
            providers,
            batch_size=batch_size,
            progress=ctx.progress,
            checkpoint=ctx.raise_if_cancelled,
        )
    finally:
        for provider in providers:
            provider.close()
    result = report.as_dict()
    # Also catches findings of an earlier attempt that stopped before telling the subscriber.
    result[notified_key] = notify_pending(subscription_id)
    return result

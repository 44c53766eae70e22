"""System checks for the scanners' provider settings, run at start-up by every management command."""

from django.conf import settings
from django.core.checks import Error, register

# (concurrency setting, rate setting) of each outside provider a scan calls.
PROVIDER_SETTINGS = (
    ("HIBP_CONCURRENCY", "HIBP_RATE_LIMIT"),
    ("HOMETITLE_SODA_CONCURRENCY", "HOMETITLE_SODA_RATE_LIMIT"),
    ("REMOVEBROKERS_CONCURRENCY", None),
)


@register()
def provider_concurrency_check(app_configs=None, **kwargs):
    """Each provider's concurrency is a whole number of at least 1 and its rate reads like '10/m'."""
    from jobs.limits import parse_rate

    errors = []
    for concurrency_name, rate_name in PROVIDER_SETTINGS:
        concurrency = getattr(settings, concurrency_name)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            message = f"{concurrency_name} must be a whole number of at least 1, not {concurrency!r}"
            errors.append(Error(message, id="scanners.E001"))
        rate = getattr(settings, rate_name) if rate_name else ""
        if rate:
            try:
                parse_rate(rate)
            except ValueError as exc:
                errors.append(Error(f"{rate_name}: {exc}", id="scanners.E002"))
    return errors

"""What every outbound HTTP client shares: the result type and how HTTP outcomes become errors.

Notification channels, breach and county-record providers and data-broker clients all call
outside APIs. The job runner only understands two kinds of failure (jobs/errors.py), so
every client maps what happened on the wire to one of them, in one place:

| outcome                                         | raised                                   |
|-------------------------------------------------|------------------------------------------|
| connection error, timeout, 408, 429, 5xx        | `ProviderUnavailable` (retried)          |
| 2xx whose body is not the JSON the API promises | `ProviderUnavailable` (retried)          |
| any other 3xx or 4xx                            | `ProviderRejected` (fails the run)       |

A status the caller lists in `accept` (e.g. 404 for "no such account") is returned as a
`Reply` like a 2xx, for the caller to interpret.

`Retry-After` (delay-seconds or an HTTP-date) becomes `retry_after` on the retryable error.
Every error raised after a request went out carries `.delivery` (a `Delivery` with the
status code, duration and a response excerpt, so the caller can record each attempt) and
`.provider_code` (the provider's own error code, e.g. Twilio 21211 or Expo
DeviceNotRegistered, or None). Errors raised before any request carry `.delivery = None`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from jobs.errors import PermanentJobError, ProviderRejected, ProviderUnavailable, RetryableJobError

EXCERPT_CHARS = 500
# Enough for any JSON answer these APIs give; a larger body is cut off rather than held in memory.
MAX_RESPONSE_BYTES = 1_000_000

__all__ = [
    "EXCERPT_CHARS",
    "Delivery",
    "MessageInvalid",
    "Pace",
    "ProviderClient",
    "Reply",
    "get",
    "overlapped",
    "parse_retry_after",
    "post",
    "provider_error",
    "request",
]


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt as the caller records it, whether it succeeded or not."""

    provider_message_id: str | None
    status_code: int | None
    duration_ms: float
    response_excerpt: str
    # The request as it went out, for callers that log it (webhooks). Never in repr: an
    # API client's request carries its credentials.
    request: httpx.Request | None = field(default=None, repr=False, compare=False)


class MessageInvalid(PermanentJobError, ValueError):
    """The message itself cannot be sent (bad recipient, body too long); refused before any HTTP call."""

    delivery = None
    provider_code = None


@dataclass(frozen=True)
class Reply:
    """A 2xx (or accepted) answer, read in full (up to MAX_RESPONSE_BYTES)."""

    provider: str
    status_code: int
    headers: httpx.Headers
    content: bytes
    duration_ms: float
    request: httpx.Request | None = field(default=None, repr=False, compare=False)

    @property
    def excerpt(self) -> str:
        """The first EXCERPT_CHARS characters of the body, for logs and delivery rows."""
        return _excerpt(self.content)

    def delivery(self, provider_message_id: str | None) -> Delivery:
        """The Delivery record of this answer."""
        return Delivery(provider_message_id, self.status_code, self.duration_ms, self.excerpt, self.request)

    def json(self) -> Any:
        """The body as JSON; a 2xx that is not JSON means the provider is misbehaving, so retry later."""
        try:
            return json.loads(self.content)
        except ValueError:
            raise provider_error(
                ProviderUnavailable,
                f"{self.provider} answered {self.status_code} with a body that is not valid JSON: {self.excerpt!r}",
                delivery=self.delivery(None),
            ) from None


# (parsed JSON body or None, body excerpt) -> (the provider's error message, its error code or None)
ErrorDescriber = Callable[[Any, str], tuple[str, str | None]]


def describe_error(body: Any, excerpt: str) -> tuple[str, str | None]:
    """Fallback: a top-level `message` or `error` string if the body has one, else the excerpt."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str):
                return body[key], None
    return excerpt or "(empty body)", None


def provider_error(
    cls: type[Exception],
    message: str,
    *,
    delivery: Delivery | None = None,
    provider_code: str | None = None,
    retry_after: float | None = None,
) -> Exception:
    """Build a `ProviderUnavailable`/`ProviderRejected` carrying what the caller records per attempt."""
    error = cls(message, retry_after=retry_after) if issubclass(cls, RetryableJobError) else cls(message)
    error.delivery = delivery
    error.provider_code = provider_code
    return error


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    # A date already in the past means "now", not a negative wait.
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def request(
    client: httpx.Client,
    method: str,
    url: str | httpx.URL,
    *,
    provider: str,
    describe: ErrorDescriber = describe_error,
    deadline_s: float | None = None,
    accept: Collection[int] = (),
    **request_kwargs: Any,
) -> Reply:
    """Send one request and return the 2xx (or accepted) Reply, or raise the mapped error (module docstring).

    `deadline_s` caps the exchange once the body is being read: httpx's own timeouts apply per
    phase (connect, write, each read), so a server dripping its body would otherwise hold us.
    A server that drips its status line and headers is bounded only by the job's own timeout.
    """
    started = time.perf_counter()

    def elapsed_ms() -> float:
        return (time.perf_counter() - started) * 1000

    def failed(cls: type[Exception], message: str, **extra: Any) -> Exception:
        return provider_error(cls, message, delivery=Delivery(None, None, elapsed_ms(), "", sent), **extra)

    sent = client.build_request(method, url, **request_kwargs)
    try:
        response = client.send(sent, stream=True)
        try:
            content = _read_capped(response, None if deadline_s is None else started + deadline_s)
        finally:
            response.close()
    except httpx.TimeoutException as exc:
        raise failed(ProviderUnavailable, f"{provider} timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise failed(ProviderUnavailable, f"{provider} could not be reached: {exc or type(exc).__name__}") from exc

    status = response.status_code
    duration_ms = elapsed_ms()
    if 200 <= status < 300 or status in accept:
        return Reply(provider, status, response.headers, content, duration_ms, sent)

    excerpt = _excerpt(content)
    delivery = Delivery(None, status, duration_ms, excerpt, sent)
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    message, code = describe(body, excerpt)
    summary = f"{provider} answered {status}: {message}"
    # 408 is the server saying it timed out waiting for us: as retryable as our own timeout.
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise provider_error(
            ProviderUnavailable, summary, delivery=delivery, provider_code=code, retry_after=retry_after
        )
    if 300 <= status < 400:
        # Redirects are never followed: a provider endpoint that moved, or a webhook URL that
        # points elsewhere, needs a configuration change, not a retry.
        summary = f"{provider} answered {status} (redirect to {response.headers.get('Location', '?')}), not followed"
    raise provider_error(ProviderRejected, summary, delivery=delivery, provider_code=code)


def post(client: httpx.Client, url: str | httpx.URL, **kwargs: Any) -> Reply:
    """`request` with POST."""
    return request(client, "POST", url, **kwargs)


def get(client: httpx.Client, url: str | httpx.URL, **kwargs: Any) -> Reply:
    """`request` with GET."""
    return request(client, "GET", url, **kwargs)


class ProviderClient:
    """Owns one httpx.Client so connections are reused across sends; close it, or use it as a context manager."""

    def __init__(self, http: httpx.Client):
        self._http = http

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- several requests of one job in flight at once ------------------------------------------


class Pace:
    """Spaces request starts to a provider's documented rate ("10/s", "600/m"), across the threads of one client.

    Starts at least period/count apart: then no window of one period holds more than
    `count` of them, which a token bucket would allow at its edges.
    """

    def __init__(self, rate: str):
        from jobs.limits import parse_rate

        parsed = parse_rate(rate)
        self.interval = parsed.period / parsed.count
        self._next = 0.0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, rate: str | None) -> Pace | None:
        """A Pace for a rate setting; None for an empty one (no documented limit)."""
        return cls(rate) if rate else None

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


T = TypeVar("T")
R = TypeVar("R")


def overlapped(call: Callable[[T], R], items: Iterable[T], *, max_in_flight: int, pace: Pace | None = None) -> list[R]:
    """`call(item)` for every item, at most `max_in_flight` at once; the results in the items' order.

    For independent requests of one job (one per watched item, one per county): each runs on
    its own thread, sharing the caller's pooled httpx.Client (thread-safe). A call must not
    use the database: Django would open a connection per thread and never close it. If
    calls fail, the error of the first failing item in order is raised, as a loop would
    raise it, once the calls in flight have ended; calls not started by then are not made.
    """
    items = list(items)

    def paced(item: T) -> R:
        if pace is not None:
            pace.wait()
        return call(item)

    if max_in_flight <= 1 or len(items) <= 1:
        return [paced(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_in_flight, len(items)), thread_name_prefix="outbound") as pool:
        futures = [pool.submit(paced, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _read_capped(response: httpx.Response, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    past_deadline = False
    for chunk in response.iter_bytes():
        # Checked when more body arrives, so a response that was complete at the deadline still counts.
        if past_deadline:
            raise httpx.ReadTimeout("response body not complete before the deadline", request=response.request)
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RESPONSE_BYTES:
            break
        past_deadline = deadline is not None and time.perf_counter() > deadline
    return b"".join(chunks)[:MAX_RESPONSE_BYTES]


def _excerpt(content: bytes) -> str:
    # Decode only the head: EXCERPT_CHARS characters are at most 4 bytes each in UTF-8.
    return content[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]

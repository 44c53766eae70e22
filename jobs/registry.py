"""The job type registry: a stable name → schema, handler, queue, retries, timeout and keys.

Declare a type once, next to its handler:

    class ScanPayload(Payload):
        subscription_id: int

    @job_type("darkwatch.scan", payload=ScanPayload, queue="default", timeout=900,
              singleton_key=lambda p: f"sub:{p.subscription_id}",
              concurrency_limit=5, rate_limit="100/s")  # optional limits, see jobs/limits.py
    def darkwatch_scan(ctx, payload: ScanPayload):
        ...

The name is a wire contract: stored runs refer to it, so never rename it casually.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from jobs import limits
from jobs.errors import NotSchedulable, PayloadInvalid, UnknownJobType

QUEUES = ("critical", "high", "default", "low")
DEFAULT_RETRY_DELAYS = (60, 300, 900)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

KeyFunction = Callable[[Any], str | None]


@dataclass(frozen=True)
class ScheduleTick:
    """What a scheduled run knows when its payload is built: whose, which tick, how often."""

    subscription_id: int
    planned_for: Any  # datetime (UTC) of the tick; None for a manual or event trigger
    frequency: str  # "hourly", "daily", "weekly", "monthly", or "" for a custom cron expression
    timezone: str


def subscription_schedule_payload(tick: ScheduleTick) -> dict:
    """The scheduled payload of a type that takes only a subscription id (the scanners)."""
    return {"subscription_id": tick.subscription_id}


class Payload(BaseModel):
    """Base class for payload schemas: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class JobType:
    name: str
    handler: Callable[..., Any]
    payload: type[Payload]
    queue: str = "default"
    retry_delays: tuple[int, ...] = DEFAULT_RETRY_DELAYS
    timeout: int = 600
    dedupe_key: KeyFunction | None = None
    singleton_key: KeyFunction | None = None
    supersede_key: KeyFunction | None = None
    # How a schedule tick becomes this type's payload. Only types that declare one may be
    # named by a SchedulerConfig: a guessed payload ({"subscription_id": ...}) fails every
    # tick of a type that takes something else (notifications.send).
    schedule_payload: Callable[[ScheduleTick], dict] | None = None
    # Called once in a forking worker's long-lived parent before its first job, for types on
    # the queues it serves: what it loads (a PDF engine, fonts, a model) is then shared by
    # every work horse instead of loaded again in each.
    warm_up: Callable[[], None] | None = None
    # Whether customers may run this type on periodic jobs of their own, and how: given a
    # valid payload and the customer, it returns {field: problem} for every part of the
    # payload that is not theirs (empty: all theirs). Types without one stay staff-only.
    customer_check: Callable[[Any, Any], dict[str, str]] | None = None
    # Limits across all workers (jobs/limits.py; settings.JOBS_LIMITS overrides them): at most
    # this many runs at once, at most so many starts per period ("100/s", "10/m"), counted
    # per type or per `limit_key` of the payload (a callable, or a template: "{provider}").
    concurrency_limit: int | None = None
    rate_limit: str | None = None
    limit_key: KeyFunction | str | None = None
    description: str = field(default="")

    @property
    def schedulable(self) -> bool:
        return self.schedule_payload is not None

    def scheduled_payload(self, tick: ScheduleTick) -> dict:
        """The payload for a schedule's tick; NotSchedulable for a type that declares none."""
        if self.schedule_payload is None:
            raise NotSchedulable(f"Job type {self.name!r} cannot run on a schedule: it declares no scheduled payload")
        return self.schedule_payload(tick)

    @property
    def open_to_customers(self) -> bool:
        return self.customer_check is not None

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    def validate(self, payload: Any) -> Payload:
        """Parse a JSON-shaped payload into the schema, or raise PayloadInvalid with field errors."""
        if isinstance(payload, self.payload):
            return payload
        if not isinstance(payload, dict):
            raise PayloadInvalid(self.name, {"__root__": [f"must be an object, not {type(payload).__name__}"]})
        try:
            return self.payload.model_validate(payload)
        except ValidationError as exc:
            raise PayloadInvalid(self.name, field_errors(exc)) from None

    def keys_for(self, payload: Payload) -> dict[str, str | None]:
        return {
            "dedupe_key": self.dedupe_key(payload) if self.dedupe_key else None,
            "singleton_key": self.singleton_key(payload) if self.singleton_key else None,
            "supersede_key": self.supersede_key(payload) if self.supersede_key else None,
        }

    def json_schema(self) -> dict:
        return self.payload.model_json_schema()


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """A pydantic error as {"field.path": [messages]}, the shape PayloadInvalid and the API report."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"]) or "__root__"
        errors.setdefault(path, []).append(error["msg"])
    return errors


class Registry:
    def __init__(self):
        self._types: dict[str, JobType] = {}

    def register(self, job_type: JobType) -> JobType:
        _check_declaration(job_type)
        existing = self._types.get(job_type.name)
        if existing is not None and existing.handler is not job_type.handler:
            raise ValueError(f"Job type {job_type.name!r} is already registered by {existing.handler.__module__}")
        self._types[job_type.name] = job_type
        return job_type

    def get(self, name: str) -> JobType:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownJobType(f"Unknown job type {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._types)

    def schedulable_names(self) -> list[str]:
        """The types a SchedulerConfig may name: those that declare a scheduled payload."""
        return [name for name in self.names() if self._types[name].schedulable]

    def customer_names(self) -> list[str]:
        """The types customers may put on periodic jobs of their own."""
        return [name for name in self.names() if self._types[name].open_to_customers]

    def all(self) -> list[JobType]:
        return [self._types[name] for name in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._types


def _check_declaration(job_type: JobType) -> None:
    problems = []
    if not NAME_PATTERN.match(job_type.name):
        problems.append("name must be dotted lowercase, e.g. 'darkwatch.scan'")
    if not (isinstance(job_type.payload, type) and issubclass(job_type.payload, BaseModel)):
        problems.append("payload must be a pydantic model class (subclass jobs.Payload)")
    if job_type.queue not in QUEUES:
        problems.append(f"queue must be one of {', '.join(QUEUES)}")
    if not all(isinstance(delay, int) and delay >= 0 for delay in job_type.retry_delays):
        problems.append("retry_delays must be non-negative whole seconds")
    if not (isinstance(job_type.timeout, int) and job_type.timeout > 0):
        problems.append("timeout must be a positive number of seconds")
    if not callable(job_type.handler):
        problems.append("handler must be callable")
    if job_type.warm_up is not None and not callable(job_type.warm_up):
        problems.append("warm_up must be callable")
    if job_type.customer_check is not None and not callable(job_type.customer_check):
        problems.append("customer_check must be callable")
    payload_fields = set(job_type.payload.model_fields) if not problems else None
    for check, value in (
        (limits.check_concurrency, job_type.concurrency_limit),
        (lambda rate: rate is None or limits.parse_rate(rate), job_type.rate_limit),
        (lambda key: limits.check_key(key, payload_fields), job_type.limit_key),
    ):
        try:
            check(value)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError(f"Bad declaration of job type {job_type.name!r}: {'; '.join(problems)}")


registry = Registry()


def job_type(
    name: str,
    *,
    payload: type[Payload],
    queue: str = "default",
    retry_delays: tuple[int, ...] = DEFAULT_RETRY_DELAYS,
    timeout: int = 600,
    dedupe_key: KeyFunction | None = None,
    singleton_key: KeyFunction | None = None,
    supersede_key: KeyFunction | None = None,
    schedule_payload: Callable[[ScheduleTick], dict] | None = None,
    warm_up: Callable[[], None] | None = None,
    customer_check: Callable[[Any, Any], dict[str, str]] | None = None,
    concurrency_limit: int | None = None,
    rate_limit: str | None = None,
    limit_key: KeyFunction | str | None = None,
):
    """Declare a job type; the decorated function `handler(ctx, payload)` runs it."""

    def register(handler):
        registry.register(
            JobType(
                name=name,
                handler=handler,
                payload=payload,
                queue=queue,
                retry_delays=tuple(retry_delays),
                timeout=timeout,
                dedupe_key=dedupe_key,
                singleton_key=singleton_key,
                supersede_key=supersede_key,
                schedule_payload=schedule_payload,
                warm_up=warm_up,
                customer_check=customer_check,
                concurrency_limit=concurrency_limit,
                rate_limit=rate_limit,
                limit_key=limit_key,
                description=(handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else "",
            )
        )
        return handler

    return register

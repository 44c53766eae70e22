"""Writes for the job system: enqueue, state transitions, cancel, retry, recovery, pruning."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from jobs import dispatch, hooks, hotpath, limits, transitions
from jobs.bulk import bulk_insert, bulk_insert_values, statistics_catch_up
from jobs.errors import InvalidTransition, PayloadInvalid
from jobs.models import JobEvent, JobRun
from jobs.registry import QUEUES, registry
from jobs.transitions import Transition

logger = logging.getLogger("jobs")
Status = JobRun.Status
_TRIGGERS = frozenset(JobRun.Trigger.values)  # the enum recomputes its values on every access
_EVENT_COLUMNS = ["job_run_id", "at", "status", "attempt", "worker", "message"]


# --- enqueue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EnqueueRequest:
    """One run to create; `enqueue_many` takes a list of these."""

    job_type: str
    payload: Any
    priority: str | None = None
    delay: timedelta | float | None = None
    at: datetime | None = None
    dedupe_key: str | None = None
    user: Any = None
    subscription: Any = None
    trigger: str = JobRun.Trigger.API
    schedule: Any = None
    # A periodic job's own retry policy; None means the job type's.
    max_attempts: int | None = None
    retry_delays: list[int] | None = None


def enqueue(
    job_type: str,
    payload: Any,
    *,
    priority: str | None = None,
    delay: timedelta | float | None = None,
    at: datetime | None = None,
    dedupe_key: str | None = None,
    user=None,
    subscription=None,
    trigger: str = JobRun.Trigger.API,
    schedule=None,
    max_attempts: int | None = None,
    retry_delays: list[int] | None = None,
) -> JobRun:
    """Create a run in the caller's transaction; it reaches Redis only when that transaction commits."""
    request = EnqueueRequest(
        job_type, payload, priority, delay, at, dedupe_key, user, subscription, trigger, schedule,
        max_attempts, retry_delays,
    )  # fmt: skip
    run = _build_run(request, timezone.now())
    with transaction.atomic():
        if run.supersede_key:
            _supersede_older(run)
        if run.dedupe_key:
            existing = _active_with_dedupe_key(run)
            if existing is not None:
                return existing
            try:
                with transaction.atomic():
                    run.save(force_insert=True)
            except IntegrityError:
                # A concurrent enqueue won the race for this key; the database said so.
                existing = _active_with_dedupe_key(run)
                if existing is None:
                    raise
                return existing
        else:
            run.save(force_insert=True)
        _record_events([run], Status.PENDING, f"enqueued ({run.trigger})")
        transaction.on_commit(lambda: dispatch_runs([run]))
    return run


def enqueue_many(requests: list[EnqueueRequest]) -> list[JobRun]:
    """Fan-out: validate all, one bulk insert, one Redis pipeline on commit. Dedupe keys are not checked."""
    now = timezone.now()
    runs = [_build_run(request, now) for request in requests]
    if any(run.dedupe_key or run.supersede_key for run in runs):
        raise ValueError("enqueue_many does not take dedupe or supersede keys; use enqueue() for those")
    with transaction.atomic():
        bulk_insert(JobRun, runs)
        statistics_catch_up(JobRun, len(runs))  # before the events' foreign-key checks use its plan
        _record_events(runs, Status.PENDING, "enqueued")
        transaction.on_commit(lambda: dispatch_runs(runs))
    return runs


def _build_run(request: EnqueueRequest, now: datetime) -> JobRun:
    job_type = registry.get(request.job_type)
    payload = job_type.validate(request.payload)
    queue = request.priority or job_type.queue
    if queue not in QUEUES:
        raise PayloadInvalid(job_type.name, {"priority": [f"must be one of {', '.join(QUEUES)}"]})
    if request.trigger not in _TRIGGERS:
        raise ValueError(f"unknown trigger {request.trigger!r}")
    if request.delay is not None and request.at is not None:
        raise ValueError("give delay or at, not both")
    scheduled_for = request.at
    if request.delay is not None:
        delay = request.delay if isinstance(request.delay, timedelta) else timedelta(seconds=request.delay)
        scheduled_for = now + delay
    if scheduled_for is not None and timezone.is_naive(scheduled_for):
        raise ValueError("at must be timezone-aware")
    keys = job_type.keys_for(payload)
    run = _new_run(
        job_type=job_type.name,
        payload=payload.model_dump(mode="json"),
        queue=queue,
        trigger=request.trigger,
        dedupe_key=request.dedupe_key or keys["dedupe_key"],
        singleton_key=keys["singleton_key"],
        supersede_key=keys["supersede_key"],
        max_attempts=request.max_attempts or job_type.max_attempts,
        retry_delays=request.retry_delays,
        timeout=job_type.timeout,
        scheduled_for=scheduled_for,
    )
    if request.user is not None:
        run.user = request.user
    if request.subscription is not None:
        run.subscription = request.subscription
    if request.schedule is not None:
        run.schedule = request.schedule
    return run


_RUN_FIELDS = JobRun._meta.concrete_fields
_RUN_FIELD_INDEX = {field.attname: index for index, field in enumerate(_RUN_FIELDS)}
_RUN_ATTNAMES = [field.attname for field in _RUN_FIELDS]
# Each field's default, or the callable that makes one (a fresh id, a fresh dict).
_RUN_DEFAULTS = [
    field.default if field.has_default() and callable(field.default) else field.get_default() for field in _RUN_FIELDS
]


def _run_row(values: dict) -> list:
    """Every JobRun column in model order: its default (a fresh one where the default is made), or `values`."""
    row = [default() if callable(default) else default for default in _RUN_DEFAULTS]
    for attname, value in values.items():
        row[_RUN_FIELD_INDEX[attname]] = value
    return row


def _new_run(**values) -> JobRun:
    """JobRun(**values), built by position: Django's keyword path costs four times as much
    (23 against 6 microseconds), which a 10,000-run fan-out felt."""
    return JobRun(*_run_row(values))


def job_run_columns(**values) -> dict:
    """A new run as {attname: value} for bulk writes that skip model instances: defaults, then `values`."""
    return dict(zip(_RUN_ATTNAMES, _run_row(values), strict=True))


def _active_with_dedupe_key(run: JobRun) -> JobRun | None:
    return JobRun.objects.filter(
        job_type=run.job_type, dedupe_key=run.dedupe_key, status__in=JobRun.ACTIVE_STATUSES
    ).first()


def _supersede_older(run: JobRun) -> None:
    older = JobRun.objects.select_for_update().filter(
        job_type=run.job_type, supersede_key=run.supersede_key, status__in=JobRun.ACTIVE_STATUSES
    )
    for previous in older:
        job_run_cancel(previous, reason=f"superseded by run {run.pk}")


def dispatch_runs(runs: list[JobRun]) -> None:
    """Push committed runs to Redis and mark them queued. If Redis is down they stay pending.

    With JOBS_RUN_IN_PROCESS on, runs due now are run here instead (see _run_in_process).
    """
    here: list[JobRun] = []
    if settings.JOBS_RUN_IN_PROCESS:
        now = timezone.now()
        here = [run for run in runs if (run.next_attempt_at or run.scheduled_for or now) <= now]
        runs = [run for run in runs if (run.next_attempt_at or run.scheduled_for or now) > now]
    if runs:
        try:
            queued, delayed = dispatch.push([dispatch.Dispatch.of(run) for run in runs])
        except (redis.RedisError, OSError) as exc:
            logger.warning("Redis unavailable, %d run(s) stay pending for the recovery pass: %s", len(runs), exc)
        else:
            _mark_queued(queued + delayed)
    if here:
        _run_in_process(here)


def _run_in_process(runs: list[JobRun]) -> None:
    """Development mode: run each attempt now, in the caller, through the worker's own runner.

    Queued first, so the run's events are a worker's exactly; the runner then claims,
    performs and records it, and a retry goes to the delayed set for a real worker. An
    error the runner does not record (the database failing) reaches the caller, as it
    would end a worker's job; the recovery pass repairs the run as for a lost worker.
    """
    from jobs import runner  # the runner imports this module

    _mark_queued([str(run.pk) for run in runs])
    for run in runs:
        runner.execute(str(run.pk))


def _mark_queued(ids: list[str], *, from_statuses=(Status.PENDING,), message: str = "queued") -> None:
    now = timezone.now()
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        if hotpath.available():
            changed = hotpath.mark_queued(chunk, from_statuses, now)
        else:
            with transaction.atomic():
                changed = list(
                    JobRun.objects.select_for_update()
                    .filter(pk__in=chunk, status__in=from_statuses)
                    .values_list("pk", "attempt")
                )
                JobRun.objects.filter(pk__in=[pk for pk, _ in changed]).update(
                    status=Status.QUEUED, enqueued_at=now, updated_at=now
                )
        bulk_insert_values(
            JobEvent,
            _EVENT_COLUMNS,
            [(pk, now, Status.QUEUED, attempt, "", message) for pk, attempt in changed],
            returning=False,
        )


def _record_events(runs: list[JobRun], status: str, message: str = "", worker: str = "") -> None:
    now = timezone.now()
    bulk_insert_values(
        JobEvent, _EVENT_COLUMNS, [(run.pk, now, status, run.attempt, worker, message) for run in runs], returning=False
    )


def _record_event(run_id, status: str, attempt: int, message: str = "", worker: str = "") -> None:
    JobEvent.objects.create(
        job_run_id=run_id, at=timezone.now(), status=status, attempt=attempt, worker=worker, message=message
    )


def delayed_runs_push_due(*, limit: int = 5000) -> int:
    """Move runs whose time has come from the delayed set to their queues; return how many."""
    ids = dispatch.due_delayed_ids(limit=limit)
    if not ids:
        return 0
    startable = list(
        JobRun.objects.filter(pk__in=ids, status__in=JobRun.STARTABLE_STATUSES).only("pk", "queue", "timeout")
    )
    items = [dispatch.Dispatch(str(run.pk), run.queue, run.timeout) for run in startable]
    if items:
        dispatch.push(items)
    dispatch.forget_delayed(ids)
    _mark_queued([item.id for item in items], from_statuses=(Status.PENDING, Status.RETRYING), message="due")
    return len(items)


# --- transitions the runner makes ------------------------------------------------------


def _transition(
    transition: Transition, run_id, attempt, *, job_type: str = "", worker: str = "", message: str = "", **given
) -> bool:
    """Apply a transition of jobs/transitions.py with its audit event; False if the run is not in a state it applies to.

    PostgreSQL takes the one-statement fast path rendered from the same definition.
    """
    if hotpath.available():
        changed = hotpath.apply(transition, run_id, attempt, given, worker=worker, message=message)
    else:
        with transaction.atomic():
            changed = JobRun.objects.filter(**transition.orm_filter(run_id, attempt)).update(
                **transition.orm_update(given)
            )
            if changed:
                if attempt is None:  # a transition that names no attempt records the run's own
                    attempt = JobRun.objects.filter(pk=run_id).values_list("attempt", flat=True).get()
                _record_event(run_id, transition.to, attempt, message=message, worker=worker)
    if changed and transition.to in _ANNOUNCED:
        # Both paths end here, so a transition is announced once whichever path made it.
        transaction.on_commit(partial(_announce_transition, run_id, transition.to, job_type))
    return bool(changed)


_ANNOUNCED = frozenset({Status.COMPLETED, Status.RETRYING, Status.FAILED, Status.CANCELLED})


def _announce_transition(run_id, status: str, job_type: str) -> None:
    # After commit, and robustly: a receiver's trouble must not undo or hide the transition.
    sent = hooks.run_transitioned.send_robust(JobRun, run_id=run_id, status=status, job_type=job_type)
    for receiver, response in sent:
        if isinstance(response, Exception):
            logger.error("run %s is %s; telling %s failed: %r", run_id, status, receiver.__qualname__, response)


def job_run_mark_running(run_id, worker: str) -> JobRun | None:
    """Claim a run for this attempt; None if it is not startable, its singleton key is busy or its limits say wait."""
    limited = _limited_run(run_id)
    admission = None
    if limited is not None:
        run, job_limits, key = limited
        admission = limits.admit(job_limits, key, str(run.pk), run.timeout, dispatch.redis_connection())
        if not admission.allowed:
            _wait_for_limit(run, job_limits, admission)
            return None
    # A limited run's start is the time its rate was counted at, so started_at agrees with the limit.
    now = admission.at if admission is not None else timezone.now()
    claimed = _claim(run_id, worker, now)
    if claimed is None and admission is not None:
        # Not started after all (cancelled meanwhile, singleton busy): give the slot and the start back.
        _limits_release(job_limits, key, str(run_id), start_member=admission.start_member)
    return claimed


def _claim(run_id, worker: str, now: datetime) -> JobRun | None:
    given = {"started_at": now, "worker_name": worker, "updated_at": now}
    try:
        if hotpath.available():
            return hotpath.claim(run_id, worker, now)
        with transaction.atomic():
            if not JobRun.objects.filter(**transitions.CLAIM.orm_filter(run_id, None)).update(
                **transitions.CLAIM.orm_update(given)
            ):
                return None
            claimed = JobRun.objects.get(pk=run_id)
            _record_event(claimed.pk, Status.RUNNING, claimed.attempt, worker=worker)
            return claimed
    except IntegrityError:
        return _wait_for_singleton(run_id)


# --- limits per job type (jobs/limits.py) --------------------------------------------------


def _limits_in_force() -> dict[str, limits.Limits]:
    """The job types that have limits, with them; rebuilt when settings.JOBS_LIMITS is replaced."""
    configured = settings.JOBS_LIMITS
    cached = _limits_cache.get("entry")
    if cached is None or cached[0] is not configured or cached[1] != len(registry.names()):
        in_force = {job_type.name: limits.limits_for(job_type) for job_type in registry.all()}
        cached = (configured, len(registry.names()), {name: found for name, found in in_force.items() if found.active})
        _limits_cache["entry"] = cached
    return cached[2]


_limits_cache: dict[str, tuple] = {}


def _limited_run(run_id) -> tuple[JobRun, limits.Limits, str] | None:
    """The run, its limits and its limit key, if its type has limits (one read, only when some type has)."""
    in_force = _limits_in_force()
    if not in_force:
        return None
    run = (
        JobRun.objects.filter(pk=run_id)
        .only("pk", "status", "job_type", "payload", "queue", "timeout", "attempt", "progress_message")
        .first()
    )
    # A run that cannot start anyway (done, cancelled: a stale RQ job) takes no slot and waits for nothing.
    if run is None or run.job_type not in in_force or run.status not in JobRun.STARTABLE_STATUSES:
        return None
    job_limits = in_force[run.job_type]
    try:
        payload = registry.get(run.job_type).validate(run.payload)
        key = job_limits.key_for(payload)
    except Exception:  # an invalid payload fails in the runner, with its reason; it counts against the type
        key = run.job_type
    return run, job_limits, key


def _wait_for_limit(run: JobRun, job_limits: limits.Limits, admission: limits.Admission) -> None:
    """A run its limits hold back stays queued, marked as waiting: for a freed slot, or until its start time."""
    now = timezone.now()
    message = admission.message[:300]
    update = {"progress_message": message, "updated_at": now}
    if admission.at is not None:
        update["scheduled_for"] = admission.at
    JobRun.objects.filter(pk=run.pk, status__in=JobRun.STARTABLE_STATUSES).update(**update)
    # One event when it starts waiting, not one each time it comes back to a full window.
    if run.waiting_for_limit != message[len(limits.WAITING_MARKER) :]:
        when = f"; next start at {admission.at:%H:%M:%S.%f}" if admission.at is not None else ""
        _record_event(run.pk, Status.QUEUED, run.attempt, message=f"{message}{when}"[:2000])
    if admission.at is not None:
        back_at = max(admission.at, now + timedelta(seconds=limits.REQUEUE_AFTER_SECONDS))
        dispatch.push([dispatch.Dispatch(str(run.pk), run.queue, run.timeout, back_at)])
    if admission.released:  # it gave back a slot it had been promoted to: the next waiting run takes it
        _limits_release(job_limits, admission.key, "")


def _limits_release(job_limits: limits.Limits, key: str, run_id: str, *, start_member: str = "") -> int:
    """Release a run's slot; push the waiting runs given the freed slots back to their queues; return how many."""
    connection = dispatch.redis_connection()
    promoted = limits.release(job_limits, key, run_id, connection, start_member=start_member)
    pushed = 0
    while promoted:
        startable = JobRun.objects.filter(pk__in=promoted, status__in=JobRun.STARTABLE_STATUSES)
        runs = list(startable.only("queue", "timeout"))
        if runs:
            # Through the delayed set, a moment later: the worker that held the run back may
            # still be finishing the RQ job it took it from, and deletes that job's hash when done.
            back_at = timezone.now() + timedelta(seconds=limits.REQUEUE_AFTER_SECONDS)
            dispatch.push([dispatch.Dispatch(str(run.pk), run.queue, run.timeout, back_at) for run in runs])
            pushed += len(runs)
        gone = set(promoted) - {str(run.pk) for run in runs}
        # A promoted run that is no longer startable (cancelled while waiting) passes its slot on.
        promoted = [p for run_id in gone for p in limits.release(job_limits, key, run_id, connection)]
    return pushed


def job_run_limits_release(run: JobRun) -> None:
    """An attempt ended (or was declared lost): free its concurrency slot and start the next waiting run."""
    in_force = _limits_in_force()
    job_limits = in_force.get(run.job_type)
    if job_limits is None or job_limits.concurrency is None:
        return
    try:
        key = job_limits.key_for(registry.get(run.job_type).validate(run.payload))
    except Exception:
        key = run.job_type
    try:
        _limits_release(job_limits, key, str(run.pk))
    except Exception as exc:  # Redis or the database away: the caller's outcome stands regardless
        # The slot expires by itself (jobs/limits.py); nothing waits for ever.
        logger.warning("run %s: could not release its limit slot (%s); it expires on its own", run.pk, exc)


def limits_promote_waiting() -> int:
    """Give slots freed without a release (a hold expired) to waiting runs; the scheduler runs it each pass."""
    connection = dispatch.redis_connection()
    in_force = _limits_in_force()
    promoted = 0
    for key in limits.waiting_keys(connection):
        job_limits = in_force.get(key.split(":", 1)[0])
        if job_limits is None or job_limits.concurrency is None:
            # The limit was removed from settings: whoever still waits goes back to its queue.
            job_limits = limits.Limits(key.split(":", 1)[0], concurrency=1_000_000)
        promoted += _limits_release(job_limits, key, "")
    return promoted


def _wait_for_singleton(run_id) -> None:
    """Another run with the same singleton key is running: queue this one again shortly, not fail it."""
    run = JobRun.objects.get(pk=run_id)
    retry_at = timezone.now() + timedelta(seconds=settings.JOBS_SINGLETON_WAIT_SECONDS)
    JobRun.objects.filter(pk=run_id).update(status=Status.QUEUED, scheduled_for=retry_at, updated_at=timezone.now())
    _record_event(run_id, Status.QUEUED, run.attempt, message=f"waiting: singleton {run.singleton_key} is running")
    dispatch.push([dispatch.Dispatch(str(run.pk), run.queue, run.timeout, retry_at)])
    return None


def job_run_mark_completed(run: JobRun, result: Any, worker: str) -> bool:
    """Record this attempt's success; False if a cancel was requested meanwhile or the attempt is stale."""
    now = timezone.now()
    return _transition(
        transitions.COMPLETE,
        run.pk,
        run.attempt,
        job_type=run.job_type,
        worker=worker,
        result=result,
        finished_at=now,
        updated_at=now,
    )


def job_run_mark_cancelled(run: JobRun, reason: str, worker: str = "", *, requested_only: bool = False) -> bool:
    """Record that this attempt stopped cancelled (only if an operator asked, with `requested_only`); False if stale."""
    now = timezone.now()
    transition = transitions.CANCEL_REQUESTED if requested_only else transitions.CANCEL_RUNNING
    return _transition(
        transition,
        run.pk,
        run.attempt,
        job_type=run.job_type,
        worker=worker,
        message=reason,
        finished_at=now,
        cancel_reason=reason[:300],
        updated_at=now,
    )


def job_run_report_stale(run: JobRun, reported: str, worker: str = "") -> None:
    """An attempt that is no longer the run's current one reported: keep it in the audit log, change nothing else."""
    status, attempt = JobRun.objects.filter(pk=run.pk).values_list("status", "attempt").first() or ("gone", 0)
    message = (
        f"stale report ignored: attempt {run.attempt} reported {reported}, but the run is {status} (attempt {attempt})"
    )
    logger.warning("run %s: %s", run.pk, message)
    if status != "gone":
        _record_event(run.pk, status, run.attempt, message=message, worker=worker)


def job_run_mark_failed(
    run: JobRun,
    *,
    error: str,
    error_type: str,
    traceback: str = "",
    worker: str = "",
    permanent: bool = False,
    retry_after: float | None = None,
) -> str | None:
    """Record a failed attempt: schedule the next one, or fail for good. Returns the new status, None if stale."""
    now = timezone.now()
    job_type = registry.get(run.job_type) if run.job_type in registry else None
    # A periodic job's runs carry its own delays; others follow their job type.
    delays = run.retry_delays if run.retry_delays is not None else (job_type.retry_delays if job_type else ())
    attempts_left = run.attempt < run.max_attempts and run.attempt <= len(delays)
    fields = {
        "error": error[:10_000],
        "error_type": error_type[:200],
        "traceback": traceback[-20_000:],
        "finished_at": now,
        "updated_at": now,
    }
    if permanent or not attempts_left:
        reason = "permanent error" if permanent else f"attempt {run.attempt} of {run.max_attempts}, no retries left"
        message = f"{reason}: {error}"[:2000]
        if not _transition(
            transitions.FAIL, run.pk, run.attempt, job_type=run.job_type, worker=worker, message=message, **fields
        ):
            return None
        transaction.on_commit(partial(_announce_failure, run.pk, run.job_type, error))
        return Status.FAILED
    delay = max(delays[run.attempt - 1], retry_after or 0)
    next_at = now + timedelta(seconds=delay)
    message = f"retry in {delay:.0f} s: {error}"[:2000]
    if not _transition(
        transitions.RETRY,
        run.pk,
        run.attempt,
        job_type=run.job_type,
        worker=worker,
        message=message,
        next_attempt_at=next_at,
        **fields,
    ):
        return None
    try:
        dispatch.push([dispatch.Dispatch(str(run.pk), run.queue, run.timeout, next_at)])
    except (redis.RedisError, OSError):
        logger.warning("Redis unavailable; run %s will be retried by the recovery pass", run.pk)
    return Status.RETRYING


def _announce_failure(run_id, job_type: str, error: str) -> None:
    # A receiver's trouble (Redis away, a bad template) must not undo or hide the failure itself.
    for receiver, response in hooks.run_failed.send_robust(JobRun, run_id=run_id, job_type=job_type, error=error):
        if isinstance(response, Exception):
            logger.error("run %s failed; telling %s about it failed too: %r", run_id, receiver.__qualname__, response)


def job_run_mark_lost(run_id, *, reason: str, attempt: int | None = None) -> bool:
    """An attempt ended outside the runner (killed, stopped, hard timeout): record it.

    `attempt` names the attempt that ended; None (the recovery pass) means whichever is running.
    """
    run = JobRun.objects.filter(pk=run_id, status=Status.RUNNING).first()
    if run is None or (attempt is not None and run.attempt != attempt):
        return False
    if run.cancel_requested_at:
        why = run.cancel_reason or "cancelled; work horse stopped"
        recorded = job_run_mark_cancelled(run, why, requested_only=True)
    else:
        recorded = job_run_mark_failed(run, error=reason, error_type="WorkerLost") is not None
    if recorded:
        job_run_limits_release(run)
    return recorded


# --- operator actions ------------------------------------------------------------------


def job_run_cancel(run: JobRun, *, reason: str = "cancelled by operator") -> JobRun:
    """Cancel a run: a waiting one never starts; a running one is asked to stop (then stopped)."""
    run.refresh_from_db()
    if run.is_final:
        raise InvalidTransition(f"run {run.pk} is already {run.status}; only active runs can be cancelled")
    if run.status == Status.RUNNING:
        now = timezone.now()
        JobRun.objects.filter(pk=run.pk).update(cancel_requested_at=now, cancel_reason=reason[:300], updated_at=now)
        _record_event(run.pk, Status.RUNNING, run.attempt, message=f"cancel requested: {reason}")
    else:
        now = timezone.now()
        _transition(
            transitions.CANCEL_WAITING,
            run.pk,
            None,
            job_type=run.job_type,
            message=reason,
            finished_at=now,
            cancel_reason=reason[:300],
            updated_at=now,
        )
        transaction.on_commit(lambda: dispatch.forget_delayed([str(run.pk)]))
    run.refresh_from_db()
    return run


def job_run_retry(run: JobRun, *, user=None) -> JobRun:
    """Run a failed or cancelled run again, from a fresh attempt count."""
    run.refresh_from_db()
    if run.status not in (Status.FAILED, Status.CANCELLED):
        raise InvalidTransition(f"run {run.pk} is {run.status}; only failed or cancelled runs can be retried")
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                updated = JobRun.objects.filter(pk=run.pk, status__in=(Status.FAILED, Status.CANCELLED)).update(
                    status=Status.PENDING,
                    attempt=0,
                    next_attempt_at=None,
                    scheduled_for=None,
                    finished_at=None,
                    cancel_requested_at=None,
                    cancel_reason="",
                    updated_at=now,
                )
        except IntegrityError:
            # One active run per dedupe key (the database's rule): another run took it meanwhile.
            holder = (
                JobRun.objects.filter(
                    job_type=run.job_type, dedupe_key=run.dedupe_key, status__in=JobRun.ACTIVE_STATUSES
                )
                .values_list("pk", flat=True)
                .first()
            )
            raise InvalidTransition(
                f"run {run.pk} cannot be retried while run {holder} with the same dedupe key is active"
            ) from None
        if not updated:
            raise InvalidTransition(f"run {run.pk} changed state; try again")
        who = f" by {user}" if user else ""
        _record_event(run.pk, Status.PENDING, 0, message=f"retried by hand{who}")
        run.refresh_from_db()
        transaction.on_commit(lambda: dispatch_runs([run]))
    return run


def job_run_copy(run: JobRun, *, user=None) -> JobRun:
    """Run the same job type and payload again as a new run."""
    return enqueue(
        run.job_type,
        run.payload,
        priority=run.queue,
        user=user or run.user,
        subscription=run.subscription,
        trigger=JobRun.Trigger.MANUAL,
    )


# --- queue control -------------------------------------------------------------------


def queue_pause(name: str, *, user=None) -> None:
    """Stop workers taking jobs from one queue (within a second); its jobs stay queued."""
    _queue_set_paused(name, True, user)


def queue_resume(name: str, *, user=None) -> None:
    """Let workers take jobs from a paused queue again."""
    _queue_set_paused(name, False, user)


def _queue_set_paused(name: str, paused: bool, user) -> None:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}; known: {', '.join(QUEUES)}")
    connection = dispatch.redis_connection()
    if paused:
        connection.sadd(dispatch.PAUSED_QUEUES_KEY, name)
    else:
        connection.srem(dispatch.PAUSED_QUEUES_KEY, name)
    logger.info("queue %s %s by %s", name, "paused" if paused else "resumed", user or "the system")
    if user is not None:
        # No row stands for a queue, so the admin log records it without an object.
        from django.contrib.admin.models import CHANGE, LogEntry

        LogEntry.objects.create(
            user_id=user.pk,
            action_flag=CHANGE,
            object_repr=f"queue {name}"[:200],
            change_message=f"{'Paused' if paused else 'Resumed'} queue {name}.",
        )


# --- crash safety ----------------------------------------------------------------------


@dataclass
class RecoveryReport:
    requeued: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"re-queued {len(self.requeued)}, worker lost {len(self.lost)}, stop sent {len(self.stopped)}"


def job_runs_recover(*, batch_size: int = 1000) -> RecoveryReport:
    """Find runs Redis lost or a dead worker left behind, and put each back on its way."""
    report = RecoveryReport()
    now = timezone.now()
    pending_grace = now - timedelta(seconds=settings.JOBS_PENDING_GRACE_SECONDS)

    waiting = JobRun.objects.filter(
        Q(status=Status.PENDING, created_at__lt=pending_grace) | Q(status__in=(Status.QUEUED, Status.RETRYING))
    ).only("pk", "status", "queue", "timeout", "scheduled_for", "next_attempt_at")
    batch: list[JobRun] = []
    for run in waiting.iterator(chunk_size=batch_size):
        batch.append(run)
        if len(batch) >= batch_size:
            report.requeued += _requeue_missing(batch)
            batch = []
    if batch:
        report.requeued += _requeue_missing(batch)

    running = list(
        JobRun.objects.filter(status=Status.RUNNING).only(
            "pk", "worker_name", "attempt", "started_at", "cancel_requested_at"
        )
    )
    alive = dispatch.workers_alive({run.worker_name for run in running if run.worker_name})
    in_progress = dispatch.executing([str(run.pk) for run in running])
    cancel_grace = timedelta(seconds=settings.JOBS_CANCEL_GRACE_SECONDS)
    for run in running:
        if not alive.get(run.worker_name, False):
            reason = _worker_lost_reason(run.worker_name)
        elif not in_progress[str(run.pk)] and run.started_at and run.started_at < pending_grace:
            # The worker lives but no longer runs this attempt, and nobody recorded its end.
            reason = f"attempt ended without a recorded outcome ({run.worker_name})"
        else:
            if run.cancel_requested_at and run.cancel_requested_at < now - cancel_grace:
                _force_stop(run)
                report.stopped.append(str(run.pk))
            continue
        if job_run_mark_lost(run.pk, reason=reason):
            report.lost.append(str(run.pk))
    return report


def job_runs_mark_worker_lost(worker_name: str, *, how: str) -> list[str]:
    """A worker process is known dead (its pool saw it end): record each run it held as lost, now."""
    running = JobRun.objects.filter(status=Status.RUNNING, worker_name=worker_name).values_list("pk", flat=True)
    reason = _worker_lost_reason(worker_name, how)
    return [str(run_id) for run_id in running if job_run_mark_lost(run_id, reason=reason)]


def _worker_lost_reason(worker_name: str, how: str = "") -> str:
    # One wording for the recovery pass and the pool: operators search the errors for it.
    return f"worker lost ({worker_name or 'unknown'}{', ' + how if how else ''})"


def _requeue_missing(runs: list[JobRun]) -> list[str]:
    present = dispatch.presence([str(run.pk) for run in runs])
    missing = [run for run in runs if not present[str(run.pk)]]
    if missing:
        dispatch.push([dispatch.Dispatch.of(run) for run in missing])
        _mark_queued([str(run.pk) for run in missing if run.status == Status.PENDING], message="queued by recovery")
        for run in missing:
            logger.info("recovery: run %s (%s) was not in Redis; pushed again", run.pk, run.status)
    return [str(run.pk) for run in missing]


def _force_stop(run: JobRun) -> None:
    from rq.command import send_stop_job_command

    try:
        send_stop_job_command(dispatch.redis_connection(), str(run.pk))
    except Exception as exc:  # rq raises a bare exception when the job is not running any more
        logger.info("could not stop run %s: %s", run.pk, exc)


# --- retention -------------------------------------------------------------------------


@dataclass
class PruneReport:
    deleted: int = 0

    def __str__(self) -> str:
        return f"deleted {self.deleted} run(s)"


def job_runs_prune(*, batch_size: int = 1000) -> PruneReport:
    """Delete old finished runs with their events and any Redis leftovers, in batches."""
    now = timezone.now()
    completed_before = now - timedelta(days=settings.JOBS_KEEP_COMPLETED_DAYS)
    failed_before = now - timedelta(days=settings.JOBS_KEEP_FAILED_DAYS)
    old = JobRun.objects.filter(
        Q(status__in=(Status.COMPLETED, Status.SKIPPED), finished_at__lt=completed_before)
        | Q(status__in=(Status.FAILED, Status.CANCELLED), finished_at__lt=failed_before)
    )
    report = PruneReport()
    connection = dispatch.redis_connection()
    while True:
        ids = list(old.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return report
        with transaction.atomic():
            JobEvent.objects.filter(job_run_id__in=ids).delete()
            _, per_model = JobRun.objects.filter(pk__in=ids).delete()
            report.deleted += per_model.get(JobRun._meta.label, 0)
        keys = [f"rq:job:{pk}" for pk in ids] + [f"rq:results:{pk}" for pk in ids]
        try:
            connection.delete(*keys)
        except (redis.RedisError, OSError):
            logger.warning("Redis unavailable while pruning; leftovers expire by their own TTLs")

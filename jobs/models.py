import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.cron import FREQUENCIES, spread_cron, validate_cron
from jobs.errors import PayloadInvalid, describe_field_errors
from jobs.registry import QUEUES, registry
from kordant.models import Subscription, validate_timezone


class JobRun(models.Model):
    """One run of a job. Its primary key is also the RQ job id; the row, not Redis, is the truth."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # row written, not yet in Redis
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        RETRYING = "retrying", "Retrying"  # failed an attempt, waiting for the next
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        SKIPPED = "skipped", "Skipped"  # a cron tick the overlap policy skipped

    class Trigger(models.TextChoices):
        API = "api", "API"
        CRON = "cron", "Cron"
        MANUAL = "manual", "Manual"
        EVENT = "event", "Event"
        SYSTEM = "system", "System"

    # A run in one of these states still owns its dedupe key.
    ACTIVE_STATUSES = (Status.PENDING, Status.QUEUED, Status.RUNNING, Status.RETRYING)
    # The runner may start a run only from these.
    STARTABLE_STATUSES = (Status.PENDING, Status.QUEUED, Status.RETRYING)
    FINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.SKIPPED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    queue = models.CharField(max_length=16)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.API)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="job_runs"
    )
    subscription = models.ForeignKey(
        "kordant.Subscription", null=True, blank=True, on_delete=models.SET_NULL, related_name="job_runs"
    )
    schedule = models.ForeignKey("jobs.Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    planned_for = models.DateTimeField(null=True, blank=True, help_text="The schedule tick this run is for.")

    # NULL, not "", for "no key": NULLs never collide in the unique constraints below.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    singleton_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    supersede_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    attempt = models.PositiveSmallIntegerField(default=0, help_text="Attempts started so far.")
    max_attempts = models.PositiveSmallIntegerField(default=1)
    # A periodic job's own retry policy travels with its runs; empty means the job type's delays.
    retry_delays = models.JSONField(null=True, blank=True)
    timeout = models.PositiveIntegerField(help_text="Seconds an attempt may run.")
    scheduled_for = models.DateTimeField(null=True, blank=True, help_text="Not before this time.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    progress = models.FloatField(default=0)
    progress_message = models.CharField(max_length=300, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_type = models.CharField(max_length=200, blank=True)
    traceback = models.TextField(blank=True)

    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True)
    worker_name = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("trigger_jobrun", "Can enqueue, retry, cancel and run again jobs; pause queues")]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["job_type", "status"]),
            models.Index(fields=["created_at"]),
            models.Index(fields=["finished_at"]),
            models.Index(
                fields=["supersede_key"], condition=Q(supersede_key__isnull=False), name="jobrun_supersede_idx"
            ),
            models.Index(fields=["schedule", "status"], name="jobrun_schedule_status_idx"),
        ]
        constraints = [
            # The database, not a lookup, guarantees one active run per dedupe key...
            models.UniqueConstraint(
                fields=["job_type", "dedupe_key"],
                condition=Q(status__in=["pending", "queued", "running", "retrying"]),
                name="jobrun_one_active_per_dedupe_key",
            ),
            # ...and at most one running run per singleton key.
            models.UniqueConstraint(
                fields=["job_type", "singleton_key"],
                condition=Q(status="running"),
                name="jobrun_one_running_per_singleton_key",
            ),
            # One tick of a schedule is one run, however many schedulers fire it.
            models.UniqueConstraint(
                fields=["schedule", "planned_for"],
                condition=Q(planned_for__isnull=False),
                name="jobrun_one_per_schedule_tick",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_type} {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def waiting_for_limit(self) -> str:
        """What a queued run's limits hold it back for (jobs/limits.py), or ""."""
        from jobs.limits import WAITING_MARKER

        if self.status in self.STARTABLE_STATUSES and self.progress_message.startswith(WAITING_MARKER):
            return self.progress_message[len(WAITING_MARKER) :]
        return ""

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class JobEvent(models.Model):
    """The audit log: one row per state change of a run."""

    job_run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=JobRun.Status.choices)
    attempt = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["job_run", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status}"


class SchedulerConfig(models.Model):
    """What a tier runs and how often: one row per tier and job type, edited by operators."""

    class Frequency(models.TextChoices):
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"

    class Overlap(models.TextChoices):
        SKIP = "skip", "Skip a tick while the previous run is active"
        ALLOW = "allow", "Allow overlapping runs"

    class CatchUp(models.TextChoices):
        ONE = "one", "One catch-up run for the ticks missed"
        NONE = "none", "No run for missed ticks: wait for the next one"

    tier = models.CharField(max_length=16, choices=Subscription.Tier.choices)
    job_type = models.CharField(max_length=100)
    frequency = models.CharField(
        max_length=16,
        choices=Frequency.choices,
        blank=True,
        help_text="Spread over the period per subscription. Leave empty to use the cron expression.",
    )
    cron_expression = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_cron],
        help_text="Five fields, on each subscriber's local clock. Used only when no frequency is set.",
    )
    enabled = models.BooleanField(default=True)
    priority = models.CharField(
        max_length=16,
        blank=True,
        choices=[(name, name) for name in QUEUES],
        help_text="Queue for these runs; empty means the job type's own.",
    )
    overlap = models.CharField(max_length=8, choices=Overlap.choices, default=Overlap.SKIP)
    catch_up = models.CharField(
        max_length=8,
        choices=CatchUp.choices,
        default=CatchUp.ONE,
        help_text="What a schedule does about ticks missed while no scheduler ran or scheduling was paused.",
    )
    run_on_change = models.BooleanField(
        default=False, help_text="Also run as soon as a watched item changes (real-time monitoring)."
    )
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tier", "job_type"]
        verbose_name = "scheduler config"
        # Holders (and superusers) edit the tier table; operators only view it.
        permissions = [("schedulers", "Can edit scheduler configs (the tier schedules)")]
        constraints = [
            models.UniqueConstraint(fields=["tier", "job_type"], name="schedulerconfig_one_per_tier_and_type"),
        ]

    def __str__(self) -> str:
        return f"{self.get_tier_display()} · {self.job_type} ({self.frequency or self.cron_expression})"

    def save(self, *args, **kwargs):
        # Every schedule of the tier is computed from this row: refuse a bad one even
        # when the caller skipped form validation. A save of other fields (disabling a
        # row that was broken behind the ORM's back) is let through.
        if _saves_any(kwargs.get("update_fields"), "cron_expression", "frequency", "job_type"):
            if self.cron_expression:
                validate_cron(self.cron_expression)
            self.clean()
        super().save(*args, **kwargs)

    def clean(self):
        # A type's schedule payload is how a tick becomes a run: a type without one fails
        # every tick. A row naming a type whose app is not installed stays editable.
        known = self.job_type in registry
        if (known and not registry.get(self.job_type).schedulable) or (not known and self._state.adding):
            raise ValidationError(
                {
                    "job_type": f"{self.job_type!r} cannot run on a schedule; "
                    f"choose one of {', '.join(registry.schedulable_names())}."
                }
            )
        if bool(self.frequency) == bool(self.cron_expression):
            raise ValidationError(
                {"cron_expression": "Give either a frequency or a cron expression, not both and not neither."}
            )
        if self.frequency and self.frequency not in FREQUENCIES:
            raise ValidationError({"frequency": f"Unknown frequency {self.frequency!r}."})


class PeriodicJob(models.Model):
    """A job of any type on a schedule of its own, defined in the database: built in, an
    operator's, or a customer's (owner). It fires through its one Schedule row, so tier
    schedules and periodic jobs share one firing path, one set of rules and one guarantee."""

    name = models.CharField(max_length=200)
    job_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, blank=True, help_text="Validated against the job type's schema.")
    frequency = models.CharField(
        max_length=16,
        choices=SchedulerConfig.Frequency.choices,
        blank=True,
        help_text="Spread over the period by the job's id. Leave empty to use the cron expression.",
    )
    cron_expression = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_cron],
        help_text="Five fields, on the clock of the timezone below. Used only when no frequency is set.",
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    enabled = models.BooleanField(default=True)
    priority = models.CharField(
        max_length=16,
        blank=True,
        choices=[(name, name) for name in QUEUES],
        help_text="Queue for these runs; empty means the job type's own.",
    )
    # Its own retry policy; empty means the job type's.
    max_attempts = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Attempts per run, the first included; empty means the job type's."
    )
    retry_delays = models.JSONField(
        null=True, blank=True, help_text="Seconds before each retry, e.g. [60, 300]; empty means the job type's."
    )
    overlap = models.CharField(
        max_length=8, choices=SchedulerConfig.Overlap.choices, default=SchedulerConfig.Overlap.SKIP
    )
    catch_up = models.CharField(
        max_length=8, choices=SchedulerConfig.CatchUp.choices, default=SchedulerConfig.CatchUp.ONE
    )
    description = models.CharField(max_length=300, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="periodic_jobs",
        db_index=False,  # the (owner, name) unique index leads with it
        help_text="The customer who manages it; empty for the system's and operators' jobs.",
    )
    builtin = models.BooleanField(default=False, editable=False, help_text="Part of the system: cannot be deleted.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Names are unique among the system's jobs and within each customer's own:
            # a customer's name must not collide with (or reveal) another customer's.
            models.UniqueConstraint(
                fields=["name"], condition=Q(owner__isnull=True), name="periodicjob_unique_system_name"
            ),
            # Partial, as the indexes below: no index holds an entry for a NULL nobody looks
            # up, so a bulk insert of system jobs writes three index entries a row, not five.
            models.UniqueConstraint(
                fields=["owner", "name"], condition=Q(owner__isnull=False), name="periodicjob_unique_name_per_owner"
            ),
        ]
        indexes = [models.Index(fields=["job_type"])]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        """The job type, its payload, the timing and the retry policy, each error at its field."""
        errors: dict[str, list[str]] = {}
        if self.job_type not in registry:
            errors["job_type"] = [f"Unknown job type {self.job_type!r}; choose one of {', '.join(registry.names())}."]
        else:
            try:
                registry.get(self.job_type).validate(self.payload)
            except PayloadInvalid as exc:
                errors["payload"] = [describe_field_errors(exc.errors)]
        if bool(self.frequency) == bool(self.cron_expression):
            errors["cron_expression"] = ["Give either a frequency or a cron expression, not both and not neither."]
        elif self.frequency and self.frequency not in FREQUENCIES:
            errors["frequency"] = [f"Unknown frequency {self.frequency!r}."]
        delays = self.retry_delays
        if delays is not None and not (
            isinstance(delays, list)
            and len(delays) <= 25
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 7 * 86400 for d in delays)
        ):
            errors["retry_delays"] = ["A list of at most 25 whole seconds, each between 0 and 604800 (7 days)."]
        if self.max_attempts is not None and not 1 <= self.max_attempts <= 26:
            errors["max_attempts"] = ["Between 1 and 26 attempts."]
        if errors:
            raise ValidationError(errors)

    @property
    def timing_cron(self) -> str:
        """The cron its schedule runs on: the cron expression, or the frequency spread by the job's id."""
        return periodic_timing_cron(self.pk, self.job_type, self.frequency, self.cron_expression)


def periodic_timing_cron(pk: int, job_type: str, frequency: str, cron_expression: str) -> str:
    """PeriodicJob.timing_cron from its columns (bulk syncs read tuples, not instances)."""
    if frequency:
        return spread_cron(frequency, pk, job_type)
    return cron_expression


class Schedule(models.Model):
    """One recurring timing with its bookkeeping: a subscription's run of its tier's config, or
    a periodic job's. rq-scheduler holds one entry per enabled row; both kinds fire alike."""

    # Their lookups (cascades included) use the indexes in Meta, which lead with them.
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.CASCADE, related_name="schedules", db_index=False
    )
    config = models.ForeignKey(
        SchedulerConfig, null=True, blank=True, on_delete=models.CASCADE, related_name="schedules", db_index=False
    )
    periodic_job = models.OneToOneField(
        PeriodicJob, null=True, blank=True, on_delete=models.CASCADE, related_name="schedule"
    )
    cron_expression = models.CharField(
        max_length=100, validators=[validate_cron], help_text="The config's timing after this subscription's spread."
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    enabled = models.BooleanField(default=True, help_text="Paused schedules keep their row but have no entry.")
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    run_count = models.PositiveIntegerField(default=0)
    last_status = models.CharField(max_length=16, blank=True, choices=JobRun.Status.choices)
    last_run = models.ForeignKey(
        JobRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["next_run_at"]
        constraints = [
            # The indexes hold tier rows only (or, for last_run, rows that have run): a periodic
            # job's row has no subscription or config, a new row no last run, and an index entry
            # for a NULL nobody looks up is a write for nothing (five of a new periodic row's seven).
            models.UniqueConstraint(
                fields=["subscription", "config"],
                condition=Q(subscription__isnull=False),
                name="schedule_one_per_subscription_and_config",
            ),
            # A tier schedule (subscription and config) or a periodic job's, never a mix.
            models.CheckConstraint(
                condition=Q(subscription__isnull=False, config__isnull=False, periodic_job__isnull=True)
                | Q(subscription__isnull=True, config__isnull=True, periodic_job__isnull=False),
                name="schedule_tier_or_periodic",
            ),
        ]
        indexes = [
            models.Index(
                fields=["config", "enabled"], condition=Q(config__isnull=False), name="schedule_config_enabled"
            ),
            models.Index(fields=["last_run"], condition=Q(last_run__isnull=False), name="schedule_last_run"),
        ]

    def __str__(self) -> str:
        whose = f"periodic job {self.periodic_job}" if self.is_periodic else f"subscription {self.subscription_id}"
        return f"{self.job_type} for {whose} ({self.cron_expression}, {self.timezone})"

    def save(self, *args, **kwargs):
        # Pausing a schedule whose timing was broken behind the ORM's back must still work.
        if _saves_any(kwargs.get("update_fields"), "cron_expression", "timezone"):
            validate_cron(self.cron_expression)
            validate_timezone(self.timezone)
        super().save(*args, **kwargs)

    @property
    def is_periodic(self) -> bool:
        return self.periodic_job_id is not None

    @property
    def definition(self) -> SchedulerConfig | PeriodicJob:
        """What this schedule runs and how: its tier's config, or its periodic job."""
        return self.periodic_job if self.is_periodic else self.config

    @property
    def job_type(self) -> str:
        return self.definition.job_type

    @property
    def state(self) -> str:
        """Whether it runs, and if not why: the rule SCHEDULE_STATE_FILTERS says in SQL."""
        if not self.enabled or (self.is_periodic and not self.periodic_job.enabled):
            return ScheduleState.PAUSED
        if not self.is_periodic and not self.config.enabled:
            return ScheduleState.WAITING
        if self.next_run_at is None:
            return ScheduleState.BROKEN
        return ScheduleState.ACTIVE

    @property
    def state_reason(self) -> str:
        """The state in a sentence for its owner or an operator."""
        state = self.state
        if state == ScheduleState.WAITING:
            return (
                f"Its tier's {self.config.job_type} config is disabled; "
                "it runs again from its next tick once an operator enables the config."
            )
        if state == ScheduleState.BROKEN:
            from jobs.cron import next_run_after

            try:
                next_run_after(self.cron_expression, self.timezone, timezone.now())
            except ValueError as exc:
                return f"Its next run cannot be computed, so it never fires: {exc}"
            return "It has no next run yet: the next sync computes it."
        return ScheduleState(state).label

    @property
    def entry_id(self) -> str:
        return schedule_entry_id(self.pk)


class ScheduleState(models.TextChoices):
    ACTIVE = "active", "Runs at its next tick"
    PAUSED = "paused", "Paused"
    WAITING = "waiting_for_config", "Waiting for its config (disabled)"
    BROKEN = "broken", "Broken: no next run"


# Schedule.state as query filters: tests/jobs/test_models.py holds both to one table of cases.
# A tier schedule runs while its config is enabled, a periodic job's while the job is.
# (Across the nullable joins, a comparison with the other kind's missing row is never true.)
DEFINITION_ENABLED = Q(config__enabled=True) | Q(periodic_job__enabled=True)
SCHEDULE_STATE_FILTERS = {
    ScheduleState.ACTIVE: Q(enabled=True, next_run_at__isnull=False) & DEFINITION_ENABLED,
    ScheduleState.PAUSED: Q(enabled=False) | Q(periodic_job__enabled=False),
    ScheduleState.WAITING: Q(enabled=True, config__enabled=False),
    ScheduleState.BROKEN: Q(enabled=True, next_run_at__isnull=True) & DEFINITION_ENABLED,
}


class SchedulingSwitch(models.Model):
    """The one switch that pauses all scheduling (maintenance): while paused nothing fires;
    on resume every schedule follows its catch-up policy. A single row, pk 1."""

    paused = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = "scheduling switch"

    def __str__(self) -> str:
        return "Scheduling paused" if self.paused else "Scheduling running"


def _saves_any(update_fields, *names: str) -> bool:
    return update_fields is None or any(name in update_fields for name in names)


def schedule_entry_id(pk: int) -> str:
    """The rq-scheduler entry id of a schedule: deterministic, so it can always be rebuilt."""
    return f"schedule-{pk}"

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


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

    # NULL, not "", for "no key": NULLs never collide in the unique constraints below.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    singleton_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    supersede_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    attempt = models.PositiveSmallIntegerField(default=0, help_text="Attempts started so far.")
    max_attempts = models.PositiveSmallIntegerField(default=1)
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
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["job_type", "status"]),
            models.Index(fields=["created_at"]),
            models.Index(fields=["finished_at"]),
            models.Index(
                fields=["supersede_key"], condition=Q(supersede_key__isnull=False), name="jobrun_supersede_idx"
            ),
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
        ]

    def __str__(self) -> str:
        return f"{self.job_type} {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

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

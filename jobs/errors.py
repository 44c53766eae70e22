"""Errors named for what happened. Domain code raises them; the runner decides what follows."""


class JobError(Exception):
    """Base class for errors the job system raises or understands."""


class UnknownJobType(JobError, LookupError):
    """No job type is registered under that name."""


class PayloadInvalid(JobError, ValueError):
    """A payload does not match its job type's schema; `errors` maps field paths to messages."""

    def __init__(self, job_type: str, errors: dict[str, list[str]]):
        self.job_type = job_type
        self.errors = errors
        super().__init__(f"Invalid payload for {job_type}: {describe_field_errors(errors)}")


def describe_field_errors(errors: dict[str, list[str]]) -> str:
    """`field: message, message; field: message`, for an error's text."""
    return "; ".join(f"{field}: {', '.join(messages)}" for field, messages in errors.items())


class PermanentJobError(JobError):
    """Retrying cannot help (bad configuration, rejected input): fail the run at once."""


class RetryableJobError(JobError):
    """A temporary failure; the run is retried on the job type's schedule, or after `retry_after` seconds."""

    def __init__(self, message: str = "", *, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)


class ProviderUnavailable(RetryableJobError):
    """An outside provider did not answer usefully (timeout, 5xx, 429): try again later."""


class ProviderRejected(PermanentJobError):
    """An outside provider refused the request for a reason retrying cannot fix (4xx, bad credentials)."""


class JobCancelled(JobError):
    """Raised inside a handler that stops because its run was cancelled or superseded."""


class NotSchedulable(JobError, ValueError):
    """The job type declares no scheduled payload, so no schedule may run it."""


class InvalidTransition(JobError):
    """The run is not in a state that allows this action (e.g. cancelling a completed run)."""


class NextRunUnknown(ValueError):
    """A schedule's next run cannot be computed (its cron expression or time zone is unusable)."""


class CronInvalid(NextRunUnknown):
    """Not a five-field cron expression this project reads the way cron does."""


class CronNeverRuns(CronInvalid):
    """A well-formed cron expression whose dates never occur (`0 0 30 2 *`)."""

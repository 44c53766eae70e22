"""Errors named for what happened. Each `NotificationInvalid` means notify() changed nothing."""

from jobs.errors import describe_field_errors


class NotificationInvalid(ValueError):
    """notify() or a notification service refused its arguments; nothing was created or changed."""


class UnknownKind(NotificationInvalid):
    """No notification kind is registered under that name."""


class UnknownChannel(NotificationInvalid):
    """A channel name that is not email, sms, push or webhook."""


class ContextInvalid(NotificationInvalid):
    """A context does not match its kind's schema; `errors` maps field paths to messages."""

    def __init__(self, kind: str, errors: dict[str, list[str]]):
        self.kind = kind
        self.errors = errors
        super().__init__(f"Invalid context for notification kind {kind}: {describe_field_errors(errors)}")


class NotCancellable(NotificationInvalid):
    """Only a notification still waiting to be sent can be cancelled."""


class NotReplayable(NotificationInvalid):
    """Only a webhook event that is done (sent, failed or suppressed) to an active endpoint can be sent again."""

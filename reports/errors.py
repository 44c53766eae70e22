"""What can go wrong making a report."""


class ReportPeriodInvalid(ValueError):
    """The period asked for is not a valid range of dates; `fields` maps each field to its messages."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.fields = fields or {"period_end": [message]}


class ReportQueueFull(Exception):
    """The customer already has as many reports waiting as they may; one must finish first."""


class ReportContextInvalid(ValueError):
    """The template was handed a context that lacks what the report needs."""


class ReportRenderFailed(RuntimeError):
    """WeasyPrint could not turn the report's HTML into a PDF."""

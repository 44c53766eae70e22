"""What can go wrong making a report."""


class ReportPeriodInvalid(ValueError):
    """The period asked for is not a valid range of dates."""


class ReportContextInvalid(ValueError):
    """The template was handed a context that lacks what the report needs."""


class ReportRenderFailed(RuntimeError):
    """WeasyPrint could not turn the report's HTML into a PDF."""

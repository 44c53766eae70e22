from rest_framework.negotiation import BaseContentNegotiation


class ErrorsAsJSON(BaseContentNegotiation):
    """For views whose success body is not rendered (a PDF file, the metrics text): whatever the
    client's Accept says, an error answers in the API's JSON error shape, never a 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

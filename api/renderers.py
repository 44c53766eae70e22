import json

from rest_framework.renderers import BaseRenderer


class _Passthrough(BaseRenderer):
    """Bodies that are already bytes or text pass through; an error body (a dict) is written as JSON."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if isinstance(data, bytes | str):
            return data
        return json.dumps(data).encode()


class PDFRenderer(_Passthrough):
    media_type = "application/pdf"
    format = "pdf"


class PrometheusTextRenderer(_Passthrough):
    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

"""Tests for the outbound notification clients, each run against a local server speaking the provider's API."""

import socket
import threading

from werkzeug import Request, Response


class Stall:
    """A handler that holds its answer until the test ends, so client timeouts are tested without long sleeps."""

    def __init__(self):
        self.release = threading.Event()

    def __call__(self, request: Request) -> Response:
        self.release.wait(5)
        return Response("too late", status=200)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        # The test server answers one request at a time: free it for the next test.
        self.release.set()


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_in_turn(httpserver, path: str, *answers) -> list[Request]:
    """Answer POSTs to `path` with `answers` in turn, the last one from then on; returns the requests received.

    An answer is a Response, or a function of (request, its number from 1) that returns one.
    """
    received: list[Request] = []

    def handler(request: Request) -> Response:
        received.append(request)
        answer = answers[min(len(received), len(answers)) - 1]
        return answer if isinstance(answer, Response) else answer(request, len(received))

    httpserver.expect_request(path, method="POST").respond_with_handler(handler)
    return received

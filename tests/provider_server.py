"""A local stand-in for an outside provider that answers after a delay and counts requests in flight.

Tests and bench/provider_concurrency.py use it to check that a client never has more
requests in flight than the provider allows, and to measure what overlapping them gains.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

# (method, path, query, body) -> (status, JSON-able body)
Answer = Callable[[str, str, dict, bytes], tuple[int, object]]


class ProviderServer:
    """`with ProviderServer(answer, delay=0.05) as server:` serves on `server.url`; `server.max_in_flight` after."""

    def __init__(self, answer: Answer, *, delay: float = 0.05):
        self.answer = answer
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real APIs and httpx's pool use it
            # Headers and body leave in two writes: with Nagle on, the body would wait for the
            # client's delayed ACK (40 ms), which is not the provider's latency.
            disable_nagle_algorithm = True

            def do_GET(self):
                self._serve(b"")

            def do_POST(self):
                self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _serve(self, body: bytes):
                owner._enter()
                try:
                    time.sleep(owner.delay)  # the provider's own latency
                    parts = urlsplit(self.path)
                    status, payload = owner.answer(self.command, unquote(parts.path), parse_qs(parts.query), body)
                finally:
                    owner._leave()
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.requests += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def reset_counts(self) -> None:
        with self._lock:
            self.max_in_flight = self.requests = 0

    def __enter__(self) -> ProviderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


BREACH = {"Name": "Adobe", "Title": "Adobe", "Domain": "adobe.com", "BreachDate": "2013-10-04"}


def hibp_answer(method: str, path: str, query: dict, body: bytes) -> tuple[int, object]:
    """An HIBP-style breachedaccount API: accounts whose name ends in an even digit are breached."""
    account = path.rsplit("/", 1)[-1]
    if account.startswith("broken"):
        return 503, {"statusCode": 503, "message": "down for maintenance"}
    digits = [char for char in account.split("@")[0] if char.isdigit()]
    if digits and int(digits[-1]) % 2 == 0:
        return 200, [BREACH, {**BREACH, "Name": f"Leak{digits[-1]}", "Title": f"Leak {digits[-1]}"}]
    return 404, {"statusCode": 404}

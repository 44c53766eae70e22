"""A local stand-in for data brokers' opt-out APIs, for `make run` and the benchmark; not used in production.

    python -m scanners.removebrokers.stub --url-file var/brokers.url

It takes a free port (unless `--port` names one) and writes its URL to `--url-file`, where
`manage.py removebrokers_demo` reads it: two checkouts' `make run` never fight over a port.

Serves any number of fictional brokers by path: `POST /<broker>/optout` takes the opt-out
(JSON) and answers `201 {"reference": "<broker>-<n>"}`; `GET /<broker>/search?email=...`
answers `{"listed": true}` until an opt-out for that email reached that broker, then
`{"listed": false}`. Requests with the same Idempotency-Key get the same reference, as a
careful broker would answer. HTTP/1.1 keep-alive, so clients reuse their connections.
State is in memory: restart the stub and everybody is listed again.
"""

import argparse
import contextlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class BrokerState:
    def __init__(self):
        self.lock = threading.Lock()
        self.opted_out: set[tuple[str, str]] = set()
        self.references: dict[str, str] = {}
        self.count = 0
        self.connections = 0  # TCP connections accepted: shows whether clients reuse theirs

    def opt_out(self, broker: str, body: dict, key: str | None) -> str:
        with self.lock:
            if key and key in self.references:
                return self.references[key]
            self.count += 1
            reference = f"{broker}-{self.count}"
            if key:
                self.references[key] = reference
            self.opted_out.add((broker, body.get("email") or body.get("full_name") or ""))
            return reference

    def listed(self, broker: str, query: dict) -> bool:
        with self.lock:
            return (broker, query.get("email") or query.get("full_name") or "") not in self.opted_out


class BrokerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, each answer would wait ~40 ms for the client's ACK.
    disable_nagle_algorithm = True
    state: BrokerState

    def setup(self):
        super().setup()
        with self.state.lock:
            self.state.connections += 1

    def do_POST(self):
        broker, action = self._route()
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._answer(400, {"error": "body is not JSON"})
        if action != "optout":
            return self._answer(404, {"error": "no such endpoint"})
        if not isinstance(body, dict) or not (body.get("email") or body.get("full_name")):
            return self._answer(422, {"error": "email or full_name is required"})
        return self._answer(201, {"reference": self.state.opt_out(broker, body, self.headers.get("Idempotency-Key"))})

    def do_GET(self):
        broker, action = self._route()
        if action != "search":
            return self._answer(404, {"error": "no such endpoint"})
        query = {name: values[0] for name, values in parse_qs(urlsplit(self.path).query).items()}
        return self._answer(200, {"listed": self.state.listed(broker, query)})

    def _route(self) -> tuple[str, str]:
        parts = urlsplit(self.path).path.strip("/").split("/")
        return (parts[0], parts[1]) if len(parts) == 2 else ("", "")

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # one line per request is noise under load
        pass


def make_server(host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A ready server (not yet serving); port 0 picks a free one (see server.server_address)."""
    handler = type("Handler", (BrokerHandler,), {"state": BrokerState()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def write_url_file(path: Path, url: str) -> None:
    """The URL, replaced whole (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(url + "\n")
    partial.replace(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default): a free port")
    parser.add_argument("--url-file", type=Path, help="write the URL served here to this file")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port)
    url = f"http://{args.host}:{server.server_address[1]}"
    if args.url_file:
        write_url_file(args.url_file, url)
    print(f"demo brokers listening on {url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()

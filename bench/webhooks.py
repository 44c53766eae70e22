"""Webhook deliveries per second to a loopback receiver: `WebhookSender.deliver` beside a bare httpx post.

Both sides send the same request (body and headers) over one kept-alive connection to
the same threaded receiver, in alternating rounds so drift (CPU boost, other load) hits both alike. The
ratio is the figure that matters: it is what signing, serialising, checking and the
error mapping cost on top of the HTTP exchange itself.
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from notifications.webhooks import SIGNATURE_HEADER, USER_AGENT, WebhookSender, encode_payload, sign

DELIVERIES = 2_000
ROUNDS = 4
WARMUP = 100
SECRET = "whsec_bench"
PAYLOAD = {
    "kind": "darkwatch.alert",
    "subscription_id": 48213,
    "alert": {
        "id": "6f1c2a9e-3b7d-4c1e-9a55-2f0e8d7b6c41",
        "severity": "high",
        "source": "breach-feed",
        "matched": ["email", "phone"],
        "found_at": "2026-11-23T13:28:00Z",
    },
}


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would offer
    # Headers and body go out in separate writes; with Nagle on, each answer waits ~40 ms
    # for the client's delayed ACK and the benchmark measures that instead of our code.
    disable_nagle_algorithm = True

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main() -> None:
    """Print deliveries per second for WebhookSender.deliver and a bare httpx.Client().post, and their ratio."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/hooks/kordant"
    body = encode_payload(PAYLOAD)

    try:
        with WebhookSender() as sender, httpx.Client(timeout=5) as bare:

            def kordant(n: int) -> None:
                for i in range(n):
                    sender.deliver(url, SECRET, "darkwatch.alert", f"dlv_{i}", PAYLOAD)

            # The same request on the wire, headers included, built once: what is left is our code's cost.
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Kordant-Event": "darkwatch.alert",
                "Kordant-Delivery": "dlv_0",
                SIGNATURE_HEADER: sign(SECRET, int(time.time()), body),
            }

            def plain(n: int) -> None:
                for _ in range(n):
                    bare.post(url, content=body, headers=headers).raise_for_status()

            kordant(WARMUP)
            plain(WARMUP)
            elapsed = {kordant: 0.0, plain: 0.0}
            per_round = DELIVERIES // ROUNDS
            for round_number in range(ROUNDS):
                order = (kordant, plain) if round_number % 2 == 0 else (plain, kordant)
                for run in order:
                    started = time.perf_counter()
                    run(per_round)
                    elapsed[run] += time.perf_counter() - started
    finally:
        server.shutdown()
        server.server_close()

    total = per_round * ROUNDS
    ours, theirs = total / elapsed[kordant], total / elapsed[plain]
    overhead_us = (elapsed[kordant] - elapsed[plain]) / total * 1e6
    print(f"   {total:,} deliveries each to a loopback receiver ({len(body)}-byte body, same headers, one connection)")
    print(f"   WebhookSender.deliver      {ours:8,.0f} /s   ({elapsed[kordant] / total * 1e6:6.0f} µs each)")
    print(f"   bare httpx.Client().post   {theirs:8,.0f} /s   ({elapsed[plain] / total * 1e6:6.0f} µs each)")
    print(f"   ratio                      {ours / theirs:8.2f}x of bare httpx ({overhead_us:+.0f} µs a delivery)")

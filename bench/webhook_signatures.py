"""What each webhook signature scheme costs per delivery, beside what one HTTP delivery costs.

For every scheme: `signature_headers` (our code: key lookup, signing, header formatting) beside
the bare library call making the same signature (hmac, or cryptography with a key already in
hand), and a whole `WebhookSender.deliver` with that scheme to a loopback receiver beside a bare
httpx post of the same request. Signing and delivering run in alternating rounds so drift hits
every row alike. The figure that informs the choice is the last column: the share of one
delivery that signing takes. `BENCH_SIGNATURES_N` sets the size (signatures per scheme; a tenth
as many deliveries).
"""

import base64
import hashlib
import hmac
import os
import shutil
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings

from bench.webhooks import PAYLOAD, _Receiver
from notifications.models import new_webhook_secret
from notifications.signatures import SignatureScheme
from notifications.signing_keys import signing_key_current, webhook_signing_key_rotate
from notifications.webhooks import USER_AGENT, WebhookSender, encode_payload, signature_headers

SIGNATURES = int(os.environ.get("BENCH_SIGNATURES_N", 2_000))
ROUNDS = 4
DELIVERY_ID = "ntf_48213"


def _bare_signers(secret: str, body: bytes):
    """The same signature each scheme makes, by the library alone: no key lookup, no header."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    ed25519_key, rsa_key = signing_key_current("ed25519").private_key, signing_key_current("rsa").private_key

    def content(timestamp: int) -> bytes:
        return f"{DELIVERY_ID}.{timestamp}.".encode() + body

    return {
        SignatureScheme.LEGACY: lambda t: hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest(),
        SignatureScheme.STANDARD: lambda t: hmac.new(key, content(t), hashlib.sha256).digest(),
        SignatureScheme.STANDARD_ED25519: lambda t: ed25519_key.sign(content(t)),
        SignatureScheme.RSA_SHA256: lambda t: rsa_key.sign(content(t), padding.PKCS1v15(), hashes.SHA256()),
    }


def _per_call_us(function, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        function(i)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    """Print, per scheme, signing cost (ours and the bare library's) and a whole delivery's cost."""
    keys = tempfile.mkdtemp(prefix="kordant-bench-webhook-keys-")
    settings.WEBHOOK_SIGNING_KEYS_DIR = keys  # never the developer's var/ keys
    for algorithm in ("ed25519", "rsa"):
        webhook_signing_key_rotate(algorithm)
    secret = new_webhook_secret()
    body = encode_payload(PAYLOAD)
    now = int(time.time())
    bare = _bare_signers(secret, body)
    schemes = list(SignatureScheme)
    deliveries = max(SIGNATURES // 10, 20)

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hooks/kordant"
    sign_us = {scheme: 0.0 for scheme in schemes}
    bare_us = {scheme: 0.0 for scheme in schemes}
    deliver_us = {scheme: 0.0 for scheme in schemes}
    httpx_us = 0.0
    try:
        with WebhookSender() as sender, httpx.Client(timeout=5) as client:
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Kordant-Delivery": DELIVERY_ID}
            headers.update(signature_headers(SignatureScheme.LEGACY, secret, DELIVERY_ID, now, body))

            def deliver(scheme):
                return lambda i: sender.deliver(url, secret, "darkwatch.alert", DELIVERY_ID, PAYLOAD, scheme=scheme)

            def post(i):
                client.post(url, content=body, headers=headers).raise_for_status()

            for scheme in schemes:  # warm-up: keys loaded, connection open
                _per_call_us(deliver(scheme), 20)
            _per_call_us(post, 20)
            for round_number in range(ROUNDS):
                order = schemes if round_number % 2 == 0 else schemes[::-1]
                for scheme in order:
                    sign_us[scheme] += _per_call_us(
                        lambda i, s=scheme: signature_headers(s, secret, DELIVERY_ID, now + i, body),
                        SIGNATURES // ROUNDS,
                    )
                    bare_us[scheme] += _per_call_us(lambda i, s=scheme: bare[s](now + i), SIGNATURES // ROUNDS)
                    deliver_us[scheme] += _per_call_us(deliver(scheme), deliveries // ROUNDS)
                httpx_us += _per_call_us(post, deliveries // ROUNDS)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(keys, ignore_errors=True)

    print(f"   {SIGNATURES:,} signatures and {deliveries:,} loopback deliveries per scheme ({len(body)}-byte body)")
    print(f"   bare httpx post of one request: {httpx_us / ROUNDS:7.0f} µs")
    columns = ("sign (ours)", 12), ("bare library", 13), ("ratio", 6), ("one delivery", 13), ("signing share", 14)
    print(f"   {'scheme':18} " + " ".join(f"{name:>{width}}" for name, width in columns))
    for scheme in schemes:
        ours, theirs, whole = sign_us[scheme] / ROUNDS, bare_us[scheme] / ROUNDS, deliver_us[scheme] / ROUNDS
        print(
            f"   {scheme.value:18} {ours:9.1f} µs {theirs:10.1f} µs {ours / theirs:5.2f}x {whole:10.0f} µs"
            f" {ours / whole:13.0%}"
        )

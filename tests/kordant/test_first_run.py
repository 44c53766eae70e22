"""What a newcomer meets first: `make run` next to another checkout, links, logs, static files in production.

Settings are read once per process, so each case runs Django in a fresh interpreter or a
real server process (gunicorn), as `make run` and production do.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from kordant.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]


def django_python(code: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("SITE_URL", "KORDANT_WEB_PORT")}
    environment |= {"DJANGO_SETTINGS_MODULE": "kordant.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- make run beside another checkout (issue 17.2) ------------------------------------


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_nothing_make_run_starts_listens_on_a_fixed_port_but_the_web():
    for name, command in procfile().items():
        ports = re.findall(r"(?:--port[ =]|:)(\d{2,5})\b", command)
        assert ports == [], f"{name} listens on a fixed port {ports}: a second checkout's make run would die"
    assert "$PORT" in procfile()["web"]


def test_the_stub_takes_a_free_port_while_another_holds_its_old_one_and_says_where(tmp_path):
    """Two stubs (two checkouts) at once, with 8765 taken: each writes a URL that answers."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        stubs, urls = [], []
        try:
            for n in range(2):
                url_file = tmp_path / f"checkout{n}" / "brokers.url"
                stubs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "scanners.removebrokers.stub", "--url-file", str(url_file)],
                        cwd=ROOT,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
                announced = stubs[-1].stdout.readline()  # printed once it listens: the event to wait on
                assert "demo brokers listening on http://127.0.0.1:" in announced
                urls.append(url_file.read_text().strip())
            assert len(set(urls)) == 2 and f":{taken.getsockname()[1]}" not in "".join(urls)
            for url in urls:
                assert httpx.get(f"{url}/somebroker/search", params={"email": "a@example.com"}).json() == {
                    "listed": True
                }
        finally:
            for stub in stubs:
                stub.terminate()
                stub.wait(10)


@pytest.mark.django_db(transaction=True)
def test_the_demo_brokers_follow_the_stub_to_its_new_port(settings, tmp_path, tier_configs):
    """Restarting make run gives the stub a new port: the demo brokers are pointed at it, not left behind."""
    from jobs.demo import demo_data_ensure
    from scanners.removebrokers.demo import DemoBrokersUnreachable, demo_brokers_url, removebrokers_demo_ensure
    from scanners.removebrokers.models import DataBroker
    from scanners.removebrokers.stub import write_url_file
    from tests.lived_in import broker_stub

    settings.REMOVEBROKERS_DEMO_URL = ""
    settings.REMOVEBROKERS_DEMO_URL_FILE = tmp_path / "brokers.url"
    write_url_file(settings.REMOVEBROKERS_DEMO_URL_FILE, f"http://127.0.0.1:{free_port()}")  # a dead stub's file
    with pytest.raises(DemoBrokersUnreachable):
        demo_brokers_url(wait_seconds=0.5)
    demo_data_ensure()
    for _ in range(2):  # two starts, two ports
        url, server = broker_stub()
        try:
            write_url_file(settings.REMOVEBROKERS_DEMO_URL_FILE, url)
            removebrokers_demo_ensure()
        finally:
            server.shutdown()
            server.server_close()
        endpoints = set(DataBroker.objects.filter(method="api").values_list("endpoint", flat=True))
        assert endpoints and all(endpoint.startswith(f"{url}/") for endpoint in endpoints), endpoints


# --- links follow the port (issue 17.3) --------------------------------------------------


def test_site_url_follows_the_port_make_run_serves_on():
    assert django_python("from django.conf import settings; print(settings.SITE_URL)").stdout.strip() == (
        "http://127.0.0.1:8000"
    )
    moved = django_python("from django.conf import settings; print(settings.SITE_URL)", KORDANT_WEB_PORT="8123")
    assert moved.stdout.strip() == "http://127.0.0.1:8123", moved.stderr
    explicit = django_python(
        "from django.conf import settings; print(settings.SITE_URL)",
        KORDANT_WEB_PORT="8123",
        SITE_URL="https://app.kordant.example",
    )
    assert explicit.stdout.strip() == "https://app.kordant.example"
    # make run tells every process (the worker sends the e-mails) the web's port.
    dry = subprocess.run(["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    honcho = next(line for line in dry.stdout.splitlines() if "honcho start" in line)
    assert "KORDANT_WEB_PORT=8123" in shlex.split(honcho)


# --- logs a newcomer reads -----------------------------------------------------------------

LOG_LINES = """
import logging
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.log import log_response
logging.getLogger("fontTools.subset").info("FONTTOOLS-LINE")
logging.getLogger("weasyprint").info("WEASYPRINT-LINE")
log_response(
    "Internal Server Error: %s", "/boom/", response=HttpResponse(status=500), request=RequestFactory().get("/boom/")
)
"""


def test_pdf_libraries_are_quiet_by_default_and_each_500_is_logged_once():
    quiet = django_python(LOG_LINES, DEBUG="true")
    assert "FONTTOOLS-LINE" not in quiet.stderr and "WEASYPRINT-LINE" not in quiet.stderr
    assert quiet.stderr.count("Internal Server Error: /boom/") == 1, quiet.stderr
    loud = django_python(LOG_LINES, DEBUG="true", LOG_LEVEL_PDF="INFO")
    assert "FONTTOOLS-LINE" in loud.stderr and "WEASYPRINT-LINE" in loud.stderr


# --- static files in production (issue 17.6) ---------------------------------------------


def production_env(tmp_path) -> dict:
    from tests.conftest import database_url_for_children

    return {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "production-like-test-key",
        "IDENTIFIER_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "IDENTIFIER_HASH_KEY": "production-like-hash-key",
        "STATIC_ROOT": str(tmp_path / "static"),
        "DATABASE_URL": database_url_for_children(),
    }


@pytest.mark.django_db(transaction=True)
def test_gunicorn_with_debug_off_serves_the_admin_css_compressed_and_hashed(tmp_path):
    env = production_env(tmp_path)
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert collect.returncode == 0, collect.stderr
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "kordant.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # gunicorn says nothing a test can wait on but its port answering
            try:
                login = httpx.get(f"{base}/admin/login/", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "gunicorn did not answer in 60 s"
                time.sleep(0.1)
        assert login.status_code == 200
        css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', login.text)
        assert css, "the admin's stylesheet is not the hashed name collectstatic wrote"
        sheet = httpx.get(base + css.group(1), headers={"Accept-Encoding": "gzip"})
        assert sheet.status_code == 200
        assert sheet.headers["Content-Type"].startswith("text/css")
        assert sheet.headers.get("Content-Encoding") == "gzip"
        assert "immutable" in sheet.headers["Cache-Control"]
        assert "#header" in sheet.text or "body" in sheet.text
        assert httpx.get(f"{base}/static/admin/css/base.css").status_code == 200  # unhashed names still answer
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)

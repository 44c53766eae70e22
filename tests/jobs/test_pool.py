"""Real `manage.py rqworker-pool` processes: a supported way to run several workers.

The pool's parent forks its workers; each worker forks a work horse per job. These tests
stop, kill and starve those processes the way production does, and check what a user
cares about: every run ends recorded, none twice, none stuck `running`.
"""

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest

from jobs import enqueue
from jobs.models import JobRun
from kordant.embedded_redis import EmbeddedRedis, free_port
from tests.conftest import QUEUES
from tests.jobs.handlers import blpop_within, release_key, started_key
from tests.jobs.test_worker import wait_for_status


@pytest.fixture
def pool_process(manage_process):
    """Start `manage.py rqworker-pool critical high default low --num-workers N` as a real process."""

    def start(*extra_args: str, workers: int = 2):
        return manage_process("rqworker-pool", *QUEUES, "--num-workers", str(workers), *extra_args)

    return start


def children_of(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def wait_until(condition, what: str, process, timeout=40.0) -> None:
    """Poll what other processes do (process lists, registrations): they send no event."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"waiting for {what}; the pool said:\n{process.communicate()[0].decode()[-4000:]}")
        time.sleep(0.1)


def registered_workers(redis_conn) -> dict[str, int]:
    """Live RQ workers in Redis: name -> pid."""
    workers = {}
    for key in redis_conn.smembers("rq:workers"):
        pid = redis_conn.hget(key, "pid")
        if pid is not None and redis_conn.hget(key, "death") is None:
            workers[key.decode().removeprefix("rq:worker:")] = int(pid)
    return workers


def output(process) -> str:
    return process.communicate(timeout=30)[0].decode()


def test_a_pool_claims_in_each_worker_and_warms_up_once_before_forking_them(pool_process):
    runs = [enqueue("tests.warmed", {}) for _ in range(6)] + [enqueue("jobs.ping", {"message": "pool"})]

    pool = pool_process("--burst")
    assert pool.wait(90) == 0, output(pool)

    runs = [JobRun.objects.get(pk=run.pk) for run in runs]
    assert {run.status for run in runs} == {"completed"}, [(run.status, run.error) for run in runs]
    warmed = [run.result for run in runs[:-1]]
    # Warmed once, in the pool's own process, before it forked its workers: every worker
    # and every horse shares those pages instead of loading its own copy.
    assert {result["warmed_in"] for result in warmed} == {pool.pid}
    # Claimed by the worker process (the horse's parent): the horse never had to connect.
    assert not any(result["db_connected"] for result in warmed), warmed
    for run in runs:
        running = run.events.get(status="running")
        assert running.worker and running.worker == run.worker_name


@pytest.mark.parametrize(
    "how",
    [
        pytest.param(lambda pool: pool.send_signal(signal.SIGTERM), id="SIGTERM to the pool"),
        pytest.param(lambda pool: pool.send_signal(signal.SIGINT), id="SIGINT to the pool"),
        # Ctrl-C in a terminal, honcho stopping `make run`: the whole process group hears it.
        pytest.param(lambda pool: os.killpg(pool.pid, signal.SIGINT), id="Ctrl-C to its group"),
        pytest.param(lambda pool: os.killpg(pool.pid, signal.SIGTERM), id="SIGTERM to its group"),
    ],
)
def test_stopping_the_pool_lets_every_job_in_hand_finish_and_record(pool_process, redis_conn, how):
    runs = [enqueue("tests.stubborn", {"name": f"graceful-{n}", "seconds": 60}) for n in range(2)]
    pool = pool_process()
    for n in range(2):
        assert blpop_within(redis_conn, started_key(f"graceful-{n}"), 60), output(pool)
    workers = children_of(pool.pid)

    how(pool)
    time.sleep(1)  # long enough for a forced stop to have killed the horses, were it sent
    for n in range(2):
        redis_conn.rpush(release_key(f"graceful-{n}"), "go")
    assert pool.wait(30) == 0, output(pool)

    for run in runs:
        run.refresh_from_db()
        assert (run.status, run.attempt, run.result) == ("completed", 1, {"finished": True}), (run.status, run.error)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), "a worker outlived its pool"
    assert registered_workers(redis_conn) == {}


def test_a_killed_worker_is_replaced_and_its_run_retried_at_once_with_the_reason(pool_process, redis_conn):
    run = enqueue("tests.block", {"name": "victim", "seconds": 60})  # polls in short waits for a minute
    pool = pool_process()
    assert blpop_within(redis_conn, started_key("victim"), 60), output(pool)
    run.refresh_from_db()
    victim = registered_workers(redis_conn)[run.worker_name]
    horses = children_of(victim)
    assert horses, "the worker has no work horse"

    os.kill(victim, signal.SIGKILL)

    # No recovery pass is run here: the pool itself sees its worker die and says why.
    run = wait_for_status(run, {"retrying"}, timeout=30)
    assert run.error_type == "WorkerLost"
    assert run.error.startswith(f"worker lost ({run.worker_name}") and "SIGKILL" in run.error, run.error
    # The horse cannot report to a dead worker; left running it would overlap the retry.
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in horses) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in horses if alive(pid)]
    for pid in survivors:  # in a process group of its own: the fixture would not stop it
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "the dead worker's horse is still running"

    def replaced():
        workers = registered_workers(redis_conn)
        return len(workers) == 2 and run.worker_name not in workers

    wait_until(replaced, "a replacement worker, and the dead one unregistered", pool)
    ping = enqueue("jobs.ping", {"message": "after the replacement"})
    assert wait_for_status(ping, {"completed"}, timeout=30)

    pool.send_signal(signal.SIGTERM)
    assert pool.wait(30) == 0


@pytest.fixture
def own_redis(settings):
    """A redis-server of this test's own, which it may stop and restart."""
    server = EmbeddedRedis(tempfile.mkdtemp(prefix="kordant-pool-redis-"), port=free_port(), persist=False).start()
    settings.REDIS_URL = server.url
    settings.RQ_QUEUES = {name: {**queue, "URL": server.url} for name, queue in settings.RQ_QUEUES.items()}
    yield server
    server.stop()


def test_a_pool_rides_out_a_redis_outage(own_redis, pool_process):
    client = own_redis.client()
    pool = pool_process()
    wait_until(lambda: len(registered_workers(client)) == 2, "both workers to register", pool)
    workers = children_of(pool.pid)

    own_redis.stop()
    time.sleep(7)  # the outage itself, longer than a 5 s socket timeout: nothing to wait on but time
    assert pool.poll() is None and all(alive(pid) for pid in workers), "a process exited during the outage"
    own_redis.start()  # empty: the workers' keys and the queues are gone

    run = enqueue("jobs.ping", {"message": "after the outage"})
    assert wait_for_status(run, {"completed"}, timeout=40)
    assert children_of(pool.pid) == workers, "workers were replaced instead of riding it out"
    pool.send_signal(signal.SIGTERM)
    assert pool.wait(30) == 0
    logs = output(pool)
    assert "Redis answers again" in logs, logs


def test_workers_of_a_killed_pool_finish_the_job_in_hand_and_exit(pool_process, redis_conn):
    run = enqueue("tests.stubborn", {"name": "orphan", "seconds": 60})
    pool = pool_process()
    assert blpop_within(redis_conn, started_key("orphan"), 60), output(pool)
    workers = children_of(pool.pid)

    pool.kill()  # SIGKILL: the pool cannot relay anything
    pool.wait(10)
    redis_conn.rpush(release_key("orphan"), "go")

    run = wait_for_status(run, {"completed"}, timeout=30)
    assert run.attempt == 1 and run.result == {"finished": True}
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in workers if alive(pid)]
    for pid in survivors:  # the fixture only stops the pool's own process group
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "workers outlived their killed pool"


@pytest.mark.parametrize("count", ["0", "-2"])
def test_a_pool_of_no_workers_is_refused_before_anything_starts(count):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--num-workers must be 1 or more"):
        call_command("rqworker-pool", "default", "--num-workers", count)

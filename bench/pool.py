"""Memory of a worker pool against the same number of separate workers, draining the same jobs.

N `jobs.ping` runs (BENCH_POOL_JOBS, default 2,000), drained once by
`manage.py rqworker-pool critical high default low --num-workers 2 --burst` and once by two
`manage.py rqworker critical high default low --burst` processes started together. Both
listen to every queue, so every worker warms up every job type (reports.generate loads
WeasyPrint and its fonts): the pool does it once before forking, each separate worker once
for itself.

The whole process tree (parents, workers, work horses) is sampled every 50 ms from /proc:
the peak of its summed RSS, which counts a page shared by several processes once per
process, and the peak of its summed PSS, which splits each shared page between the
processes sharing it, so it is the memory the tree really takes.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.__main__ import ROOT

JOBS = int(os.environ.get("BENCH_POOL_JOBS", 2000))
WORKERS = 2
QUEUES = ("critical", "high", "default", "low")


def main() -> None:
    print(f"   {JOBS} jobs.ping runs, {WORKERS} workers on {', '.join(QUEUES)}; peak of the process tree's memory")
    pool = _drain([["rqworker-pool", *QUEUES, "--num-workers", str(WORKERS), "--burst"]])
    separate = _drain([["rqworker", *QUEUES, "--burst"] for _ in range(WORKERS)])
    rows = [(f"rqworker-pool --num-workers {WORKERS}", pool), (f"{WORKERS} x rqworker", separate)]
    for name, (rss, pss, seconds) in rows:
        print(f"   {name:<28} peak RSS {rss:7.1f} MB   peak PSS {pss:7.1f} MB   {JOBS / seconds:6.0f} jobs/s")
    print(
        f"   the pool takes {pool[0] / separate[0]:.2f}x the RSS and {pool[1] / separate[1]:.2f}x the PSS "
        f"of {WORKERS} separate workers"
    )


def _drain(commands: list[list[str]]) -> tuple[float, float, float]:
    """Enqueue the runs, start the commands, sample their trees until all exit; (peak RSS MB, peak PSS MB, s)."""
    from jobs import EnqueueRequest, enqueue_many
    from jobs.dispatch import redis_connection
    from jobs.models import JobEvent, JobRun

    redis_connection().flushdb()
    JobEvent.objects.all().delete()
    JobRun.objects.all().delete()
    enqueue_many([EnqueueRequest("jobs.ping", {"message": str(i)}) for i in range(JOBS)])

    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in commands
    ]
    peaks = [0.0, 0.0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            pids = [pid for process in processes for pid in _tree(process.pid)]
            rss, pss = (sum(values) for values in zip(*(_memory(pid) for pid in pids), strict=True)) if pids else (0, 0)
            peaks[0], peaks[1] = max(peaks[0], rss), max(peaks[1], pss)
            done.wait(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for process in processes:
            if process.wait() != 0:
                raise RuntimeError(f"{' '.join(process.args[2:])} exited with {process.returncode}")
    finally:
        done.set()
        sampler.join()
    seconds = time.perf_counter() - started
    completed = JobRun.objects.filter(status="completed").count()
    if completed != JOBS:
        raise RuntimeError(f"only {completed} of {JOBS} runs completed")
    return peaks[0] / 1024, peaks[1] / 1024, seconds


def _tree(pid: int) -> list[int]:
    """pid and every descendant alive now."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; (0, 0) if it has just exited."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss"):
                values[name] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0, 0
    return values.get("Rss", 0), values.get("Pss", 0)

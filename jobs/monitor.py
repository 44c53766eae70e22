"""The `jobs.monitor` job: the job system's vital signs against thresholds, one alert per incident.

Checks (thresholds in settings, `JOBS_MONITOR_*`): the depth of each queue that is not
paused, how long the oldest due queued run has waited, the share of runs that failed in
the last hour, and the scheduler's heartbeat. A check out of bounds sends the
`monitor_alert` signal (the notifications app emails staff) unless it already did: a
Redis key per check, set when it alerts and kept alive while the problem lasts, holds
the alert back until the check has been healthy for the whole cooldown. So a queue that
stays backed up for a day sends one email, not 1,440.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings

from jobs import dispatch, hooks, selectors

logger = logging.getLogger("jobs.monitor")
ALERTED_KEY = "kordant:monitor:alerted:{check}"


@dataclass(frozen=True)
class Problem:
    check: str  # stable per kind of incident: "queue_depth:default", "oldest_queued", ...
    summary: str
    value: float
    threshold: float


def monitor_problems() -> list[Problem]:
    """What is out of bounds right now (reads only)."""
    connection = dispatch.redis_connection()
    problems = []
    paused = selectors.queues_paused(connection=connection)
    depths = selectors.queue_depths(connection=connection)
    limit = settings.JOBS_MONITOR_QUEUE_DEPTH
    for name, depth in depths.items():
        # A paused queue backs up because an operator asked it to.
        if name != "delayed" and name not in paused and depth > limit:
            problems.append(
                Problem(f"queue_depth:{name}", f"queue {name} holds {depth} jobs (limit {limit})", depth, limit)
            )

    oldest = selectors.oldest_queued_age(exclude_queues=paused)
    limit = settings.JOBS_MONITOR_OLDEST_QUEUED_SECONDS
    if oldest is not None and oldest.total_seconds() > limit:
        problems.append(
            Problem(
                "oldest_queued",
                f"the oldest queued run has waited {oldest.total_seconds():.0f} s (limit {limit} s)",
                oldest.total_seconds(),
                limit,
            )
        )

    failed, total = selectors.job_run_failure_counts(window=timedelta(hours=1))
    limit = settings.JOBS_MONITOR_FAILURE_RATE
    if total >= settings.JOBS_MONITOR_FAILURE_MIN_RUNS and failed / total > limit:
        problems.append(
            Problem(
                "failure_rate",
                f"{failed} of {total} runs failed in the last hour ({failed / total:.0%}, limit {limit:.0%})",
                failed / total,
                limit,
            )
        )

    beat = selectors.scheduler_heartbeat(connection=connection)
    limit = settings.JOBS_MONITOR_HEARTBEAT_SECONDS
    if beat is None:
        problems.append(Problem("scheduler_heartbeat", "no scheduler heartbeat: is rqscheduler running?", -1, limit))
    elif beat["age_seconds"] > limit:
        problems.append(
            Problem(
                "scheduler_heartbeat",
                f"the scheduler's last heartbeat was {beat['age_seconds']:.0f} s ago (limit {limit} s)",
                beat["age_seconds"],
                limit,
            )
        )
    return problems


def monitor_run() -> dict:
    """Check everything; alert once per incident (see the module's docstring). Returns what it found."""
    connection = dispatch.redis_connection()
    cooldown = settings.JOBS_MONITOR_COOLDOWN_SECONDS
    problems = monitor_problems()
    alerted = []
    for problem in problems:
        key = ALERTED_KEY.format(check=problem.check)
        if connection.set(key, time.time(), nx=True, ex=cooldown):
            incident = int(float(connection.get(key)))
            logger.warning("monitor: %s", problem.summary)
            for receiver, response in hooks.monitor_alert.send_robust(Problem, incident=incident, **asdict(problem)):
                if isinstance(response, Exception):
                    logger.error("monitor alert %s: %s failed: %r", problem.check, receiver.__qualname__, response)
            alerted.append(problem.check)
        else:
            connection.expire(key, cooldown)  # the same incident goes on: stay quiet
    return {"problems": [asdict(problem) for problem in problems], "alerted": alerted}

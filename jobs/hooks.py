"""Signals the job system sends, for apps that react to what happens to runs.

`run_failed` is sent once a run has failed for good (no retries left, a permanent error,
or a worker lost on its last attempt), after that failure is committed, with `run_id`,
`job_type` and `error`. The notifications app tells staff (kind `jobs.failed`); the job
system itself knows nothing of notifications.
"""

from django.dispatch import Signal

run_failed = Signal()

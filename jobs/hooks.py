"""Signals the job system sends, for apps that react to what happens to runs.

`run_failed` is sent once a run has failed for good (no retries left, a permanent error,
or a worker lost on its last attempt), after that failure is committed, with `run_id`,
`job_type` and `error`. The notifications app tells staff (kind `jobs.failed`); the job
system itself knows nothing of notifications.

`run_transitioned` is sent after every committed transition of jobs/transitions.py that
ends an attempt (completed, retrying, failed, cancelled), with `run_id`, `status` and
`job_type` (the writer's copy, so a receiver can filter before reading anything). It
is sent on the hot path too, so a receiver must return at once when nobody listens (the
notifications app checks a cached "any endpoint subscribed to job events?" first).

`schedules_written` is sent inside the transaction of a schedule sync that bulk-wrote rows
(bulk writes send no post_save), with `created` (a callable returning the new rows' ids)
and `updated` (ids); deleted rows go through Django's delete and its signals.

`monitor_alert` is sent by the `jobs.monitor` job once per incident (a check out of
bounds), with `check`, `summary`, `value`, `threshold` and `incident` (when it began,
unix seconds); the notifications app emails staff (kind `jobs.monitor`).
"""

from django.dispatch import Signal

run_failed = Signal()
run_transitioned = Signal()
schedules_written = Signal()
monitor_alert = Signal()

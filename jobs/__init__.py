"""Kordant's job system. Public surface:

    from jobs import enqueue, enqueue_many, job_type, registry, Payload

`enqueue`/`enqueue_many` are loaded lazily so that importing `jobs` (as Django does
while it populates the app registry) does not import models too early.
"""

from jobs.registry import Payload, job_type, registry

__all__ = ["EnqueueRequest", "Payload", "enqueue", "enqueue_many", "job_type", "registry"]


def __getattr__(name):
    if name in {"enqueue", "enqueue_many", "EnqueueRequest"}:
        from jobs import services

        return getattr(services, name)
    raise AttributeError(f"module 'jobs' has no attribute {name!r}")

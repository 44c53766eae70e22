"""Never imported by the project: hostile job hashes name it.

Importing it or calling `pwn` leaves a marker file in $KORDANT_HOSTILE_MARKERS, so a test
can see whether a worker or the scheduler imported or ran a function it should have refused.
"""

import os
from pathlib import Path


def _mark(name: str) -> None:
    directory = os.environ.get("KORDANT_HOSTILE_MARKERS")
    if directory:
        Path(directory, name).touch()


_mark(f"imported-{os.getpid()}")


def pwn(*args, **kwargs):
    _mark(f"called-{os.getpid()}")

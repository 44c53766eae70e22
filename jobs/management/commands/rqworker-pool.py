"""`manage.py rqworker-pool`: django-rq's command, running Kordant's pool (jobs/pool.py).

Same arguments as django-rq's. Found before django-rq's own because the jobs app comes
first in INSTALLED_APPS.
"""

import os
from importlib import import_module

from django.core.management.base import CommandError
from django_rq.jobs import get_job_class
from django_rq.queues import get_queues
from django_rq.workers import get_worker_class
from rq.logutils import setup_loghandlers

from jobs.pool import KordantWorkerPool

django_rq_command = import_module("django_rq.management.commands.rqworker-pool")


class Command(django_rq_command.Command):
    help = "Run N forking workers on the given queues under one parent (see jobs/pool.py)."

    def handle(self, *args, **options):
        if options["num_workers"] < 1:
            raise CommandError(f"--num-workers must be 1 or more, not {options['num_workers']}")
        if options.get("pid"):
            with open(os.path.expanduser(options["pid"]), "w") as pid_file:
                pid_file.write(str(os.getpid()))
        verbosity = options["verbosity"]
        logging_level = "DEBUG" if verbosity >= 2 else "WARNING" if verbosity == 0 else "INFO"
        setup_loghandlers(logging_level)

        job_class = get_job_class(options["job_class"])
        queues = get_queues(*args, job_class=job_class, queue_class=options["queue_class"])
        # --serializer is accepted and ignored: the worker class speaks JSON only (jobs/worker.py).
        pool = KordantWorkerPool(
            queues=queues,
            connection=queues[0].connection,
            num_workers=options["num_workers"],
            worker_class=get_worker_class(options.get("worker_class")),
            job_class=job_class,
            queue_class=type(queues[0]),
        )
        pool.start(burst=options["burst"], logging_level=logging_level)

"""Enqueue Celery tasks by name, once the current transaction commits.

Services and the ticket sync enqueue work here instead of importing
tracker.tasks: the tasks import the services they call, so the other way round
would be an import cycle. The task is looked up in the app's registry rather
than sent with `send_task`, which ignores `task_always_eager` (the tests, and
any setup without a worker, run tasks where they are enqueued).
"""

from __future__ import annotations

from typing import Any

from celery import Task
from django.db import transaction

from config.celery import app


def enqueue_on_commit(task_name: str, *args: Any) -> None:
    """Run task `task_name` with `args` once the current transaction commits (at
    once outside one). A broker that is down loses the task, not the change:
    what was to be done is in the database, and a beat task finds it."""
    task = registered_task(task_name)
    transaction.on_commit(lambda: task.delay(*args), robust=True)


def registered_task(task_name: str) -> Task:
    """The task called `task_name`; KeyError if no installed app defines one."""
    if task_name not in app.tasks:
        # Only a worker discovers the apps' task modules by itself; a web process
        # has not imported them yet the first time it enqueues.
        app.autodiscover_tasks(force=True)
    return app.tasks[task_name]

"""Tasks enqueued by name (tracker.enqueue): run once the transaction commits, in
this process when Celery is eager, and found even where nothing imported them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracker.enqueue import enqueue_on_commit

BASE_DIR = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def tasks_run(settings, tasks_run):
    """As tests/ticketing/conftest.py's, with ticket sync off: the tasks return at once."""
    settings.TICKETS_BACKEND = ""
    return tasks_run


@pytest.mark.django_db
def test_it_runs_the_task_named_once_the_transaction_commits(
    tasks_run, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        enqueue_on_commit("tracker.pull_tickets", ["OPS-1", "OPS-2"])
        assert tasks_run == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert tasks_run == [("tracker.pull_tickets", [["OPS-1", "OPS-2"]])]


@pytest.mark.django_db
def test_it_refuses_a_task_name_no_app_defines_before_anything_commits(
    tasks_run, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(KeyError):
        enqueue_on_commit("tracker.no_such_task")
    assert callbacks == []


# Enqueues from a fresh process, as a web process does, where no code imported tracker.tasks.
PROBE = """
import json, sys
import django
django.setup()
imported_before = "tracker.tasks" in sys.modules
from tracker.enqueue import registered_task
task = registered_task("tracker.push_tickets")
print(json.dumps({"imported_before": imported_before, "name": task.name}))
"""


def test_it_finds_the_tasks_in_a_process_that_never_imported_them():
    env = {**os.environ, "PYTHONPATH": str(BASE_DIR), "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"imported_before": False, "name": "tracker.push_tickets"}

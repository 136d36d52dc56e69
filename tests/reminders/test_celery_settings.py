"""Celery settings the reminders rely on, and the beat schedule the migrations install."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django_celery_beat.models import PeriodicTask

from config import celery_app

BASE_DIR = Path(__file__).resolve().parents[2]

PROBE = """
import json
import django
django.setup()
from django.conf import settings
from config.celery import app
print(json.dumps({
    "broker_url": app.conf.broker_url,
    "transport_options": app.conf.broker_transport_options,
    "acks_late": app.conf.task_acks_late,
    "max_attempts": settings.TRACKER_SEND_MAX_ATTEMPTS,
    "lease": settings.TRACKER_SEND_LEASE_SECONDS,
}))
"""


def test_it_acknowledges_tasks_late():
    assert celery_app.conf.task_acks_late is True
    assert celery_app.conf.task_reject_on_worker_lost is True


def test_it_keeps_redis_visibility_longer_than_any_retry_delay_and_the_lease(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "PYTHONPATH": str(BASE_DIR),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "TRACKER_VAR_DIR": str(tmp_path / "var"),
        "REDIS_URL": "redis://127.0.0.1:6379/7",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["broker_url"] == "redis://127.0.0.1:6379/7"
    assert report["acks_late"] is True
    visibility = report["transport_options"]["visibility_timeout"]
    longest_backoff = 60 * 2 ** (report["max_attempts"] - 1) * 1.5
    assert visibility > longest_backoff
    assert visibility > report["lease"]


@pytest.mark.django_db
def test_it_schedules_the_reminder_and_ticket_tasks_after_migrations():
    celery_app.loader.import_default_modules()
    tasks = {t.task: t for t in PeriodicTask.objects.filter(task__startswith="tracker.")}

    assert set(tasks) == {
        "tracker.sweep_reminders",
        "tracker.send_manager_digest",
        "tracker.deliver_pending_reminders",
        "tracker.push_pending_tickets",
        "tracker.poll_tickets",
    }
    assert set(tasks) <= set(celery_app.tasks)
    assert all(t.enabled for t in tasks.values())

    hourly = tasks["tracker.sweep_reminders"].crontab
    assert (hourly.minute, hourly.hour, hourly.day_of_week) == ("0", "*", "*")
    assert (hourly.day_of_month, hourly.month_of_year) == ("*", "*")

    weekly = tasks["tracker.send_manager_digest"].crontab
    assert (weekly.minute, weekly.hour, weekly.day_of_week) == ("0", "8", "1")
    assert (weekly.day_of_month, weekly.month_of_year) == ("*", "*")

    retry = tasks["tracker.deliver_pending_reminders"].interval
    assert (retry.every, retry.period) == (5, "minutes")

    push = tasks["tracker.push_pending_tickets"].interval
    assert (push.every, push.period) == (1, "minutes")
    poll = tasks["tracker.poll_tickets"].interval
    assert (poll.every, poll.period) == (5, "minutes")

"""Celery tasks: thin wrappers that call tracker.reminders at the current time."""

from celery import shared_task
from django.utils import timezone

from . import reminders


@shared_task(name="tracker.sweep_reminders")
def sweep_reminders() -> dict:
    """Hourly: create the notifications now due, then deliver every pending one."""
    now = timezone.now()
    report = reminders.sweep(now=now)
    reminders.deliver_pending(now=now, report=report)
    return {"items": report.items_seen, "sent": report.sent, "failed": report.failed}


@shared_task(name="tracker.deliver_pending_reminders")
def deliver_pending_reminders() -> dict:
    """Every few minutes: retry failed sends whose backoff has passed, and abandoned claims."""
    report = reminders.deliver_pending(now=timezone.now())
    return {"sent": report.sent, "failed": report.failed}


@shared_task(name="tracker.send_manager_digest")
def send_manager_digest() -> int:
    """Weekly: the managers' digest, once per manager and week."""
    return reminders.manager_digest_send(now=timezone.now())

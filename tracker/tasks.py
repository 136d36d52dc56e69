"""Celery tasks: thin wrappers that load what they are given and call a service.

The reminder tasks call tracker.reminders at the current time; the ticket tasks
call the ticket sync. Nothing imports this module to enqueue: code that needs a
task run enqueues it by name (tracker.enqueue), so these names are the contract.
"""

from celery import shared_task
from django.utils import timezone

from . import reminders
from .ticketing import get_backend, pull, push


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


# --- Ticket sync: thin wrappers over tracker.ticketing.push and .pull ------------


@shared_task(name="tracker.push_tickets", ignore_result=True)
def push_tickets(item_ids: list[int]) -> dict:
    """Push these items' tickets (enqueued when the change that needs it commits)."""
    if get_backend() is None:
        return {}
    return vars(push.tickets_push(item_ids=item_ids))


@shared_task(name="tracker.push_pending_tickets")
def push_pending_tickets() -> dict:
    """Every minute: push links still pending (lost task, outage over) or due for a retry."""
    backend = get_backend()
    if backend is None:
        return {}
    due = push.tickets_due(now=timezone.now(), system=backend.name)
    return vars(push.tickets_push(item_ids=due, backend=backend))


@shared_task(name="tracker.poll_tickets")
def poll_tickets() -> dict:
    """Every few minutes: read back the tickets changed in the ticket system."""
    if get_backend() is None:
        return {}
    return vars(pull.tickets_poll())


@shared_task(name="tracker.pull_tickets", ignore_result=True)
def pull_tickets(keys: list[str]) -> dict:
    """Read the tickets an inbound webhook named."""
    if get_backend() is None:
        return {}
    return vars(pull.tickets_pull(keys=keys))

"""Building items through the services and running sweeps at chosen moments."""

import datetime as dt
import itertools
import zoneinfo

import time_machine
from django.utils import timezone

from incidents.models import Incident
from tests import factories
from tracker import reminders
from tracker.models import ActionItem, DeliveryState, Notification, Person

UTC = dt.UTC
_numbers = itertools.count(1)


def local(iso: str, tz: str = "UTC") -> dt.datetime:
    """An aware moment: `iso` read as wall-clock time in `tz`."""
    return dt.datetime.fromisoformat(iso).replace(tzinfo=zoneinfo.ZoneInfo(tz))


def make_person(
    email: str | None = None, *, time_zone: str = "", manager_email: str = ""
) -> Person:
    return Person.objects.create(
        email=email or f"owner{next(_numbers)}@example.com",
        time_zone=time_zone,
        manager_email=manager_email,
    )


def make_incident(*, escalation_manager_email: str = "") -> Incident:
    n = next(_numbers)
    return Incident.objects.create(
        external_id=f"INC-REM-{n:04d}",
        title=f"Incident {n}",
        severity="SEV2",
        status="resolved",
        declared_at=dt.datetime(2025, 1, 1, tzinfo=UTC),
        escalation_manager_email=escalation_manager_email,
    )


def make_item(
    *,
    created: dt.datetime,
    deadline: dt.date,
    owner: Person | None,
    priority: str = "P2",
    incident: Incident | None = None,
    **fields,
) -> ActionItem:
    """An item created through the service at `created`, so next_reminder_on is maintained."""
    with time_machine.travel(created, tick=False):
        return factories.make_action_item(
            owner=owner,
            priority=priority,
            deadline=deadline,
            incident=incident if incident is not None else make_incident(),
            **fields,
        )


def sweep_and_deliver(moment: dt.datetime) -> list[tuple[str, str]]:
    """Run a sweep and a delivery at `moment`; the (recipient, stage) pairs newly sent."""
    before = set(Notification.objects.filter(state=DeliveryState.SENT).values_list("pk", flat=True))
    with time_machine.travel(moment, tick=False):
        now = timezone.now()
        reminders.sweep(now=now)
        reminders.deliver_pending(now=now)
    return sorted(
        Notification.objects.filter(state=DeliveryState.SENT)
        .exclude(pk__in=before)
        .values_list("recipient", "stage")
    )


def daily_sweeps(
    first: dt.date, last: dt.date, *, at: dt.time = dt.time(10), tz: str = "UTC"
) -> dict[dt.date, list[tuple[str, str]]]:
    """One sweep a day at `at` local time in `tz`; what each day sent, days with sends only."""
    sent = {}
    day = first
    while day <= last:
        if pairs := sweep_and_deliver(dt.datetime.combine(day, at, tzinfo=zoneinfo.ZoneInfo(tz))):
            sent[day] = pairs
        day += dt.timedelta(days=1)
    return sent


def hourly_sweeps(first: dt.datetime, last: dt.datetime) -> dict[tuple[str, str], dt.datetime]:
    """One sweep an hour; the moment each (recipient, stage) was first sent."""
    first_sent = {}
    moment = first
    while moment <= last:
        for pair in sweep_and_deliver(moment):
            first_sent.setdefault(pair, moment)
        moment += dt.timedelta(hours=1)
    return first_sent

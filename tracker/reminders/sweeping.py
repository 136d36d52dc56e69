"""The sweep: write the Notification rows due at a moment, and move each item on.

Exactly once: a sweep inserts one Notification row per (item, stage, deadline,
recipient), and the unique constraint drops a second sweep's copy. Sending the
rows is delivery's part (tracker.reminders.delivery).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..deadlines import person_time_zone
from ..models import OPEN_STATUSES, ActionItem, Notification, ReminderSweep
from .policy import (
    Policy,
    escalation_contact,
    escalation_stage,
    next_point,
    next_reminder_on,
    owner_stage,
    reminder_date,
)

SWEEP_CHUNK = 2000


@dataclass
class SweepReport:
    """What a sweep, and the delivery run after it, did (the command prints it)."""

    items_seen: int = 0
    notifications: list[tuple[str, str, int]] = field(
        default_factory=list
    )  # recipient, stage, item
    sent: int = 0
    failed: int = 0
    emails: int = 0

    @property
    def recipients(self) -> set[str]:
        return {r for r, _, _ in self.notifications}

    def by_stage(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for _, stage, _ in self.notifications:
            counts[stage.split("+")[0].split("-")[0]] += 1
        return dict(counts)


def sweep(*, now: dt.datetime, dry_run: bool = False, policy: Policy | None = None) -> SweepReport:
    """Create the Notification rows due at `now` and move each item to its next point.

    Reads only items whose `next_reminder_on` has come (one indexed range
    query, in chunks), so the cost follows the number of due items.
    """
    policy = policy or Policy.from_settings()
    report = SweepReport()
    # Local dates run up to 14 hours ahead of UTC: read one day ahead, then check per item.
    horizon = now.astimezone(dt.UTC).date() + dt.timedelta(days=1)
    due = (
        ActionItem.objects.filter(next_reminder_on__lte=horizon)
        .select_related("owner", "incident")
        .order_by("next_reminder_on", "id")
    )
    last_id, last_date = 0, None
    while True:
        chunk_query = due
        if last_date is not None:
            chunk_query = due.filter(
                Q(next_reminder_on__gt=last_date) | Q(next_reminder_on=last_date, id__gt=last_id)
            )
        chunk = list(chunk_query[:SWEEP_CHUNK])
        if not chunk:
            break
        last_date, last_id = chunk[-1].next_reminder_on, chunk[-1].id
        report.items_seen += len(chunk)
        _sweep_chunk(chunk, now=now, policy=policy, report=report, dry_run=dry_run)
        if len(chunk) < SWEEP_CHUNK:
            break
    if not dry_run:
        ReminderSweep.objects.update_or_create(
            pk=1, defaults={"last_success_at": timezone.now(), "items_seen": report.items_seen}
        )
    return report


def _sweep_chunk(
    items: list[ActionItem], *, now: dt.datetime, policy: Policy, report: SweepReport, dry_run: bool
) -> None:
    rows: list[Notification] = []
    moved: list[ActionItem] = []
    for item in items:
        if item.status not in OPEN_STATUSES or item.owner is None or item.deadline is None:
            item.next_reminder_on = None
            moved.append(item)
            continue
        today = reminder_date(now=now, tz=person_time_zone(item.owner), policy=policy)
        if item.next_reminder_on > today:
            continue  # not yet there in the owner's time zone
        if today.weekday() not in policy.weekdays:
            continue  # a quiet day: the next weekday's sweep sends the stage then current
        if item.snoozed_until and today <= item.snoozed_until:
            item.next_reminder_on = next_reminder_on(item=item, now=now, policy=policy)
            moved.append(item)
            continue
        day = (today - item.deadline).days
        stages = []
        if stage := owner_stage(day=day, policy=policy):
            stages.append((stage, item.owner.email.lower()))
        if (stage := escalation_stage(day=day, priority=item.priority, policy=policy)) and (
            contact := escalation_contact(item, policy)
        ):
            stages.append((stage, contact))
        for stage, recipient in stages:
            rows.append(
                Notification(
                    item=item,
                    recipient=recipient,
                    kind=stage.kind,
                    stage=stage.key,
                    deadline=item.deadline,
                )
            )
            report.notifications.append((recipient, stage.key, item.pk))
        item.next_reminder_on = item.deadline + dt.timedelta(
            days=next_point(day=day, priority=item.priority, policy=policy)
        )
        moved.append(item)
    if dry_run:
        return
    with transaction.atomic():
        # Sweeps that overlap lock their chunk's items first, in one order, so they
        # queue behind each other instead of deadlocking on the inserts and updates
        # below (their chunks need not match: an item moved by one is read by another).
        list(
            ActionItem.objects.select_for_update()
            .filter(pk__in=[item.pk for item in moved])
            .order_by("id")
            .values_list("id", flat=True)
        )
        # A second sweep's copy of a row is dropped here, by the unique constraint.
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        # One UPDATE per new date rather than a CASE over every item: items share few dates.
        by_date: dict[dt.date | None, list[int]] = defaultdict(list)
        for item in moved:
            by_date[item.next_reminder_on].append(item.pk)
        for date, ids in by_date.items():
            ActionItem.objects.filter(pk__in=ids).update(next_reminder_on=date)

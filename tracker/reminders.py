"""Deadline reminders and escalations.

Policy (settings, see README "Reminders"): each item has a sequence of stage
points, in days relative to its deadline in the owner's time zone —

    due_soon-7, due_soon-1, due_today, overdue+1, overdue+8, overdue+15, ...
    escalation+G, escalation+G+7, ...   (G: the priority's grace period)

A sweep sends only the *current* stage (the latest point reached), so an item
first seen three days before its deadline gets one "due soon" reminder, not a
backlog. Each item stores `next_reminder_on`, the date its next point is
reached, so a sweep reads only the items due now.

Exactly once: a sweep inserts one Notification row per (item, stage, deadline,
recipient) — the unique constraint drops a second sweep's copy — and delivery
claims rows with a conditional update, so two processes never send the same
row. A claimed row whose sender died is claimed again once its lease expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import (
    OPEN_STATUSES,
    ActionItem,
    ActionItemChange,
    ChangeSource,
    DeliveryState,
    Notification,
    Person,
    ReminderStage,
    ReminderSweep,
)

logger = logging.getLogger(__name__)

SWEEP_CHUNK = 2000


@dataclass(frozen=True)
class Policy:
    days_before: tuple[int, ...]
    overdue_repeat_days: int
    escalate_after_days: dict[str, int]
    escalation_email: str
    weekdays: frozenset[int]
    remind_hour: int
    max_attempts: int
    lease: dt.timedelta

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            days_before=tuple(
                sorted(
                    {int(d) for d in settings.TRACKER_REMIND_DAYS_BEFORE if int(d) > 0},
                    reverse=True,
                )
            ),
            overdue_repeat_days=max(1, int(settings.TRACKER_OVERDUE_REPEAT_DAYS)),
            escalate_after_days={
                k: int(v) for k, v in settings.TRACKER_ESCALATE_AFTER_DAYS.items() if v is not None
            },
            escalation_email=settings.TRACKER_ESCALATION_EMAIL,
            weekdays=frozenset(settings.TRACKER_REMIND_WEEKDAYS),
            remind_hour=int(settings.TRACKER_REMIND_HOUR),
            max_attempts=int(settings.TRACKER_SEND_MAX_ATTEMPTS),
            lease=dt.timedelta(seconds=int(settings.TRACKER_SEND_LEASE_SECONDS)),
        )


# --- Stages ------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    kind: str
    day: int  # relative to the deadline: -7, 0, +8 ...

    @property
    def key(self) -> str:
        if self.kind == ReminderStage.DUE_TODAY:
            return "due_today"
        return f"{self.kind}{self.day:+d}"


def person_time_zone(person: Person | None) -> dt.tzinfo:
    if person is not None and person.time_zone:
        try:
            return zoneinfo.ZoneInfo(person.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            logger.warning("unknown time zone %r for %s", person.time_zone, person.email)
    return timezone.get_default_timezone()


def reminder_date(*, now: dt.datetime, tz: dt.tzinfo, policy: Policy) -> dt.date:
    """The day whose stages are due at `now`: a day's stages go out from the remind hour on."""
    return (now.astimezone(tz) - dt.timedelta(hours=policy.remind_hour)).date()


def owner_stage(*, day: int, policy: Policy) -> Stage | None:
    """The owner's current stage on `day` (days after the deadline; negative before)."""
    if day >= 1:
        repeat = policy.overdue_repeat_days
        return Stage(ReminderStage.OVERDUE, 1 + (day - 1) // repeat * repeat)
    if day == 0:
        return Stage(ReminderStage.DUE_TODAY, 0)
    reached = [-d for d in policy.days_before if -d <= day]
    return Stage(ReminderStage.DUE_SOON, max(reached)) if reached else None


def escalation_stage(*, day: int, priority: str, policy: Policy) -> Stage | None:
    grace = policy.escalate_after_days.get(priority)
    if grace is None or day < grace:
        return None
    repeat = policy.overdue_repeat_days
    return Stage(ReminderStage.ESCALATION, grace + (day - grace) // repeat * repeat)


def _next_point(*, day: int, priority: str, policy: Policy) -> int:
    """The first stage point strictly after `day`."""
    candidates = [-d for d in policy.days_before if -d > day]
    if day < 0:
        candidates.append(0)
    repeat = policy.overdue_repeat_days
    candidates.append(1 if day < 1 else 1 + ((day - 1) // repeat + 1) * repeat)
    grace = policy.escalate_after_days.get(priority)
    if grace is not None:
        candidates.append(grace if day < grace else grace + ((day - grace) // repeat + 1) * repeat)
    return min(candidates)


def next_reminder_on(
    *, item: ActionItem, now: dt.datetime | None = None, policy: Policy | None = None
) -> dt.date | None:
    """When the item's next reminder is due: today if a stage is current, else the next point."""
    if item.status not in OPEN_STATUSES or item.owner_id is None or item.deadline is None:
        return None
    policy = policy or Policy.from_settings()
    today = reminder_date(now=now or timezone.now(), tz=person_time_zone(item.owner), policy=policy)
    if item.snoozed_until and today <= item.snoozed_until:
        today = item.snoozed_until + dt.timedelta(days=1)
        if owner_stage(day=(today - item.deadline).days, policy=policy):
            return today
    elif owner_stage(day=(today - item.deadline).days, policy=policy):
        return today
    day = _next_point(day=(today - item.deadline).days, priority=item.priority, policy=policy)
    return item.deadline + dt.timedelta(days=day)


def escalation_contact(item: ActionItem, policy: Policy) -> str:
    """The owner's manager, else the incident's on-call escalation manager, else the fallback."""
    if item.owner is not None and item.owner.manager_email:
        return item.owner.manager_email.lower()
    if item.incident is not None and item.incident.escalation_manager_email:
        return item.incident.escalation_manager_email.lower()
    return (policy.escalation_email or "").lower()


# --- Sweep ---------------------------------------------------------------------


@dataclass
class SweepReport:
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
            days=_next_point(day=day, priority=item.priority, policy=policy)
        )
        moved.append(item)
    if dry_run:
        return
    with transaction.atomic():
        # A second sweep's copy of a row is dropped here, by the unique constraint.
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        # One UPDATE per new date rather than a CASE over every item: items share few dates.
        by_date: dict[dt.date | None, list[int]] = defaultdict(list)
        for item in moved:
            by_date[item.next_reminder_on].append(item.pk)
        for date, ids in by_date.items():
            ActionItem.objects.filter(pk__in=ids).update(next_reminder_on=date)


# --- Delivery ------------------------------------------------------------------


def _claimable(now: dt.datetime, policy: Policy) -> Q:
    ready = Q(state=DeliveryState.PENDING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    # A sender that claimed rows and died: its lease has run out. Leases run on the
    # real clock, not on `now` (which a catch-up run sets in the past): a claim made
    # a second ago is never taken for an abandoned one.
    abandoned = Q(state=DeliveryState.SENDING, claimed_at__lt=timezone.now() - policy.lease)
    return ready | abandoned


def deliver_pending(
    *, now: dt.datetime, policy: Policy | None = None, report: SweepReport | None = None
) -> SweepReport:
    """Send one digest to each recipient with claimable notifications."""
    policy = policy or Policy.from_settings()
    report = report or SweepReport()
    recipients = (
        Notification.objects.filter(_claimable(now, policy))
        .values_list("recipient", flat=True)
        .distinct()
        .order_by("recipient")
    )
    connection = get_connection()
    for recipient in list(recipients):
        deliver_to(
            recipient=recipient, now=now, policy=policy, report=report, connection=connection
        )
    return report


def deliver_to(
    *,
    recipient: str,
    now: dt.datetime,
    policy: Policy | None = None,
    report: SweepReport | None = None,
    connection=None,
) -> int:
    """Claim and send `recipient`'s pending notifications as one email; return how many were sent."""
    policy = policy or Policy.from_settings()
    report = report if report is not None else SweepReport()
    token = uuid.uuid4().hex
    claimed = Notification.objects.filter(_claimable(now, policy), recipient=recipient).update(
        state=DeliveryState.SENDING, claim_token=token, claimed_at=timezone.now()
    )
    if not claimed:
        return 0  # another process got there first
    rows = list(
        Notification.objects.filter(claim_token=token, state=DeliveryState.SENDING)
        .select_related("item__owner", "item__incident")
        .order_by("id")
    )
    live = [n for n in rows if _still_due(n, now=now, policy=policy)]
    stale = [n.pk for n in rows if n not in live]
    if stale:
        # Done, cancelled, unassigned, snoozed or re-dated since: nothing to say any more.
        Notification.objects.filter(pk__in=stale, claim_token=token).update(
            state=DeliveryState.SKIPPED
        )
    if not live:
        return 0
    from .emails import reminder_message  # templates and links

    try:
        reminder_message(recipient=recipient, notifications=live, connection=connection).send()
    except Exception as exc:  # any transport error: retry with backoff, then give up
        attempts = live[0].attempts + 1
        Notification.objects.filter(claim_token=token, state=DeliveryState.SENDING).update(
            **_failed_attempt(attempts=attempts, exc=exc, now=now, policy=policy)
        )
        _record(live, now=now, field="reminder_failed", error=f"{type(exc).__name__}: {exc}")
        report.failed += len(live)
        logger.warning("reminder email to %s failed (attempt %d): %s", recipient, attempts, exc)
        return 0
    # Together: a failure between the two would leave a sent reminder out of the
    # history for good; as one, it leaves the rows claimed, to be resent (the
    # documented at-least-once window) with their history.
    with transaction.atomic():
        Notification.objects.filter(claim_token=token, state=DeliveryState.SENDING).update(
            state=DeliveryState.SENT, sent_at=timezone.now(), attempts=live[0].attempts + 1
        )
        _record(live, now=now, field="reminder_sent")
    report.sent += len(live)
    report.emails += 1
    return len(live)


def _failed_attempt(*, attempts: int, exc: Exception, now: dt.datetime, policy: Policy) -> dict:
    """The fields of a delivery whose send failed: back off exponentially, with jitter, then give up."""
    failed = attempts >= policy.max_attempts
    delay = dt.timedelta(seconds=60 * 2 ** (attempts - 1) * random.uniform(1, 1.5))
    return {
        "state": DeliveryState.FAILED if failed else DeliveryState.PENDING,
        "attempts": attempts,
        "last_error": f"{type(exc).__name__}: {exc}"[:2000],
        "next_attempt_at": None if failed else now + delay,
    }


def _still_due(notification: Notification, *, now: dt.datetime, policy: Policy) -> bool:
    """Whether the sweep would still send this row: open, owned, same deadline, not snoozed."""
    item = notification.item
    if (
        item.status not in OPEN_STATUSES
        or item.owner is None
        or item.deadline != notification.deadline
    ):
        return False
    # The owner's day, as the sweep reads it: the server's date would hold back, for good,
    # a stage that falls on the day after a snooze in a time zone ahead of the server's.
    today = reminder_date(now=now, tz=person_time_zone(item.owner), policy=policy)
    return not (item.snoozed_until and today <= item.snoozed_until)


def _record(rows: Iterable[Notification], *, now: dt.datetime, field: str, error: str = "") -> None:
    """Reminders sent or failed appear in each item's history."""
    ActionItemChange.objects.bulk_create(
        [
            ActionItemChange(
                item_id=n.item_id,
                at=now,
                source=ChangeSource.REMINDER,
                actor_label="reminders",
                field=field,
                new_value={"stage": n.stage, "recipient": n.recipient},
                note=error,
            )
            for n in rows
        ]
    )


# --- Weekly manager digest -------------------------------------------------------


def manager_digest_recipients() -> list[str]:
    """TRACKER_MANAGER_DIGEST, and every active member of the managers group with an email."""
    from django.contrib.auth import get_user_model

    emails = {e.strip().lower() for e in settings.TRACKER_MANAGER_DIGEST if e.strip()}
    emails |= {
        e.lower()
        for e in get_user_model()
        .objects.filter(groups__name=settings.TRACKER_MANAGERS_GROUP, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    }
    return sorted(emails)


def manager_digest_context(*, today: dt.date) -> dict:
    from django.db.models import Count

    week_end = today + dt.timedelta(days=6 - today.weekday())
    open_items = ActionItem.objects.filter(status__in=OPEN_STATUSES)
    counts = {
        "open": Count("id"),
        "overdue": Count("id", filter=Q(deadline__lt=today)),
        "due_this_week": Count("id", filter=Q(deadline__gte=today, deadline__lte=week_end)),
    }
    by_owner = [
        {"owner": row["owner__email"], **{k: row[k] for k in counts}}
        for row in open_items.values("owner__email")
        .annotate(**counts)
        .order_by("-overdue", "owner__email")
    ]
    by_priority = list(open_items.values("priority").annotate(**counts).order_by("priority"))
    totals = open_items.aggregate(**counts)
    related = ("owner", "incident")
    return {
        "period_start": today - dt.timedelta(days=today.weekday()),
        "totals": totals,
        "by_owner": by_owner,
        "by_priority": by_priority,
        "unassigned": list(
            open_items.filter(owner__isnull=True)
            .select_related(*related)
            .order_by("deadline", "id")[:50]
        ),
        "oldest_overdue": list(
            open_items.filter(deadline__lt=today)
            .select_related(*related)
            .order_by("deadline", "id")[:10]
        ),
    }


def manager_digest_send(*, now: dt.datetime, policy: Policy | None = None) -> int:
    """Send this week's digest to each manager once; return the number sent."""
    from .emails import manager_digest_message
    from .models import ManagerDigest

    policy = policy or Policy.from_settings()
    today = timezone.localdate(now)
    period_start = today - dt.timedelta(days=today.weekday())
    ManagerDigest.objects.bulk_create(
        [
            ManagerDigest(recipient=r, period_start=period_start)
            for r in manager_digest_recipients()
        ],
        ignore_conflicts=True,
    )
    context = None
    sent = 0
    for digest in ManagerDigest.objects.filter(_claimable(now, policy), period_start=period_start):
        token = uuid.uuid4().hex
        if not ManagerDigest.objects.filter(_claimable(now, policy), pk=digest.pk).update(
            state=DeliveryState.SENDING, claim_token=token, claimed_at=timezone.now()
        ):
            continue
        context = context or manager_digest_context(today=today)
        try:
            manager_digest_message(recipient=digest.recipient, context=context).send()
        except Exception as exc:
            ManagerDigest.objects.filter(pk=digest.pk, claim_token=token).update(
                **_failed_attempt(attempts=digest.attempts + 1, exc=exc, now=now, policy=policy)
            )
            logger.warning("manager digest to %s failed: %s", digest.recipient, exc)
            continue
        ManagerDigest.objects.filter(pk=digest.pk, claim_token=token).update(
            state=DeliveryState.SENT, sent_at=timezone.now(), attempts=digest.attempts + 1
        )
        sent += 1
    return sent

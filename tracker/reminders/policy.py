"""The reminder policy: which stage an item is at on a day, and when its next one comes.

Each item has a sequence of stage points, in days relative to its deadline in
the owner's time zone (settings, see README "Reminders") —

    due_soon-7, due_soon-1, due_today, overdue+1, overdue+8, overdue+15, ...
    escalation+G, escalation+G+7, ...   (G: the priority's grace period)

A sweep sends only the *current* stage (the latest point reached), so an item
first seen three days before its deadline gets one "due soon" reminder, not a
backlog. Each item stores `next_reminder_on`, the date its next point is
reached, so a sweep reads only the items due now.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from ..deadlines import person_time_zone
from ..models import OPEN_STATUSES, ActionItem, ReminderStage


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


@dataclass(frozen=True)
class Stage:
    kind: str
    day: int  # relative to the deadline: -7, 0, +8 ...

    @property
    def key(self) -> str:
        if self.kind == ReminderStage.DUE_TODAY:
            return "due_today"
        return f"{self.kind}{self.day:+d}"


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


def next_point(*, day: int, priority: str, policy: Policy) -> int:
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
    day = next_point(day=(today - item.deadline).days, priority=item.priority, policy=policy)
    return item.deadline + dt.timedelta(days=day)


def escalation_contact(item: ActionItem, policy: Policy) -> str:
    """The owner's manager, else the incident's on-call escalation manager, else the fallback."""
    if item.owner is not None and item.owner.manager_email:
        return item.owner.manager_email.lower()
    if item.incident is not None and item.incident.escalation_manager_email:
        return item.incident.escalation_manager_email.lower()
    return (policy.escalation_email or "").lower()

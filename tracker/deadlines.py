"""What a deadline means for its owner: the owner's today, overdue, due today, due soon.

Each rule is defined here once, for one item in Python and for many in SQL, and
every surface (API field and filters, pages, admin, dashboard, metrics, digests,
calendar feed) uses it from here, so that they cannot disagree.

An item is judged on its owner's own calendar: their time zone, else TIME_ZONE
(also for items without an owner). An item due on the 3rd is overdue from the
owner's midnight between the 3rd and the 4th, wherever the server is.

- overdue: open (open, in progress, blocked) and the deadline is before the owner's today;
- due today: open and the deadline is the owner's today;
- due soon: open and the deadline is within the TRACKER_DUE_SOON_DAYS days
  that start with the owner's today (7: today and the six days after it), so
  due today is due soon too; overdue items are not due soon.

In SQL the owner's today cannot be computed portably (SQLite has no time
zones), so the conditions list the time zones by the date they are on at `now`:
every zone on the TIME_ZONE's date (and owners without a zone) in one branch,
the zones on each other date in theirs. Only zones not on TIME_ZONE's date are
named, so the condition stays short most of the day.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import zoneinfo
from collections import defaultdict

from django.conf import settings
from django.db.models import BooleanField, Case, Q, Value, When
from django.utils import timezone

from .models import OPEN_STATUSES, ActionItem, Person

logger = logging.getLogger(__name__)


def due_soon_days() -> int:
    """The length of the due-soon window in days, today included (TRACKER_DUE_SOON_DAYS)."""
    return settings.TRACKER_DUE_SOON_DAYS


def _due_soon_last(today: dt.date) -> dt.date:
    return today + dt.timedelta(days=due_soon_days() - 1)


def default_time_zone() -> dt.tzinfo:
    """TIME_ZONE: the calendar of owners who have not set one, and of unowned items."""
    return timezone.get_default_timezone()


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> dt.tzinfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def time_zone_named(name: str) -> dt.tzinfo:
    """The zone called `name`, else TIME_ZONE (blank or unknown names)."""
    zone = _zone(name) if name else None
    return zone if zone is not None else default_time_zone()


def person_time_zone(person: Person | None) -> dt.tzinfo:
    """The person's time zone, else TIME_ZONE (no person, none set, or unknown)."""
    if person is not None and person.time_zone:
        zone = _zone(person.time_zone)
        if zone is not None:
            return zone
        logger.warning("unknown time zone %r for %s", person.time_zone, person.email)
    return default_time_zone()


def owner_today(person: Person | None, *, now: dt.datetime | None = None) -> dt.date:
    """The date it is for `person` (their time zone, else TIME_ZONE) at `now`."""
    now = timezone.now() if now is None else now
    return now.astimezone(person_time_zone(person)).date()


def _item_owner(item: ActionItem) -> Person | None:
    return item.owner if item.owner_id else None


def item_owner_today(item: ActionItem, *, now: dt.datetime | None = None) -> dt.date:
    """Today on the calendar of the item's owner (TIME_ZONE for an unowned item)."""
    return owner_today(_item_owner(item), now=now)


def is_overdue(item: ActionItem, *, today: dt.date) -> bool:
    """Open and due before `today`, the owner's today (see item_owner_today)."""
    return item.status in OPEN_STATUSES and item.deadline is not None and item.deadline < today


def is_due_today(item: ActionItem, *, today: dt.date) -> bool:
    return item.status in OPEN_STATUSES and item.deadline == today


def is_due_soon(item: ActionItem, *, today: dt.date) -> bool:
    return (
        item.status in OPEN_STATUSES
        and item.deadline is not None
        and today <= item.deadline <= _due_soon_last(today)
    )


def item_is_overdue(item: ActionItem, *, now: dt.datetime | None = None) -> bool:
    """Whether the item is overdue on its owner's calendar at `now`."""
    return is_overdue(item, today=item_owner_today(item, now=now))


def days_until_due(item: ActionItem, *, today: dt.date) -> int | None:
    """Days from the owner's `today` to the deadline: negative once it has passed."""
    return None if item.deadline is None else (item.deadline - today).days


# --- The same rules for many items at once, as query conditions ---------------


@functools.lru_cache(maxsize=64)
def _zones_by_date(minute: dt.datetime, default_zone: str) -> tuple[dt.date, dict]:
    """TIME_ZONE's date at `minute`, and the other dates with the zones on each.

    Local dates change on whole minutes (every zone's offset is whole minutes),
    so one answer serves a minute.
    """
    default_date = minute.astimezone(time_zone_named(default_zone)).date()
    others: dict[dt.date, list[str]] = defaultdict(list)
    for name in sorted(zoneinfo.available_timezones()):
        zone = _zone(name)
        if zone is None:
            continue
        date = minute.astimezone(zone).date()
        if date != default_date:
            others[date].append(name)
    return default_date, {date: tuple(names) for date, names in others.items()}


def owner_dates(*, now: dt.datetime | None = None) -> tuple[dt.date, dict[dt.date, tuple]]:
    """TIME_ZONE's date at `now`, and {other date: the zones on it}."""
    now = timezone.now() if now is None else now
    minute = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    return _zones_by_date(minute, settings.TIME_ZONE)


def _on_owner_date(condition, *, now: dt.datetime | None, prefix: str) -> Q:
    """OR over the dates at `now` of: owner on that date & condition(that date).

    `condition(date)` gives a Q on the deadline for an owner whose today is `date`;
    `prefix` is the path from the queried model to the item ("" for items,
    "action_items__" for people or incidents).
    """
    default_date, others = owner_dates(now=now)
    zone_field = f"{prefix}owner__time_zone"
    q = condition(default_date)
    if others:
        elsewhere = [name for names in others.values() for name in names]
        q = ~Q(**{f"{zone_field}__in": elsewhere}) & q
        for date, names in others.items():
            q |= Q(**{f"{zone_field}__in": names}) & condition(date)
    return q


def _open(prefix: str) -> Q:
    return Q(**{f"{prefix}status__in": OPEN_STATUSES})


def deadline_passed_q(*, now: dt.datetime | None = None, prefix: str = "") -> Q:
    """Items (open or not) whose deadline is before their owner's date at `now`."""
    return _on_owner_date(
        lambda today: Q(**{f"{prefix}deadline__lt": today}), now=now, prefix=prefix
    )


def overdue_q(*, now: dt.datetime | None = None, prefix: str = "") -> Q:
    """Open items whose deadline is before their owner's today."""
    return _open(prefix) & deadline_passed_q(now=now, prefix=prefix)


def due_today_q(*, now: dt.datetime | None = None, prefix: str = "") -> Q:
    """Open items due on their owner's today."""

    def condition(today: dt.date) -> Q:
        return Q(**{f"{prefix}deadline": today})

    return _open(prefix) & _on_owner_date(condition, now=now, prefix=prefix)


def due_within_q(*, days: int, now: dt.datetime | None = None, prefix: str = "") -> Q:
    """Open items due from their owner's today to today + `days`, both included."""

    def condition(today: dt.date) -> Q:
        return Q(
            **{
                f"{prefix}deadline__gte": today,
                f"{prefix}deadline__lte": today + dt.timedelta(days=days),
            }
        )

    return _open(prefix) & _on_owner_date(condition, now=now, prefix=prefix)


def due_soon_q(*, now: dt.datetime | None = None, prefix: str = "") -> Q:
    """Open items in the due-soon window (TRACKER_DUE_SOON_DAYS) of their owner."""
    return due_within_q(days=due_soon_days() - 1, now=now, prefix=prefix)


def is_overdue_annotation(*, now: dt.datetime | None = None) -> Case:
    """`is_overdue` computed by the database, so that lists can sort on it."""
    # Case rather than the bare condition: a NULL deadline must give False, not NULL.
    return Case(
        When(overdue_q(now=now), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )

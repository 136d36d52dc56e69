"""Reading action items: overdue, due soon, counts per person.

The rules themselves (the owner's today, overdue, due soon) are in tracker.deadlines.

Each selector takes an optional `queryset` so that it can narrow a queryset
someone else built (the admin's changelist, an API filter) instead of starting
from every item.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, QuerySet

from . import deadlines
from .models import OPEN_STATUSES, ActionItem, Person


def _items(queryset: QuerySet[ActionItem] | None) -> QuerySet[ActionItem]:
    return ActionItem.objects.all() if queryset is None else queryset


def action_items_overdue(
    *, now: dt.datetime | None = None, queryset: QuerySet[ActionItem] | None = None
) -> QuerySet[ActionItem]:
    """Open (open, in progress, blocked) items due before their owner's today at `now`."""
    return _items(queryset).filter(deadlines.overdue_q(now=now))


def action_items_not_overdue(
    *, now: dt.datetime | None = None, queryset: QuerySet[ActionItem] | None = None
) -> QuerySet[ActionItem]:
    """Every item that `action_items_overdue` leaves out: closed, undated or not yet due."""
    return _items(queryset).exclude(deadlines.overdue_q(now=now))


def action_items_due_within(
    *, days: int, now: dt.datetime | None = None, queryset: QuerySet[ActionItem] | None = None
) -> QuerySet[ActionItem]:
    """Open items due from their owner's today to today + `days` inclusive; not overdue ones."""
    return _items(queryset).filter(deadlines.due_within_q(days=days, now=now))


def action_items_due_soon(
    *, now: dt.datetime | None = None, queryset: QuerySet[ActionItem] | None = None
) -> QuerySet[ActionItem]:
    """Open items in the due-soon window (TRACKER_DUE_SOON_DAYS) of their owner's calendar."""
    return _items(queryset).filter(deadlines.due_soon_q(now=now))


def action_items_with_overdue(
    *, now: dt.datetime | None = None, queryset: QuerySet[ActionItem] | None = None
) -> QuerySet[ActionItem]:
    """Items annotated with `is_overdue`, computed by the database so lists can sort on it."""
    return _items(queryset).annotate(is_overdue=deadlines.is_overdue_annotation(now=now))


def people_with_open_item_counts(
    *, queryset: QuerySet[Person] | None = None, overdue: bool = False
) -> QuerySet[Person]:
    """People annotated with `open_items`, the number of their open items, and with
    `overdue_items` (overdue on their own calendar) if `overdue`."""
    queryset = Person.objects.all() if queryset is None else queryset
    counts = {"open_items": Count("action_items", filter=Q(action_items__status__in=OPEN_STATUSES))}
    if overdue:
        counts["overdue_items"] = Count(
            "action_items", filter=deadlines.overdue_q(prefix="action_items__")
        )
    return queryset.annotate(**counts)

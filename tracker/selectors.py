"""Reading action items: what "overdue" and "due soon" mean, in one place.

Each selector takes an optional `queryset` so that it can narrow a queryset
someone else built (the admin's changelist, an API filter) instead of starting
from every item.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import BooleanField, Case, Count, Q, QuerySet, Value, When

from .models import OPEN_STATUSES, ActionItem, Person


def _items(queryset: QuerySet[ActionItem] | None) -> QuerySet[ActionItem]:
    return ActionItem.objects.all() if queryset is None else queryset


def _overdue_condition(*, today: dt.date) -> Q:
    # A closed item is never overdue, whatever its deadline; an item without a
    # deadline cannot be late.
    return Q(status__in=OPEN_STATUSES, deadline__lt=today)


def action_items_overdue(
    *, today: dt.date, queryset: QuerySet[ActionItem] | None = None
) -> QuerySet[ActionItem]:
    """Open (open, in progress, blocked) items whose deadline is before `today`."""
    return _items(queryset).filter(_overdue_condition(today=today))


def action_items_not_overdue(
    *, today: dt.date, queryset: QuerySet[ActionItem] | None = None
) -> QuerySet[ActionItem]:
    """Every item that `action_items_overdue` leaves out: closed, undated or not yet due."""
    return _items(queryset).exclude(_overdue_condition(today=today))


def action_items_due_within(
    *, today: dt.date, days: int, queryset: QuerySet[ActionItem] | None = None
) -> QuerySet[ActionItem]:
    """Open items due from `today` to `today + days` inclusive; overdue ones are not included."""
    return _items(queryset).filter(
        status__in=OPEN_STATUSES,
        deadline__gte=today,
        deadline__lte=today + dt.timedelta(days=days),
    )


def action_items_with_overdue(
    *, today: dt.date, queryset: QuerySet[ActionItem] | None = None
) -> QuerySet[ActionItem]:
    """Items annotated with `is_overdue`, computed by the database so lists can sort on it."""
    # Case rather than the bare condition: a NULL deadline must give False, not NULL.
    return _items(queryset).annotate(
        is_overdue=Case(
            When(_overdue_condition(today=today), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    )


def people_with_open_item_counts(*, queryset: QuerySet[Person] | None = None) -> QuerySet[Person]:
    """People annotated with `open_items`, the number of their open items."""
    queryset = Person.objects.all() if queryset is None else queryset
    return queryset.annotate(
        open_items=Count("action_items", filter=Q(action_items__status__in=OPEN_STATUSES))
    )

"""What the dashboard shows: figures aggregated by the database (charts: tracker.charts).

`dashboard_summary` reads everything the page needs in a fixed number of
queries (six), whatever the number of items: each figure is a `Count` (or an
average) with a filter, grouped by the database, never a loop over rows.
Overdue and due soon are tracker.deadlines' rules: on each owner's calendar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import deadlines
from .models import CLOSED_STATUSES, OPEN_STATUSES, ActionItem, Priority, Status
from .selectors import action_items_overdue

TREND_WEEKS = 12
DONE_RECENTLY_DAYS = 30
TOP_ROWS = 10


class _Median(Aggregate):
    """PostgreSQL's `percentile_cont(0.5)`: the median of a number or an interval."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"


# --- Figures ---------------------------------------------------------------------


@dataclass(frozen=True)
class WeekPoint:
    """Open and overdue items at one moment: the end of a week, or now for this week."""

    at: dt.datetime
    label: str
    open: int
    overdue: int


@dataclass(frozen=True)
class OwnerOverdue:
    owner_id: int | None  # None: items nobody owns
    email: str
    name: str
    overdue: int


@dataclass(frozen=True)
class GroupCounts:
    """Open and overdue items of one service or one incident severity."""

    label: str  # "" when the items have no incident, or the incident no value
    open: int
    overdue: int


@dataclass(frozen=True)
class PriorityFigures:
    priority: str
    label: str
    open: int
    overdue: int
    done: int
    cancelled: int
    total: int
    done_on_time: int
    done_with_deadline: int
    mean_days_to_done: float | None
    median_days_to_done: float | None  # None on databases without percentile_cont

    @property
    def completion_rate(self) -> int | None:
        """Done items, in per cent of the items that were not cancelled."""
        wanted = self.total - self.cancelled
        return round(100 * self.done / wanted) if wanted else None

    @property
    def on_time_rate(self) -> int | None:
        """Done items completed on or before their deadline, in per cent of done items with one."""
        if not self.done_with_deadline:
            return None
        return round(100 * self.done_on_time / self.done_with_deadline)


@dataclass(frozen=True)
class OverdueItem:
    item: ActionItem
    days_overdue: int


@dataclass(frozen=True)
class DashboardSummary:
    now: dt.datetime
    today: dt.date
    open: int
    overdue: int
    due_this_week: int
    done_last_30_days: int
    weeks: list[WeekPoint]
    overdue_by_owner: list[OwnerOverdue]
    by_priority: list[PriorityFigures]
    by_service: list[GroupCounts]
    by_severity: list[GroupCounts]
    oldest_overdue: list[OverdueItem]
    has_median: bool


def trend_moments(*, now: dt.datetime, weeks: int = TREND_WEEKS) -> list[tuple[dt.datetime, str]]:
    """The moments the trend samples, oldest first, each with its label.

    The end of each of the `weeks - 1` weeks before this one (Monday 00:00 in
    the project's time zone, labelled with the Sunday it ends), then `now`.
    """
    today = timezone.localdate(now)
    monday = today - dt.timedelta(days=today.weekday())
    moments = []
    for back in range(weeks - 2, -1, -1):
        end = monday - dt.timedelta(weeks=back)
        at = timezone.make_aware(dt.datetime.combine(end, dt.time.min))
        moments.append((at, (end - dt.timedelta(days=1)).strftime("%-d %b")))
    moments.append((now, "now"))
    return moments


def _open_at(at: dt.datetime) -> Q:
    # Created before the moment and not closed before it. The moment an item
    # was cancelled is not kept in a column: its last change stands in for it.
    return Q(created_at__lt=at) & (Q(closed_at__isnull=True) | Q(closed_at__gte=at))


def _counts_and_trend(
    *, now: dt.datetime, moments: list[tuple[dt.datetime, str]]
) -> tuple[dict[str, int], list[WeekPoint]]:
    """The headline counts and the open/overdue trend, in one aggregate query."""
    aggregates = {
        "open": Count("id", filter=Q(status__in=OPEN_STATUSES)),
        "overdue": Count("id", filter=deadlines.overdue_q(now=now)),
        "due_this_week": Count("id", filter=deadlines.due_soon_q(now=now)),
        "done_recently": Count(
            "id",
            filter=Q(
                status=Status.DONE,
                completed_at__gte=now - dt.timedelta(days=DONE_RECENTLY_DAYS),
                completed_at__lte=now,
            ),
        ),
    }
    for index, (at, _) in enumerate(moments):
        # Overdue at the moment: open then, and due before the owner's date then.
        aggregates[f"open_{index}"] = Count("id", filter=_open_at(at))
        aggregates[f"overdue_{index}"] = Count(
            "id", filter=_open_at(at) & deadlines.deadline_passed_q(now=at)
        )
    closed_at = Case(
        When(status__in=CLOSED_STATUSES, then=Coalesce("completed_at", "updated_at")),
        default=None,
        output_field=DateTimeField(),
    )
    # Items closed before the first moment count nowhere (the first moment is
    # more than DONE_RECENTLY_DAYS ago): the database need not weigh them.
    row = (
        ActionItem.objects.alias(closed_at=closed_at)
        .filter(Q(closed_at__isnull=True) | Q(closed_at__gte=moments[0][0]))
        .aggregate(**aggregates)
    )
    weeks = [
        WeekPoint(at=at, label=label, open=row[f"open_{i}"], overdue=row[f"overdue_{i}"])
        for i, (at, label) in enumerate(moments)
    ]
    return row, weeks


def _overdue_by_owner(*, now: dt.datetime, limit: int) -> list[OwnerOverdue]:
    rows = (
        action_items_overdue(now=now)
        .values("owner_id", "owner__email", "owner__name")
        .annotate(overdue=Count("id"))
        .order_by("-overdue", "owner__email")[:limit]
    )
    return [
        OwnerOverdue(
            owner_id=r["owner_id"],
            email=r["owner__email"] or "",
            name=r["owner__name"] or "",
            overdue=r["overdue"],
        )
        for r in rows
    ]


def _open_overdue_by(*, field: str, now: dt.datetime, limit: int | None) -> list[GroupCounts]:
    rows = (
        ActionItem.objects.filter(status__in=OPEN_STATUSES)
        .values(field)
        .annotate(open=Count("id"), overdue=Count("id", filter=deadlines.overdue_q(now=now)))
        .order_by("-overdue", "-open", field)
    )
    if limit is not None:
        rows = rows[:limit]
    return [GroupCounts(label=r[field] or "", open=r["open"], overdue=r["overdue"]) for r in rows]


def _by_priority(*, now: dt.datetime) -> list[PriorityFigures]:
    done = Q(status=Status.DONE, completed_at__isnull=False)
    time_to_done = ExpressionWrapper(
        F("completed_at") - F("created_at"), output_field=DurationField()
    )
    annotations = {
        "open": Count("id", filter=Q(status__in=OPEN_STATUSES)),
        "overdue": Count("id", filter=deadlines.overdue_q(now=now)),
        "done": Count("id", filter=done),
        "cancelled": Count("id", filter=Q(status=Status.CANCELLED)),
        "total": Count("id"),
        "done_with_deadline": Count("id", filter=done & Q(deadline__isnull=False)),
        "done_on_time": Count("id", filter=done & Q(completed_at__date__lte=F("deadline"))),
        "mean": Avg(time_to_done, filter=done),
    }
    if connection.vendor == "postgresql":
        annotations["median"] = _Median(time_to_done, filter=done, output_field=DurationField())
    rows = {
        r["priority"]: r
        for r in ActionItem.objects.values("priority").annotate(**annotations).order_by()
    }

    def days(value: dt.timedelta | None) -> float | None:
        return None if value is None else round(value.total_seconds() / 86400, 1)

    figures = []
    for priority in Priority:
        r = rows.get(priority.value, {})
        figures.append(
            PriorityFigures(
                priority=priority.value,
                label=priority.label,
                open=r.get("open", 0),
                overdue=r.get("overdue", 0),
                done=r.get("done", 0),
                cancelled=r.get("cancelled", 0),
                total=r.get("total", 0),
                done_on_time=r.get("done_on_time", 0),
                done_with_deadline=r.get("done_with_deadline", 0),
                mean_days_to_done=days(r.get("mean")),
                median_days_to_done=days(r.get("median")),
            )
        )
    return figures


def _by_severity(*, now: dt.datetime) -> list[GroupCounts]:
    counted = {
        g.label: g for g in _open_overdue_by(field="incident__severity", now=now, limit=None)
    }
    # The severities the incident model knows, through the item's foreign key (tracker
    # does not import incidents).
    severity = ActionItem._meta.get_field("incident").related_model._meta.get_field("severity")
    known = [counted.pop(value, GroupCounts(value, 0, 0)) for value, _ in severity.choices]
    # Severities the model does not know (and items without an incident) go last.
    return known + sorted(counted.values(), key=lambda g: g.label)


def _oldest_overdue(*, now: dt.datetime, limit: int) -> list[OverdueItem]:
    items = (
        action_items_overdue(now=now)
        .select_related("owner", "incident")
        .order_by("deadline", "id")[:limit]
    )
    return [
        OverdueItem(
            item=item,
            days_overdue=-deadlines.days_until_due(
                item, today=deadlines.item_owner_today(item, now=now)
            ),
        )
        for item in items
    ]


def dashboard_summary(*, now: dt.datetime, top: int = TOP_ROWS) -> DashboardSummary:
    """Every figure of the dashboard at `now`, in six queries whatever the number of items.

    Overdue means open (open, in progress, blocked) with a deadline before the
    owner's today (tracker.deadlines), as everywhere else. Lists of owners,
    services and oldest items are cut to `top` rows.
    """
    today = timezone.localdate(now)
    counts, weeks = _counts_and_trend(now=now, moments=trend_moments(now=now))
    return DashboardSummary(
        now=now,
        today=today,
        open=counts["open"],
        overdue=counts["overdue"],
        due_this_week=counts["due_this_week"],
        done_last_30_days=counts["done_recently"],
        weeks=weeks,
        overdue_by_owner=_overdue_by_owner(now=now, limit=top),
        by_priority=_by_priority(now=now),
        by_service=_open_overdue_by(field="incident__service", now=now, limit=top),
        by_severity=_by_severity(now=now),
        oldest_overdue=_oldest_overdue(now=now, limit=top),
        has_median=connection.vendor == "postgresql",
    )

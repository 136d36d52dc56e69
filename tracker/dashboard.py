"""What the dashboard shows: figures aggregated by the database, and charts drawn from them.

`dashboard_summary` reads everything the page needs in a fixed number of
queries (six), whatever the number of items: each figure is a `Count` (or an
average) with a filter, grouped by the database, never a loop over rows.

The charts are plain SVG geometry computed here and drawn by the template
(`templates/tracker/_dashboard_*.html`), so they need no JavaScript and no
inline styles. pygal was tried first: even with `js=[]` it embeds a
`<script>` with its configuration and a `<style>` element in every chart,
which the page's content security policy forbids.
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

from .models import CLOSED_STATUSES, OPEN_STATUSES, ActionItem, Priority, Status
from .selectors import action_items_overdue

TREND_WEEKS = 12
DUE_SOON_DAYS = 6  # "due this week": today and the six days after, as `?due_within_days=6`
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
    *, now: dt.datetime, today: dt.date, moments: list[tuple[dt.datetime, str]]
) -> tuple[dict[str, int], list[WeekPoint]]:
    """The headline counts and the open/overdue trend, in one aggregate query."""
    aggregates = {
        "open": Count("id", filter=Q(status__in=OPEN_STATUSES)),
        "overdue": Count("id", filter=Q(status__in=OPEN_STATUSES, deadline__lt=today)),
        "due_this_week": Count(
            "id",
            filter=Q(
                status__in=OPEN_STATUSES,
                deadline__gte=today,
                deadline__lte=today + dt.timedelta(days=DUE_SOON_DAYS),
            ),
        ),
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
        # The day the moment falls on: an item due that day is not overdue yet.
        day = timezone.localdate(at)
        aggregates[f"open_{index}"] = Count("id", filter=_open_at(at))
        aggregates[f"overdue_{index}"] = Count("id", filter=_open_at(at) & Q(deadline__lt=day))
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


def _overdue_by_owner(*, today: dt.date, limit: int) -> list[OwnerOverdue]:
    rows = (
        action_items_overdue(today=today)
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


def _open_overdue_by(*, field: str, today: dt.date, limit: int | None) -> list[GroupCounts]:
    rows = (
        ActionItem.objects.filter(status__in=OPEN_STATUSES)
        .values(field)
        .annotate(open=Count("id"), overdue=Count("id", filter=Q(deadline__lt=today)))
        .order_by("-overdue", "-open", field)
    )
    if limit is not None:
        rows = rows[:limit]
    return [GroupCounts(label=r[field] or "", open=r["open"], overdue=r["overdue"]) for r in rows]


def _by_priority(*, today: dt.date) -> list[PriorityFigures]:
    done = Q(status=Status.DONE, completed_at__isnull=False)
    time_to_done = ExpressionWrapper(
        F("completed_at") - F("created_at"), output_field=DurationField()
    )
    annotations = {
        "open": Count("id", filter=Q(status__in=OPEN_STATUSES)),
        "overdue": Count("id", filter=Q(status__in=OPEN_STATUSES, deadline__lt=today)),
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


def _by_severity(*, today: dt.date) -> list[GroupCounts]:
    counted = {
        g.label: g for g in _open_overdue_by(field="incident__severity", today=today, limit=None)
    }
    # The severities the incident model knows, through the item's foreign key (tracker
    # does not import incidents).
    severity = ActionItem._meta.get_field("incident").related_model._meta.get_field("severity")
    known = [counted.pop(value, GroupCounts(value, 0, 0)) for value, _ in severity.choices]
    # Severities the model does not know (and items without an incident) go last.
    return known + sorted(counted.values(), key=lambda g: g.label)


def _oldest_overdue(*, today: dt.date, limit: int) -> list[OverdueItem]:
    items = (
        action_items_overdue(today=today)
        .select_related("owner", "incident")
        .order_by("deadline", "id")[:limit]
    )
    return [OverdueItem(item=item, days_overdue=(today - item.deadline).days) for item in items]


def dashboard_summary(*, now: dt.datetime, top: int = TOP_ROWS) -> DashboardSummary:
    """Every figure of the dashboard at `now`, in six queries whatever the number of items.

    Overdue means open (open, in progress, blocked) with a deadline before
    today in the project's time zone, as everywhere else. Lists of owners,
    services and oldest items are cut to `top` rows.
    """
    today = timezone.localdate(now)
    counts, weeks = _counts_and_trend(now=now, today=today, moments=trend_moments(now=now))
    return DashboardSummary(
        now=now,
        today=today,
        open=counts["open"],
        overdue=counts["overdue"],
        due_this_week=counts["due_this_week"],
        done_last_30_days=counts["done_recently"],
        weeks=weeks,
        overdue_by_owner=_overdue_by_owner(today=today, limit=top),
        by_priority=_by_priority(today=today),
        by_service=_open_overdue_by(field="incident__service", today=today, limit=top),
        by_severity=_by_severity(today=today),
        oldest_overdue=_oldest_overdue(today=today, limit=top),
        has_median=connection.vendor == "postgresql",
    )


# --- Charts ----------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    title: str  # the point's tooltip, a native SVG <title>

    MARKER = 7

    @property
    def corner_x(self) -> float:
        """Left edge of a square marker centred on the point."""
        return self.x - self.MARKER / 2

    @property
    def corner_y(self) -> float:
        return self.y - self.MARKER / 2


@dataclass(frozen=True)
class LineSeries:
    name: str
    css_class: str
    points: list[ChartPoint]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class XLabel:
    x: float
    text: str


@dataclass(frozen=True)
class LineChart:
    id: str
    title: str
    description: str
    width: int
    height: int
    left: int
    right: int  # x of the plot's right edge
    top: int
    bottom: int  # y of the plot's baseline
    y_ticks: list[Tick]
    x_labels: list[XLabel]
    series: list[LineSeries]


@dataclass(frozen=True)
class Bar:
    x: int
    y: float
    width: float
    height: float
    css_class: str
    value_text: str
    value_x: float
    title: str

    @property
    def value_y(self) -> float:
        """Baseline of the value's text, at the foot of the bar."""
        return self.y + self.height


@dataclass(frozen=True)
class BarRow:
    label: str
    label_y: float
    bars: list[Bar]


@dataclass(frozen=True)
class BarChart:
    id: str
    title: str
    description: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x_ticks: list[Tick]  # `y` holds the tick's x position: the bars run horizontally
    rows: list[BarRow]
    legend: list[tuple[str, str]]  # (css class, name)
    empty: bool


def nice_ceiling(value: float) -> tuple[int, int]:
    """A round axis maximum at or above `value`, and the step between its four ticks."""
    if value <= 4:
        return 4, 1
    raw = value / 4
    magnitude = 10 ** (len(str(int(raw))) - 1)
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    step = int(step) if step == int(step) else int(step) + 1
    return step * 4, step


def trend_chart(*, weeks: list[WeekPoint]) -> LineChart:
    """Open and overdue items at the end of each week, as two lines."""
    width, height, left, right, top, bottom = 480, 240, 44, 464, 12, 200
    top_value, step = nice_ceiling(max((w.open for w in weeks), default=0))
    span = max(len(weeks) - 1, 1)

    def x(index: int) -> float:
        return left + index * (right - left) / span

    def y(value: int) -> float:
        return bottom - value * (bottom - top) / top_value

    def when(week: WeekPoint) -> str:
        return "Now" if week.label == "now" else f"Week to {week.label}"

    series = [
        LineSeries(
            name=name,
            css_class=css_class,
            points=[
                ChartPoint(x(i), y(getattr(w, attr)), f"{when(w)}: {getattr(w, attr)} {attr}")
                for i, w in enumerate(weeks)
            ],
        )
        for name, css_class, attr in (
            ("Open", "series-open", "open"),
            ("Overdue", "series-overdue", "overdue"),
        )
    ]
    # Every third label, counted back from now, so that the labels stay legible on a phone.
    last = len(weeks) - 1
    x_labels = [XLabel(x(i), w.label) for i, w in enumerate(weeks) if (last - i) % 3 == 0]
    first, latest = weeks[0], weeks[-1]
    return LineChart(
        id="trend",
        title=f"Open and overdue items over the last {len(weeks)} weeks",
        description=(
            f"At the end of the week to {first.label}: {first.open} open, "
            f"{first.overdue} overdue. Now: {latest.open} open, {latest.overdue} overdue."
        ),
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        y_ticks=[Tick(v, y(v)) for v in range(0, top_value + 1, step)],
        x_labels=x_labels,
        series=series,
    )


def time_to_done_chart(*, priorities: list[PriorityFigures], has_median: bool) -> BarChart:
    """Days from creation to done by priority: median and mean bars, side by side."""
    measures = [("bar-mean", "Mean", "mean_days_to_done")]
    if has_median:
        measures.insert(0, ("bar-median", "Median", "median_days_to_done"))
    row_height, bar_height, gap = 40, 14 if has_median else 20, 2
    left, right, top = 44, 420, 8
    bottom = top + row_height * len(priorities)
    width, height = 480, bottom + 24
    values = [getattr(p, attr) or 0 for p in priorities for _, _, attr in measures]
    top_value, step = nice_ceiling(max(values, default=0))

    def length(days: float) -> float:
        return days * (right - left) / top_value

    rows = []
    for index, figures in enumerate(priorities):
        row_top = top + index * row_height + (row_height - len(measures) * (bar_height + gap)) / 2
        bars = []
        for position, (css_class, name, attr) in enumerate(measures):
            days = getattr(figures, attr)
            text = "n/a" if days is None else f"{days:g} d"
            bar_y = row_top + position * (bar_height + gap)
            bars.append(
                Bar(
                    x=left,
                    y=bar_y,
                    width=length(days or 0),
                    height=bar_height,
                    css_class=css_class,
                    value_text=text,
                    value_x=left + length(days or 0) + 4,
                    title=f"{figures.priority} {name.lower()}: "
                    + ("no item done yet" if days is None else f"{days:g} days"),
                )
            )
        rows.append(
            BarRow(
                label=figures.priority, label_y=top + index * row_height + row_height / 2, bars=bars
            )
        )

    def described(figures: PriorityFigures) -> str:
        values = [getattr(figures, attr) for _, _, attr in measures]
        return f"{figures.priority} " + " / ".join(
            "none" if v is None else f"{v:g}" for v in values
        )

    return BarChart(
        id="time-to-done",
        title="Days from creation to done, by priority",
        description=(
            f"{' and '.join(name for _, name, _ in measures)} days per priority: "
            + "; ".join(described(p) for p in priorities)
            + "."
        ),
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        x_ticks=[Tick(v, left + length(v)) for v in range(0, top_value + 1, step)],
        rows=rows,
        legend=[(css_class, name) for css_class, name, _ in measures],
        empty=not any(p.done for p in priorities),
    )

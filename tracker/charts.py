"""The dashboard's charts: plain SVG geometry computed from its figures.

Drawn by the templates (`templates/tracker/_dashboard_*.html`), so they need no
JavaScript and no inline styles. pygal was tried first: even with `js=[]` it
embeds a `<script>` with its configuration and a `<style>` element in every
chart, which the page's content security policy forbids.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dashboard import PriorityFigures, WeekPoint


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

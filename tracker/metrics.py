"""The tracker's own Prometheus gauges, computed from the database at scrape time.

Five queries per scrape whatever the number of rows: one aggregate per table
(items by priority, notifications, ticket links, ticket polls, the reminder sweep).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import deadlines
from .models import (
    OPEN_STATUSES,
    ActionItem,
    DeliveryState,
    Notification,
    Priority,
    ReminderSweep,
    TicketLink,
    TicketPoll,
    TicketSyncState,
)

logger = logging.getLogger(__name__)

# Reported even when zero, so a series never vanishes and an alert on it never goes silent.
NOTIFICATION_STATES = (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.FAILED)
TICKET_STATES = (TicketSyncState.PENDING, TicketSyncState.FAILING)


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "open": GaugeMetricFamily(
            "tracker_action_items_open",
            "Open action items (open, in progress, blocked), by priority.",
            labels=["priority"],
        ),
        "overdue": GaugeMetricFamily(
            "tracker_action_items_overdue",
            "Open action items due before their owner's today, by priority.",
            labels=["priority"],
        ),
        "due_this_week": GaugeMetricFamily(
            "tracker_action_items_due_this_week",
            "Open action items due within TRACKER_DUE_SOON_DAYS days from their owner's today,"
            " by priority.",
            labels=["priority"],
        ),
        "notifications": GaugeMetricFamily(
            "tracker_notifications",
            "Reminder notifications waiting to be sent, being sent, or given up on, by state.",
            labels=["state"],
        ),
        "ticket_links": GaugeMetricFamily(
            "tracker_ticket_links",
            "Ticket links not in sync with their ticket (pending, failing), by state.",
            labels=["state"],
        ),
        "sweep_age": GaugeMetricFamily(
            "tracker_reminder_sweep_last_success_age_seconds",
            "Seconds since the last reminder sweep finished (absent before the first).",
        ),
        "poll_age": GaugeMetricFamily(
            "tracker_ticket_poll_last_success_age_seconds",
            "Seconds since the last successful poll of each ticket system.",
            labels=["system"],
        ),
        "up": GaugeMetricFamily(
            "tracker_collector_up",
            "1 when the tracker's gauges could be read from the database, else 0.",
        ),
    }


def _age(now: dt.datetime, then: dt.datetime) -> float:
    return max(0.0, (now - then).total_seconds())


class TrackerCollector(Collector):
    """Reads the tracker's state at each scrape: five aggregate queries."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Lets the registry know the names without touching the database.
        yield from _families().values()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = _families()
        try:
            self._fill(families, now=timezone.now())
        except DatabaseError as exc:
            logger.warning("tracker metrics unavailable: %s", exc)
            families["up"].add_metric([], 0)
            yield families["up"]
            return
        families["up"].add_metric([], 1)
        yield from families.values()

    def _fill(self, families: dict[str, GaugeMetricFamily], *, now: dt.datetime) -> None:
        by_priority = {
            row["priority"]: row
            for row in ActionItem.objects.filter(status__in=OPEN_STATUSES)
            .values("priority")
            .annotate(
                open=Count("id"),
                overdue=Count("id", filter=deadlines.overdue_q(now=now)),
                due_this_week=Count("id", filter=deadlines.due_soon_q(now=now)),
            )
            .order_by()
        }
        for priority in Priority.values:
            row = by_priority.get(priority, {})
            for key in ("open", "overdue", "due_this_week"):
                families[key].add_metric([priority], row.get(key, 0))

        notifications = Notification.objects.aggregate(
            **{state: Count("id", filter=Q(state=state)) for state in NOTIFICATION_STATES}
        )
        for state in NOTIFICATION_STATES:
            families["notifications"].add_metric([state], notifications[state])

        links = TicketLink.objects.aggregate(
            **{state: Count("id", filter=Q(state=state)) for state in TICKET_STATES}
        )
        for state in TICKET_STATES:
            families["ticket_links"].add_metric([state], links[state])

        for system, last_success_at in TicketPoll.objects.filter(
            last_success_at__isnull=False
        ).values_list("system", "last_success_at"):
            families["poll_age"].add_metric([system], _age(now, last_success_at))

        sweep = ReminderSweep.objects.order_by("-last_success_at").first()
        if sweep is not None:
            families["sweep_age"].add_metric([], _age(now, sweep.last_success_at))

"""Reading incidents."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from tracker.models import OPEN_STATUSES

from .models import Incident


def incidents_with_item_counts(*, queryset: QuerySet[Incident] | None = None) -> QuerySet[Incident]:
    """Incidents annotated with `items_total` and `items_open`, in the same query."""
    queryset = Incident.objects.all() if queryset is None else queryset
    return queryset.annotate(
        items_total=Count("action_items"),
        items_open=Count("action_items", filter=Q(action_items__status__in=OPEN_STATUSES)),
    )

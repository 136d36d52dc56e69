"""Queue items for pushing to the ticket system, from inside the services' transaction.

Called by tracker.services whenever items are created or changed, with the
fields that changed: the outbox alone decides which changes need a push. It
only writes TicketLink rows (latest state wins: a link is pending or not,
however many changes were made) and, once the transaction commits, enqueues the
push; the request that made the change never waits on the ticket system.
If the task is lost (broker down), the beat task `tracker.push_pending_tickets`
finds the pending links anyway.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from django.conf import settings
from django.utils import timezone

from ..enqueue import enqueue_on_commit
from ..models import ActionItem, ChangeSource, TicketLink, TicketSyncState
from .base import SYNCED_FIELDS


def items_created(*, items: Iterable[ActionItem]) -> None:
    """Give each new item a pending ticket link, when tickets are made automatically."""
    if not (settings.TICKETS_BACKEND and settings.TICKETS_AUTO_CREATE):
        return
    now = timezone.now()
    links = [
        TicketLink(item=item, system=settings.TICKETS_BACKEND, next_attempt_at=now)
        for item in items
    ]
    if links:
        TicketLink.objects.bulk_create(links, ignore_conflicts=True)
        enqueue_push([link.item_id for link in links])


def items_changed(*, changes: Mapping[int, Collection[str]], source: str) -> None:
    """Mark pending the links of items whose synced fields changed. `changes`
    names the fields that changed on each item (by id); `source` is the change's
    ChangeSource: what was read back from the ticket itself needs no push."""
    if not settings.TICKETS_BACKEND or source == ChangeSource.TICKET:
        return
    ids = [pk for pk, fields in changes.items() if not set(fields).isdisjoint(SYNCED_FIELDS)]
    if not ids:
        return
    marked = TicketLink.objects.filter(item_id__in=ids, system=settings.TICKETS_BACKEND).update(
        state=TicketSyncState.PENDING, next_attempt_at=timezone.now()
    )
    if marked:
        enqueue_push(ids)


def enqueue_push(item_ids: list[int]) -> None:
    """Push these items once the current transaction commits (at once outside one)."""
    # The import of a large document changes many items at once: one task per batch.
    enqueue_on_commit("tracker.push_tickets", sorted(item_ids))

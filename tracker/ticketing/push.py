"""Bring tickets up to date with their items: the tracker's side of the sync.

A worker claims an item's TicketLink with a conditional update (one pusher per
item at a time), sends what differs from what the ticket is known to say, and
records the outcome (`ticket_push`). Creating is always preceded by a lookup of
the item's marker, so a create that timed out after the remote side acted, or a
worker that died before saving the key, never leads to a second ticket.
Failures are retried with backoff; nothing is lost while the ticket system is
down, because the link stays pending and the item's latest state is what gets
pushed. Also here: which links are due, links for items that have none, and
the admin's resync and unlink.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..links import item_url
from ..models import ActionItem, TicketLink, TicketSyncState
from .base import (
    SYNCED_FIELDS,
    RemoteTicket,
    TicketBackend,
    TicketChangeRefused,
    TicketError,
    TicketFields,
)
from .common import ERROR_MAX_CHARS, sync_backend
from .outbox import enqueue_push

logger = logging.getLogger(__name__)


def ticket_marker(item_id: int) -> str:
    """The item's stable identity in the ticket system, e.g. "followup-123"."""
    return f"{settings.TICKETS_MARKER_PREFIX}-{item_id}"


def ticket_fields(item: ActionItem) -> TicketFields:
    """What the item's ticket should say now."""
    url = item_url(item)
    lines = [item.description.strip()] if item.description.strip() else []
    incident = item.incident
    if incident is not None:
        lines.append(f"Follow-up of {incident.external_id} ({incident.severity}): {incident.title}")
        if incident.service:
            lines.append(f"Service: {incident.service}")
    lines.append(f"Tracked in the follow-up tracker: {url}")
    return TicketFields(
        marker=ticket_marker(item.pk),
        title=item.title,
        description="\n\n".join(lines),
        priority=item.priority,
        status=item.status,
        deadline=item.deadline,
        owner=item.owner.email.lower() if item.owner_id else None,
        item_url=url,
    )


@dataclass
class PushReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0
    errors: dict[int, str] = field(default_factory=dict)

    def add(self, outcome: str, item_id: int, error: str = "") -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if error:
            self.errors[item_id] = error


def ticket_push(
    *, item_id: int, backend: TicketBackend | None = None, now: dt.datetime | None = None
) -> tuple[str, str]:
    """Bring one item's ticket up to date; returns (outcome, error message).

    Outcomes: created, updated, unchanged, failed, skipped (no link, or another
    worker holds it).
    """
    backend = sync_backend(backend)
    now = now or timezone.now()
    claimed = (
        TicketLink.objects.filter(item_id=item_id, system=backend.name)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + dt.timedelta(seconds=settings.TICKETS_CLAIM_SECONDS))
    )
    if claimed != 1:
        return "skipped", ""
    link = TicketLink.objects.select_related("item__owner", "item__incident").get(item_id=item_id)
    item = link.item
    version = item.version
    fields = ticket_fields(item)
    desired = fields.as_values()
    remote: RemoteTicket | None = None
    try:
        if not link.key:
            remote = backend.find(fields.marker)
            if remote is None:
                remote = backend.create(fields)
                outcome = "created"
            else:
                # Made by an earlier attempt whose answer was lost: bring it fully up to date.
                _save_key(link, remote)
                remote = backend.update(remote.key, fields, set(SYNCED_FIELDS)) or remote
                outcome = "updated"
            _save_key(link, remote)
        else:
            changed = {f for f in SYNCED_FIELDS if link.pushed_values.get(f) != desired[f]}
            if changed:
                remote = backend.update(link.key, fields, changed)
                if remote is not None:
                    _save_key(link, remote)  # moved (a transferred GitHub issue)
                outcome = "updated"
            else:
                outcome = "unchanged"
    except TicketError as error:
        if isinstance(error, TicketChangeRefused):
            # The ticket exists and holds part of the change: keep its key now.
            _save_key(link, error.ticket)
        _push_failed(link, error, version=version, now=now)
        logger.warning(
            "ticket push failed",
            extra={"item": item_id, "system": backend.name, "error": error.message},
        )
        return "failed", error.message
    except Exception as error:
        logger.exception("ticket push crashed", extra={"item": item_id, "system": backend.name})
        _push_failed(link, TicketError(f"unexpected error: {error!r}"), version=version, now=now)
        return "failed", f"unexpected error: {error!r}"
    _push_succeeded(link, desired=desired, version=version, now=now)
    return outcome, ""


def _save_key(link: TicketLink, remote: RemoteTicket) -> None:
    """Record the ticket's key at once, in its own write: if the worker dies now,
    the next attempt updates this ticket instead of looking for it again."""
    if link.key == remote.key:
        return
    link.key, link.url = remote.key, remote.url or link.url
    TicketLink.objects.filter(pk=link.pk).update(key=link.key, url=link.url)


def _push_succeeded(
    link: TicketLink,
    *,
    desired: dict[str, Any],
    version: int,
    now: dt.datetime,
) -> None:
    with transaction.atomic():
        link = TicketLink.objects.select_for_update().get(pk=link.pk)
        current = (
            ActionItem.objects.filter(pk=link.item_id).values_list("version", flat=True).first()
        )
        # Changed while we pushed (or read back meanwhile): push again.
        again = current != version and link.state == TicketSyncState.PENDING
        link.pushed_values = {**link.pushed_values, **desired}
        link.synced_version = version
        link.state = TicketSyncState.PENDING if again else TicketSyncState.SYNCED
        link.next_attempt_at = now if again else None
        link.attempts = 0
        link.last_error = ""
        link.claimed_until = None
        link.last_synced_at = now
        # remote_updated_at is left to the pulls: it must be a time read from
        # the ticket system, and some answers to a push carry none (Jira's create).
        link.save()
        if again:
            enqueue_push([link.item_id])


def _push_failed(link: TicketLink, error: TicketError, *, version: int, now: dt.datetime) -> None:
    attempts = link.attempts + 1
    changed_meanwhile = (
        ActionItem.objects.filter(pk=link.item_id).values_list("version", flat=True).first()
        != version
    )
    if error.permanent and not changed_meanwhile:
        # Waits for a change to the item (which may fix what was refused) or a resync.
        next_attempt = None
    elif error.permanent:
        # The item changed during this push: the change may be the fix, try it now.
        next_attempt = now
    else:
        delay = error.retry_after or min(
            settings.TICKETS_RETRY_MAX_SECONDS,
            settings.TICKETS_RETRY_BASE_SECONDS * 2 ** (attempts - 1),
        )
        # Jitter, so that links that failed together do not all come back together.
        next_attempt = now + dt.timedelta(seconds=delay * random.uniform(1.0, 1.25))
    failed = {
        "state": TicketSyncState.FAILING,
        "attempts": attempts,
        "last_error": error.message[:ERROR_MAX_CHARS],
        "next_attempt_at": next_attempt,
        "claimed_until": None,
        "updated_at": now,
    }
    with transaction.atomic():
        if isinstance(error, TicketChangeRefused):
            # The ticket took part of the change and kept its old value for the
            # rest: remember what it says, or the next pull would take the kept
            # value for a change made remotely and revert the item.
            known = (
                TicketLink.objects.select_for_update()
                .filter(pk=link.pk)
                .values_list("pushed_values", flat=True)
                .first()
            )
            failed["pushed_values"] = {**(known or {}), **error.known_values}
        TicketLink.objects.filter(pk=link.pk).update(**failed)


def tickets_due(*, now: dt.datetime, system: str) -> list[int]:
    """Items whose link is pending or failing and due for an attempt."""
    return list(
        TicketLink.objects.filter(system=system, next_attempt_at__lte=now)
        .exclude(state=TicketSyncState.SYNCED)
        .order_by("next_attempt_at", "item_id")
        .values_list("item_id", flat=True)
    )


def tickets_push(
    *, item_ids: Iterable[int], backend: TicketBackend | None = None, progress=None
) -> PushReport:
    """Push each item in turn; `progress` is called after each."""
    backend = sync_backend(backend)
    report = PushReport()
    for item_id in item_ids:
        outcome, error = ticket_push(item_id=item_id, backend=backend)
        report.add(outcome, item_id, error)
        if progress:
            progress()
    return report


def tickets_link_missing(*, system: str, item_ids: Iterable[int] | None = None) -> int:
    """Give items without a link one (pending), e.g. items older than the backend."""
    items = ActionItem.objects.filter(ticket_link__isnull=True)
    if item_ids is not None:
        items = items.filter(pk__in=list(item_ids))
    now = timezone.now()
    links = [
        TicketLink(item_id=pk, system=system, next_attempt_at=now)
        for pk in items.values_list("pk", flat=True)
    ]
    TicketLink.objects.bulk_create(links, ignore_conflicts=True, batch_size=1000)
    return len(links)


def tickets_resync(*, links: Iterable[TicketLink]) -> int:
    """Push these items again in full (admin action): forget what was pushed."""
    ids = [link.pk for link in links]
    count = TicketLink.objects.filter(pk__in=ids).update(
        state=TicketSyncState.PENDING,
        pushed_values={},
        next_attempt_at=timezone.now(),
        attempts=0,
        last_error="",
        claimed_until=None,
    )
    with transaction.atomic():
        enqueue_push(list(TicketLink.objects.filter(pk__in=ids).values_list("item_id", flat=True)))
    return count


def ticket_resync_item(*, item: ActionItem, system: str) -> None:
    """Push one item again in full, giving it a ticket link first if it has none."""
    with transaction.atomic():
        tickets_link_missing(system=system, item_ids=[item.pk])
        tickets_resync(links=TicketLink.objects.filter(item=item))


def tickets_unlink(*, links: Iterable[TicketLink]) -> int:
    """Forget the tickets of these items (the tickets themselves are left alone)."""
    return TicketLink.objects.filter(pk__in=[link.pk for link in links]).delete()[0]

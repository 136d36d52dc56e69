"""Take back what changed in the ticket system: the remote side of the sync.

Tickets changed remotely (`tickets_poll`, every few minutes; `tickets_pull`, for
the keys an inbound webhook named) are read back and their status, assignee and
due date applied through the item services, with the ticket system as the
actor. A remote value equal to what the tracker last pushed is its own echo and
is ignored (no sync loops); when both sides changed a field, the more recent
change wins. `ticket_link_existing` attaches an item to a ticket that already
exists, reading it first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Min
from django.utils import timezone

from .. import services
from ..models import (
    ActionItem,
    ActionItemChange,
    ChangeSource,
    TicketLink,
    TicketPoll,
    TicketSyncState,
)
from .base import PULLED_FIELDS, RemoteTicket, TicketBackend, TicketError
from .common import ERROR_MAX_CHARS, sync_backend
from .outbox import enqueue_push


def _item_values(item: ActionItem) -> dict[str, Any]:
    return {
        "status": item.status,
        "deadline": item.deadline.isoformat() if item.deadline else None,
        "owner": item.owner.email.lower() if item.owner_id else None,
    }


def _last_local_change(item: ActionItem, name: str) -> dt.datetime | None:
    return (
        ActionItemChange.objects.filter(item=item, field=name)
        .exclude(source=ChangeSource.TICKET)
        .aggregate(at=Max("at"))["at"]
    )


def ticket_apply_remote(
    *,
    link: TicketLink,
    remote: RemoteTicket,
    backend: TicketBackend | None = None,
    now: dt.datetime | None = None,
) -> list[str]:
    """Apply a ticket's status, assignee and due date to its item; returns the
    fields changed on the item."""
    backend = sync_backend(backend)
    now = now or timezone.now()

    def same(name: str, a: Any, b: Any) -> bool:
        """Whether the ticket saying `b` agrees with the tracker saying `a`, once
        folded the way the ticket system folds it (fewer statuses, owners it
        has no user for)."""
        if a == b:
            return True
        if name == "status" and a is not None and b is not None:
            return backend.status_read_back(a) == backend.status_read_back(b)
        if name == "owner":
            return backend.owner_read_back(a) == b
        return False

    with transaction.atomic():
        link = (
            TicketLink.objects.select_for_update(of=("self",))
            .select_related("item__owner")
            .get(pk=link.pk)
        )
        item = link.item
        pulled = {k: v for k, v in remote.pulled_values().items() if k in PULLED_FIELDS}
        current = _item_values(item)
        known = dict(link.pushed_values)
        changes: dict[str, Any] = {}
        local_wins = False
        caught_up = False
        for name, value in pulled.items():
            if name in known and same(name, known[name], value):
                continue  # the ticket says what we last told it (our own echo)
            if same(name, current[name], value):
                known[name] = current[name]  # both sides agree already
                # Someone made remotely the change a failed push could not.
                caught_up = True
                continue
            # The ticket changed remotely; if the item changed here too, the later change wins.
            known[name] = value
            pushed = link.pushed_values
            if name in pushed and pushed[name] != current[name]:
                local_at = _last_local_change(item, name)
                if local_at is not None and local_at > remote.updated_at:
                    local_wins = True
                    continue
            changes[name] = value
        if changes:
            try:
                # A savepoint: a change the item refuses leaves the link's transaction usable.
                with transaction.atomic():
                    services.action_item_update(
                        item=item,
                        actor=services.Actor(
                            source=ChangeSource.TICKET, label=f"{link.system} {link.key}"
                        ),
                        note=f"Changed in {link.system} {link.key}",
                        **_as_item_changes(changes),
                    )
            except ValidationError as exc:
                # The ticket says something the tracker cannot hold (a due date in the
                # year 9999, an assignee's email longer than any address): shown on
                # the link, nothing taken, asked again by the next poll.
                link.state = TicketSyncState.FAILING
                link.last_error = (
                    f"{link.system} {link.key} holds what the item cannot take: "
                    + "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                )[:ERROR_MAX_CHARS]
                link.save(update_fields=["state", "last_error"])
                return []
        link.pushed_values = known
        if remote.updated_at and (
            link.remote_updated_at is None or remote.updated_at > link.remote_updated_at
        ):
            link.remote_updated_at = remote.updated_at
        if remote.key != link.key:
            # Moved (a GitHub issue transferred to another repository): its new address.
            link.key, link.url = remote.key, remote.url or link.url
        elif remote.url and not link.url:
            link.url = remote.url
        # A link that failed for good (a change the ticket system refused) is
        # pushed again once the two sides agree on a field, by a change made
        # there or taken from there: that push finds out whether its error holds.
        refused_settled = (
            (caught_up or bool(changes))
            and link.state == TicketSyncState.FAILING
            and link.next_attempt_at is None
        )
        if local_wins or refused_settled:
            link.state = TicketSyncState.PENDING
            link.next_attempt_at = now
            enqueue_push([item.pk])
        link.save()
    return sorted(changes)


def _as_item_changes(changes: dict[str, Any]) -> dict[str, Any]:
    converted = dict(changes)
    if "deadline" in converted:
        value = converted["deadline"]
        converted["deadline"] = dt.date.fromisoformat(value) if value else None
    if "owner" in converted:
        email = converted["owner"]
        converted["owner"] = services.person_get_or_create(email=email) if email else None
    return converted


@dataclass
class PullReport:
    seen: int = 0
    changed: int = 0
    error: str = ""


def tickets_pull(
    *, keys: Iterable[str], backend: TicketBackend | None = None, now: dt.datetime | None = None
) -> PullReport:
    """Read the named tickets and apply them (webhook deliveries, `sync_tickets --item`)."""
    backend = sync_backend(backend)
    report = PullReport()
    links = {
        link.key: link
        for link in TicketLink.objects.filter(system=backend.name, key__in=list(keys))
    }
    for key, link in links.items():
        try:
            remote = backend.fetch(key)
        except TicketError as error:
            report.error = error.message
            continue
        report.seen += 1
        if ticket_apply_remote(link=link, remote=remote, backend=backend, now=now):
            report.changed += 1
    return report


def tickets_poll(
    *, backend: TicketBackend | None = None, now: dt.datetime | None = None
) -> PullReport:
    """Read every ticket changed since the last successful poll (minus an overlap)."""
    backend = sync_backend(backend)
    now = now or timezone.now()
    report = PullReport()
    if not backend.can_pull:
        return report
    poll, _ = TicketPoll.objects.get_or_create(system=backend.name)
    start = poll.last_success_at
    if start is None:
        # The first poll reads back to the oldest link (at least a day).
        first = TicketLink.objects.filter(system=backend.name).aggregate(at=Min("created_at"))["at"]
        start = min(first or now, now - dt.timedelta(days=1))
    since = start - dt.timedelta(seconds=settings.TICKETS_POLL_OVERLAP_SECONDS)
    seen: set[str] = set()
    try:
        for remote in backend.changed_since(since):
            if remote.key in seen:
                continue
            seen.add(remote.key)
            link = TicketLink.objects.filter(system=backend.name, key=remote.key).first()
            if link is None:
                continue
            if link.remote_updated_at is not None and remote.updated_at < link.remote_updated_at:
                continue  # read in an earlier, overlapping poll (equal times are re-read: cheap, and
                # timestamps with a resolution of a second may hide a change made just after ours)
            report.seen += 1
            if ticket_apply_remote(link=link, remote=remote, backend=backend, now=now):
                report.changed += 1
    except TicketError as error:
        report.error = error.message
        TicketPoll.objects.filter(pk=poll.pk).update(
            last_attempt_at=now, last_error=error.message[:ERROR_MAX_CHARS]
        )
        return report
    TicketPoll.objects.filter(pk=poll.pk).update(
        last_attempt_at=now, last_success_at=now, last_error=""
    )
    return report


def ticket_link_existing(
    *, item: ActionItem, reference: str, backend: TicketBackend | None = None
) -> TicketLink:
    """Attach `item` to an existing ticket (key or URL) instead of creating one;
    the ticket is read, its status, assignee and due date applied, and the item's
    other fields pushed to it. ValueError for a reference the backend cannot read,
    TicketError if the ticket cannot be read."""
    backend = sync_backend(backend)
    key = backend.parse_reference(reference)
    remote = backend.fetch(key)
    with transaction.atomic():
        try:
            link, _ = TicketLink.objects.update_or_create(
                item=item,
                defaults={
                    "system": backend.name,
                    "key": remote.key,
                    "url": remote.url,
                    "state": TicketSyncState.PENDING,
                    # Nothing known pushed: the ticket's values are news, the rest is pushed.
                    "pushed_values": {},
                    "next_attempt_at": timezone.now(),
                    "attempts": 0,
                    "last_error": "",
                },
            )
        except IntegrityError:
            raise ValueError(
                f"{backend.name} {remote.key} is already linked to another item"
            ) from None
    ticket_apply_remote(link=link, remote=remote, backend=backend)
    enqueue_push([item.pk])
    return link

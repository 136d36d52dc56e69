"""Keep items and their tickets in agreement, in both directions.

Push (`ticket_push`): a worker claims an item's TicketLink with a conditional
update (one pusher per item at a time), sends what differs from what the ticket
is known to say, and records the outcome. Creating is always preceded by a
lookup of the item's marker, so a create that timed out after the remote side
acted, or a worker that died before saving the key, never leads to a second
ticket. Failures are retried with backoff; nothing is lost while the ticket
system is down, because the link stays pending and the item's latest state is
what gets pushed.

Pull (`tickets_poll`, `tickets_pull`): tickets changed remotely are read back
and their status, assignee and due date applied through the item services, with
the ticket system as the actor. A remote value equal to what the tracker last
pushed is its own echo and is ignored (no sync loops); when both sides changed a
field, the more recent change wins.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from .. import services
from ..enqueue import enqueue_on_commit
from ..links import item_url
from ..models import (
    ActionItem,
    ActionItemChange,
    ChangeSource,
    TicketLink,
    TicketPoll,
    TicketSyncState,
    TicketWebhookDelivery,
)
from . import get_backend
from .base import (
    PULLED_FIELDS,
    SYNCED_FIELDS,
    RemoteTicket,
    TicketBackend,
    TicketError,
    TicketFields,
)
from .outbox import enqueue_push

logger = logging.getLogger(__name__)

ERROR_MAX_CHARS = 1000


class SyncDisabled(Exception):
    """Ticket sync is off (TICKETS_BACKEND is empty)."""


def _backend(backend: TicketBackend | None) -> TicketBackend:
    backend = backend or get_backend()
    if backend is None:
        raise SyncDisabled("ticket sync is off: TICKETS_BACKEND is not set")
    return backend


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


# --- Push ---------------------------------------------------------------------


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
    backend = _backend(backend)
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
                outcome = "updated"
            else:
                outcome = "unchanged"
    except TicketError as error:
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
    TicketLink.objects.filter(pk=link.pk).update(
        state=TicketSyncState.FAILING,
        attempts=attempts,
        last_error=error.message[:ERROR_MAX_CHARS],
        next_attempt_at=next_attempt,
        claimed_until=None,
        updated_at=now,
    )


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
    backend = _backend(backend)
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


# --- Pull ---------------------------------------------------------------------


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
    backend = _backend(backend)
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
        for name, value in pulled.items():
            if name in known and same(name, known[name], value):
                continue  # the ticket says what we last told it (our own echo)
            if same(name, current[name], value):
                known[name] = current[name]  # both sides agree already
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
            services.action_item_update(
                item=item,
                actor=services.Actor(source=ChangeSource.TICKET, label=f"{link.system} {link.key}"),
                note=f"Changed in {link.system} {link.key}",
                **_as_item_changes(changes),
            )
        link.pushed_values = known
        if remote.updated_at and (
            link.remote_updated_at is None or remote.updated_at > link.remote_updated_at
        ):
            link.remote_updated_at = remote.updated_at
        if remote.url and not link.url:
            link.url = remote.url
        if local_wins:
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
    backend = _backend(backend)
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
    backend = _backend(backend)
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


# --- Operations -------------------------------------------------------------------


def ticket_link_existing(
    *, item: ActionItem, reference: str, backend: TicketBackend | None = None
) -> TicketLink:
    """Attach `item` to an existing ticket (key or URL) instead of creating one;
    the ticket is read, its status, assignee and due date applied, and the item's
    other fields pushed to it. ValueError for a reference the backend cannot read,
    TicketError if the ticket cannot be read."""
    backend = _backend(backend)
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


# --- Inbound webhooks ------------------------------------------------------------


@dataclass(frozen=True)
class WebhookOutcome:
    status: int
    message: str
    keys: list[str] = field(default_factory=list)


def webhook_receive(
    *, system: str, headers: Mapping[str, str], body: bytes, backend: TicketBackend | None = None
) -> WebhookOutcome:
    """Check a delivery's signature on the raw body, then record it once.

    The tickets it names are read by a task after this returns (the sender
    expects an answer within seconds); a redelivery is acknowledged and dropped.
    """
    backend = backend or get_backend()
    if backend is None or backend.name != system:
        return WebhookOutcome(404, f"no {system} ticket sync is configured")
    if not backend.webhook_verify(headers=headers, body=body):
        return WebhookOutcome(401, "invalid or missing signature")
    try:
        delivery = backend.webhook_parse(headers=headers, body=body)
    except ValueError as error:
        return WebhookOutcome(400, f"unreadable delivery: {error}")
    with transaction.atomic():
        _, created = TicketWebhookDelivery.objects.get_or_create(
            system=system, delivery_id=delivery.delivery_id[:200], defaults={"keys": delivery.keys}
        )
        if not created:
            return WebhookOutcome(200, "duplicate delivery, ignored")
        if delivery.keys:
            enqueue_on_commit("tracker.pull_tickets", list(delivery.keys))
    return WebhookOutcome(202, "accepted", list(delivery.keys))

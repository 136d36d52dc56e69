"""Inbound webhooks: a ticket system says which of its tickets changed.

The delivery's signature is checked on the raw body and the delivery recorded
once; the tickets it names are read back by a task (`tracker.pull_tickets`,
see tracker.ticketing.pull) after the sender has had its answer.

A delivery is a duplicate if its id was seen, or if the same body was accepted
within TICKETS_WEBHOOK_REPLAY_WINDOW_SECONDS: the delivery id travels in a header
outside the signature, so whoever captured a signed delivery could send it again
under a new id. The database keeps that promise (a unique body digest per system),
so two copies racing in are told apart too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..enqueue import enqueue_on_commit
from ..models import TicketWebhookDelivery
from . import get_backend
from .base import TicketBackend


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
    digest = hashlib.sha256(body).hexdigest()
    delivery_id = delivery.delivery_id[:200]
    try:
        with transaction.atomic():
            _forget_old_body(system=system, digest=digest)
            seen = TicketWebhookDelivery.objects.filter(system=system).filter(
                Q(delivery_id=delivery_id) | Q(body_sha256=digest)
            )
            if seen.exists():
                return WebhookOutcome(200, "duplicate delivery, ignored")
            TicketWebhookDelivery.objects.create(
                system=system, delivery_id=delivery_id, body_sha256=digest, keys=delivery.keys
            )
            if delivery.keys:
                enqueue_on_commit("tracker.pull_tickets", list(delivery.keys))
    except IntegrityError:
        # The same delivery (by id or by body) arrived at the same moment.
        return WebhookOutcome(200, "duplicate delivery, ignored")
    return WebhookOutcome(202, "accepted", list(delivery.keys))


def _forget_old_body(*, system: str, digest: str) -> None:
    """A body accepted longer ago than the replay window may be accepted again:
    its earlier record stops standing in the way (its id still counts)."""
    window = dt.timedelta(seconds=settings.TICKETS_WEBHOOK_REPLAY_WINDOW_SECONDS)
    TicketWebhookDelivery.objects.filter(
        system=system, body_sha256=digest, received_at__lt=timezone.now() - window
    ).update(body_sha256="")

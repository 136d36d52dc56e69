"""Inbound webhooks: a ticket system says which of its tickets changed.

The delivery's signature is checked on the raw body and the delivery recorded
once; the tickets it names are read back by a task (`tracker.pull_tickets`,
see tracker.ticketing.pull) after the sender has had its answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import transaction

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
    with transaction.atomic():
        _, created = TicketWebhookDelivery.objects.get_or_create(
            system=system, delivery_id=delivery.delivery_id[:200], defaults={"keys": delivery.keys}
        )
        if not created:
            return WebhookOutcome(200, "duplicate delivery, ignored")
        if delivery.keys:
            enqueue_on_commit("tracker.pull_tickets", list(delivery.keys))
    return WebhookOutcome(202, "accepted", list(delivery.keys))

"""An outbound webhook: every item change POSTed, signed, to a URL of your own.

For ticket systems the tracker has no backend for: a small receiver turns the
deliveries into tickets. (Webhooks that ticket systems send to the tracker are
tracker.ticketing.inbound's.) Configuration: TICKETS_WEBHOOK_URL and
TICKETS_WEBHOOK_SECRET; the secret is required, unsigned deliveries are refused.

Each delivery is a JSON document, serialised once (compact, sorted keys):

    {"event": "item.created" | "item.updated",
     "marker": "followup-123",            # the item's stable identity
     "key": "followup-123",               # item.updated only: the ticket's key here
     "item": {"title", "description", "priority", "status", "deadline",
              "owner", "item_url"},
     "changed": ["status", ...],          # every synced field for item.created
     "sent_at": "2025-01-31T12:00:00Z"}

with the headers `X-Tracker-Event`, `X-Tracker-Delivery` (a UUID per delivery,
the same when the HTTP client re-sends it), `Idempotency-Key`
("<marker>:<sha256 of the item values>": the same values give the same key, so
a receiver can drop a delivery it has already applied, e.g. one the sync sent
again because the first answer was lost) and `X-Tracker-Signature-256`, the
HMAC-SHA256 of the exact body bytes with the secret. A receiver checks it on
the raw body, before parsing it:

    import hashlib, hmac

    def verified(secret: bytes, body: bytes, header: str) -> bool:
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, header)

The ticket's key is the marker, unless the receiver answers JSON with a "key";
its URL is empty unless the answer has a "url". Nothing can be read back
(`can_pull` is False): `find` returns None, so a create whose answer was lost is
sent again and the receiver de-duplicates it by its Idempotency-Key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from .base import (
    SYNCED_FIELDS,
    RemoteTicket,
    TicketBackend,
    TicketConfigError,
    TicketError,
    TicketFields,
)
from .http import HttpClient


class WebhookBackend(TicketBackend):
    name = "webhook"
    can_pull = False

    @classmethod
    def config_from_settings(cls, settings: Any) -> dict[str, Any]:
        return {"url": settings.TICKETS_WEBHOOK_URL, "secret": settings.TICKETS_WEBHOOK_SECRET}

    @classmethod
    def config_problems(cls, config: Mapping[str, Any]) -> list[str]:
        problems = []
        url = str(config.get("url") or "")
        if not url:
            problems.append("TICKETS_WEBHOOK_URL is not set.")
        elif not url.startswith(("https://", "http://")):
            problems.append("TICKETS_WEBHOOK_URL must start with https:// (or http://).")
        if not config.get("secret"):
            problems.append(
                "TICKETS_WEBHOOK_SECRET (or TICKETS_WEBHOOK_SECRET_FILE) is not set: "
                "unsigned deliveries are refused."
            )
        return problems

    @classmethod
    def build(cls, config: Mapping[str, Any], **client_options: Any) -> WebhookBackend:
        client = HttpClient(
            name=cls.name,
            base_url=config["url"],
            headers={"Accept": "application/json"},
            **client_options,
        )
        return cls(config=config, client=client)

    # --- Push ---------------------------------------------------------------

    def find(self, marker: str) -> RemoteTicket | None:
        # Nothing to look up: the receiver drops a repeated create by its Idempotency-Key.
        return None

    def create(self, fields: TicketFields) -> RemoteTicket:
        return self._deliver("item.created", fields, set(SYNCED_FIELDS), key=None)

    def update(self, key: str, fields: TicketFields, changed: set[str]) -> RemoteTicket | None:
        return self._deliver("item.updated", fields, changed, key=key)

    # --- Pull ---------------------------------------------------------------

    def fetch(self, key: str) -> RemoteTicket:
        raise TicketError("the webhook backend cannot read tickets back", permanent=True)

    def changed_since(self, since: dt.datetime) -> Iterator[RemoteTicket]:
        raise TicketError("the webhook backend cannot read tickets back", permanent=True)

    def parse_reference(self, reference: str) -> str:
        key = reference.strip()
        if not key:
            raise ValueError("an empty ticket reference")
        return key

    # --- Delivering ------------------------------------------------------------

    def _deliver(
        self, event: str, fields: TicketFields, changed: set[str], *, key: str | None
    ) -> RemoteTicket:
        secret = self.config.get("secret")
        if not secret:
            raise TicketConfigError(
                "TICKETS_WEBHOOK_SECRET is not set: unsigned deliveries are refused"
            )
        now = dt.datetime.now(dt.UTC)
        item = {**fields.as_values(), "item_url": fields.item_url}
        document: dict[str, Any] = {
            "event": event,
            "marker": fields.marker,
            "item": item,
            "changed": sorted(changed),
            "sent_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if key is not None:
            document["key"] = key
        # Signed as sent: the receiver verifies these very bytes.
        body = _canonical(document)
        signature = hmac.new(str(secret).encode(), body, hashlib.sha256).hexdigest()
        response = self.client.post(
            # The configured URL as is: the client's base URL drops a query string.
            self.config["url"],
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Tracker-Event": event,
                "X-Tracker-Delivery": str(uuid.uuid4()),
                "X-Tracker-Signature-256": f"sha256={signature}",
                "Idempotency-Key": idempotency_key(fields),
            },
            # The receiver drops a repeat by its Idempotency-Key: safe to resend after a 5xx.
            idempotent=True,
        )
        answer = _answer(response)
        return RemoteTicket(
            key=str(answer.get("key") or key or fields.marker),
            url=str(answer.get("url") or ""),
            updated_at=now,
            # Nothing here is the receiver's word on the item: never taken back.
            owner_known=False,
            raw=answer,
        )


def idempotency_key(fields: TicketFields) -> str:
    """`<marker>:<hash of the item values>`: equal for a delivery sent again with
    the same values, different once any value changes."""
    values = {**fields.as_values(), "item_url": fields.item_url}
    return f"{fields.marker}:{hashlib.sha256(_canonical(values)).hexdigest()[:32]}"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _answer(response: requests.Response) -> dict[str, Any]:
    """The receiver's JSON answer, or {} when it sent none (any 2xx will do)."""
    if not response.content.strip():
        return {}
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}

"""The outbound webhook backend against a real HTTP server on the loopback interface."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from typing import Any

import pytest
from pytest_httpserver import HTTPServer as HttpServer
from werkzeug import Request

from tracker.ticketing.base import SYNCED_FIELDS, TicketConfigError, TicketError, TicketFields
from tracker.ticketing.webhook_backend import WebhookBackend

SECRET = "receiver-shared-secret"
PATH = "/hooks/tracker"


def make_fields(**overrides: Any) -> TicketFields:
    values: dict[str, Any] = {
        "marker": "followup-7",
        "title": "Add a replica to the orders database",
        "description": "The primary had no failover (ü).",
        "priority": "P2",
        "status": "open",
        "deadline": dt.date(2025, 3, 1),
        "owner": "ana@example.com",
        "item_url": "https://tracker.example.com/items/7",
    }
    values.update(overrides)
    return TicketFields(**values)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_backend(httpserver: HttpServer, sleeps: list[float], **config: Any) -> WebhookBackend:
    return WebhookBackend.build(
        {"url": httpserver.url_for(PATH) + "?source=tracker", "secret": SECRET, **config},
        allow_local=True,
        sleep=sleeps.append,
        rate_per_second=0,
        max_retries=2,
        timeout=5,
    )


@pytest.fixture
def backend(httpserver: HttpServer, sleeps: list[float]) -> WebhookBackend:
    return make_backend(httpserver, sleeps)


def received(httpserver: HttpServer) -> list[Request]:
    return [request for request, _ in httpserver.log]


def test_it_posts_a_signed_document_of_the_item(httpserver, backend):
    httpserver.expect_request(PATH, method="POST", query_string="source=tracker").respond_with_data(
        "", status=204
    )

    remote = backend.create(make_fields())

    (request,) = received(httpserver)
    body = request.get_data()
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert request.headers["X-Tracker-Signature-256"] == f"sha256={expected}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Tracker-Event"] == "item.created"
    assert uuid.UUID(request.headers["X-Tracker-Delivery"]).version == 4
    document = json.loads(body)
    # Compact and sorted: the bytes a receiver verifies are reproducible.
    assert (
        body
        == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    sent_at = document.pop("sent_at")
    assert dt.datetime.fromisoformat(sent_at.replace("Z", "+00:00")).tzinfo is not None
    assert document == {
        "event": "item.created",
        "marker": "followup-7",
        "item": {
            "title": "Add a replica to the orders database",
            "description": "The primary had no failover (ü).",
            "priority": "P2",
            "status": "open",
            "deadline": "2025-03-01",
            "owner": "ana@example.com",
            "item_url": "https://tracker.example.com/items/7",
        },
        "changed": sorted(SYNCED_FIELDS),
    }
    assert request.headers["Idempotency-Key"].startswith("followup-7:")
    assert (remote.key, remote.url) == ("followup-7", "")


def test_it_sends_an_update_with_the_changed_fields_and_the_key(httpserver, backend):
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=204)

    remote = backend.update("followup-7", make_fields(status="done"), {"status", "owner"})

    (request,) = received(httpserver)
    document = request.get_json()
    assert request.headers["X-Tracker-Event"] == "item.updated"
    assert (document["event"], document["key"]) == ("item.updated", "followup-7")
    assert document["changed"] == ["owner", "status"]
    assert document["item"]["status"] == "done"
    assert remote is not None and remote.key == "followup-7"


def test_it_takes_the_key_and_url_the_receiver_answers(httpserver, backend):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"key": "OPS-9", "url": "https://tickets.example.com/OPS-9"}, status=201
    )

    remote = backend.create(make_fields())

    assert (remote.key, remote.url) == ("OPS-9", "https://tickets.example.com/OPS-9")
    assert not remote.owner_known


def test_it_keeps_the_idempotency_key_for_the_same_values_only(httpserver, backend):
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=204)

    backend.create(make_fields())
    backend.create(make_fields())
    backend.update("followup-7", make_fields(deadline=None), {"deadline"})

    first, again, changed = received(httpserver)
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"]
    assert changed.headers["Idempotency-Key"] != first.headers["Idempotency-Key"]
    assert first.headers["X-Tracker-Delivery"] != again.headers["X-Tracker-Delivery"]


def test_it_sends_the_same_delivery_again_after_a_503(httpserver, backend, sleeps):
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json({"url": "u"})

    remote = backend.create(make_fields())

    first, second = received(httpserver)
    assert second.get_data() == first.get_data()
    for name in ("X-Tracker-Delivery", "X-Tracker-Signature-256", "Idempotency-Key"):
        assert second.headers[name] == first.headers[name]
    assert len(sleeps) == 1
    assert remote.url == "u"
    httpserver.check_assertions()


def test_it_sends_the_same_delivery_again_after_a_500(httpserver, backend, sleeps):
    # The receiver drops a repeat by its Idempotency-Key, so a 500 is retried at once.
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_data("oops", status=500)
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_data("", status=200)

    backend.create(make_fields())

    first, second = received(httpserver)
    assert second.get_data() == first.get_data()
    assert second.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]
    assert len(sleeps) == 1
    httpserver.check_assertions()


def test_it_fails_permanently_when_the_receiver_refuses(httpserver, backend):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"message": "bad signature"}, status=401
    )

    with pytest.raises(TicketError) as raised:
        backend.create(make_fields())

    assert raised.value.permanent


def test_it_refuses_to_send_unsigned(httpserver, sleeps):
    backend = make_backend(httpserver, sleeps, secret="")

    with pytest.raises(TicketConfigError):
        backend.create(make_fields())

    assert received(httpserver) == []


def test_it_reports_a_missing_secret_and_url():
    problems = WebhookBackend.config_problems({"url": "", "secret": ""})

    assert problems == [
        "TICKETS_WEBHOOK_URL is not set.",
        "TICKETS_WEBHOOK_SECRET (or TICKETS_WEBHOOK_SECRET_FILE) is not set: "
        "unsigned deliveries are refused.",
    ]
    assert WebhookBackend.config_problems({"url": "ftp://x", "secret": "s"}) == [
        "TICKETS_WEBHOOK_URL must start with https:// (or http://)."
    ]
    assert WebhookBackend.config_problems({"url": "https://x.example.com/h", "secret": "s"}) == []


def test_it_reads_its_settings(settings):
    settings.TICKETS_WEBHOOK_URL = "https://x.example.com/h"
    settings.TICKETS_WEBHOOK_SECRET = "s"

    assert WebhookBackend.config_from_settings(settings) == {
        "url": "https://x.example.com/h",
        "secret": "s",
    }


def test_it_cannot_read_tickets_back(backend):
    assert not backend.can_pull
    assert backend.find("followup-7") is None
    with pytest.raises(TicketError) as raised:
        backend.fetch("followup-7")
    assert raised.value.permanent
    with pytest.raises(TicketError) as raised:
        list(backend.changed_since(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
    assert raised.value.permanent


def test_it_takes_a_reference_as_the_key(backend):
    assert backend.parse_reference("  OPS-9 ") == "OPS-9"
    with pytest.raises(ValueError):
        backend.parse_reference("  ")

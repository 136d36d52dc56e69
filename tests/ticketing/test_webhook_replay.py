"""A signed delivery sent again is a duplicate, whatever delivery id it carries.

The delivery id travels in a header outside the signature: whoever captured one
signed delivery could otherwise replay it under fresh ids. Through the real
endpoint, with GitHub's signature scheme.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
import time_machine
from django.db import IntegrityError

from tests import webhooks
from tracker.models import TicketWebhookDelivery

pytestmark = pytest.mark.django_db

SECRET = "replay-test-secret"
URL = "/api/v1/webhooks/github/"


@pytest.fixture(autouse=True)
def github(settings):
    yield from webhooks.github_webhooks(settings, secret=SECRET)


@pytest.fixture
def enqueued(monkeypatch):
    """The ticket keys handed to the pull task, without running it."""
    keys: list[list[str]] = []
    monkeypatch.setattr(
        "tracker.ticketing.inbound.enqueue_on_commit", lambda name, k: keys.append(k)
    )
    return keys


def send(client, body: bytes, delivery_id: str):
    headers = {
        "X-Hub-Signature-256": webhooks.signature(body, secret=SECRET),
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": delivery_id,
    }
    return client.post(URL, body, content_type="application/json", headers=headers)


BODY = json.dumps(
    {"action": "closed", "issue": {"number": 7}, "repository": {"full_name": "acme/ops"}}
).encode()


def test_it_drops_a_replayed_body_under_a_new_delivery_id(client, enqueued):
    first = send(client, BODY, "delivery-1")
    replay = send(client, BODY, "delivery-2-forged")

    assert first.status_code == 202
    assert replay.status_code == 200
    assert "duplicate" in replay.json()["detail"]
    assert enqueued == [["7"]]
    assert TicketWebhookDelivery.objects.count() == 1


def test_it_still_drops_a_redelivery_with_the_same_id(client, enqueued):
    send(client, BODY, "delivery-1")
    other_body = BODY.replace(b'"closed"', b'"reopened"')

    assert send(client, other_body, "delivery-1").status_code == 200
    assert enqueued == [["7"]]


def test_it_accepts_different_bodies(client, enqueued):
    send(client, BODY, "delivery-1")
    other_body = BODY.replace(b'"closed"', b'"reopened"')

    assert send(client, other_body, "delivery-2").status_code == 202
    assert enqueued == [["7"], ["7"]]


def test_it_accepts_the_same_body_again_after_the_replay_window(client, enqueued, settings):
    settings.TICKETS_WEBHOOK_REPLAY_WINDOW_SECONDS = 3600
    start = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        assert send(client, BODY, "delivery-1").status_code == 202
        traveller.shift(dt.timedelta(minutes=59))
        assert send(client, BODY, "delivery-2").status_code == 200
        traveller.shift(dt.timedelta(minutes=2))
        assert send(client, BODY, "delivery-3").status_code == 202

    assert enqueued == [["7"], ["7"]]


def test_the_database_refuses_two_records_of_one_body():
    digest = hashlib.sha256(BODY).hexdigest()
    TicketWebhookDelivery.objects.create(system="github", delivery_id="a", body_sha256=digest)

    with pytest.raises(IntegrityError):
        TicketWebhookDelivery.objects.create(system="github", delivery_id="b", body_sha256=digest)

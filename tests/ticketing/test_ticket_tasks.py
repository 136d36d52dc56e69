"""The ticket tasks, and a push end to end: a change to an item reaches a real webhook
receiver on the loopback, signed, once the change commits."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest
from werkzeug import Request

from incidents.models import Incident
from tests import factories
from tracker import services
from tracker.models import ActionItem, ChangeSource, TicketLink, TicketPoll, TicketSyncState
from tracker.tasks import poll_tickets, pull_tickets, push_pending_tickets, push_tickets
from tracker.ticketing import reset_backend

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
SECRET = "tasks-secret"
WEB = services.Actor(source=ChangeSource.WEB, label="tester")


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def webhook(settings, httpserver):
    """Ticket sync on, through the webhook backend, to a receiver on the loopback."""
    settings.TICKETS_BACKEND = "webhook"
    settings.TICKETS_AUTO_CREATE = True
    settings.TICKETS_WEBHOOK_URL = httpserver.url_for("/hook")
    settings.TICKETS_WEBHOOK_SECRET = SECRET
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.TICKETS_RATE_LIMIT = 0
    reset_backend()
    yield httpserver
    reset_backend()


@pytest.fixture
def sync_off(settings):
    settings.TICKETS_BACKEND = ""
    reset_backend()
    yield
    reset_backend()


@pytest.fixture
def committed(django_capture_on_commit_callbacks, tasks_run):
    """`with committed():` runs what the block enqueued on commit, as a worker would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def make_item(**fields) -> ActionItem:
    incident, _ = Incident.objects.get_or_create(
        external_id="INC-2024-0142",
        defaults={"title": "Payment API degradation", "severity": "SEV2", "declared_at": NOW},
    )
    values = {
        "incident": incident,
        "title": "Add circuit breaker to payment client",
        "description": "Trip after 5 failures in 10 s.",
        "priority": "P2",
        "deadline": dt.date(2025, 4, 1),
        "owner": services.person_get_or_create(email="alice@example.com"),
        **fields,
    }
    return factories.make_action_item(actor=WEB, **values)


def fresh(item: ActionItem) -> ActionItem:
    return ActionItem.objects.select_related("owner").get(pk=item.pk)


def link_of(item: ActionItem) -> TicketLink:
    return TicketLink.objects.get(item=item)


def received(httpserver) -> list[Request]:
    return [request for request, _ in httpserver.log]


def document(request: Request) -> dict:
    return json.loads(request.get_data())


def assert_signed(request: Request) -> None:
    expected = hmac.new(SECRET.encode(), request.get_data(), hashlib.sha256).hexdigest()
    assert request.headers["X-Tracker-Signature-256"] == f"sha256={expected}"


# --- A push end to end ---------------------------------------------------------------------


def test_it_posts_a_new_item_to_the_receiver_once_committed(webhook, committed):
    webhook.expect_request("/hook", method="POST").respond_with_json(
        {"key": "OPS-1", "url": "https://tickets.example.com/OPS-1"}
    )

    with committed():
        item = make_item()
        assert received(webhook) == []

    (request,) = received(webhook)
    assert_signed(request)
    assert request.headers["X-Tracker-Event"] == "item.created"
    sent = document(request)
    assert sent["marker"] == f"followup-{item.pk}"
    assert sent["item"]["title"] == "Add circuit breaker to payment client"
    assert sent["item"]["owner"] == "alice@example.com"
    assert sent["item"]["deadline"] == "2025-04-01"
    assert "INC-2024-0142" in sent["item"]["description"]
    link = link_of(item)
    assert (link.key, link.url) == ("OPS-1", "https://tickets.example.com/OPS-1")
    assert link.state == TicketSyncState.SYNCED
    assert (link.next_attempt_at, link.last_synced_at, link.last_error) == (None, NOW, "")
    assert link.pushed_values["title"] == "Add circuit breaker to payment client"


def test_it_posts_what_changed_on_the_next_push(webhook, committed):
    webhook.expect_request("/hook", method="POST").respond_with_json({"key": "OPS-1"})
    with committed():
        item = make_item()

    with committed():
        services.action_item_update(item=fresh(item), actor=WEB, status="blocked", priority="P1")

    first, second = received(webhook)
    assert_signed(second)
    assert second.headers["X-Tracker-Event"] == "item.updated"
    sent = document(second)
    assert sent["key"] == "OPS-1"
    assert sent["changed"] == ["priority", "status"]
    assert (sent["item"]["status"], sent["item"]["priority"]) == ("blocked", "P1")
    assert second.headers["Idempotency-Key"] != first.headers["Idempotency-Key"]
    link = link_of(item)
    assert link.state == TicketSyncState.SYNCED
    assert link.pushed_values["status"] == "blocked"


def test_it_sends_the_same_delivery_again_when_the_receiver_fails_once(webhook, committed):
    webhook.expect_ordered_request("/hook", method="POST").respond_with_data("oops", status=500)
    webhook.expect_ordered_request("/hook", method="POST").respond_with_data("", status=204)

    with committed():
        item = make_item()

    first, second = received(webhook)
    # Marked idempotent (the receiver drops a repeat by its key): retried by the client.
    assert first.get_data() == second.get_data()
    for header in ("X-Tracker-Delivery", "Idempotency-Key", "X-Tracker-Signature-256"):
        assert first.headers[header] == second.headers[header]
    link = link_of(item)
    assert link.state == TicketSyncState.SYNCED
    assert link.key == f"followup-{item.pk}"


def test_it_stops_retrying_when_the_receiver_refuses_the_credentials(
    webhook, committed, time_machine
):
    webhook.expect_request("/hook", method="POST").respond_with_data("bad signature", status=401)

    with committed():
        item = make_item()

    assert len(received(webhook)) == 1
    link = link_of(item)
    assert link.state == TicketSyncState.FAILING
    assert link.next_attempt_at is None
    assert "401" in link.last_error
    assert link.attempts == 1

    time_machine.move_to(NOW + dt.timedelta(days=2), tick=False)
    assert push_pending_tickets.delay().get()["created"] == 0
    assert len(received(webhook)) == 1
    assert link_of(item).state == TicketSyncState.FAILING

    # A change to the item is a reason to try again.
    services.action_item_update(item=fresh(item), actor=WEB, title="Add a circuit breaker")
    link = link_of(item)
    assert link.state == TicketSyncState.PENDING
    assert link.next_attempt_at == NOW + dt.timedelta(days=2)


def test_it_retries_later_when_the_receiver_is_unavailable(webhook, committed, settings):
    settings.TICKETS_MAX_RETRIES = 0
    reset_backend()
    webhook.expect_request("/hook", method="POST").respond_with_data("busy", status=503)

    with committed():
        item = make_item()

    link = link_of(item)
    assert link.state == TicketSyncState.FAILING
    assert "503" in link.last_error
    # TICKETS_RETRY_BASE_SECONDS (60) with up to 25 % jitter.
    assert NOW + dt.timedelta(seconds=60) <= link.next_attempt_at
    assert link.next_attempt_at <= NOW + dt.timedelta(seconds=75)


# --- The tasks ------------------------------------------------------------------------------


def test_push_pending_tickets_pushes_only_the_links_due(webhook, tasks_run, time_machine):
    webhook.expect_request("/hook", method="POST").respond_with_data("", status=204)
    due, retry_due, later, done = factories.ActionItemFactory.create_batch(4)
    TicketLink.objects.create(item=due, system="webhook", next_attempt_at=NOW)
    TicketLink.objects.create(
        item=retry_due,
        system="webhook",
        state=TicketSyncState.FAILING,
        attempts=2,
        next_attempt_at=NOW + dt.timedelta(minutes=5),
    )
    TicketLink.objects.create(
        item=later, system="webhook", next_attempt_at=NOW + dt.timedelta(minutes=30)
    )
    TicketLink.objects.create(
        item=done,
        system="webhook",
        key="OPS-4",
        state=TicketSyncState.SYNCED,
        next_attempt_at=NOW - dt.timedelta(days=1),
    )
    time_machine.move_to(NOW + dt.timedelta(minutes=5), tick=False)

    report = push_pending_tickets.delay().get()

    assert (report["created"], report["failed"], report["skipped"]) == (2, 0, 0)
    markers = sorted(document(request)["marker"] for request in received(webhook))
    assert markers == sorted([f"followup-{due.pk}", f"followup-{retry_due.pk}"])
    states = dict(TicketLink.objects.values_list("item_id", "state"))
    assert states == {
        due.pk: "synced",
        retry_due.pk: "synced",
        later.pk: "pending",
        done.pk: "synced",
    }


def test_push_tickets_skips_items_without_a_link(webhook, tasks_run):
    item = factories.ActionItemFactory()

    report = push_tickets.delay([item.pk]).get()

    assert report["skipped"] == 1
    assert received(webhook) == []


@pytest.mark.parametrize(
    ("task", "args"),
    [
        (push_tickets, [[1]]),
        (push_pending_tickets, []),
        (poll_tickets, []),
        (pull_tickets, [["1"]]),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_the_tasks_do_nothing_when_sync_is_off(sync_off, tasks_run, task, args):
    TicketLink.objects.create(item=factories.ActionItemFactory(), system="webhook", key="1")

    assert task.delay(*args).get() == {}
    assert TicketLink.objects.get().state == TicketSyncState.PENDING


def test_poll_tickets_reads_nothing_from_a_webhook(webhook, tasks_run):
    TicketLink.objects.create(
        item=factories.ActionItemFactory(), system="webhook", key="OPS-1", state="synced"
    )

    report = poll_tickets.delay().get()

    assert report == {"seen": 0, "changed": 0, "error": ""}
    assert received(webhook) == []
    assert not TicketPoll.objects.exists()


def test_pull_tickets_reports_that_a_webhook_cannot_be_read(webhook, tasks_run):
    item = factories.ActionItemFactory(status="open")
    TicketLink.objects.create(item=item, system="webhook", key="OPS-1", state="synced")

    report = pull_tickets.delay(["OPS-1"]).get()

    assert report["seen"] == report["changed"] == 0
    assert "cannot read tickets back" in report["error"]
    assert received(webhook) == []
    assert fresh(item).status == "open"

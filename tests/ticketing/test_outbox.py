"""The outbox: the services give new items a pending ticket link and mark the links of
changed items pending, and the push is enqueued once the transaction commits."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from incidents.importing import import_document
from tests import factories
from tracker import services
from tracker.models import ActionItem, ChangeSource, TicketLink, TicketSyncState
from tracker.ticketing import reset_backend

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
WEB = services.Actor(source=ChangeSource.WEB, label="tester")
TICKET = services.Actor(source=ChangeSource.TICKET, label="webhook followup-1")


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def webhook(settings, httpserver):
    """Ticket sync on, through the webhook backend, to a receiver on the loopback."""
    settings.TICKETS_BACKEND = "webhook"
    settings.TICKETS_AUTO_CREATE = True
    settings.TICKETS_WEBHOOK_URL = httpserver.url_for("/hook")
    settings.TICKETS_WEBHOOK_SECRET = "outbox-secret"
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.TICKETS_RATE_LIMIT = 0
    reset_backend()
    yield httpserver
    reset_backend()


def new_items(count: int) -> list[ActionItem]:
    incident = factories.IncidentFactory()
    return [
        ActionItem(incident=incident, title=f"Follow-up {n}", priority="P2", type="prevention")
        for n in range(count)
    ]


def make_item(**fields) -> ActionItem:
    values = {
        "title": "Add a replica",
        "description": "The primary had no failover.",
        "priority": "P2",
        "deadline": dt.date(2025, 4, 1),
        "owner": services.person_get_or_create(email="ana@example.com"),
        **fields,
    }
    return factories.make_action_item(actor=WEB, **values)


def synced(item: ActionItem) -> TicketLink:
    """Make the item's link look pushed and in agreement."""
    TicketLink.objects.filter(item=item).update(
        key=f"T-{item.pk}", state=TicketSyncState.SYNCED, next_attempt_at=None
    )
    return TicketLink.objects.get(item=item)


def link_of(item: ActionItem) -> TicketLink:
    return TicketLink.objects.get(item=item)


def fresh(item: ActionItem) -> ActionItem:
    return ActionItem.objects.select_related("owner").get(pk=item.pk)


# --- New items ---------------------------------------------------------------------


def test_it_gives_a_new_item_a_pending_link(webhook):
    item = make_item()

    link = link_of(item)
    assert link.system == "webhook"
    assert link.state == TicketSyncState.PENDING
    assert link.key == ""
    assert link.next_attempt_at == NOW


def test_it_gives_each_item_of_an_import_a_pending_link(webhook, sample_bytes):
    summary = import_document(raw=sample_bytes, source="command")

    assert summary.items_created == 5
    links = TicketLink.objects.filter(item__incident__external_id="INC-2024-0142")
    assert links.count() == 5
    assert {link.state for link in links} == {TicketSyncState.PENDING}
    assert {link.next_attempt_at for link in links} == {NOW}


def link_queries(captured: CaptureQueriesContext) -> list[str]:
    # The items' own INSERT is batched on SQLite (its limit on parameters): count the
    # outbox's queries, the ones on ticket links.
    return [q["sql"] for q in captured.captured_queries if "tracker_ticketlink" in q["sql"]]


def test_it_links_new_items_in_a_constant_number_of_queries(webhook):
    def queries_to_create(count: int) -> int:
        items = new_items(count)
        with CaptureQueriesContext(connection) as captured:
            services.action_items_create(items=items, actor=WEB)
        return len(link_queries(captured))

    few = queries_to_create(5)
    many = queries_to_create(50)

    assert few == many == 1
    assert TicketLink.objects.count() == 55


def test_it_marks_changed_items_pending_in_a_constant_number_of_queries(webhook):
    def queries_to_change(count: int) -> int:
        items = services.action_items_create(items=new_items(count), actor=WEB)
        for item in items:
            synced(item)
        updates = [services.ItemUpdate(item, {"priority": "P1"}) for item in items]
        with CaptureQueriesContext(connection) as captured:
            services.action_items_update(updates=updates, actor=WEB)
        assert {link.state for link in TicketLink.objects.filter(item__in=items)} == {"pending"}
        return len(link_queries(captured))

    assert queries_to_change(50) == queries_to_change(5) == 1


def test_it_gives_no_link_when_tickets_are_not_made_automatically(webhook, settings, sample_bytes):
    settings.TICKETS_AUTO_CREATE = False

    make_item()
    import_document(raw=sample_bytes, source="command")

    assert ActionItem.objects.count() == 6
    assert not TicketLink.objects.exists()


def test_it_gives_no_link_without_a_ticket_system(settings, sample_bytes):
    settings.TICKETS_BACKEND = ""
    settings.TICKETS_AUTO_CREATE = True

    make_item()
    import_document(raw=sample_bytes, source="command")

    assert ActionItem.objects.count() == 6
    assert not TicketLink.objects.exists()


# --- Changed items ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"title": "Add two replicas"},
        {"description": "And test the failover."},
        {"priority": "P1"},
        {"status": "in_progress"},
        {"deadline": dt.date(2025, 5, 1)},
        {"owner": None},
    ],
    ids=lambda changes: next(iter(changes)),
)
def test_it_marks_the_link_pending_when_a_synced_field_changes(webhook, time_machine, changes):
    item = make_item()
    synced(item)
    time_machine.move_to(NOW + dt.timedelta(hours=1), tick=False)

    assert services.action_item_update(item=fresh(item), actor=WEB, **changes)

    link = link_of(item)
    assert link.state == TicketSyncState.PENDING
    assert link.next_attempt_at == NOW + dt.timedelta(hours=1)


def test_it_leaves_the_link_alone_when_only_the_snooze_changes(webhook):
    item = make_item()
    synced(item)

    assert services.action_item_update(
        item=fresh(item), actor=WEB, snoozed_until=dt.date(2025, 3, 20)
    )

    link = link_of(item)
    assert link.state == TicketSyncState.SYNCED
    assert link.next_attempt_at is None


def test_it_leaves_the_link_alone_for_a_change_read_from_the_ticket(webhook):
    item = make_item()
    synced(item)

    assert services.action_item_update(item=fresh(item), actor=TICKET, status="done")

    link = link_of(item)
    assert link.state == TicketSyncState.SYNCED
    assert link.next_attempt_at is None


def test_it_gives_no_link_to_a_changed_item_that_has_none(webhook):
    item = factories.ActionItemFactory()

    assert services.action_item_update(item=item, actor=WEB, priority="P1")

    assert not TicketLink.objects.exists()


# --- Enqueueing -----------------------------------------------------------------------


def test_it_enqueues_nothing_before_the_transaction_commits(webhook, tasks_run):
    with transaction.atomic():
        make_item()

    assert tasks_run == []


def test_it_enqueues_one_push_of_the_new_items_on_commit(
    webhook, tasks_run, django_capture_on_commit_callbacks
):
    webhook.expect_request("/hook", method="POST").respond_with_data("", status=204)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        items = services.action_items_create(items=new_items(3), actor=WEB)

    assert len(callbacks) == 1
    assert tasks_run == [("tracker.push_tickets", [sorted(item.pk for item in items)])]


def test_it_enqueues_one_push_of_the_changed_items_on_commit(
    webhook, tasks_run, django_capture_on_commit_callbacks
):
    webhook.expect_request("/hook", method="POST").respond_with_data("", status=204)
    first, second, snoozed = items = [make_item(title=f"Item {n}") for n in range(3)]
    for item in items:
        synced(item)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.action_items_update(
            updates=[
                services.ItemUpdate(fresh(first), {"status": "blocked"}),
                services.ItemUpdate(fresh(second), {"title": "Item two, renamed"}),
                services.ItemUpdate(fresh(snoozed), {"snoozed_until": dt.date(2025, 3, 20)}),
            ],
            actor=WEB,
        )

    assert len(callbacks) == 1
    assert tasks_run == [("tracker.push_tickets", [sorted([first.pk, second.pk])])]


def test_it_delivers_each_item_once_with_its_latest_state_after_a_transaction(
    webhook, tasks_run, django_capture_on_commit_callbacks
):
    webhook.expect_request("/hook", method="POST").respond_with_data("", status=204)
    changed = make_item(title="Changed")
    synced(changed)

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        created = make_item(title="Created")
        services.action_item_update(item=fresh(changed), actor=WEB, priority="P1")
        services.action_item_update(item=fresh(changed), actor=WEB, priority="P3")

    # Nothing is pushed before the commit, so each item's latest state goes out once
    # (one push per service call: the later one finds the ticket up to date).
    pushed = {name for name, _ in tasks_run}
    assert pushed == {"tracker.push_tickets"}
    assert {pk for _, (ids,) in tasks_run for pk in ids} == {created.pk, changed.pk}
    documents = [json.loads(request.get_data()) for request, _ in webhook.log]
    assert sorted((d["marker"], d["event"], d["item"]["priority"]) for d in documents) == sorted(
        [
            (f"followup-{created.pk}", "item.created", "P2"),
            (f"followup-{changed.pk}", "item.updated", "P3"),
        ]
    )


def test_it_enqueues_nothing_when_the_transaction_rolls_back(
    webhook, tasks_run, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        make_item()
        raise RuntimeError("rolled back")

    assert callbacks == []
    assert tasks_run == []
    assert not TicketLink.objects.exists()

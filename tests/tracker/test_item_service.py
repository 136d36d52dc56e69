"""The item update service (tracker.services.action_item_update): which status changes a
person may make, completed_at, the version, history, the ticket outbox and the next reminder."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tests import factories
from tracker import services
from tracker.models import (
    ActionItem,
    ActionItemChange,
    ChangeSource,
    Person,
    TicketLink,
    TicketSyncState,
)
from tracker.services import Actor, ItemUpdate, action_item_update, action_items_update
from tracker.ticketing import reset_backend

pytestmark = pytest.mark.django_db

# A Wednesday, after the 09:00 remind hour in UTC: the reminders' "today" is 12 March.
NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
DEADLINE = dt.date(2025, 4, 1)  # 20 days ahead: the first reminder is "due soon" on 25 March
WEB = Actor(source=ChangeSource.WEB, label="tester")
TICKET = Actor(source=ChangeSource.TICKET, label="webhook followup-1")


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def owner(db):
    return factories.PersonFactory(email="ana@example.com")


@pytest.fixture
def item(make_action_item, owner) -> ActionItem:
    return make_action_item(
        title="Add a replica",
        description="The primary had no failover.",
        owner=owner,
        priority="P2",
        status="open",
        deadline=DEADLINE,
    )


def fresh(item: ActionItem) -> ActionItem:
    return ActionItem.objects.select_related("owner").get(pk=item.pk)


def refused(item: ActionItem, actor: Actor, error: type[Exception] = ValidationError, **changes):
    """The error the update raises. The service runs in its caller's transaction, which
    an error leaves to be rolled back: the savepoint here stands for that caller, so
    the test can read the row afterwards."""
    with pytest.raises(error) as caught, transaction.atomic():
        action_item_update(item=item, actor=actor, **changes)
    return caught.value


def history(item: ActionItem) -> list[ActionItemChange]:
    """The item's history rows, creation left out."""
    return list(item.changes.exclude(field="created").order_by("field"))


# --- Status transitions ----------------------------------------------------------------

ALLOWED = [
    ("open", "in_progress"),
    ("open", "blocked"),
    ("open", "done"),
    ("open", "cancelled"),
    ("in_progress", "open"),
    ("in_progress", "blocked"),
    ("in_progress", "done"),
    ("in_progress", "cancelled"),
    ("blocked", "open"),
    ("blocked", "in_progress"),
    ("blocked", "done"),
    ("blocked", "cancelled"),
    ("done", "open"),
    ("done", "in_progress"),
    ("cancelled", "open"),
]
REFUSED = [
    ("done", "blocked", "in_progress, open"),
    ("done", "cancelled", "in_progress, open"),
    ("cancelled", "in_progress", "open"),
    ("cancelled", "blocked", "open"),
    ("cancelled", "done", "open"),
]


@pytest.mark.parametrize(("current", "new"), ALLOWED)
def test_it_lets_a_person_make_an_allowed_status_change(make_action_item, current, new):
    item = make_action_item(status=current)

    assert action_item_update(item=item, actor=WEB, status=new) is True

    assert fresh(item).status == new


@pytest.mark.parametrize(("current", "new", "allowed"), REFUSED)
def test_it_refuses_a_status_change_a_person_may_not_make(make_action_item, current, new, allowed):
    item = make_action_item(status=current)

    error = refused(item, WEB, status=new)

    assert error.message_dict == {
        "status": [f"cannot change from {current} to {new}; allowed: {allowed}"]
    }
    stored = fresh(item)
    assert (stored.status, stored.version) == (current, 1)
    assert history(item) == []


@pytest.mark.parametrize(
    ("current", "choices"),
    [
        ("open", {"open", "in_progress", "blocked", "done", "cancelled"}),
        ("in_progress", {"open", "in_progress", "blocked", "done", "cancelled"}),
        ("blocked", {"open", "in_progress", "blocked", "done", "cancelled"}),
        ("done", {"done", "open", "in_progress"}),
        ("cancelled", {"cancelled", "open"}),
    ],
)
def test_status_choices_from_offers_the_allowed_changes_and_the_current_status(current, choices):
    assert services.status_choices_from(current) == choices


@pytest.mark.parametrize("source", [ChangeSource.IMPORT, ChangeSource.TICKET])
def test_it_takes_any_status_change_from_the_document_or_the_ticket(make_action_item, source):
    item = make_action_item(status="cancelled")

    assert action_item_update(item=item, actor=Actor(source=source), status="done") is True

    stored = fresh(item)
    assert (stored.status, stored.completed_at) == ("done", NOW)


@pytest.mark.parametrize(
    "source", [ChangeSource.WEB, ChangeSource.API, ChangeSource.ADMIN, ChangeSource.REMINDER]
)
def test_it_holds_every_other_path_to_the_transitions(make_action_item, source):
    item = make_action_item(status="cancelled")

    error = refused(item, Actor(source=source), status="done")

    assert list(error.message_dict) == ["status"]
    assert fresh(item).status == "cancelled"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("status", "closed", "expected one of open, in_progress, blocked, done, cancelled"),
        ("priority", "P9", "expected one of P0, P1, P2, P3, P4"),
        ("title", "   ", "must not be empty"),
    ],
)
def test_it_refuses_an_invalid_value_from_any_path(item, field, value, message):
    error = refused(item, TICKET, **{field: value})

    assert error.message_dict == {field: [message]}
    stored = fresh(item)
    assert (stored.status, stored.priority, stored.title) == ("open", "P2", "Add a replica")
    assert stored.version == 1


@pytest.mark.parametrize("field", ["colour", "next_reminder_on", "version"])
def test_it_refuses_a_field_it_does_not_edit(item, field):
    error = refused(item, WEB, TypeError, **{field: 1})

    assert str(error) == f"unknown action item fields: ['{field}']"

    assert fresh(item).version == 1


# --- completed_at ----------------------------------------------------------------------


def test_it_sets_completed_at_when_an_item_is_created_done(make_action_item):
    item = make_action_item(status="done")

    assert fresh(item).completed_at == NOW


def test_it_sets_completed_at_when_an_item_is_done(item):
    action_item_update(item=item, actor=WEB, status="done")

    assert fresh(item).completed_at == NOW


def test_it_keeps_completed_at_while_a_done_item_changes_otherwise(item, time_machine):
    action_item_update(item=item, actor=WEB, status="done")
    time_machine.move_to(NOW + dt.timedelta(days=2), tick=False)

    action_item_update(item=fresh(item), actor=WEB, title="Add two replicas")

    assert fresh(item).completed_at == NOW


def test_it_keeps_the_completion_time_it_is_given(item):
    done_at = NOW - dt.timedelta(days=3)

    action_item_update(
        item=item, actor=Actor(source=ChangeSource.IMPORT), status="done", completed_at=done_at
    )

    assert fresh(item).completed_at == done_at


@pytest.mark.parametrize("reopened", ["open", "in_progress"])
def test_it_clears_completed_at_on_reopen_and_sets_it_anew_when_done_again(
    item, time_machine, reopened
):
    action_item_update(item=item, actor=WEB, status="done")

    action_item_update(item=fresh(item), actor=WEB, status=reopened)
    assert fresh(item).completed_at is None

    later = NOW + dt.timedelta(days=1)
    time_machine.move_to(later, tick=False)
    action_item_update(item=fresh(item), actor=WEB, status="done")
    assert fresh(item).completed_at == later


def test_it_leaves_a_cancelled_item_without_completed_at(item):
    action_item_update(item=item, actor=WEB, status="cancelled")

    assert fresh(item).completed_at is None


@pytest.mark.parametrize(
    ("status", "completed_at"),
    [("done", None), ("open", NOW), ("in_progress", NOW), ("blocked", NOW)],
)
def test_the_database_refuses_completed_at_that_disagrees_with_the_status(
    item, status, completed_at
):
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionItem.objects.filter(pk=item.pk).update(status=status, completed_at=completed_at)

    assert (fresh(item).status, fresh(item).completed_at) == ("open", None)


@pytest.mark.parametrize("completed_at", [None, NOW])
def test_the_database_lets_a_cancelled_item_keep_or_lack_completed_at(item, completed_at):
    ActionItem.objects.filter(pk=item.pk).update(status="cancelled", completed_at=completed_at)

    assert fresh(item).completed_at == completed_at


# --- version ---------------------------------------------------------------------------


def test_it_bumps_the_version_once_per_change_whatever_the_number_of_fields(item):
    assert fresh(item).version == 1

    action_item_update(item=item, actor=WEB, title="Add two replicas", priority="P1", status="done")
    assert fresh(item).version == 2

    action_item_update(item=fresh(item), actor=WEB, description="And test the failover.")
    assert fresh(item).version == 3


def test_it_changes_nothing_when_the_values_are_the_same(item, owner, time_machine):
    time_machine.move_to(NOW + dt.timedelta(hours=1), tick=False)

    changed = action_item_update(
        item=fresh(item),
        actor=WEB,
        title="Add a replica",
        owner=owner,
        priority="P2",
        status="open",
        deadline=DEADLINE,
    )

    assert changed is False
    stored = fresh(item)
    assert (stored.version, stored.updated_at) == (1, NOW)
    assert history(item) == []


def test_it_returns_and_bumps_only_the_items_that_changed(make_action_item):
    same, changed = make_action_item(priority="P2"), make_action_item(priority="P2")

    result = action_items_update(
        updates=[ItemUpdate(same, {"priority": "P2"}), ItemUpdate(changed, {"priority": "P0"})],
        actor=WEB,
    )

    assert [item.pk for item in result] == [changed.pk]
    assert (fresh(same).version, fresh(changed).version) == (1, 2)


# --- History ---------------------------------------------------------------------------


def test_it_records_the_creation_with_the_items_fields(item, owner):
    (created,) = item.changes.all()

    assert (created.field, created.source, created.actor_label, created.at) == (
        "created",
        "system",
        "test",
        NOW,
    )
    assert created.new_value == {
        "title": "Add a replica",
        "description": "The primary had no failover.",
        "owner": "ana@example.com",
        "priority": "P2",
        "type": "prevention",
        "status": "open",
        "deadline": "2025-04-01",
    }


def test_it_writes_one_history_row_per_changed_field_with_the_actor(item):
    user = factories.UserFactory(username="olivia")
    actor = Actor(source=ChangeSource.WEB, user=user)
    new_owner = factories.PersonFactory(email="bo@example.com")

    action_item_update(
        item=item,
        actor=actor,
        note="triage",
        title="Add a replica",  # unchanged: no row
        owner=new_owner,
        priority="P1",
        deadline=dt.date(2025, 4, 10),
    )

    rows = history(item)
    assert [(r.field, r.old_value, r.new_value) for r in rows] == [
        ("deadline", "2025-04-01", "2025-04-10"),
        ("owner", "ana@example.com", "bo@example.com"),
        ("priority", "P2", "P1"),
    ]
    for row in rows:
        assert (row.source, row.actor, row.actor_label, row.at, row.note) == (
            "web",
            user,
            "olivia",
            NOW,
            "triage",
        )


def test_it_records_completed_at_beside_the_status_when_an_item_is_done(item):
    action_item_update(item=item, actor=WEB, status="done")

    assert [(r.field, r.old_value, r.new_value) for r in history(item)] == [
        ("completed_at", None, NOW.isoformat()),
        ("status", "open", "done"),
    ]


def test_it_records_the_path_a_change_came_through(item):
    action_item_update(item=item, actor=TICKET, status="in_progress")

    (row,) = history(item)
    assert (row.field, row.source, row.actor, row.actor_label) == (
        "status",
        "ticket",
        None,
        "webhook followup-1",
    )


def test_it_writes_no_history_for_a_change_that_changes_nothing(item):
    action_item_update(item=item, actor=WEB, status="open", priority="P2")

    assert history(item) == []
    assert item.changes.count() == 1  # the creation


# --- The ticket outbox -----------------------------------------------------------------


@pytest.fixture
def webhook(settings):
    """Ticket sync on, through the webhook backend. Nothing is sent: a test's
    transaction never commits, so the push it enqueues never runs."""
    settings.TICKETS_BACKEND = "webhook"
    settings.TICKETS_AUTO_CREATE = True
    settings.TICKETS_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    settings.TICKETS_WEBHOOK_SECRET = "service-secret"
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.TICKETS_RATE_LIMIT = 0
    reset_backend()
    yield
    reset_backend()


@pytest.fixture
def synced_item(webhook, item) -> ActionItem:
    """The item, with a ticket that agrees with it."""
    TicketLink.objects.filter(item=item).update(
        key="T-1", state=TicketSyncState.SYNCED, next_attempt_at=None
    )
    return fresh(item)


def link_of(item: ActionItem) -> tuple[str, dt.datetime | None]:
    link = TicketLink.objects.get(item=item)
    return link.state, link.next_attempt_at


def test_it_gives_a_new_item_a_pending_ticket_link(webhook, make_action_item):
    item = make_action_item()

    assert link_of(item) == (TicketSyncState.PENDING, NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Add two replicas"),
        ("description", "And test the failover."),
        ("priority", "P0"),
        ("status", "in_progress"),
        ("deadline", dt.date(2025, 5, 1)),
        ("owner", None),
    ],
)
def test_it_marks_the_ticket_pending_when_a_synced_field_changes(
    synced_item, django_capture_on_commit_callbacks, field, value
):
    with django_capture_on_commit_callbacks() as callbacks:
        action_item_update(item=synced_item, actor=WEB, **{field: value})

    assert link_of(synced_item) == (TicketSyncState.PENDING, NOW)
    assert len(callbacks) == 1  # the push, once the change commits


def test_it_marks_the_ticket_pending_for_a_new_owner(
    synced_item, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        action_item_update(item=synced_item, actor=WEB, owner=factories.PersonFactory())

    assert link_of(synced_item) == (TicketSyncState.PENDING, NOW)
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", "detection"),
        ("snoozed_until", dt.date(2025, 3, 20)),
        ("deadline_derived", True),
    ],
)
def test_it_leaves_the_ticket_alone_when_only_other_fields_change(
    synced_item, django_capture_on_commit_callbacks, field, value
):
    with django_capture_on_commit_callbacks() as callbacks:
        assert action_item_update(item=synced_item, actor=WEB, **{field: value}) is True

    assert link_of(synced_item) == (TicketSyncState.SYNCED, None)
    assert callbacks == []


def test_it_leaves_the_ticket_alone_for_a_change_read_from_the_ticket(
    synced_item, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        assert action_item_update(item=synced_item, actor=TICKET, status="in_progress") is True

    assert link_of(synced_item) == (TicketSyncState.SYNCED, None)
    assert callbacks == []


def test_it_leaves_the_ticket_alone_when_nothing_changes(
    synced_item, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        assert action_item_update(item=synced_item, actor=WEB, title="Add a replica") is False

    assert link_of(synced_item) == (TicketSyncState.SYNCED, None)
    assert callbacks == []


# --- The next reminder -----------------------------------------------------------------


def test_it_schedules_the_first_reminder_of_a_new_item(item):
    # Due 1 April: the first point is "due soon", seven days before.
    assert fresh(item).next_reminder_on == dt.date(2025, 3, 25)


def test_it_moves_the_next_reminder_with_the_deadline(item):
    action_item_update(item=item, actor=WEB, deadline=dt.date(2025, 4, 10))

    assert fresh(item).next_reminder_on == dt.date(2025, 4, 3)


def test_it_makes_the_next_reminder_today_when_the_new_deadline_is_near(item):
    # Due in four days: the "due soon" stage of seven days before is current.
    action_item_update(item=item, actor=WEB, deadline=dt.date(2025, 3, 16))

    assert fresh(item).next_reminder_on == dt.date(2025, 3, 12)


def test_it_drops_the_next_reminder_without_a_deadline(item):
    action_item_update(item=item, actor=WEB, deadline=None)

    assert fresh(item).next_reminder_on is None


@pytest.mark.parametrize("closed", ["done", "cancelled"])
def test_it_drops_the_next_reminder_when_the_item_closes_and_restores_it_on_reopen(item, closed):
    action_item_update(item=item, actor=WEB, status=closed)
    assert fresh(item).next_reminder_on is None

    action_item_update(item=fresh(item), actor=WEB, status="open")
    assert fresh(item).next_reminder_on == dt.date(2025, 3, 25)


def test_it_drops_the_next_reminder_without_an_owner_and_restores_it_with_one(item):
    action_item_update(item=item, actor=WEB, owner=None)
    assert fresh(item).next_reminder_on is None

    action_item_update(item=fresh(item), actor=WEB, owner=factories.PersonFactory())
    assert fresh(item).next_reminder_on == dt.date(2025, 3, 25)


def test_it_counts_the_next_reminder_in_the_new_owners_time_zone(make_action_item):
    # 10:00 UTC is 03:00 in Los Angeles: before the remind hour there, so its
    # reminder day is still 11 March, when the item is seven days from its deadline.
    item = make_action_item(owner=factories.PersonFactory(), deadline=dt.date(2025, 3, 18))
    assert fresh(item).next_reminder_on == dt.date(2025, 3, 12)

    los_angeles = factories.PersonFactory(time_zone="America/Los_Angeles")
    action_item_update(item=item, actor=WEB, owner=los_angeles)

    assert fresh(item).next_reminder_on == dt.date(2025, 3, 11)


def test_it_holds_the_next_reminder_until_the_snooze_is_over(item):
    action_item_update(item=item, actor=WEB, snoozed_until=dt.date(2025, 3, 28))
    # The day after the snooze, 29 March, the "due soon" stage is current.
    assert fresh(item).next_reminder_on == dt.date(2025, 3, 29)

    action_item_update(item=fresh(item), actor=WEB, snoozed_until=None)
    assert fresh(item).next_reminder_on == dt.date(2025, 3, 25)


def test_it_leaves_the_next_reminder_alone_when_other_fields_change(item):
    # As a sweep leaves it, having sent the current stage.
    ActionItem.objects.filter(pk=item.pk).update(next_reminder_on=dt.date(2025, 3, 26))

    action_item_update(
        item=fresh(item), actor=WEB, title="Add two replicas", description="And test it."
    )

    assert fresh(item).next_reminder_on == dt.date(2025, 3, 26)


# --- Limits every path shares --------------------------------------------------------


@pytest.mark.parametrize("deadline", [dt.date(1899, 12, 31), dt.date(9999, 12, 31)])
def test_it_refuses_a_deadline_outside_the_supported_range(make_action_item, deadline):
    item = make_action_item(deadline=dt.date(2026, 1, 5))

    with transaction.atomic(), pytest.raises(ValidationError) as caught:
        services.action_item_update(item=item, actor=WEB, deadline=deadline)

    assert "deadline" in caught.value.message_dict
    item.refresh_from_db()
    assert item.deadline == dt.date(2026, 1, 5)


def test_it_refuses_an_owner_email_longer_than_its_column(make_action_item):
    item = make_action_item()
    email = "a" * 250 + "@example.com"

    with transaction.atomic(), pytest.raises(ValidationError) as caught:
        services.person_get_or_create(email=email)

    assert "owner" in caught.value.message_dict
    assert not Person.objects.filter(email=email).exists()
    assert item.owner.email != email

"""Sync as a Redmine user who is no administrator (syncbot, scripts/redmine): its
workflow decides which statuses it may set, and Redmine answers 204 to the ones it
may not. Every write is confirmed by reading the issue back."""

import datetime as dt

import pytest
from django.utils import timezone

from tracker import services
from tracker.models import ActionItem, ActionItemChange, ChangeSource, TicketSyncState
from tracker.ticketing import pull, push

from .fakes import make_item

pytestmark = [pytest.mark.django_db, pytest.mark.redmine]

WEB = services.Actor(source=ChangeSource.WEB, label="tester")


def reload(item: ActionItem) -> ActionItem:
    return ActionItem.objects.select_related("owner", "ticket_link").get(pk=item.pk)


def change(item: ActionItem, **changes) -> None:
    services.action_item_update(item=reload(item), actor=WEB, **changes)


def pushed(item) -> tuple[str, str]:
    return push.ticket_push(item_id=item.pk)


def test_it_moves_a_ticket_through_the_statuses_its_workflow_allows(redmine_syncbot, redmine_admin):
    item = make_item()
    assert pushed(item) == ("created", "")
    key = reload(item).ticket_link.key

    for status, remote in [
        ("in_progress", "In Progress"),
        ("blocked", "Feedback"),
        ("done", "Closed"),
        ("open", "New"),
        ("in_progress", "In Progress"),
    ]:
        change(item, status=status)
        assert pushed(item) == ("updated", ""), status
        assert redmine_admin.issue(key)["status"]["name"] == remote
    link = reload(item).ticket_link
    assert (link.state, link.last_error) == (TicketSyncState.SYNCED, "")
    assert redmine_admin.issue(key)["author"]["name"] == "Sync Bot"


def test_it_shows_a_status_the_workflow_refuses_and_never_reverts_the_item(
    redmine_syncbot, redmine_admin
):
    item = make_item()
    pushed(item)
    key = reload(item).ticket_link.key
    change(item, status="done", title="Circuit breaker, done")

    outcome, error = pushed(item)

    assert outcome == "failed"
    assert error.startswith(f"Redmine issue {key} kept status 'New': the workflow of role ")
    assert "Follow-up sync (tracker Bug) does not allow New → Closed for this user" in error
    assert "(from New it allows In Progress, Resolved, Feedback)" in error
    link = reload(item).ticket_link
    assert (link.state, link.last_error) == (TicketSyncState.FAILING, error)
    # Refused for good: not retried until the item changes or someone resyncs it.
    assert link.next_attempt_at is None
    assert item.pk not in push.tickets_due(now=timezone.now(), system="redmine")
    issue = redmine_admin.issue(key)
    assert issue["status"]["name"] == "New"
    # The rest of the change was made.
    assert issue["subject"] == "Circuit breaker, done"

    first, again = pull.tickets_poll(), pull.tickets_poll()

    assert (first.error, first.changed, again.changed) == ("", 0, 0)
    assert reload(item).status == "done"
    assert not ActionItemChange.objects.filter(item=item, source=ChangeSource.TICKET).exists()
    link = reload(item).ticket_link
    assert (link.state, link.last_error) == (TicketSyncState.FAILING, error)


def test_a_new_item_in_a_refused_status_keeps_its_status_and_its_one_ticket(
    redmine_syncbot, redmine_admin
):
    item = make_item(status="cancelled")
    marker = push.ticket_marker(item.pk)

    outcome, error = pushed(item)

    assert outcome == "failed"
    assert "kept status 'New'" in error
    assert "does not allow New → Rejected" in error
    link = reload(item).ticket_link
    # The ticket was made: its key is kept, so no attempt makes another.
    assert link.key == str(redmine_admin.issues_marked(marker)[0]["id"])
    assert link.state == TicketSyncState.FAILING

    pull.tickets_poll()
    assert reload(item).status == "cancelled"
    change(item, title="Dropped: covered by the new gateway")
    assert pushed(item)[0] == "failed"

    assert len(redmine_admin.issues_marked(marker)) == 1
    assert redmine_admin.issue(link.key)["subject"] == "Dropped: covered by the new gateway"
    pull.tickets_poll()
    assert reload(item).status == "cancelled"
    assert not ActionItemChange.objects.filter(item=item, source=ChangeSource.TICKET).exists()


def test_the_error_clears_once_the_item_takes_a_status_the_workflow_allows(
    redmine_syncbot, redmine_admin
):
    item = make_item()
    pushed(item)
    key = reload(item).ticket_link.key
    change(item, status="done")
    assert pushed(item)[0] == "failed"

    change(item, status="in_progress")
    assert pushed(item) == ("updated", "")
    change(item, status="done")
    assert pushed(item) == ("updated", "")

    link = reload(item).ticket_link
    assert (link.state, link.last_error, link.attempts) == (TicketSyncState.SYNCED, "", 0)
    assert redmine_admin.issue(key)["status"]["name"] == "Closed"


def test_the_error_clears_when_someone_makes_the_refused_move_in_redmine(
    redmine_syncbot, redmine_admin
):
    item = make_item()
    pushed(item)
    key = reload(item).ticket_link.key
    change(item, status="done")
    assert pushed(item)[0] == "failed"
    # An administrator may: every role's workflow applies to them.
    redmine_admin.update(key, status_id=redmine_admin.id_of("issue_statuses", "Closed"))

    pull.tickets_poll()

    link = reload(item).ticket_link
    assert (link.state, link.next_attempt_at is not None) == (TicketSyncState.PENDING, True)
    assert pushed(item) == ("unchanged", "")
    link = reload(item).ticket_link
    assert (link.state, link.last_error) == (TicketSyncState.SYNCED, "")
    assert reload(item).status == "done"


def test_a_change_made_in_redmine_after_a_refused_one_is_taken(redmine_syncbot, redmine_admin):
    item = make_item()
    pushed(item)
    key = reload(item).ticket_link.key
    change(item, status="cancelled")
    ActionItemChange.objects.filter(item=item, field="status").update(
        at=timezone.now() - dt.timedelta(minutes=5)
    )
    assert pushed(item)[0] == "failed"
    redmine_admin.update(key, status_id=redmine_admin.id_of("issue_statuses", "In Progress"))

    pull.tickets_poll()

    assert reload(item).status == "in_progress"
    assert pushed(item) == ("unchanged", "")
    assert reload(item).ticket_link.state == TicketSyncState.SYNCED


def test_it_assigns_and_reads_back_a_mapped_owner(redmine_syncbot, redmine_admin):
    item = make_item(owner=None)
    pushed(item)
    key = reload(item).ticket_link.key
    alice = redmine_admin.id_of("users", "alice")

    change(item, owner=services.person_get_or_create(email="alice@example.com"))
    assert pushed(item) == ("updated", "")
    assert redmine_admin.issue(key)["assigned_to"]["id"] == alice
    redmine_admin.update(key, assigned_to_id="")
    pull.tickets_poll()
    assert reload(item).owner is None
    redmine_admin.update(key, assigned_to_id=alice)
    pull.tickets_poll()
    assert reload(item).owner.email == "alice@example.com"


def test_a_due_date_the_workflow_makes_read_only_is_shown_and_not_reverted(
    redmine_syncbot, redmine_admin
):
    # syncbot may not change the due date of an issue in Feedback (scripts/redmine).
    item = make_item(status="blocked", deadline=dt.date(2030, 3, 1))
    assert pushed(item) == ("created", "")
    key = reload(item).ticket_link.key
    change(item, deadline=dt.date(2030, 4, 1))

    outcome, error = pushed(item)

    assert (outcome, error) == (
        "failed",
        f"Redmine issue {key} kept due date 2030-03-01 instead of 2030-04-01: the field is "
        "read-only for role Follow-up sync in the workflow of tracker Bug (Administration → "
        "Workflow → Fields permissions), or the tracker does not use it, or its dates come "
        "from its subtasks",
    )
    assert reload(item).ticket_link.next_attempt_at is None
    assert redmine_admin.issue(key)["due_date"] == "2030-03-01"
    pull.tickets_poll()
    assert reload(item).deadline == dt.date(2030, 4, 1)
    assert not ActionItemChange.objects.filter(item=item, source=ChangeSource.TICKET).exists()

"""Two-way sync against a real Redmine (scripts/redmine), through the sync services."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from tracker import services
from tracker.models import ActionItem, ActionItemChange, ChangeSource, TicketLink, TicketSyncState
from tracker.ticketing import pull, push

from .fakes import make_item

pytestmark = [pytest.mark.django_db, pytest.mark.redmine]

WEB = services.Actor(source=ChangeSource.WEB, label="tester")


def reload(item: ActionItem) -> ActionItem:
    return ActionItem.objects.select_related("owner", "ticket_link").get(pk=item.pk)


def test_it_creates_a_ticket_with_the_items_fields(redmine_backend, redmine_admin):
    item = make_item()

    report = push.tickets_push(item_ids=[item.pk])

    assert (report.created, report.failed) == (1, 0)
    link = reload(item).ticket_link
    assert link.state == TicketSyncState.SYNCED
    issue = redmine_admin.issue(link.key)
    assert link.url == f"{redmine_admin.url}/issues/{link.key}"
    assert issue["subject"] == "Add circuit breaker to payment client"
    assert issue["priority"]["name"] == "High"
    assert issue["status"]["name"] == "New"
    assert issue["due_date"] == "2030-03-01"
    assert issue["assigned_to"]["id"] == redmine_admin.id_of("users", "alice")
    assert "Trip after 5 failures" in issue["description"]
    assert "INC-2024-0142" in issue["description"]
    assert f"/items/{item.pk}/" in issue["description"]
    assert issue["description"].rstrip().endswith(f"[{push.ticket_marker(item.pk)}]")


def test_it_pushes_changes_and_moves_the_status(redmine_backend, redmine_admin):
    item = make_item()
    push.tickets_push(item_ids=[item.pk])
    key = reload(item).ticket_link.key

    services.action_item_update(
        item=reload(item),
        actor=WEB,
        title="Circuit breaker for the payment client",
        deadline=dt.date(2030, 4, 1),
        priority="P1",
        status="in_progress",
    )
    assert reload(item).ticket_link.state == TicketSyncState.PENDING
    report = push.tickets_push(item_ids=[item.pk])

    assert report.updated == 1
    issue = redmine_admin.issue(key)
    assert issue["subject"] == "Circuit breaker for the payment client"
    assert (issue["due_date"], issue["priority"]["name"]) == ("2030-04-01", "Urgent")
    assert issue["status"]["name"] == "In Progress"

    for status, remote in [("done", "Closed"), ("open", "New"), ("cancelled", "Rejected")]:
        services.action_item_update(item=reload(item), actor=WEB, status=status)
        push.tickets_push(item_ids=[item.pk])
        assert redmine_admin.issue(key)["status"]["name"] == remote
    assert reload(item).ticket_link.state == TicketSyncState.SYNCED


def test_it_sends_nothing_when_nothing_synced_changed(redmine_backend):
    item = make_item()
    push.tickets_push(item_ids=[item.pk])
    sent = redmine_backend.client.requests_sent

    services.action_item_snooze(item=reload(item), actor=WEB, days=3)
    report = push.tickets_push(item_ids=[item.pk])

    assert reload(item).ticket_link.state == TicketSyncState.SYNCED
    assert (report.unchanged, report.updated) == (1, 0)
    assert redmine_backend.client.requests_sent == sent


def test_it_makes_one_ticket_when_the_answer_to_the_create_is_lost(
    proxied_backend, proxy, redmine_admin
):
    item = make_item()
    marker = push.ticket_marker(item.pk)

    with proxy.mode_set("lose_post_answers"):
        outcome, error = push.ticket_push(item_id=item.pk, backend=proxied_backend)
    assert outcome == "failed"
    assert "outcome unknown" in error
    link = reload(item).ticket_link
    assert (link.state, link.key) == (TicketSyncState.FAILING, "")
    assert link.next_attempt_at > timezone.now()
    # Redmine did make the ticket: the answer is what got lost.
    assert len(redmine_admin.issues_marked(marker)) == 1

    outcome, error = push.ticket_push(item_id=item.pk, backend=proxied_backend)

    assert (outcome, error) == ("updated", "")
    tickets = redmine_admin.issues_marked(marker)
    assert len(tickets) == 1
    assert reload(item).ticket_link.key == str(tickets[0]["id"])
    assert reload(item).ticket_link.state == TicketSyncState.SYNCED


def test_it_converges_after_an_outage_during_a_burst_of_changes(
    proxied_backend, proxy, redmine_admin
):
    items = [make_item(title=f"Follow-up {n}") for n in range(6)]
    ids = [item.pk for item in items]
    push.tickets_push(item_ids=ids[:3], backend=proxied_backend)

    with proxy.mode_set("down"):
        for n, item in enumerate(items):
            services.action_item_update(
                item=reload(item), actor=WEB, title=f"Follow-up {n} (revised)", status="in_progress"
            )
            services.action_item_update(item=reload(item), actor=WEB, priority="P3")
        report = push.tickets_push(item_ids=ids, backend=proxied_backend)
        assert report.failed == 6
        assert set(TicketLink.objects.values_list("state", flat=True)) == {TicketSyncState.FAILING}
        for item in items[:2]:
            services.action_item_update(item=reload(item), actor=WEB, status="done")

    report = push.tickets_push(item_ids=ids, backend=proxied_backend)

    assert (report.created, report.updated, report.failed) == (3, 3, 0)
    for n, item in enumerate(items):
        item = reload(item)
        assert item.ticket_link.state == TicketSyncState.SYNCED
        tickets = redmine_admin.issues_marked(push.ticket_marker(item.pk))
        assert len(tickets) == 1, f"item {n} has {len(tickets)} tickets"
        issue = redmine_admin.issue(item.ticket_link.key)
        assert issue["subject"] == f"Follow-up {n} (revised)"
        assert issue["priority"]["name"] == "Normal"
        assert issue["status"]["name"] == ("Closed" if n < 2 else "In Progress")


def test_it_applies_changes_made_in_redmine(redmine_backend, redmine_admin):
    item = make_item()
    push.tickets_push(item_ids=[item.pk])
    key = reload(item).ticket_link.key

    redmine_admin.update(
        key,
        status_id=redmine_admin.id_of("issue_statuses", "Resolved"),
        due_date="2030-05-15",
        assigned_to_id="",
    )
    report = pull.tickets_poll()

    assert report.error == ""
    assert report.changed == 1
    item = reload(item)
    assert (item.status, item.deadline, item.owner) == ("done", dt.date(2030, 5, 15), None)
    assert item.completed_at is not None
    changes = ActionItemChange.objects.filter(item=item, source=ChangeSource.TICKET)
    assert {c.field for c in changes} == {"status", "completed_at", "deadline", "owner"}
    assert {c.actor_label for c in changes} == {f"redmine {key}"}
    # Taken back, not pushed back: the ticket already says so.
    assert item.ticket_link.state == TicketSyncState.SYNCED


def test_it_does_not_take_its_own_pushes_back(redmine_backend):
    item = make_item(status="blocked")
    push.tickets_push(item_ids=[item.pk])
    services.action_item_update(item=reload(item), actor=WEB, deadline=dt.date(2030, 6, 1))
    push.tickets_push(item_ids=[item.pk])

    report = pull.tickets_poll()
    again = pull.tickets_poll()

    assert (report.changed, again.changed) == (0, 0)
    assert not ActionItemChange.objects.filter(item=item, source=ChangeSource.TICKET).exists()
    assert reload(item).status == "blocked"


def test_it_keeps_the_later_change_when_both_sides_changed(redmine_backend, redmine_admin):
    item = make_item()
    push.tickets_push(item_ids=[item.pk])
    key = reload(item).ticket_link.key
    redmine_admin.update(key, status_id=redmine_admin.id_of("issue_statuses", "Feedback"))
    # A second later, here: the tracker's change is the more recent one.
    with_later_clock = timezone.now() + dt.timedelta(seconds=2)
    services.action_item_update(item=reload(item), actor=WEB, status="in_progress")
    ActionItemChange.objects.filter(item=item, field="status").update(at=with_later_clock)

    pull.tickets_poll()

    assert reload(item).status == "in_progress"
    assert reload(item).ticket_link.state == TicketSyncState.PENDING
    push.tickets_push(item_ids=[item.pk])
    assert redmine_admin.issue(key)["status"]["name"] == "In Progress"


def test_it_takes_the_remote_change_when_it_is_the_later_one(redmine_backend, redmine_admin):
    item = make_item()
    push.tickets_push(item_ids=[item.pk])
    key = reload(item).ticket_link.key
    services.action_item_update(item=reload(item), actor=WEB, status="in_progress")
    ActionItemChange.objects.filter(item=item, field="status").update(
        at=timezone.now() - dt.timedelta(minutes=5)
    )
    redmine_admin.update(key, status_id=redmine_admin.id_of("issue_statuses", "Rejected"))

    pull.tickets_poll()

    assert reload(item).status == "cancelled"


def test_an_owner_redmine_cannot_assign_stays_the_items_owner(redmine_backend, redmine_admin):
    outsider = redmine_admin.create_user()
    item = make_item(owner=services.person_get_or_create(email=outsider["mail"]))

    assert push.ticket_push(item_id=item.pk) == ("created", "")
    key = reload(item).ticket_link.key
    assert "assigned_to" not in redmine_admin.issue(key)
    services.action_item_update(item=reload(item), actor=WEB, title="Breaker, revised")
    assert push.ticket_push(item_id=item.pk) == ("updated", "")

    assert (pull.tickets_poll().changed, pull.tickets_poll().changed) == (0, 0)
    assert reload(item).owner.email == outsider["mail"]
    assert reload(item).ticket_link.state == TicketSyncState.SYNCED


def test_it_links_an_existing_ticket_instead_of_creating_one(redmine_backend, redmine_admin):
    issue = redmine_admin.create(subject="Filed by hand")
    # Redmine ignores a status given at creation.
    redmine_admin.update(
        issue["id"], status_id=redmine_admin.id_of("issue_statuses", "In Progress")
    )
    item = make_item()

    link = pull.ticket_link_existing(
        item=reload(item), reference=f"{redmine_admin.url}/issues/{issue['id']}"
    )
    push.tickets_push(item_ids=[item.pk])

    assert link.key == str(issue["id"])
    assert reload(item).status == "in_progress"
    remote = redmine_admin.issue(link.key)
    assert remote["subject"] == "Add circuit breaker to payment client"
    assert remote["description"].rstrip().endswith(f"[{push.ticket_marker(item.pk)}]")
    assert redmine_admin.issues_marked(push.ticket_marker(item.pk)) != []


def test_the_command_pushes_pending_items_and_reads_back(redmine_backend, redmine_admin, capsys):
    items = [make_item(title=f"Item {n}") for n in range(3)]

    call_command("sync_tickets", "--pull")

    out = capsys.readouterr().out
    assert "redmine: 3 created, 0 updated, 0 unchanged, 0 failed, 0 skipped" in out
    assert "tickets read back" in out
    for item in items:
        assert len(redmine_admin.issues_marked(push.ticket_marker(item.pk))) == 1


def test_the_command_dry_run_sends_nothing(redmine_backend, redmine_admin, capsys):
    item = make_item()

    call_command("sync_tickets", "--dry-run")

    assert f"item {item.pk}: would create a ticket" in capsys.readouterr().out
    assert redmine_admin.issues_marked(push.ticket_marker(item.pk)) == []
    assert reload(item).ticket_link.key == ""


def test_the_command_exits_non_zero_when_an_item_fails(redmine_settings, settings, capsys):
    from tracker.ticketing import reset_backend

    settings.REDMINE_API_KEY = "not-a-key"
    reset_backend()
    make_item()

    with pytest.raises(SystemExit) as exited:
        call_command("sync_tickets")

    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert "1 failed" in captured.out
    assert "401" in captured.err
    assert "not-a-key" not in captured.err + captured.out

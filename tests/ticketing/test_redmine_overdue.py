"""Overdue items against a real Redmine: it refuses a due date before the start
date, and gives a new issue today's date as its start, so every ticket is created
with the earlier of today and its due date as start date."""

import datetime as dt
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from tracker import services
from tracker.models import ActionItem, ActionItemChange, ChangeSource, TicketSyncState
from tracker.ticketing import pull, push

from .fakes import make_item

pytestmark = [pytest.mark.django_db, pytest.mark.redmine]

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "INC-2024-0142.json"
WEB = services.Actor(source=ChangeSource.WEB, label="tester")


def sample_items() -> list[ActionItem]:
    call_command("import_incidents", str(SAMPLE))
    items = list(
        ActionItem.objects.filter(incident__external_id="INC-2024-0142")
        .select_related("ticket_link")
        .order_by("pk")
    )
    assert len(items) == 5
    return items


def test_the_samples_overdue_items_get_tickets_due_when_they_were(redmine_syncbot, redmine_admin):
    items = sample_items()
    assert all(item.deadline < timezone.localdate() for item in items)

    report = push.tickets_push(item_ids=[item.pk for item in items])

    assert (report.created, report.failed, report.errors) == (5, 0, {})
    for item in items:
        link = link_of(item)
        assert link.state == TicketSyncState.SYNCED
        issue = redmine_admin.issue(link.key)
        assert issue["due_date"] == item.deadline.isoformat()
        assert issue["start_date"] == item.deadline.isoformat()
        assert issue["subject"] == item.title
    assert (pull.tickets_poll().changed, pull.tickets_poll().changed) == (0, 0)
    assert not ActionItemChange.objects.filter(source=ChangeSource.TICKET).exists()


def test_a_ticket_due_later_starts_today(redmine_syncbot, redmine_admin, time_machine):
    # The day the sample's first deadline passed: two items overdue, three not yet.
    time_machine.move_to(dt.datetime(2024, 1, 25, 9, 0, tzinfo=dt.UTC), tick=True)
    items = sample_items()

    report = push.tickets_push(item_ids=[item.pk for item in items])

    assert (report.created, report.failed) == (5, 0)
    starts = {
        item.deadline.isoformat(): redmine_admin.issue(link_of(item).key)["start_date"]
        for item in items
    }
    assert starts == {
        "2024-01-22": "2024-01-22",
        "2024-01-29": "2024-01-25",
        "2024-02-01": "2024-01-25",
        "2024-02-05": "2024-01-25",
        "2024-02-15": "2024-01-25",
    }


def test_a_deadline_moved_before_the_tickets_start_moves_the_start(redmine_syncbot, redmine_admin):
    item = make_item(deadline=dt.date(2030, 3, 1))
    push.tickets_push(item_ids=[item.pk])
    key = link_of(item).key
    assert redmine_admin.issue(key)["start_date"] == timezone.localdate().isoformat()

    services.action_item_update(
        item=ActionItem.objects.get(pk=item.pk), actor=WEB, deadline=dt.date(2024, 1, 10)
    )
    outcome, error = push.ticket_push(item_id=item.pk)

    assert (outcome, error) == ("updated", "")
    issue = redmine_admin.issue(key)
    assert (issue["start_date"], issue["due_date"]) == ("2024-01-10", "2024-01-10")


def test_a_later_deadline_leaves_the_start_someone_set_alone(redmine_syncbot, redmine_admin):
    item = make_item(deadline=dt.date(2030, 3, 1))
    push.tickets_push(item_ids=[item.pk])
    key = link_of(item).key
    redmine_admin.update(key, start_date="2029-12-01")

    services.action_item_update(
        item=ActionItem.objects.get(pk=item.pk), actor=WEB, deadline=dt.date(2030, 6, 1)
    )
    push.ticket_push(item_id=item.pk)

    issue = redmine_admin.issue(key)
    assert (issue["start_date"], issue["due_date"]) == ("2029-12-01", "2030-06-01")


def link_of(item: ActionItem):
    return ActionItem.objects.select_related("ticket_link").get(pk=item.pk).ticket_link

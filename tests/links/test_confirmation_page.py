"""A link shows the item and asks; only a POST from the confirmation page acts."""

import datetime as dt

import pytest

from tests import factories
from tracker.models import ActionItemChange, ChangeSource, Status

from .helpers import NOW, TODAY, link, state

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("action", "button"), [("done", "Mark done"), ("snooze", "Snooze")], ids=["done", "snooze"]
)
def test_it_asks_before_acting_on_get(client, item, action, button):
    before = state(item)

    response = client.get(link(item, action))

    assert response.status_code == 200
    assert response.templates[0].name == "tracker/email_action.html"
    body = response.content.decode()
    assert "Add alerting on pool exhaustion" in body
    assert "INC-LINKS-0001" in body
    assert '<form method="post">' in body
    assert f">{button}</button>" in body
    assert state(item) == before


def test_it_says_how_long_a_snooze_lasts(client, item, settings):
    settings.TRACKER_SNOOZE_DAYS = 5

    response = client.get(link(item, "snooze"))

    assert "Snooze this item&#x27;s reminders for 5 days?" in response.content.decode()


def test_it_marks_done_on_post(client, item):
    response = client.post(link(item, "done"))

    assert response.status_code == 200
    assert "Marked done" in response.content.decode()
    assert "<form" not in response.content.decode()
    item.refresh_from_db()
    assert item.status == Status.DONE
    assert item.completed_at == NOW
    assert item.next_reminder_on is None
    change = ActionItemChange.objects.get(item=item, field="status")
    assert (change.old_value, change.new_value) == ("open", "done")
    assert change.source == ChangeSource.REMINDER
    assert "owner@example.com" in change.actor_label
    assert change.actor is None


def test_it_snoozes_on_post(client, item, settings):
    settings.TRACKER_SNOOZE_DAYS = 7
    until = TODAY + dt.timedelta(days=7)

    response = client.post(link(item, "snooze"))

    assert response.status_code == 200
    assert f"Snoozed until {until:%Y-%m-%d}" in response.content.decode()
    item.refresh_from_db()
    assert item.status == Status.OPEN
    assert item.snoozed_until == until
    assert item.next_reminder_on > until
    change = ActionItemChange.objects.get(item=item, field="snoozed_until")
    assert (change.old_value, change.new_value) == (None, until.isoformat())
    assert change.source == ChangeSource.REMINDER
    assert "owner@example.com" in change.actor_label


def test_it_keeps_done_items_done_when_the_link_is_used_twice(client, item):
    client.post(link(item, "done"))
    before = state(item)

    response = client.post(link(item, "done"))

    assert response.status_code == 200
    assert state(item) == before


def test_it_shows_an_item_read_only_without_signing_in(client, item):
    before = state(item)

    response = client.get(link(item, "open"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Add alerting on pool exhaustion" in body
    assert "Alert at 70% and 85%." in body
    assert "owner@example.com" in body.lower()
    assert "<form" not in body
    assert not response.wsgi_request.user.is_authenticated
    assert state(item) == before


def test_it_changes_nothing_on_post_to_an_open_link(client, item):
    before = state(item)

    response = client.post(link(item, "open"))

    assert response.status_code == 200
    assert "<form" not in response.content.decode()
    assert state(item) == before


def test_it_lets_the_escalation_contact_open_an_item_they_do_not_own(client, item):
    response = client.get(link(item, "open", recipient="director@example.com"))

    assert response.status_code == 200
    assert "<form" not in response.content.decode()


def test_it_refuses_to_mark_a_cancelled_item_done(client, owner):
    item = factories.ActionItemFactory(owner=owner, status=Status.CANCELLED)
    before = state(item)

    response = client.post(link(item, "done"))

    assert response.status_code == 400
    assert "cancelled" in response.content.decode()
    assert state(item) == before

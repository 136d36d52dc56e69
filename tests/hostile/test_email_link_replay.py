"""A "mark done" (or "snooze") link acts once per state of its item.

A link carries the item's version when its email was written and acts only on that
version. Before, the same link marked an item done again after its owner reopened it,
as often as it was followed within its two weeks.
"""

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests import factories
from tracker import services
from tracker.links import action_url, read_action_token
from tracker.models import ActionItem, ActionItemChange, Notification, ReminderStage, Status
from tracker.reminders.messages import reminder_message

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def item() -> ActionItem:
    owner = factories.PersonFactory(email="owner@example.com")
    return factories.make_action_item(
        owner=owner, title="Add alerting", deadline=NOW.date() + dt.timedelta(days=1)
    )


def email_link(item: ActionItem, action: str) -> str:
    """The path of the link an email written now carries."""
    item.refresh_from_db()
    url = action_url(
        item_id=item.pk, version=item.version, recipient=item.owner.email, action=action
    )
    return urlsplit(url).path


def reopen(item: ActionItem) -> None:
    item.refresh_from_db()
    services.action_item_update(
        item=item, actor=services.Actor.system("owner"), status=Status.IN_PROGRESS
    )


def snapshot(item: ActionItem) -> tuple:
    item.refresh_from_db()
    history = ActionItemChange.objects.filter(item=item).count()
    return item.status, item.version, item.snoozed_until, item.completed_at, history


def assert_no_longer_acts(response) -> None:
    assert response.status_code == 409
    body = response.content.decode()
    assert "This link no longer acts: it was already used, or the item changed" in body
    assert "<form" not in body
    assert "Add alerting" in body  # the item, as it is now


def test_a_done_link_does_not_mark_the_item_done_again_after_it_is_reopened(item):
    path = email_link(item, "done")
    assert Client().post(path).status_code == 200
    reopen(item)
    before = snapshot(item)

    for response in (Client().get(path), Client().post(path)):
        assert_no_longer_acts(response)
    assert snapshot(item) == before
    assert before[0] == Status.IN_PROGRESS


def test_a_done_link_followed_twice_says_it_was_used(item):
    path = email_link(item, "done")
    Client().post(path)
    before = snapshot(item)

    assert_no_longer_acts(Client().post(path))
    assert snapshot(item) == before


def test_a_snooze_link_snoozes_once(item, time_machine):
    path = email_link(item, "snooze")
    Client().post(path)
    before = snapshot(item)
    time_machine.move_to(NOW + dt.timedelta(days=6), tick=False)

    assert_no_longer_acts(Client().post(path))
    assert snapshot(item) == before


def test_a_link_no_longer_acts_once_someone_changed_the_item(item):
    path = email_link(item, "done")
    item.refresh_from_db()
    services.action_item_update(
        item=item, actor=services.Actor.system(), deadline=NOW.date() + dt.timedelta(days=30)
    )
    before = snapshot(item)

    assert_no_longer_acts(Client().get(path))
    assert_no_longer_acts(Client().post(path))
    assert snapshot(item) == before


def test_an_open_link_still_shows_the_item_after_it_changed(item):
    path = email_link(item, "open")
    reopen(item)

    response = Client().get(path)

    assert response.status_code == 200
    assert "Add alerting" in response.content.decode()


def test_a_newer_email_carries_a_link_that_acts(item):
    Client().post(email_link(item, "done"))
    reopen(item)

    response = Client().post(email_link(item, "done"))

    assert response.status_code == 200
    item.refresh_from_db()
    assert item.status == Status.DONE


def test_the_reminder_email_binds_its_links_to_the_items_version(item, settings):
    settings.TRACKER_BASE_URL = "https://tracker.example.com"
    reopen(item)
    item.refresh_from_db()
    due_soon = Notification(
        item=item,
        recipient="owner@example.com",
        kind=ReminderStage.DUE_SOON,
        stage="due_soon-1",
        deadline=item.deadline,
    )

    message = reminder_message(recipient="owner@example.com", notifications=[due_soon], now=NOW)

    tokens = re.findall(r"https://tracker\.example\.com/r/([^/\s]+)/", message.body)
    assert {read_action_token(t).action for t in tokens} == {"open", "done", "snooze"}
    assert {read_action_token(t).version for t in tokens} == {item.version}

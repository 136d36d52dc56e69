"""The weekly digest to managers: who gets it, what it counts, and once a week."""

import datetime as dt
import random

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail

from tests import factories
from tracker import tasks
from tracker.models import DeliveryState, ManagerDigest, Status
from tracker.services import Actor, action_item_update

from .helpers import UTC, make_item, make_person

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 5, 12, 8, tzinfo=UTC)  # a Monday
CREATED = NOW - dt.timedelta(days=60)


def date(iso: str) -> dt.date:
    return dt.date.fromisoformat(iso)


def send(moment: dt.datetime = NOW) -> int:
    with time_machine.travel(moment, tick=False):
        return tasks.send_manager_digest()


def section(body: str, heading: str) -> list[str]:
    """The lines under `heading` in the text part, up to the next blank line."""
    lines = body.split(heading + "\n", 1)[1].splitlines()
    return [line.strip() for line in lines[: lines.index("")]]


@pytest.fixture
def recipients(settings, manager):
    settings.TRACKER_MANAGER_DIGEST = ["Director@Example.com", " "]
    group = Group.objects.get(name=settings.TRACKER_MANAGERS_GROUP)
    group.user_set.add(
        factories.UserFactory(username="former", is_active=False),
        factories.UserFactory(username="no-email", email=""),
    )
    factories.UserFactory(username="not-a-manager")
    return sorted(["director@example.com", manager.email.lower()])


def test_it_sends_the_digest_to_the_setting_and_the_active_managers(recipients):
    make_item(created=CREATED, deadline=date("2025-05-01"), owner=make_person())

    assert send() == 2

    assert sorted(m.to[0] for m in mail.outbox) == recipients
    for message in mail.outbox:
        assert message.subject == "Follow-ups this week: 1 open, 1 overdue, 0 due this week"
        [(html, mimetype)] = message.alternatives
        assert mimetype == "text/html" and "Follow-ups, week of 2025-05-12" in html


def test_it_counts_open_overdue_and_due_this_week_by_owner_and_priority(recipients):
    ann = make_person("ann@example.com")
    bob = make_person("bob@example.com")
    make_item(created=CREATED, owner=ann, priority="P1", deadline=date("2025-05-01"))
    make_item(created=CREATED, owner=ann, priority="P2", deadline=date("2025-05-14"))
    done = make_item(created=CREATED, owner=ann, priority="P3", deadline=date("2025-05-02"))
    with time_machine.travel(CREATED, tick=False):
        action_item_update(item=done, actor=Actor.system(), status=Status.DONE)
    make_item(created=CREATED, owner=bob, priority="P1", deadline=date("2025-04-20"))
    make_item(created=CREATED, owner=bob, priority="P2", deadline=date("2025-05-20"))
    nobody_a = make_item(
        created=CREATED, owner=None, priority="P0", deadline=date("2025-05-13"), title="Nobody A"
    )
    nobody_b = make_item(
        created=CREATED, owner=None, priority="P2", deadline=date("2025-05-05"), title="Nobody B"
    )

    send()

    body = mail.outbox[0].body
    assert mail.outbox[0].subject == "Follow-ups this week: 6 open, 3 overdue, 2 due this week"
    assert "Open: 6   Overdue: 3   Due this week: 2   Unassigned: 2" in body
    assert sorted(section(body, "By owner (open / overdue / due this week):")) == [
        "(unassigned): 2 / 1 / 1",
        "ann@example.com: 2 / 1 / 1",
        "bob@example.com: 2 / 1 / 0",
    ]
    assert section(body, "By priority (open / overdue / due this week):") == [
        "P0: 1 / 0 / 1",
        "P1: 2 / 2 / 0",
        "P2: 3 / 1 / 1",
    ]
    assert section(body, "Unassigned items:") == [
        f"[P2] Nobody B ({nobody_b.incident.external_id}, due 2025-05-05)",
        f"[P0] Nobody A ({nobody_a.incident.external_id}, due 2025-05-13)",
    ]


def test_it_lists_the_ten_oldest_overdue_items_oldest_first(recipients):
    owner = make_person("ann@example.com")
    deadlines = [date("2025-04-01") + dt.timedelta(days=n) for n in range(12)]
    random.Random(4).shuffle(deadlines)
    for deadline in deadlines:
        make_item(created=CREATED, owner=owner, deadline=deadline, title=f"Due {deadline}")
    make_item(created=CREATED, owner=owner, deadline=date("2025-05-12"), title="Due today")

    send()

    listed = section(mail.outbox[0].body, "Oldest overdue items:")
    assert [line.split("]", 1)[1].split(" — ")[0].strip() for line in listed] == [
        f"Due {date('2025-04-01') + dt.timedelta(days=n)}" for n in range(10)
    ]


def test_it_sends_the_digest_once_a_week(recipients):
    make_item(created=CREATED, deadline=date("2025-05-01"), owner=make_person())

    assert send() == 2
    assert send(NOW + dt.timedelta(hours=1)) == 0
    assert send(NOW + dt.timedelta(days=3)) == 0
    assert len(mail.outbox) == 2
    assert send(NOW + dt.timedelta(days=7)) == 2

    assert len(mail.outbox) == 4
    assert sorted(ManagerDigest.objects.values_list("period_start", "state")) == [
        (date("2025-05-12"), DeliveryState.SENT),
        (date("2025-05-12"), DeliveryState.SENT),
        (date("2025-05-19"), DeliveryState.SENT),
        (date("2025-05-19"), DeliveryState.SENT),
    ]


def test_it_counts_overdue_and_due_soon_on_each_owners_calendar(recipients, settings):
    settings.TRACKER_DUE_SOON_DAYS = 3
    # 08:00 UTC on Monday the 12th is 22:00 on Sunday the 11th in Honolulu.
    west = make_person("west@example.com", time_zone="Pacific/Honolulu")
    make_item(created=CREATED, owner=west, deadline=date("2025-05-11"), title="West, due today")
    make_item(created=CREATED, owner=west, deadline=date("2025-05-10"), title="West, late")
    make_item(created=CREATED, owner=make_person(), deadline=date("2025-05-11"), title="UTC, late")
    make_item(created=CREATED, owner=make_person(), deadline=date("2025-05-15"), title="UTC, later")

    send()

    body = mail.outbox[0].body
    assert mail.outbox[0].subject == "Follow-ups this week: 4 open, 2 overdue, 1 due this week"
    assert "west@example.com: 2 / 1 / 1" in section(
        body, "By owner (open / overdue / due this week):"
    )
    listed = section(body, "Oldest overdue items:")
    assert [line.split("]", 1)[1].split(" — ")[0].strip() for line in listed] == [
        "West, late",
        "UTC, late",
    ]

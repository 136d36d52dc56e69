"""Which stage goes to whom, on which local day and from which hour."""

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from tracker import reminders
from tracker.models import DeliveryState, Notification, Status
from tracker.services import Actor, action_item_snooze, action_item_update

from .helpers import (
    UTC,
    daily_sweeps,
    hourly_sweeps,
    local,
    make_incident,
    make_item,
    make_person,
    sweep_and_deliver,
)

pytestmark = pytest.mark.django_db

DEADLINE = dt.date(2025, 3, 20)  # a Thursday
SYSTEM = Actor.system("test")


def day(offset: int) -> dt.date:
    return DEADLINE + dt.timedelta(days=offset)


def at(offset: int, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day(offset), dt.time(hour), tzinfo=UTC)


def test_it_sends_each_owner_stage_on_its_day_and_nothing_between(every_day):
    owner = make_person("ann@example.com")
    make_item(created=at(-19), deadline=DEADLINE, owner=owner, priority="P4")

    sent = daily_sweeps(day(-19), day(21))

    assert sent == {
        day(-7): [("ann@example.com", "due_soon-7")],
        day(-1): [("ann@example.com", "due_soon-1")],
        day(0): [("ann@example.com", "due_today")],
        day(1): [("ann@example.com", "overdue+1")],
        day(8): [("ann@example.com", "overdue+8")],
        day(15): [("ann@example.com", "overdue+15")],
    }
    assert [m.to for m in mail.outbox] == [["ann@example.com"]] * 6


@pytest.mark.parametrize(
    ("priority", "escalation_days"),
    [
        ("P0", [1, 8, 15, 22]),
        ("P1", [3, 10, 17, 24]),
        ("P2", [7, 14, 21]),
        ("P3", [14, 21]),
        ("P4", []),
    ],
)
def test_it_escalates_after_the_priority_grace_and_repeats_weekly(
    every_day, priority, escalation_days
):
    owner = make_person("ann@example.com", manager_email="Boss@Example.com")
    make_item(created=at(-3), deadline=DEADLINE, owner=owner, priority=priority)

    sent = daily_sweeps(day(-3), day(24))

    escalations = {
        d: stages
        for d, pairs in sent.items()
        if (stages := [s for r, s in pairs if r != owner.email])
    }
    assert escalations == {day(n): [f"escalation+{n}"] for n in escalation_days}
    assert {r for pairs in sent.values() for r, _ in pairs} <= {
        "ann@example.com",
        "boss@example.com",
    }


def test_it_sends_only_the_current_stage_to_an_item_first_seen_three_days_before(every_day):
    owner = make_person("ann@example.com")
    make_item(created=at(-3, hour=8), deadline=DEADLINE, owner=owner)

    assert sweep_and_deliver(at(-3)) == [("ann@example.com", "due_soon-7")]
    assert sweep_and_deliver(at(-2)) == []
    assert len(mail.outbox) == 1
    assert Notification.objects.count() == 1


def test_it_sends_one_overdue_and_one_escalation_to_an_item_created_100_days_late(every_day):
    owner = make_person("ann@example.com", manager_email="boss@example.com")
    make_item(created=at(100, hour=8), deadline=DEADLINE, owner=owner, priority="P2")

    assert sweep_and_deliver(at(100)) == [
        ("ann@example.com", "overdue+99"),
        ("boss@example.com", "escalation+98"),
    ]
    assert sweep_and_deliver(at(101)) == []
    assert Notification.objects.count() == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.com", "boss@example.com"]


def test_it_waits_for_the_remind_hour_in_the_owner_time_zone(every_day):
    owner = make_person("ann@example.com", time_zone="America/New_York")
    make_item(created=at(-10), deadline=DEADLINE, owner=owner, priority="P4")

    assert sweep_and_deliver(local("2025-03-13 08:59", "America/New_York")) == []
    assert sweep_and_deliver(local("2025-03-13 09:00", "America/New_York")) == [
        ("ann@example.com", "due_soon-7")
    ]


def test_it_uses_each_owner_local_day():
    deadline = dt.date(2025, 6, 11)  # a Wednesday
    auckland = make_person("kiri@example.com", time_zone="Pacific/Auckland")
    los_angeles = make_person("lou@example.com", time_zone="America/Los_Angeles")
    for owner in (auckland, los_angeles):
        make_item(
            created=dt.datetime(2025, 6, 3, 12, tzinfo=UTC),
            deadline=deadline,
            owner=owner,
            priority="P4",
        )

    first_sent = hourly_sweeps(
        dt.datetime(2025, 6, 3, 13, tzinfo=UTC), dt.datetime(2025, 6, 12, 23, tzinfo=UTC)
    )

    assert first_sent[("kiri@example.com", "due_today")] == dt.datetime(2025, 6, 10, 21, tzinfo=UTC)
    assert first_sent[("lou@example.com", "due_today")] == dt.datetime(2025, 6, 11, 16, tzinfo=UTC)
    for owner in (auckland, los_angeles):
        tz = zoneinfo.ZoneInfo(owner.time_zone)
        sent_locally = {
            stage: moment.astimezone(tz).replace(tzinfo=None)
            for (recipient, stage), moment in first_sent.items()
            if recipient == owner.email
        }
        assert sent_locally == {
            "due_soon-7": dt.datetime(2025, 6, 4, 9),
            "due_soon-1": dt.datetime(2025, 6, 10, 9),
            "due_today": dt.datetime(2025, 6, 11, 9),
            "overdue+1": dt.datetime(2025, 6, 12, 9),
        }


@pytest.mark.parametrize(
    ("created", "deadline", "expected_utc"),
    [
        # Berlin moves to summer time on Sunday 30 March 2025.
        (
            "2025-03-20 12:00",
            dt.date(2025, 4, 1),
            {
                "due_soon-7": "2025-03-25 08:00",  # 09:00 CET
                "due_soon-1": "2025-03-31 07:00",  # 09:00 CEST
                "due_today": "2025-04-01 07:00",
            },
        ),
        # And back to winter time on Sunday 26 October 2025.
        (
            "2025-10-15 12:00",
            dt.date(2025, 10, 28),
            {
                "due_soon-7": "2025-10-21 07:00",  # 09:00 CEST
                "due_soon-1": "2025-10-27 08:00",  # 09:00 CET
                "due_today": "2025-10-28 08:00",
            },
        ),
    ],
)
def test_it_keeps_the_local_day_across_a_daylight_saving_change(created, deadline, expected_utc):
    owner = make_person("berta@example.com", time_zone="Europe/Berlin")
    start = local(created)
    make_item(created=start, deadline=deadline, owner=owner, priority="P4")

    first_sent = hourly_sweeps(
        start + dt.timedelta(hours=1), local(deadline.isoformat() + " 23:00")
    )

    assert first_sent == {
        ("berta@example.com", stage): local(moment) for stage, moment in expected_utc.items()
    }


def test_it_sends_a_weekend_stage_on_monday_as_the_stage_current_then():
    owner = make_person("ann@example.com")
    saturday = dt.date(2025, 6, 14)
    make_item(
        created=dt.datetime(2025, 6, 2, 8, tzinfo=UTC),
        deadline=saturday,
        owner=owner,
        priority="P4",
    )

    first_sent = hourly_sweeps(
        dt.datetime(2025, 6, 2, 9, tzinfo=UTC), dt.datetime(2025, 6, 17, 23, tzinfo=UTC)
    )

    # due_soon-7 falls on Saturday 7 June and due_today on Saturday 14 June.
    assert first_sent == {
        ("ann@example.com", "due_soon-7"): dt.datetime(2025, 6, 9, 9, tzinfo=UTC),
        ("ann@example.com", "due_soon-1"): dt.datetime(2025, 6, 13, 9, tzinfo=UTC),
        ("ann@example.com", "overdue+1"): dt.datetime(2025, 6, 16, 9, tzinfo=UTC),
    }
    assert all(m.weekday() < 5 for m in first_sent.values())
    assert len(mail.outbox) == 3


def test_it_sends_nothing_for_done_cancelled_unassigned_or_snoozed_items(every_day):
    owner = make_person("ann@example.com", manager_email="boss@example.com")
    done = make_item(created=at(-10), deadline=DEADLINE, owner=owner, priority="P0")
    cancelled = make_item(created=at(-10), deadline=DEADLINE, owner=owner, priority="P0")
    unassigned = make_item(created=at(-10), deadline=DEADLINE, owner=None, priority="P0")
    snoozed = make_item(created=at(-10), deadline=DEADLINE, owner=owner, priority="P0")
    with time_machine.travel(at(-10, hour=11), tick=False):
        action_item_update(item=done, actor=SYSTEM, status=Status.DONE)
        action_item_update(item=cancelled, actor=SYSTEM, status=Status.CANCELLED)
        action_item_snooze(item=snoozed, actor=SYSTEM, days=60)

    sent = daily_sweeps(day(-10), day(30))

    assert sent == {}
    assert mail.outbox == []
    assert Notification.objects.count() == 0
    for item in (done, cancelled, unassigned):
        item.refresh_from_db()
        assert item.next_reminder_on is None


def test_it_resumes_reminders_when_the_snooze_ends(every_day):
    owner = make_person("ann@example.com")
    item = make_item(created=at(-19), deadline=DEADLINE, owner=owner, priority="P4")
    assert daily_sweeps(day(-19), day(-2)) == {day(-7): [("ann@example.com", "due_soon-7")]}
    with time_machine.travel(at(-2, hour=12), tick=False):
        action_item_snooze(item=item, actor=SYSTEM, days=7)  # until day +5

    sent = daily_sweeps(day(-1), day(10))

    assert sent == {
        day(6): [("ann@example.com", "overdue+1")],
        day(8): [("ann@example.com", "overdue+8")],
    }


def test_it_rearms_the_stages_when_the_deadline_changes(every_day):
    owner = make_person("ann@example.com")
    item = make_item(created=at(-1, hour=8), deadline=DEADLINE, owner=owner, priority="P4")
    assert daily_sweeps(day(-1), day(0)) == {
        day(-1): [("ann@example.com", "due_soon-1")],
        day(0): [("ann@example.com", "due_today")],
    }
    new_deadline = day(5)
    with time_machine.travel(at(0, hour=12), tick=False):
        action_item_update(item=item, actor=SYSTEM, deadline=new_deadline)

    sent = daily_sweeps(day(1), day(6))

    assert sent == {
        day(1): [("ann@example.com", "due_soon-7")],
        day(4): [("ann@example.com", "due_soon-1")],
        day(5): [("ann@example.com", "due_today")],
        day(6): [("ann@example.com", "overdue+1")],
    }
    assert sorted(
        Notification.objects.filter(stage="due_today").values_list("deadline", "state")
    ) == [(DEADLINE, DeliveryState.SENT), (new_deadline, DeliveryState.SENT)]


def test_it_skips_pending_reminders_of_the_old_deadline(every_day):
    owner = make_person("ann@example.com")
    item = make_item(created=at(-1, hour=8), deadline=DEADLINE, owner=owner, priority="P4")
    with time_machine.travel(at(-1), tick=False):
        reminders.sweep(now=timezone.now())  # the row is written, the sender has not run yet
        action_item_update(item=item, actor=SYSTEM, deadline=day(3))
        reminders.deliver_pending(now=timezone.now())

    old = Notification.objects.get(deadline=DEADLINE)
    assert (old.stage, old.state) == ("due_soon-1", DeliveryState.SKIPPED)
    assert mail.outbox == []
    # The new deadline's current stage (4 days before it) comes with the next sweep.
    assert sweep_and_deliver(at(-1, hour=11)) == [("ann@example.com", "due_soon-7")]
    assert Notification.objects.get(state=DeliveryState.SENT).deadline == day(3)
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("manager_email", "incident_manager", "fallback", "expected"),
    [
        ("Lead@Example.com", "oncall-mgr@example.com", "ops@example.com", "lead@example.com"),
        ("", "OnCall-Mgr@example.com", "ops@example.com", "oncall-mgr@example.com"),
        ("", "", "ops@example.com", "ops@example.com"),
        ("", "", "", None),
    ],
)
def test_it_escalates_to_the_first_contact_in_the_chain(
    every_day, settings, manager_email, incident_manager, fallback, expected
):
    settings.TRACKER_ESCALATION_EMAIL = fallback
    owner = make_person("ann@example.com", manager_email=manager_email)
    make_item(
        created=at(-3),
        deadline=DEADLINE,
        owner=owner,
        priority="P0",
        incident=make_incident(escalation_manager_email=incident_manager),
    )

    sent = sweep_and_deliver(at(1))

    escalation = [("ann@example.com", "overdue+1")]
    if expected:
        escalation.append((expected, "escalation+1"))
    assert sent == sorted(escalation)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(r for r, _ in escalation)


def test_it_resumes_reminders_on_the_owner_local_day_after_the_snooze(every_day):
    owner = make_person("kiri@example.com", time_zone="Pacific/Auckland")
    item = make_item(created=at(-2), deadline=DEADLINE, owner=owner, priority="P4")
    with time_machine.travel(at(-2, hour=12), tick=False):
        action_item_snooze(item=item, actor=SYSTEM, days=7)
    item.refresh_from_db()
    # 12:00 UTC on day -2 is already day -1 in Auckland: seven days from there.
    assert item.snoozed_until == day(6)

    first_sent = hourly_sweeps(at(-2, hour=13), at(9, hour=0))

    # 09:00 on day +7 in Auckland (NZDT, UTC+13) is 20:00 UTC on day +6.
    assert first_sent == {
        ("kiri@example.com", "overdue+1"): at(6, hour=20),
        ("kiri@example.com", "overdue+8"): at(7, hour=20),
    }
    assert not Notification.objects.filter(state=DeliveryState.SKIPPED).exists()

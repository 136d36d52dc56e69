"""Sweeps and deliveries that race, or die halfway, still send each reminder exactly once."""

import datetime as dt
import re
import threading
import time
from collections import Counter

import pytest
import time_machine
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection

from tracker import reminders
from tracker.models import DeliveryState, Notification

from .helpers import UTC, make_item, make_person

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = dt.datetime(2025, 3, 20, 10, tzinfo=UTC)  # a Thursday
LATE = dt.date(2025, 3, 17)  # P0 items three days late: overdue+1 and escalation+1


class CountingBackend(BaseEmailBackend):
    """Records (recipient, item title) for each entry of each digest, from any thread."""

    entries: list[tuple[str, str]] = []
    lock = threading.Lock()

    def send_messages(self, messages):
        time.sleep(0.05)  # a slow server widens the window in which two senders overlap
        with self.lock:
            for message in messages:
                for title in re.findall(r"^\* \[P\d\] (.+)$", message.body, re.M):
                    self.entries.append((message.to[0], title))
        return len(messages)


class WorkerKilled(BaseException):
    """Not an Exception: like a killed process, it skips every error handler."""


class DyingBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise WorkerKilled


@pytest.fixture(autouse=True)
def _counting_email(settings):
    settings.EMAIL_BACKEND = f"{__name__}.CountingBackend"
    CountingBackend.entries = []


def make_items(owners: int = 12, per_owner: int = 2) -> set[tuple[str, str]]:
    """Overdue P0 items; the (recipient, title) pairs that should each be sent once."""
    expected = set()
    for o in range(owners):
        owner = make_person(f"owner{o}@example.com", manager_email=f"manager{o % 3}@example.com")
        for i in range(per_owner):
            title = f"Item {o}-{i}"
            make_item(
                created=NOW - dt.timedelta(days=1),
                deadline=LATE,
                owner=owner,
                priority="P0",
                title=title,
            )
            expected |= {(owner.email, title), (owner.manager_email, title)}
    return expected


def run_in_threads(count: int, work) -> None:
    barrier = threading.Barrier(count)
    errors = []

    def run():
        try:
            barrier.wait(timeout=10)
            work(barrier)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_it_sends_each_reminder_once_when_sweeps_race():
    expected = make_items()

    def sweep_then_deliver(barrier):
        reminders.sweep(now=NOW)
        barrier.wait(timeout=10)  # every sweep done: now every sender races for the rows
        reminders.deliver_pending(now=NOW)

    with time_machine.travel(NOW, tick=False):
        run_in_threads(4, sweep_then_deliver)

    counts = Counter(CountingBackend.entries)
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert Notification.objects.count() == len(expected)
    assert set(Notification.objects.values_list("state", flat=True)) == {DeliveryState.SENT}


def test_it_sends_each_reminder_once_when_whole_runs_overlap():
    expected = make_items()

    def sweep_and_deliver(barrier):
        reminders.sweep(now=NOW)
        reminders.deliver_pending(now=NOW)

    with time_machine.travel(NOW, tick=False):
        run_in_threads(4, sweep_and_deliver)

    counts = Counter(CountingBackend.entries)
    assert set(counts) == expected
    assert set(counts.values()) == {1}


def test_it_sends_once_after_a_sender_died_between_claim_and_send(settings):
    expected = make_items(owners=2, per_owner=1)
    lease = dt.timedelta(seconds=settings.TRACKER_SEND_LEASE_SECONDS)

    settings.EMAIL_BACKEND = f"{__name__}.DyingBackend"
    with time_machine.travel(NOW, tick=False), pytest.raises(WorkerKilled):
        reminders.sweep(now=NOW)
        reminders.deliver_pending(now=NOW)
    claimed = set(
        Notification.objects.filter(state=DeliveryState.SENDING).values_list(
            "recipient", "item__title"
        )
    )
    assert claimed  # the first recipient's rows, claimed and never sent

    settings.EMAIL_BACKEND = f"{__name__}.CountingBackend"
    for moment in (
        NOW + dt.timedelta(minutes=5),  # the dead sender's lease still holds
        NOW + lease + dt.timedelta(minutes=1),
        NOW + lease + dt.timedelta(minutes=2),
        NOW + dt.timedelta(hours=1),
    ):
        with time_machine.travel(moment, tick=False):
            reminders.sweep(now=moment)
            reminders.deliver_pending(now=moment)
        if moment == NOW + dt.timedelta(minutes=5):
            assert set(CountingBackend.entries) == expected - claimed

    counts = Counter(CountingBackend.entries)
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert set(Notification.objects.values_list("state", flat=True)) == {DeliveryState.SENT}

"""One digest per recipient, its content, and what happens when sending fails."""

import datetime as dt
import re
import smtplib

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.urls import reverse
from django.utils import timezone

from tracker import reminders
from tracker.links import read_action_token
from tracker.models import ActionItemChange, ChangeSource, DeliveryState, Notification, Status
from tracker.services import Actor, action_item_snooze, action_item_update

from .helpers import UTC, make_incident, make_item, make_person, sweep_and_deliver

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 3, 20)  # a Thursday
NOW = dt.datetime(2025, 3, 20, 10, tzinfo=UTC)
BASE_URL = "https://tracker.example.org"
SYSTEM = Actor.system("test")


class FailingBackend(BaseEmailBackend):
    calls = 0

    def send_messages(self, messages):
        type(self).calls += 1
        raise smtplib.SMTPServerDisconnected("connection lost")


@pytest.fixture(autouse=True)
def _base_url(settings):
    settings.TRACKER_BASE_URL = BASE_URL
    FailingBackend.calls = 0


@pytest.fixture
def failing_email(settings):
    settings.EMAIL_BACKEND = f"{__name__}.FailingBackend"


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def sweep(moment: dt.datetime = NOW) -> None:
    with time_machine.travel(moment, tick=False):
        reminders.sweep(now=timezone.now())


def deliver(moment: dt.datetime = NOW) -> reminders.SweepReport:
    with time_machine.travel(moment, tick=False):
        return reminders.deliver_pending(now=timezone.now())


def pending_item(email: str = "ann@example.com", **fields):
    """An item whose due_today reminder is written and not yet sent."""
    owner = make_person(email, **fields.pop("person", {}))
    item = make_item(created=NOW - dt.timedelta(hours=2), deadline=TODAY, owner=owner, **fields)
    sweep()
    assert Notification.objects.filter(item=item, state=DeliveryState.PENDING).count() == 1
    return item


def test_it_sends_one_digest_per_recipient_grouped_by_stage_overdue_first():
    ann = make_person("ann@example.com")
    created = NOW - dt.timedelta(hours=2)
    incident = make_incident()
    soon = make_item(
        created=created, deadline=days(1), owner=ann, title="Add alert", incident=incident
    )
    due = make_item(
        created=created, deadline=TODAY, owner=ann, title="Write runbook", priority="P1"
    )
    late = make_item(
        created=created, deadline=days(-3), owner=ann, title="Fix retry", priority="P3"
    )
    make_item(created=created, deadline=days(1), owner=make_person("bob@example.com"))

    sweep_and_deliver(NOW)

    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.com", "bob@example.com"]
    message = next(m for m in mail.outbox if m.to == ["ann@example.com"])
    assert message.subject == "[Action needed] 1 overdue follow-up and 2 due soon"
    text = message.body
    headings = [text.index(h) for h in ("== Overdue ==", "== Due today ==", "== Due soon ==")]
    assert headings == sorted(headings)
    assert headings[0] < text.index("[P3] Fix retry") < headings[1]
    assert headings[1] < text.index("[P1] Write runbook") < headings[2]
    assert headings[2] < text.index("[P2] Add alert")
    assert "Deadline: 2025-03-17 (3 days late)" in text
    assert "Deadline: 2025-03-20 (due today)" in text
    assert "Deadline: 2025-03-21 (1 day left)" in text
    assert f"Incident: {incident.external_id}" in text

    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    titles = [html.index(t) for t in ("Fix retry", "Write runbook", "Add alert")]
    assert titles == sorted(titles)
    assert (
        html.index(">Overdue</h3>") < html.index(">Due today</h3>") < html.index(">Due soon</h3>")
    )
    assert "3 days late" in html and incident.external_id in html

    for body in (text, html):
        links = re.findall(r"https?://[^\s\"<]+", body)
        action_links = [link for link in links if "/r/" in link]
        assert len(action_links) == 9  # open, done and snooze for each of three items
        assert all(link.startswith(f"{BASE_URL}/r/") for link in action_links)
        with time_machine.travel(NOW, tick=False):  # the links are signed at NOW and expire
            opened = {
                read_action_token(link.removeprefix(f"{BASE_URL}/r/").strip("/")).item_id
                for link in action_links
            }
        assert opened == {soon.pk, due.pk, late.pk}


def test_it_counts_days_late_in_the_owner_time_zone():
    owner = make_person("kiri@example.com", time_zone="Pacific/Auckland")
    make_item(created=NOW - dt.timedelta(days=3), deadline=TODAY, owner=owner, priority="P4")

    # 09:00 on Friday in Auckland, still Thursday in UTC: one day late for the owner.
    assert sweep_and_deliver(dt.datetime(2025, 3, 20, 20, tzinfo=UTC)) == [
        ("kiri@example.com", "overdue+1")
    ]

    [message] = mail.outbox
    assert "(1 day late)" in message.body
    assert message.subject == "[Action needed] 1 overdue follow-up"


def test_it_sends_nothing_new_on_a_second_sweep():
    pending_item()
    sweep_and_deliver(NOW)
    assert len(mail.outbox) == 1

    assert sweep_and_deliver(NOW) == []
    assert sweep_and_deliver(NOW + dt.timedelta(hours=1)) == []
    assert len(mail.outbox) == 1
    assert Notification.objects.get().state == DeliveryState.SENT


def test_it_keeps_a_failed_send_pending_with_backoff_and_records_it(failing_email, settings):
    item = pending_item()

    report = deliver()

    assert report.failed == 1 and report.sent == 0
    row = Notification.objects.get()
    assert row.state == DeliveryState.PENDING
    assert row.attempts == 1
    assert row.last_error == "SMTPServerDisconnected: connection lost"
    assert NOW + dt.timedelta(seconds=60) <= row.next_attempt_at <= NOW + dt.timedelta(seconds=90)
    failure = ActionItemChange.objects.get(item=item, field="reminder_failed")
    assert failure.source == ChangeSource.REMINDER
    assert failure.new_value == {"stage": "due_today", "recipient": "ann@example.com"}
    assert "connection lost" in failure.note

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    deliver(NOW + dt.timedelta(seconds=59))
    assert mail.outbox == []  # still backing off

    deliver(NOW + dt.timedelta(seconds=91))
    deliver(NOW + dt.timedelta(seconds=200))
    assert [m.to for m in mail.outbox] == [["ann@example.com"]]
    row.refresh_from_db()
    assert (row.state, row.attempts) == (DeliveryState.SENT, 2)
    assert ActionItemChange.objects.filter(item=item, field="reminder_sent").count() == 1


def test_it_shows_a_failed_send_in_the_admin(failing_email, admin_client):
    pending_item()
    deliver()

    response = admin_client.get(reverse("admin:tracker_notification_changelist"))

    assert response.status_code == 200
    assert [n.state for n in response.context["cl"].result_list] == [DeliveryState.PENDING]
    assert "SMTPServerDisconnected: connection lost" in response.content.decode()


def test_it_gives_up_after_the_maximum_attempts(failing_email, settings):
    settings.TRACKER_SEND_MAX_ATTEMPTS = 2
    pending_item()

    deliver()
    deliver(NOW + dt.timedelta(minutes=2))
    deliver(NOW + dt.timedelta(days=1))

    row = Notification.objects.get()
    assert (row.state, row.attempts, row.next_attempt_at) == (DeliveryState.FAILED, 2, None)
    assert FailingBackend.calls == 2
    assert ActionItemChange.objects.filter(field="reminder_failed").count() == 2


def test_it_sends_again_a_claim_whose_lease_ran_out(settings):
    item = pending_item()
    lease = dt.timedelta(seconds=settings.TRACKER_SEND_LEASE_SECONDS)
    # The sender claimed the row and died before sending.
    Notification.objects.filter(item=item).update(
        state=DeliveryState.SENDING,
        claim_token="dead",
        claimed_at=NOW - lease - dt.timedelta(seconds=1),
    )

    report = deliver()

    assert report.sent == 1
    assert [m.to for m in mail.outbox] == [["ann@example.com"]]
    assert Notification.objects.get().state == DeliveryState.SENT


def test_it_leaves_a_fresh_claim_to_its_sender():
    item = pending_item()
    Notification.objects.filter(item=item).update(
        state=DeliveryState.SENDING, claim_token="alive", claimed_at=NOW - dt.timedelta(seconds=60)
    )

    assert deliver().sent == 0

    assert mail.outbox == []
    assert Notification.objects.get().claim_token == "alive"


@pytest.mark.parametrize(
    "change",
    [
        {"status": Status.DONE},
        {"status": Status.CANCELLED},
        {"owner": None},
        "snooze",
    ],
)
def test_it_skips_reminders_whose_item_changed_before_delivery(change):
    item = pending_item()
    with time_machine.travel(NOW + dt.timedelta(minutes=1), tick=False):
        if change == "snooze":
            action_item_snooze(item=item, actor=SYSTEM)
        else:
            action_item_update(item=item, actor=SYSTEM, **change)

    report = deliver(NOW + dt.timedelta(minutes=2))

    assert report.sent == 0
    assert mail.outbox == []
    assert Notification.objects.get().state == DeliveryState.SKIPPED
    assert not ActionItemChange.objects.filter(field__startswith="reminder_").exists()

"""Delivery through the channel registry: lookup, permanent failures, unconfigured channels."""

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from tracker import reminders
from tracker.models import ActionItemChange, DeliveryState, Notification
from tracker.reminders import channels
from tracker.reminders.channels.email import EmailChannel

from .helpers import UTC, make_item, make_person

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 3, 20)  # a Thursday
NOW = dt.datetime(2025, 3, 20, 10, tzinfo=UTC)


class RevokedChannel(channels.Channel):
    """A chat channel whose token was revoked: no retry can succeed."""

    name = "revoked"
    sends = 0

    def send(self, *, recipient, notifications, now):
        type(self).sends += 1
        raise channels.ChannelError("token_revoked", permanent=True)


class UnconfiguredChannel(channels.Channel):
    name = "unconfigured"

    def is_configured(self):
        return False

    def send(self, *, recipient, notifications, now):
        raise AssertionError("an unconfigured channel is never asked to send")


@pytest.fixture
def use_channel(monkeypatch):
    def use(cls):
        cls.sends = 0
        monkeypatch.setitem(channels.CHANNELS, "email", f"{__name__}.{cls.__name__}")

    return use


def pending_item():
    item = make_item(
        created=NOW - dt.timedelta(hours=2), deadline=TODAY, owner=make_person("ann@example.com")
    )
    with time_machine.travel(NOW, tick=False):
        reminders.sweep(now=timezone.now())
    return item


def deliver(moment: dt.datetime = NOW) -> reminders.SweepReport:
    with time_machine.travel(moment, tick=False):
        return reminders.deliver_pending(now=timezone.now())


def test_it_finds_the_email_channel_by_name():
    found = channels.channel("email")

    assert isinstance(found, EmailChannel)
    assert found.name == "email" and found.is_configured()


def test_it_refuses_a_channel_it_does_not_know():
    with pytest.raises(KeyError):
        channels.channel("pigeon")


def test_it_gives_up_at_once_on_a_permanent_channel_error(use_channel, settings):
    settings.TRACKER_SEND_MAX_ATTEMPTS = 5
    use_channel(RevokedChannel)
    item = pending_item()

    report = deliver()
    deliver(NOW + dt.timedelta(days=1))

    assert report.failed == 1 and report.sent == 0
    row = Notification.objects.get()
    assert (row.state, row.attempts, row.next_attempt_at) == (DeliveryState.FAILED, 1, None)
    assert row.last_error == "token_revoked"
    assert RevokedChannel.sends == 1
    failure = ActionItemChange.objects.get(item=item, field="reminder_failed")
    assert failure.note == "token_revoked"


def test_it_leaves_the_rows_pending_while_the_channel_is_not_configured(use_channel):
    use_channel(UnconfiguredChannel)
    pending_item()

    report = deliver()

    assert report.sent == report.failed == 0
    row = Notification.objects.get()
    assert (row.state, row.attempts, row.claim_token) == (DeliveryState.PENDING, 0, "")
    assert mail.outbox == []

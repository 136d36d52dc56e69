"""The send_reminders command, end to end through a real SMTP server on loopback."""

import datetime as dt
import email
import email.policy
import socket

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.core.management import call_command

from tracker.models import DeliveryState, Notification

from .helpers import UTC, make_item, make_person

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 20, 10, tzinfo=UTC)  # a Thursday


class Collector:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = "tracker@example.org"
    settings.TRACKER_BASE_URL = "https://tracker.example.org"
    yield collector
    controller.stop()


def test_it_delivers_the_digest_through_smtp(smtp_server, capsys):
    owner = make_person("ann@example.com")
    item = make_item(
        created=NOW - dt.timedelta(days=10),
        deadline=dt.date(2025, 3, 18),
        owner=owner,
        priority="P3",
        title="Rotate the signing key",
    )

    with time_machine.travel(NOW, tick=False):
        call_command("send_reminders")

    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "tracker@example.org"
    assert envelope.rcpt_tos == ["ann@example.com"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "[Action needed] 1 overdue follow-up"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert "Rotate the signing key" in body
        assert "2 days late" in body
        assert "https://tracker.example.org/r/" in body
    assert Notification.objects.get(item=item).state == DeliveryState.SENT
    assert "1 emails, 1 reminders sent, 0 failed" in capsys.readouterr().out

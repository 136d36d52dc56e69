"""The links a reminder email carries work, for its owner, from the email itself."""

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from tests import factories
from tracker import services
from tracker.models import Status
from tracker.reminders import deliver_pending, sweep

from .helpers import NOW, TODAY, csrf_token_from, state

pytestmark = pytest.mark.django_db

LINK = re.compile(r"^\s*(Open|Mark done|Snooze \d+ days): (\S+)$", re.MULTILINE)


def links_in(message) -> dict[str, str]:
    found = {}
    for label, url in LINK.findall(message.body):
        assert url.startswith(settings.TRACKER_BASE_URL + "/r/")
        found[label.split()[0].lower()] = urlsplit(url).path
    return found


def send_reminders() -> None:
    sweep(now=NOW)
    deliver_pending(now=NOW)


def test_it_offers_the_owner_done_snooze_and_open(item):
    send_reminders()

    (message,) = mail.outbox
    assert message.to == ["owner@example.com"]
    assert set(links_in(message)) == {"open", "mark", "snooze"}
    html = message.alternatives[0][0]
    for path in links_in(message).values():
        assert path in html


def test_it_marks_done_from_the_email_after_confirming(item):
    send_reminders()
    path = links_in(mail.outbox[0])["mark"]
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(path)
    assert state(item)["status"] == Status.OPEN

    browser.post(path, {"csrfmiddlewaretoken": csrf_token_from(page)})

    item.refresh_from_db()
    assert item.status == Status.DONE
    assert item.completed_at == NOW


def test_it_snoozes_from_the_email_for_the_configured_days(item):
    send_reminders()
    path = links_in(mail.outbox[0])["snooze"]
    browser = Client(enforce_csrf_checks=True)

    browser.post(path, {"csrfmiddlewaretoken": csrf_token_from(browser.get(path))})

    item.refresh_from_db()
    assert item.snoozed_until == TODAY + dt.timedelta(days=settings.TRACKER_SNOOZE_DAYS)
    assert item.next_reminder_on > item.snoozed_until


def test_it_gives_the_escalation_contact_only_the_open_link(owner, settings):
    settings.TRACKER_ESCALATION_EMAIL = "director@example.com"
    item = services.action_item_create(
        actor=services.Actor.system(),
        incident=factories.IncidentFactory(),
        title="Overdue follow-up",
        owner=owner,
        priority="P0",
        deadline=TODAY - dt.timedelta(days=2),
    )

    send_reminders()

    (escalation,) = [m for m in mail.outbox if m.to == ["director@example.com"]]
    links = links_in(escalation)
    assert set(links) == {"open"}
    assert Client().get(links["open"]).status_code == 200
    assert state(item)["status"] == Status.OPEN

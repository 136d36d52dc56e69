"""python manage.py send_reminders [--now ISO] [--dry-run]."""

import datetime as dt
import os
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import CommandError, call_command

from tracker.models import ActionItem, DeliveryState, Notification

from .helpers import UTC, make_item, make_person

BASE_DIR = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2025, 3, 20, 10, tzinfo=UTC)  # a Thursday
TODAY = NOW.date()


class FailingBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise smtplib.SMTPAuthenticationError(535, b"bad credentials")


def run(*args: str) -> None:
    with time_machine.travel(NOW, tick=False):
        call_command("send_reminders", *args)


@pytest.fixture
def items(db):
    """Ann: one overdue item, escalated to her manager; Bob: one due today."""
    created = NOW - dt.timedelta(days=10)
    ann = make_person("ann@example.com", manager_email="boss@example.com")
    bob = make_person("bob@example.com")
    return [
        make_item(created=created, deadline=TODAY - dt.timedelta(days=1), owner=ann, priority="P0"),
        make_item(created=created, deadline=TODAY, owner=bob, priority="P2"),
    ]


def test_it_sweeps_delivers_and_prints_a_summary(items, capsys):
    run()

    out = capsys.readouterr().out
    assert out.strip() == (
        "3 emails, 3 reminders sent, 0 failed; new reminders: 3 for 3 recipients, "
        "by stage {'overdue': 1, 'escalation': 1, 'due_today': 1}"
    )
    assert sorted(m.to[0] for m in mail.outbox) == [
        "ann@example.com",
        "bob@example.com",
        "boss@example.com",
    ]
    assert set(Notification.objects.values_list("state", flat=True)) == {DeliveryState.SENT}


def test_it_prints_who_would_get_what_on_a_dry_run_and_changes_nothing(items, capsys):
    before = list(ActionItem.objects.order_by("id").values_list("next_reminder_on", flat=True))

    run("--dry-run")

    out = capsys.readouterr().out.splitlines()
    late, due = items
    assert out == [
        f"ann@example.com: item {late.pk} overdue+1",
        f"bob@example.com: item {due.pk} due_today",
        f"boss@example.com: item {late.pk} escalation+1",
        "Dry run, nothing sent: 3 recipients, 3 reminders "
        "{'overdue': 1, 'escalation': 1, 'due_today': 1}",
    ]
    assert mail.outbox == []
    assert not Notification.objects.exists()
    after = list(ActionItem.objects.order_by("id").values_list("next_reminder_on", flat=True))
    assert after == before


def test_it_sweeps_at_the_moment_given_by_now(items, capsys):
    def new_rows(*args: str) -> list[tuple[str, str]]:
        before = set(Notification.objects.values_list("pk", flat=True))
        run(*args)
        return sorted(Notification.objects.exclude(pk__in=before).values_list("recipient", "stage"))

    # Frozen at 20 March; each run sweeps (and sends) as of its --now instead.
    assert new_rows("--now", "2025-03-13T10:00:00+00:00") == [
        ("ann@example.com", "due_soon-7"),
        ("bob@example.com", "due_soon-7"),
    ]
    # Naive: TIME_ZONE (UTC). Before the remind hour, 19 March's stages are the current ones.
    assert new_rows("--now", "2025-03-20T08:59") == [
        ("ann@example.com", "due_today"),
        ("bob@example.com", "due_soon-1"),
    ]
    assert new_rows("--now", "2025-03-20T09:00") == [
        ("ann@example.com", "overdue+1"),
        ("bob@example.com", "due_today"),
        ("boss@example.com", "escalation+1"),
    ]
    assert "3 reminders sent" in capsys.readouterr().out.splitlines()[-1]
    assert len(mail.outbox) == 7


def test_it_exits_non_zero_when_sends_fail(items, settings):
    settings.EMAIL_BACKEND = f"{__name__}.FailingBackend"

    with pytest.raises(
        CommandError, match=r"^3 reminders could not be sent; they will be retried$"
    ):
        run()

    assert set(Notification.objects.values_list("state", flat=True)) == {DeliveryState.PENDING}


def test_it_exits_2_with_one_line_on_a_bad_now():
    result = subprocess.run(
        [sys.executable, "manage.py", "send_reminders", "--now", "next tuesday"],
        cwd=BASE_DIR,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "CommandError: --now: expected an ISO 8601 moment, got 'next tuesday'"
    ]

"""`manage.py sync_tickets`: the parts that need no ticket system (refusals and --dry-run)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from tests import factories
from tracker.models import TicketLink, TicketSyncState
from tracker.ticketing import push, reset_backend

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhook(settings, httpserver):
    """Ticket sync on (webhook backend); the receiver must hear nothing."""
    settings.TICKETS_BACKEND = "webhook"
    settings.TICKETS_WEBHOOK_URL = httpserver.url_for("/hook")
    settings.TICKETS_WEBHOOK_SECRET = "command-secret"
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    reset_backend()
    yield httpserver
    assert httpserver.log == []
    reset_backend()


@pytest.fixture
def sync_off(settings):
    settings.TICKETS_BACKEND = ""
    reset_backend()
    yield
    reset_backend()


def refusal(*args: str) -> str:
    """The command's error: one line, no traceback."""
    with pytest.raises(CommandError) as refused:
        call_command("sync_tickets", *args)
    message = str(refused.value)
    assert refused.value.returncode == 1
    assert "\n" not in message
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize(
    "args", [(), ("--all",), ("--dry-run",), ("--item", "1", "--link", "OPS-1"), ("--pull",)]
)
def test_it_refuses_to_run_when_sync_is_off(sync_off, args):
    assert refusal(*args) == "Ticket sync is off: set TICKETS_BACKEND (see the README)."


def test_it_exits_non_zero_with_one_line_when_sync_is_off(sync_off, capsys):
    from django.core.management import ManagementUtility

    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "sync_tickets", "--all"]).execute()

    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        "CommandError: Ticket sync is off: set TICKETS_BACKEND (see the README)."
    ]


def test_it_refuses_a_link_without_an_item(webhook):
    assert refusal("--link", "OPS-1") == "--link needs exactly one --item."


def test_it_refuses_an_empty_link_rather_than_create_a_ticket(webhook):
    item = factories.ActionItemFactory()

    message = refusal("--item", str(item.pk), "--link", "")

    assert message == f"Cannot link item {item.pk}: an empty ticket reference"
    assert not TicketLink.objects.exists()


def test_it_refuses_a_link_for_two_items(webhook):
    first, second = factories.ActionItemFactory.create_batch(2)

    message = refusal("--link", "OPS-1", "--item", str(first.pk), "--item", str(second.pk))

    assert message == "--link needs exactly one --item."
    assert not TicketLink.objects.exists()


def test_it_refuses_an_unknown_item(webhook):
    item = factories.ActionItemFactory()
    missing = item.pk + 1000

    assert refusal("--item", str(missing)) == f"No action item with id {missing}."
    assert refusal("--item", str(item.pk), "--item", str(missing), "--dry-run") == (
        f"No action item with id {missing}."
    )
    message = refusal("--item", str(missing), "--link", "OPS-1")
    assert message == f"No action item with id {missing}."
    assert not TicketLink.objects.exists()


def test_it_says_what_a_dry_run_would_push_and_sends_nothing(webhook, capsys):
    new, changed, same = factories.ActionItemFactory.create_batch(3)
    TicketLink.objects.create(item=new, system="webhook")
    values = push.ticket_fields(changed).as_values()
    TicketLink.objects.create(
        item=changed,
        system="webhook",
        key="OPS-2",
        pushed_values={**values, "title": "An older title", "priority": "P4"},
    )
    TicketLink.objects.create(
        item=same,
        system="webhook",
        key="OPS-3",
        state=TicketSyncState.SYNCED,
        pushed_values=push.ticket_fields(same).as_values(),
    )

    call_command("sync_tickets", "--all", "--dry-run")

    assert capsys.readouterr().out.splitlines() == [
        f"item {new.pk}: would create a ticket",
        f"item {changed.pk}: webhook OPS-2: would update title, priority",
        f"item {same.pk}: webhook OPS-3: up to date",
        "3 items, nothing sent (--dry-run)",
    ]
    assert TicketLink.objects.count() == 3
    assert TicketLink.objects.get(item=new).key == ""


def test_a_dry_run_gives_no_link_to_items_without_one(webhook, capsys):
    item = factories.ActionItemFactory()

    call_command("sync_tickets", "--item", str(item.pk), "--dry-run")

    assert capsys.readouterr().out.splitlines() == [
        f"item {item.pk}: would create a ticket",
        "1 items, nothing sent (--dry-run)",
    ]
    assert not TicketLink.objects.exists()


def test_a_dry_run_of_the_due_items_lists_only_those(webhook, capsys):
    due, later = factories.ActionItemFactory.create_batch(2)
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    TicketLink.objects.create(item=due, system="webhook", next_attempt_at=past)
    TicketLink.objects.create(
        item=later, system="webhook", next_attempt_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC)
    )

    call_command("sync_tickets", "--dry-run")

    assert capsys.readouterr().out.splitlines() == [
        f"item {due.pk}: would create a ticket",
        "1 items, nothing sent (--dry-run)",
    ]


def test_the_check_of_a_backend_with_nothing_to_check_passes(webhook, capsys):
    call_command("sync_tickets", "--check")

    assert capsys.readouterr().out == "webhook: every check passed\n"


def test_the_check_refuses_to_run_when_sync_is_off(sync_off):
    assert refusal("--check") == "Ticket sync is off: set TICKETS_BACKEND (see the README)."


def test_a_check_that_crashes_is_one_blocking_line(webhook, monkeypatch, capsys):
    from tracker.ticketing.webhook_backend import WebhookBackend

    def crash(self, *, owner_emails=()):
        raise KeyError("issues")

    monkeypatch.setattr(WebhookBackend, "preflight", crash)

    with pytest.raises(SystemExit) as exited:
        call_command("sync_tickets", "--check")

    assert exited.value.code == 1
    assert capsys.readouterr().out.splitlines() == [
        "blocking connection: the check crashed: KeyError('issues')",
        "webhook: 1 blocking, 0 warnings",
    ]

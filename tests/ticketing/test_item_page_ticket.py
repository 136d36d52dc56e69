"""The Ticket section of an item's page: what it shows, and the managers' resync and link forms."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket

import pytest
from django.test import Client
from django.urls import reverse

from tests import factories
from tracker.models import ActionItem, TicketLink, TicketSyncState
from tracker.ticketing import reset_backend

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _sync_off(settings):
    settings.TICKETS_BACKEND = ""
    reset_backend()
    yield
    reset_backend()


@pytest.fixture
def webhook(settings, httpserver):
    """Ticket sync on, through the webhook backend, to a receiver on the loopback."""
    settings.TICKETS_BACKEND = "webhook"
    settings.TICKETS_WEBHOOK_URL = httpserver.url_for("/hook")
    settings.TICKETS_WEBHOOK_SECRET = "page-secret"
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.TICKETS_RATE_LIMIT = 0
    reset_backend()
    yield httpserver
    reset_backend()


@pytest.fixture
def github(settings, httpserver):
    """Ticket sync on, through the GitHub backend, to a fake API on the loopback."""
    settings.TICKETS_BACKEND = "github"
    settings.GITHUB_REPOSITORY = "example/ops"
    settings.GITHUB_TOKEN = "github-token"
    settings.GITHUB_API_URL = httpserver.url_for("/").rstrip("/")
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.TICKETS_RATE_LIMIT = 0
    settings.TICKETS_MAX_RETRIES = 0
    reset_backend()
    yield httpserver
    reset_backend()


@pytest.fixture
def olivia_person(db):
    return factories.PersonFactory(email="olivia@example.com", name="Olivia Owner")


@pytest.fixture
def olivia(db, olivia_person):
    return factories.UserFactory(username="olivia", email="olivia@example.com")


@pytest.fixture
def reader(db):
    return factories.UserFactory(username="reader", email="reader@example.com")


@pytest.fixture
def item(olivia_person) -> ActionItem:
    return factories.ActionItemFactory(owner=olivia_person, title="Add a replica")


def page_url(item: ActionItem) -> str:
    return reverse("item-detail", args=[item.pk])


def ticket_url(item: ActionItem) -> str:
    return reverse("item-ticket", args=[item.pk])


def ticket_section(response) -> str:
    """The page's Ticket section, as HTML."""
    page = response.content.decode()
    match = re.search(r'<section aria-labelledby="ticket-heading">.*?</section>', page, re.S)
    assert match, "no Ticket section on the page"
    return match.group(0)


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def make_link(item: ActionItem, **fields) -> TicketLink:
    values = {
        "system": "webhook",
        "key": "OPS-7",
        "url": "https://tickets.example.com/OPS-7",
        "state": TicketSyncState.SYNCED,
        "pushed_values": {"title": item.title},
        "last_synced_at": NOW - dt.timedelta(minutes=5),
        **fields,
    }
    return TicketLink.objects.create(item=item, **values)


# --- What the section shows -------------------------------------------------------------


def test_it_says_when_no_ticket_system_is_configured(item, manager):
    section = ticket_section(signed_in(manager).get(page_url(item)))

    assert "No ticket system configured" in section
    assert "<form" not in section


def test_it_shows_the_ticket_key_as_a_link_and_its_state(webhook, item, reader):
    make_link(item)

    section = ticket_section(signed_in(reader).get(page_url(item)))

    assert '<a href="https://tickets.example.com/OPS-7" rel="noreferrer">OPS-7</a>' in section
    assert "Synced" in section
    assert "Last error" not in section


def test_it_shows_the_error_of_a_failing_ticket(webhook, item, reader):
    make_link(
        item,
        state=TicketSyncState.FAILING,
        last_error="webhook: POST http://receiver/hook answered 401 Unauthorized",
        next_attempt_at=None,
    )

    section = ticket_section(signed_in(reader).get(page_url(item)))

    assert "Failing" in section
    assert "answered 401 Unauthorized" in section
    assert "after the next change to the item, or a resync" in section


def test_it_never_links_a_ticket_url_that_is_not_http(webhook, item, reader):
    make_link(item, url="javascript:alert(document.cookie)")

    section = ticket_section(signed_in(reader).get(page_url(item)))

    assert "OPS-7" in section
    assert "href" not in section
    assert "javascript:" not in section


def test_it_shows_the_forms_to_managers_only(webhook, item, manager, olivia, reader):
    make_link(item)
    action = f'action="{ticket_url(item)}"'

    assert ticket_section(signed_in(manager).get(page_url(item))).count(action) == 2
    for user in (olivia, reader):
        assert action not in ticket_section(signed_in(user).get(page_url(item)))


# --- Posting ---------------------------------------------------------------------------------


def test_it_refuses_owners_and_readers(webhook, item, olivia, reader):
    link = make_link(item)

    for user in (olivia, reader):
        client = signed_in(user)
        assert client.post(ticket_url(item), {"action": "resync"}).status_code == 403
        assert client.post(ticket_url(item), {"reference": "OPS-9"}).status_code == 403

    after = TicketLink.objects.get(pk=link.pk)
    assert (after.key, after.state, after.pushed_values) == ("OPS-7", "synced", link.pushed_values)


def test_it_needs_the_csrf_token(webhook, item, manager):
    link = make_link(item)
    client = signed_in(manager, enforce_csrf_checks=True)

    refused = client.post(ticket_url(item), {"action": "resync"})

    assert refused.status_code == 403
    assert TicketLink.objects.get(pk=link.pk).state == TicketSyncState.SYNCED
    page = client.get(page_url(item)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    accepted = client.post(ticket_url(item), {"action": "resync", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert TicketLink.objects.get(pk=link.pk).state == TicketSyncState.PENDING


def test_it_pushes_the_item_again_on_resync(
    webhook, item, manager, tasks_run, django_capture_on_commit_callbacks
):
    webhook.expect_request("/hook", method="POST").respond_with_data("", status=204)
    make_link(item, state=TicketSyncState.FAILING, attempts=4, last_error="boom")
    client = signed_in(manager)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(ticket_url(item), {"action": "resync"})

    assert response.status_code == 302
    assert response["Location"] == page_url(item)
    assert tasks_run == [("tracker.push_tickets", [[item.pk]])]
    (request, _), *_ = webhook.log
    assert json.loads(request.get_data())["event"] == "item.updated"
    link = TicketLink.objects.get(item=item)
    assert (link.state, link.attempts, link.last_error) == (TicketSyncState.SYNCED, 0, "")
    followed = client.get(response["Location"])
    assert "pushed to its ticket in a moment" in followed.content.decode()


def test_it_creates_the_ticket_of_an_item_without_one_on_resync(
    webhook, item, manager, tasks_run, django_capture_on_commit_callbacks
):
    webhook.expect_request("/hook", method="POST").respond_with_json({"key": "OPS-8"})

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(manager).post(ticket_url(item), {"action": "resync"})

    assert response.status_code == 302
    assert tasks_run == [("tracker.push_tickets", [[item.pk]])]
    (request, _), *_ = webhook.log
    assert json.loads(request.get_data())["event"] == "item.created"
    link = TicketLink.objects.get(item=item)
    assert (link.system, link.key, link.state) == ("webhook", "OPS-8", TicketSyncState.SYNCED)


def test_it_refuses_a_post_when_sync_is_off(item, manager):
    response = signed_in(manager).post(ticket_url(item), {"action": "resync"}, follow=True)

    assert "No ticket system is configured." in response.content.decode()
    assert not TicketLink.objects.exists()


def test_it_links_an_existing_ticket(
    github, item, manager, tasks_run, django_capture_on_commit_callbacks
):
    ActionItem.objects.filter(pk=item.pk).update(owner=None, deadline=None)
    github.expect_request("/repos/example/ops/issues/12", method="GET").respond_with_json(
        {
            "number": 12,
            "html_url": "https://github.com/example/ops/issues/12",
            "updated_at": "2025-03-12T09:00:00Z",
            "state": "open",
            "labels": [],
            "assignees": [],
            "body": "",
        }
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = signed_in(manager).post(ticket_url(item), {"reference": "#12"})

    assert response.status_code == 302
    link = TicketLink.objects.get(item=item)
    assert (link.system, link.key, link.url) == (
        "github",
        "12",
        "https://github.com/example/ops/issues/12",
    )
    assert link.state == TicketSyncState.PENDING
    assert callbacks  # the item's other fields are pushed to the ticket once committed


def test_it_refuses_a_ticket_linked_to_another_item(github, item, manager):
    other = factories.ActionItemFactory(title="Another item")
    TicketLink.objects.create(item=other, system="github", key="12", state="synced")
    github.expect_request("/repos/example/ops/issues/12", method="GET").respond_with_json(
        {"number": 12, "updated_at": "2025-03-12T09:00:00Z", "state": "open", "body": ""}
    )

    response = signed_in(manager).post(ticket_url(item), {"reference": "12"})

    assert response.status_code == 400
    assert "github 12 is already linked to another item" in ticket_section(response)
    assert list(TicketLink.objects.values_list("item_id", "key")) == [(other.pk, "12")]


def test_it_shows_why_a_reference_cannot_be_read(github, item, manager):
    response = signed_in(manager).post(ticket_url(item), {"reference": "not a ticket"})

    assert response.status_code == 400
    section = ticket_section(response)
    assert "not a GitHub issue number" in section
    assert "not a ticket" in section
    assert github.log == []
    assert not TicketLink.objects.exists()


def test_it_shows_the_error_when_the_ticket_system_cannot_be_reached(
    settings, github, item, manager
):
    with socket.socket() as closed:
        # Bound, never listening: connecting is refused.
        closed.bind(("127.0.0.1", 0))
        settings.GITHUB_API_URL = f"http://127.0.0.1:{closed.getsockname()[1]}"
        reset_backend()

        response = signed_in(manager).post(ticket_url(item), {"reference": "#12"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "The ticket system answered:" in ticket_section(response)
    assert "cannot connect" in ticket_section(response)
    assert "Traceback" not in page
    assert not TicketLink.objects.exists()


def test_it_shows_the_error_when_the_ticket_cannot_be_read_back(webhook, item, manager):
    response = signed_in(manager).post(ticket_url(item), {"reference": "OPS-9"})

    assert response.status_code == 400
    assert "cannot read tickets back" in ticket_section(response)
    assert webhook.log == []
    assert not TicketLink.objects.exists()

"""Tickets in the admin: the inline on an item's page, and the ticket list's resync and unlink."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests import factories
from tracker.models import ActionItem, TicketLink, TicketSyncState
from tracker.ticketing import reset_backend

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
LINKS = reverse("admin:tracker_ticketlink_changelist")


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def webhook(settings, httpserver):
    """Ticket sync on, through the webhook backend, to a receiver on the loopback."""
    settings.TICKETS_BACKEND = "webhook"
    settings.TICKETS_WEBHOOK_URL = httpserver.url_for("/hook")
    settings.TICKETS_WEBHOOK_SECRET = "admin-secret"
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.TICKETS_RATE_LIMIT = 0
    reset_backend()
    yield httpserver
    reset_backend()


@pytest.fixture
def viewer(db):
    """Staff who may look at items, not change them."""
    user = factories.UserFactory(is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_actionitem", content_type__app_label="tracker")
    )
    return user


def make_link(**fields) -> TicketLink:
    values = {
        "item": factories.ActionItemFactory(title="Add a replica"),
        "system": "webhook",
        "key": "OPS-7",
        "url": "https://tickets.example.com/OPS-7",
        "state": TicketSyncState.SYNCED,
        "pushed_values": {"title": "Add a replica", "priority": "P2"},
        "last_synced_at": NOW - dt.timedelta(hours=1),
        **fields,
    }
    return TicketLink.objects.create(**values)


def failing_link() -> TicketLink:
    return make_link(
        state=TicketSyncState.FAILING,
        attempts=3,
        last_error="webhook: POST http://receiver/hook answered 401 Unauthorized",
        next_attempt_at=None,
    )


def run_action(client, action: str, links):
    return client.post(
        LINKS, {"action": action, "_selected_action": [link.pk for link in links], "index": 0}
    )


def item_page(item: ActionItem) -> str:
    return reverse("admin:tracker_actionitem_change", args=[item.pk])


# --- The inline --------------------------------------------------------------------------


def test_it_shows_a_manager_the_items_ticket_with_its_state_and_error(client, manager):
    link = failing_link()
    client.force_login(manager)

    response = client.get(item_page(link.item))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="https://tickets.example.com/OPS-7"' in page
    assert "Failing" in page
    assert "answered 401 Unauthorized" in page


def test_it_shows_no_ticket_inline_for_an_item_without_a_ticket(client, manager):
    item = factories.ActionItemFactory()
    client.force_login(manager)

    response = client.get(item_page(item))

    assert response.status_code == 200
    assert "ticket_link-TOTAL_FORMS" not in response.content.decode()


def test_it_never_links_a_ticket_url_that_is_not_http(client, manager):
    link = make_link(url="javascript:alert(document.cookie)")
    client.force_login(manager)

    for url in (item_page(link.item), LINKS):
        page = client.get(url).content.decode()
        assert "OPS-7" in page
        assert "javascript:alert" not in page


# --- The ticket list ---------------------------------------------------------------------


def test_it_lists_the_tickets_to_a_manager(client, manager):
    link = failing_link()
    client.force_login(manager)

    response = client.get(LINKS)

    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [link.pk]
    assert "answered 401 Unauthorized" in response.content.decode()


def test_it_pushes_the_selected_items_again_in_full(
    client, manager, webhook, tasks_run, django_capture_on_commit_callbacks
):
    webhook.expect_request("/hook", method="POST").respond_with_json({"key": "OPS-7"})
    link = failing_link()
    client.force_login(manager)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = run_action(client, "resync", [link])

    assert response.status_code == 302
    link.refresh_from_db()
    assert link.state == TicketSyncState.PENDING
    assert link.pushed_values == {}
    assert (link.attempts, link.last_error) == (0, "")
    assert link.next_attempt_at == NOW
    assert webhook.log == []  # nothing sent before the commit

    for callback in callbacks:
        callback()
    assert tasks_run == [("tracker.push_tickets", [[link.item_id]])]
    (request, _), *_ = webhook.log
    document = json.loads(request.get_data())
    assert document["event"] == "item.updated"
    assert document["key"] == "OPS-7"
    # Nothing is known pushed any more: every field is sent.
    assert document["changed"] == [
        "deadline",
        "description",
        "owner",
        "priority",
        "status",
        "title",
    ]
    link.refresh_from_db()
    assert link.state == TicketSyncState.SYNCED


def test_it_unlinks_the_selected_tickets_and_keeps_their_items(client, manager):
    link, other = failing_link(), make_link(key="OPS-8", url="")
    client.force_login(manager)

    response = run_action(client, "unlink", [link])

    assert response.status_code == 302
    assert list(TicketLink.objects.all()) == [other]
    assert ActionItem.objects.filter(pk=link.item_id).exists()


def test_it_offers_no_actions_to_staff_who_may_not_change_items(client, viewer):
    link = failing_link()
    client.force_login(viewer)

    response = client.get(LINKS)

    assert response.status_code == 200
    assert response.context["action_form"] is None
    for action in ("resync", "unlink"):
        run_action(client, action, [link])
    after = TicketLink.objects.get(pk=link.pk)
    assert (after.state, after.attempts, after.pushed_values) == (
        TicketSyncState.FAILING,
        3,
        link.pushed_values,
    )


def test_it_hides_the_tickets_from_staff_who_may_not_see_items(client):
    failing_link()
    client.force_login(factories.UserFactory(is_staff=True))

    assert client.get(LINKS).status_code == 403

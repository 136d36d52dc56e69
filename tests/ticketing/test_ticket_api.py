"""The `ticket` object of an action item in the API, in the list and the detail."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests import factories
from tracker.models import ActionItem, TicketLink, TicketSyncState

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
ITEMS = "/api/v1/action-items/"
KEYS = {"system", "key", "url", "sync_state", "last_error", "next_attempt_at", "last_synced_at"}


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def reader_client(db, settings) -> APIClient:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client = APIClient()
    client.force_login(factories.UserFactory(username="reader"))
    return client


def ticket_in_detail(client, item: ActionItem) -> dict:
    response = client.get(f"{ITEMS}{item.pk}/")
    assert response.status_code == 200, response.content
    return response.json()["ticket"]


def tickets_in_list(client) -> dict[int, dict]:
    response = client.get(ITEMS, {"limit": 100})
    assert response.status_code == 200, response.content
    return {row["id"]: row["ticket"] for row in response.json()["results"]}


def test_it_gives_an_item_without_a_ticket_an_empty_ticket_object(reader_client):
    item = factories.ActionItemFactory()

    assert ticket_in_detail(reader_client, item) == dict.fromkeys(KEYS)
    assert tickets_in_list(reader_client) == {item.pk: dict.fromkeys(KEYS)}


def test_it_shows_a_synced_ticket(reader_client):
    item = factories.ActionItemFactory()
    TicketLink.objects.create(
        item=item,
        system="jira",
        key="OPS-12",
        url="https://example.atlassian.net/browse/OPS-12",
        state=TicketSyncState.SYNCED,
        last_synced_at=NOW - dt.timedelta(minutes=5),
    )
    expected = {
        "system": "jira",
        "key": "OPS-12",
        "url": "https://example.atlassian.net/browse/OPS-12",
        "sync_state": "synced",
        "last_error": None,
        "next_attempt_at": None,
        "last_synced_at": "2025-03-12T09:55:00Z",
    }

    assert ticket_in_detail(reader_client, item) == expected
    assert tickets_in_list(reader_client) == {item.pk: expected}


def test_it_shows_a_failing_ticket_with_its_error_and_next_attempt(reader_client):
    item = factories.ActionItemFactory()
    TicketLink.objects.create(
        item=item,
        system="redmine",
        state=TicketSyncState.FAILING,
        attempts=2,
        last_error="redmine: POST /issues.json failed after 4 attempts: answered 503",
        next_attempt_at=NOW + dt.timedelta(minutes=2),
    )
    expected = {
        "system": "redmine",
        "key": None,
        "url": None,
        "sync_state": "failing",
        "last_error": "redmine: POST /issues.json failed after 4 attempts: answered 503",
        "next_attempt_at": "2025-03-12T10:02:00Z",
        "last_synced_at": None,
    }

    assert ticket_in_detail(reader_client, item) == expected
    assert tickets_in_list(reader_client) == {item.pk: expected}


def test_it_lists_items_with_tickets_in_as_many_queries_as_without(reader_client):
    def queries(expected_rows: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = reader_client.get(ITEMS, {"limit": 100})
        assert len(response.json()["results"]) == expected_rows
        return len(captured)

    items = [
        factories.ActionItemFactory(owner=factories.PersonFactory(time_zone="Europe/Paris"))
        for _ in range(5)
    ]
    without = queries(5)
    for n, item in enumerate(items):
        TicketLink.objects.create(
            item=item,
            system="github",
            key=str(n + 1),
            url=f"https://github.com/example/ops/issues/{n + 1}",
            state=TicketSyncState.FAILING,
            last_error="boom",
            next_attempt_at=NOW,
            last_synced_at=NOW,
        )
    with_links = queries(5)
    for _ in range(20):
        TicketLink.objects.create(item=factories.ActionItemFactory(), system="github")

    assert with_links == without
    assert queries(25) == without
    assert all(ticket["system"] == "github" for ticket in tickets_in_list(reader_client).values())

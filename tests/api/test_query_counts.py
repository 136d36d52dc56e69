"""List endpoints cost the same number of queries whatever the number of rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories
from tracker.services import Actor, action_item_update, comment_add

from .helpers import INCIDENTS, ITEMS, PEOPLE, item_url

pytestmark = pytest.mark.django_db


def queries_for(client, url: str, expected_rows: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"limit": 100})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == expected_rows
    return len(captured)


def _items(count: int) -> None:
    # Each item with its own incident and owner, so that a missing join shows.
    for _ in range(count):
        factories.ActionItemFactory(owner=factories.PersonFactory(time_zone="Europe/Paris"))


def _incidents(count: int) -> None:
    for _ in range(count):
        factories.ActionItemFactory(status="blocked")


@pytest.mark.parametrize(
    ("url", "make"),
    [(ITEMS, _items), (INCIDENTS, _incidents), (PEOPLE, _items)],
    ids=["action-items", "incidents", "people"],
)
def test_it_lists_in_a_constant_number_of_queries(reader_client, url, make):
    make(3)
    few = queries_for(reader_client, url, 3)

    make(57)
    many = queries_for(reader_client, url, 60)

    assert many == few


def test_it_lists_filtered_action_items_in_a_constant_number_of_queries(reader_client):
    url = f"{ITEMS}?status=open,blocked&overdue=false&q=follow&ordering=-priority"
    _items(3)
    few = queries_for(reader_client, url, 3)

    _items(57)

    assert queries_for(reader_client, url, 60) == few


def test_it_lists_history_and_comments_in_a_constant_number_of_queries(reader_client, manager):
    item = factories.ActionItemFactory()
    actor = Actor(source="api", user=manager)

    def grow(count: int) -> None:
        for n in range(count):
            action_item_update(item=item, actor=actor, description=f"{item.description}{n}")
            comment_add(item=item, actor=actor, body=f"comment {n}")

    grow(3)
    few = (
        queries_for(reader_client, item_url(item, "history"), 3),
        queries_for(reader_client, item_url(item, "comments"), 3),
    )

    grow(57)
    many = (
        queries_for(reader_client, item_url(item, "history"), 60),
        queries_for(reader_client, item_url(item, "comments"), 60),
    )

    assert many == few

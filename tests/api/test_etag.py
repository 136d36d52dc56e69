"""Optimistic concurrency: the detail's ETag, and If-Match on PATCH."""

import pytest

from tests import factories
from tracker.models import ActionItem

from .helpers import assert_error, item_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def item():
    return factories.ActionItemFactory(priority="P2", title="Original")


def test_it_gives_the_detail_an_etag_that_changes_with_the_item(manager_client, item):
    first = manager_client.get(item_url(item))["ETag"]
    assert first and first.startswith('"') and first.endswith('"')
    assert manager_client.get(item_url(item))["ETag"] == first

    manager_client.patch(item_url(item), {"priority": "P1"}, format="json")

    assert manager_client.get(item_url(item))["ETag"] != first


def test_it_refuses_a_stale_if_match_and_changes_nothing(manager_client, item):
    stale = manager_client.get(item_url(item))["ETag"]
    manager_client.patch(item_url(item), {"priority": "P1"}, format="json")
    before = ActionItem.objects.values().get(pk=item.pk)
    history = item.changes.count()

    response = manager_client.patch(
        item_url(item), {"title": "Lost update"}, format="json", HTTP_IF_MATCH=stale
    )

    errors = assert_error(response, 412)
    assert errors[0]["code"] == "precondition_failed"
    assert ActionItem.objects.values().get(pk=item.pk) == before
    assert item.changes.count() == history


def test_it_refuses_a_stale_if_match_from_an_owner_too(owner_client, own_item):
    own_item.version = 5
    own_item.save()

    response = owner_client.patch(
        item_url(own_item), {"status": "done"}, format="json", HTTP_IF_MATCH=f'"{own_item.pk}.4"'
    )

    assert_error(response, 412)
    own_item.refresh_from_db()
    assert own_item.status == "open"


def test_it_applies_a_matching_if_match_and_returns_the_new_etag(manager_client, item):
    current = manager_client.get(item_url(item))["ETag"]

    response = manager_client.patch(
        item_url(item), {"title": "Renamed"}, format="json", HTTP_IF_MATCH=current
    )

    assert response.status_code == 200, response.content
    assert response["ETag"] != current
    assert response["ETag"] == manager_client.get(item_url(item))["ETag"]
    item.refresh_from_db()
    assert item.title == "Renamed"
    # The new ETag is good for the next change; the old one is not.
    again = manager_client.patch(
        item_url(item), {"title": "Again"}, format="json", HTTP_IF_MATCH=response["ETag"]
    )
    assert again.status_code == 200
    assert_error(
        manager_client.patch(item_url(item), {"title": "x"}, format="json", HTTP_IF_MATCH=current),
        412,
    )


def test_it_accepts_if_match_star(manager_client, item):
    response = manager_client.patch(
        item_url(item), {"title": "Whatever"}, format="json", HTTP_IF_MATCH="*"
    )

    assert response.status_code == 200, response.content
    item.refresh_from_db()
    assert item.title == "Whatever"


def test_it_does_not_require_if_match(manager_client, item):
    response = manager_client.patch(item_url(item), {"title": "No header"}, format="json")

    assert response.status_code == 200
    assert response["ETag"]


def test_it_does_not_let_the_etag_of_one_item_match_another(manager_client, item):
    other = factories.ActionItemFactory()
    other_etag = manager_client.get(item_url(other))["ETag"]

    response = manager_client.patch(
        item_url(item), {"title": "x"}, format="json", HTTP_IF_MATCH=other_etag
    )

    assert_error(response, 412)


def test_it_checks_permission_before_the_precondition(reader_client, item):
    response = reader_client.patch(
        item_url(item), {"title": "x"}, format="json", HTTP_IF_MATCH='"stale"'
    )

    assert_error(response, 403)


def test_it_gives_a_new_item_its_etag(manager_client):
    response = manager_client.post("/api/v1/action-items/", {"title": "New"}, format="json")

    assert response.status_code == 201
    assert response["ETag"] == manager_client.get(item_url(response.json()["id"]))["ETag"]

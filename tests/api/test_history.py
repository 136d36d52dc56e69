"""/action-items/{id}/history/: every change, whatever its path, with who and what."""

import datetime as dt
import json

import pytest
import time_machine

from tests import factories
from tracker.models import ActionItem, ChangeSource
from tracker.services import Actor, action_item_update

from .helpers import IMPORT, assert_error, item_url

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)


def history(client, item) -> list[dict]:
    response = client.get(item_url(item, "history"))
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["count"] == len(data["results"])
    return data["results"]


def test_it_shows_changes_from_import_api_and_admin_in_order(
    manager_client, reader_client, manager, sample_doc
):
    admin_user = factories.UserFactory(username="ada", is_staff=True)
    raw = json.dumps(sample_doc).encode()

    with time_machine.travel(T0, tick=False):
        response = manager_client.post(IMPORT, raw, content_type="application/json")
        assert response.status_code == 201, response.content
    item = ActionItem.objects.get(title__startswith="Add connection pool")
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        manager_client.patch(item_url(item), {"priority": "P0"}, format="json")
    with time_machine.travel(T0 + dt.timedelta(hours=2), tick=False):
        item.refresh_from_db()
        action_item_update(
            item=item, actor=Actor(source=ChangeSource.ADMIN, user=admin_user), status="blocked"
        )
    sample_doc["action_items"][0]["deadline"] = "2024-01-25"
    with time_machine.travel(T0 + dt.timedelta(hours=3), tick=False):
        response = manager_client.post(
            IMPORT, json.dumps(sample_doc).encode(), content_type="application/json"
        )
        assert response.status_code == 200, response.content

    rows = history(reader_client, item)

    summary = [(r["source"], r["actor"], r["field"], r["old_value"], r["new_value"]) for r in rows]
    created, *changes = summary
    assert created[:3] == ("import", f"import api ({manager.username})", "created")
    assert created[3] is None
    assert created[4]["title"].startswith("Add connection pool")
    assert created[4]["owner"] == "alice@company.com"
    assert changes == [
        ("api", manager.username, "priority", "P1", "P0"),
        ("admin", "ada", "status", "open", "blocked"),
        ("import", f"import api ({manager.username})", "deadline", "2024-01-22", "2024-01-25"),
    ]
    assert [r["at"][:19] for r in rows] == [
        "2024-03-10T12:00:00",
        "2024-03-10T13:00:00",
        "2024-03-10T14:00:00",
        "2024-03-10T15:00:00",
    ]
    assert set(rows[0]) == {
        "id",
        "at",
        "source",
        "actor",
        "field",
        "old_value",
        "new_value",
        "note",
    }


def test_it_shows_only_the_items_own_history(manager_client, reader_client):
    item = factories.ActionItemFactory(status="open")
    other = factories.ActionItemFactory(status="open")
    manager_client.patch(item_url(other), {"status": "blocked"}, format="json")

    assert history(reader_client, item) == []
    assert [r["field"] for r in history(reader_client, other)] == ["status"]


def test_it_shows_who_created_an_item_through_the_api(manager_client, reader_client, manager):
    item_id = manager_client.post(
        "/api/v1/action-items/", {"title": "New", "owner": "x@y.io"}, format="json"
    ).json()["id"]

    (row,) = history(reader_client, item_id)

    assert (row["source"], row["actor"], row["field"]) == ("api", manager.username, "created")
    assert row["new_value"]["owner"] == "x@y.io"


def test_it_shows_the_completed_status_change_of_an_owner(owner_client, reader_client, own_item):
    owner_client.patch(item_url(own_item), {"status": "done"}, format="json")

    rows = {row["field"]: row for row in history(reader_client, own_item)}

    assert set(rows) == {"status", "completed_at"}
    status = rows["status"]
    assert (status["source"], status["actor"]) == ("api", "olivia")
    assert (status["old_value"], status["new_value"]) == ("open", "done")
    own_item.refresh_from_db()
    assert rows["completed_at"]["old_value"] is None
    assert rows["completed_at"]["new_value"] == own_item.completed_at.isoformat()


def test_it_pages_a_long_history(manager_client, reader_client):
    item = factories.ActionItemFactory()
    for n in range(60):
        action_item_update(item=item, actor=Actor.system(), description=f"rev {n}")

    data = reader_client.get(item_url(item, "history")).json()

    assert data["count"] == 60
    assert len(data["results"]) == 50
    assert data["results"][0]["new_value"] == "rev 0"
    assert data["results"][0]["actor"] == "system"


def test_it_gives_404_for_the_history_of_an_unknown_item(reader_client):
    assert_error(reader_client.get(item_url(123456, "history")), 404)

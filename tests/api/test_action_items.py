"""Action items through the API: fields, create, change, delete, comments."""

import datetime as dt

import pytest
import time_machine

from tests import factories
from tracker.models import ActionItem, ActionItemChange, Comment, Person

from .helpers import ITEMS, assert_error, error_paths, item_url

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()

FIELDS = {
    "id",
    "incident",
    "title",
    "description",
    "owner",
    "owner_name",
    "priority",
    "type",
    "status",
    "deadline",
    "deadline_derived",
    "completed_at",
    "created_at",
    "updated_at",
    "is_overdue",
    "days_until_due",
    "ticket",
}


@time_machine.travel(NOW, tick=False)
def test_it_shows_every_field_of_an_item(reader_client):
    person = factories.PersonFactory(email="Alice@Company.com", name="Alice Chen")
    item = factories.ActionItemFactory(
        owner=person,
        title="Add alerting",
        description="At 70% and 85%",
        priority="P1",
        type="detection",
        deadline=TODAY - dt.timedelta(days=2),
    )

    data = reader_client.get(item_url(item)).json()

    assert set(data) >= FIELDS
    assert data["id"] == item.pk
    assert data["incident"] == item.incident.external_id
    assert data["title"] == "Add alerting"
    assert data["description"] == "At 70% and 85%"
    assert data["owner"] == "Alice@Company.com"
    assert data["owner_name"] == "Alice Chen"
    assert (data["priority"], data["type"], data["status"]) == ("P1", "detection", "open")
    assert data["deadline"] == "2024-03-08"
    assert data["deadline_derived"] is False
    assert data["completed_at"] is None
    assert data["created_at"].startswith("2024-03-10T12:00:00")
    assert data["is_overdue"] is True
    assert data["days_until_due"] == -2
    assert data["ticket"] == {
        "system": None,
        "key": None,
        "url": None,
        "sync_state": None,
        "last_error": None,
        "next_attempt_at": None,
        "last_synced_at": None,
    }


@time_machine.travel(NOW, tick=False)
def test_it_shows_an_unassigned_item_without_deadline(reader_client):
    item = factories.ActionItemFactory(owner=None, incident=None, deadline=None)

    data = reader_client.get(item_url(item)).json()

    assert (data["owner"], data["owner_name"], data["incident"]) == (None, "", None)
    assert (data["deadline"], data["is_overdue"], data["days_until_due"]) == (None, False, None)


@time_machine.travel(NOW, tick=False)
def test_it_never_calls_a_closed_item_overdue(reader_client):
    item = factories.ActionItemFactory(status="cancelled", deadline=TODAY - dt.timedelta(days=9))

    assert reader_client.get(item_url(item)).json()["is_overdue"] is False


@time_machine.travel(NOW, tick=False)
def test_it_creates_an_item_with_a_created_history_row(manager_client, manager):
    incident = factories.IncidentFactory(external_id="INC-1")

    response = manager_client.post(
        ITEMS,
        {
            "incident": "INC-1",
            "title": "  Write the runbook  ",
            "owner": "bob@company.com",
            "priority": "P1",
            "type": "Process Improvement",
            "deadline": "2024-04-01",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    data = response.json()
    item = ActionItem.objects.get()
    assert data["id"] == item.pk
    assert response["ETag"] == f'"{item.pk}.{item.version}"'
    assert item.incident == incident
    assert item.title == "Write the runbook"
    assert item.owner.email == "bob@company.com"
    assert (item.priority, item.type, item.status) == ("P1", "process_improvement", "open")
    assert item.deadline == dt.date(2024, 4, 1)
    change = ActionItemChange.objects.get()
    assert (change.item, change.field, change.source, change.actor) == (
        item,
        "created",
        "api",
        manager,
    )
    assert change.actor_label == manager.username
    assert change.new_value["title"] == "Write the runbook"
    assert change.new_value["owner"] == "bob@company.com"
    assert change.at == NOW


def test_it_creates_an_item_with_defaults(manager_client):
    response = manager_client.post(ITEMS, {"title": "Just a title"}, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["priority"], data["status"], data["owner"], data["incident"]) == (
        "P2",
        "open",
        None,
        None,
    )


def test_it_sets_completed_at_when_created_done(manager_client):
    response = manager_client.post(ITEMS, {"title": "Already", "status": "done"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["completed_at"] is not None
    assert ActionItem.objects.get().completed_at is not None


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x", "priority": "P9"}, "priority"),
        ({"title": "x", "status": "finished"}, "status"),
        ({"title": "x", "incident": "INC-NOPE"}, "incident"),
        ({"title": "x", "owner": "not an email"}, "owner"),
        ({"title": "x", "deadline": "next week"}, "deadline"),
    ],
)
def test_it_refuses_an_invalid_new_item_naming_the_field(manager_client, body, path):
    response = manager_client.post(ITEMS, body, format="json")

    assert_error(response, 400)
    assert error_paths(response) == [path]
    assert not ActionItem.objects.exists()
    assert not ActionItemChange.objects.exists()


def test_it_reuses_an_existing_person_whatever_the_email_case(manager_client):
    person = factories.PersonFactory(email="Alice@Company.com")

    response = manager_client.post(
        ITEMS, {"title": "x", "owner": "ALICE@company.COM"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert ActionItem.objects.get().owner == person
    assert Person.objects.count() == 1
    assert response.json()["owner"] == "Alice@Company.com"


def test_it_creates_a_person_for_a_new_owner_email(manager_client):
    user = factories.UserFactory(username="dan", email="Dan@Company.com")

    response = manager_client.post(ITEMS, {"title": "x", "owner": "DAN@company.com"}, format="json")

    assert response.status_code == 201, response.content
    person = Person.objects.get()
    assert person.email == "dan@company.com"
    assert person.user == user  # linked to the account with that email, whatever its case


@time_machine.travel(NOW, tick=False)
def test_it_records_each_changed_field_in_history(manager_client, manager):
    item = factories.ActionItemFactory(
        priority="P2", deadline=dt.date(2024, 4, 1), owner=factories.PersonFactory(email="a@x.io")
    )

    response = manager_client.patch(
        item_url(item),
        {"priority": "P0", "deadline": "2024-03-20", "owner": "b@x.io", "title": item.title},
        format="json",
    )

    assert response.status_code == 200, response.content
    changes = {c.field: (c.old_value, c.new_value, c.source, c.actor) for c in item.changes.all()}
    assert changes == {
        "priority": ("P2", "P0", "api", manager),
        "deadline": ("2024-04-01", "2024-03-20", "api", manager),
        "owner": ("a@x.io", "b@x.io", "api", manager),
    }
    item.refresh_from_db()
    assert (item.priority, item.deadline, item.owner.email) == (
        "P0",
        dt.date(2024, 3, 20),
        "b@x.io",
    )
    assert response.json()["priority"] == "P0"


def test_it_writes_nothing_for_a_patch_that_changes_nothing(manager_client):
    item = factories.ActionItemFactory(priority="P1")

    response = manager_client.patch(item_url(item), {"priority": "P1"}, format="json")

    assert response.status_code == 200
    assert not item.changes.exists()
    item.refresh_from_db()
    assert item.version == 1


def test_it_unassigns_an_item(manager_client):
    item = factories.ActionItemFactory()

    response = manager_client.patch(item_url(item), {"owner": None}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["owner"] is None
    item.refresh_from_db()
    assert item.owner is None
    assert item.changes.get().field == "owner"


def test_it_sets_completed_at_on_done_and_clears_it_on_reopen(manager_client):
    item = factories.ActionItemFactory(status="in_progress")
    done_at = dt.datetime(2024, 3, 11, 8, 30, tzinfo=dt.UTC)

    with time_machine.travel(done_at, tick=False):
        done = manager_client.patch(item_url(item), {"status": "done"}, format="json")
    item.refresh_from_db()
    assert done.status_code == 200, done.content
    assert item.completed_at == done_at
    assert done.json()["completed_at"].startswith("2024-03-11T08:30:00")

    reopened = manager_client.patch(item_url(item), {"status": "open"}, format="json")

    assert reopened.status_code == 200, reopened.content
    assert reopened.json()["completed_at"] is None
    item.refresh_from_db()
    assert (item.status, item.completed_at) == ("open", None)
    assert [c.new_value for c in item.changes.filter(field="status")] == ["done", "open"]


@pytest.mark.parametrize(("start", "target"), [("cancelled", "done"), ("done", "blocked")])
def test_it_refuses_a_transition_people_may_not_make(manager_client, start, target):
    completed = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) if start == "done" else None
    item = factories.ActionItemFactory(status=start, completed_at=completed)

    response = manager_client.patch(item_url(item), {"status": target}, format="json")

    errors = assert_error(response, 400)
    assert [e["path"] for e in errors] == ["status"]
    assert f"cannot change from {start} to {target}" in errors[0]["message"]
    item.refresh_from_db()
    assert (item.status, item.completed_at, item.version) == (start, completed, 1)
    assert not item.changes.exists()


def test_it_refuses_a_transition_to_an_owner_too(owner_client, own_item):
    own_item.status = "cancelled"
    own_item.save()

    response = owner_client.patch(item_url(own_item), {"status": "done"}, format="json")

    assert_error(response, 400)
    assert error_paths(response) == ["status"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"status": "finished"}, "status"),
        ({"priority": "P9"}, "priority"),
        ({"priority": None}, "priority"),
        ({"title": ""}, "title"),
        ({"deadline": "2024-02-30"}, "deadline"),
        ({"incident": "INC-NOPE"}, "incident"),
    ],
)
def test_it_refuses_an_invalid_change_naming_the_field(manager_client, body, path):
    item = factories.ActionItemFactory()
    before = ActionItem.objects.values().get(pk=item.pk)

    response = manager_client.patch(item_url(item), body, format="json")

    assert_error(response, 400)
    assert error_paths(response) == [path]
    assert ActionItem.objects.values().get(pk=item.pk) == before


def test_it_ignores_read_only_fields(manager_client):
    item = factories.ActionItemFactory()

    response = manager_client.patch(
        item_url(item), {"completed_at": "2024-01-01T00:00:00Z", "version": 99}, format="json"
    )

    assert response.status_code == 200
    item.refresh_from_db()
    assert (item.completed_at, item.version) == (None, 1)


def test_it_refuses_put(manager_client):
    item = factories.ActionItemFactory()

    response = manager_client.put(item_url(item), {"title": "x"}, format="json")

    assert_error(response, 405)


def test_it_refuses_to_delete_an_item_even_for_a_manager(manager_client):
    # Items are cancelled, never deleted: the API agrees with the admin and the README.
    item = factories.ActionItemFactory()
    versions = ActionItemChange.objects.filter(item=item).count()

    response = manager_client.delete(item_url(item))

    (error,) = assert_error(response, 405)
    assert "cancelled" in error["message"]
    assert ActionItem.objects.filter(pk=item.pk).exists()
    assert ActionItemChange.objects.filter(item=item).count() == versions
    assert manager_client.get(item_url(item)).status_code == 200


def test_it_lists_and_adds_comments(owner_client, reader_client, own_item, owner):
    first = owner_client.post(item_url(own_item, "comments"), {"body": " First "}, format="json")
    owner_client.post(item_url(own_item, "comments"), {"body": "Second"}, format="json")

    assert first.status_code == 201, first.content
    assert first.json()["body"] == "First"
    assert first.json()["source"] == "api"
    data = reader_client.get(item_url(own_item, "comments")).json()
    assert data["count"] == 2
    assert [c["body"] for c in data["results"]] == ["First", "Second"]
    assert [c["author"] for c in data["results"]] == ["olivia", "olivia"]


@pytest.mark.parametrize("body", [{}, {"body": ""}, {"body": "   "}])
def test_it_refuses_an_empty_comment(owner_client, own_item, body):
    response = owner_client.post(item_url(own_item, "comments"), body, format="json")

    assert_error(response, 400)
    assert error_paths(response) == ["body"]
    assert not Comment.objects.exists()


def test_it_gives_404_for_comments_on_an_unknown_item(manager_client):
    assert_error(manager_client.post(item_url(999999, "comments"), {"body": "x"}), 404)

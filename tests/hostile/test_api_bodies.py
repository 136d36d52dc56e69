"""JSON bodies the API's parser refuses with a 400 in the one error shape, naming the JSON
path, before any view sees them: on PostgreSQL with DEBUG off these were 500s (Python's
json recursing 100,000 levels deep) or values the database refuses (infinity)."""

import json

import pytest
from django.test import Client

from tests import factories
from tracker.models import ActionItem, ActionItemChange, Comment

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

DEEP = b'{"status": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.fixture
def owned_item() -> ActionItem:
    person = factories.PersonFactory(email="olivia@example.com")
    return factories.make_action_item(title="Rotate the keys", owner=person)


@pytest.fixture
def owner_client(owned_item) -> Client:
    user = factories.UserFactory(username="olivia", email="olivia@example.com")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def errors_of(response, status: int = 400) -> list[dict]:
    assert response.status_code == status, response.content[:500]
    body = json.loads(response.content)
    assert body["status"] == status
    return body["errors"]


def unchanged(item: ActionItem) -> bool:
    version = item.version
    item.refresh_from_db()
    return item.version == version and not Comment.objects.filter(item=item).exists()


BODIES = {
    "deep": (DEEP, None, "too_deep"),
    "infinity": (b'{"status": "done", "note": 1e999}', "note", "invalid_number"),
    "nan": (b'{"status": NaN}', "status", "invalid_number"),
    "long integer": (b'{"status": ' + b"7" * 5000 + b"}", "status", "invalid_number"),
    "duplicate key": (b'{"status": "done", "status": "open"}', "status", "duplicate_key"),
    "nul": (b'{"status": "done", "note": "a\\u0000b"}', "note", "invalid_characters"),
    "surrogate": (b'{"body": "\\udfff"}', "body", "invalid_characters"),
    "invalid utf-8": (b'{"status": "\xc3("}', None, "invalid_utf8"),
}


@pytest.mark.parametrize(("body", "path", "code"), BODIES.values(), ids=BODIES.keys())
def test_the_owners_patch_refuses_a_hostile_body(owner_client, owned_item, body, path, code):
    response = owner_client.patch(
        f"/api/v1/action-items/{owned_item.pk}/", body, content_type="application/json"
    )

    errors = errors_of(response)
    assert [(e["path"], e["code"]) for e in errors] == [(path, code)]
    assert unchanged(owned_item)


@pytest.mark.parametrize(("body", "path", "code"), BODIES.values(), ids=BODIES.keys())
def test_a_comment_with_a_hostile_body_is_refused(owner_client, owned_item, body, path, code):
    response = owner_client.post(
        f"/api/v1/action-items/{owned_item.pk}/comments/", body, content_type="application/json"
    )

    errors = errors_of(response)
    assert [(e["path"], e["code"]) for e in errors] == [(path, code)]
    assert unchanged(owned_item)


@pytest.mark.parametrize(("body", "path", "code"), BODIES.values(), ids=BODIES.keys())
def test_the_managers_create_refuses_a_hostile_body(manager_client, body, path, code):
    items, changes = ActionItem.objects.count(), ActionItemChange.objects.count()

    response = manager_client.post("/api/v1/action-items/", body, content_type="application/json")

    errors = errors_of(response)
    assert [(e["path"], e["code"]) for e in errors] == [(path, code)]
    assert (ActionItem.objects.count(), ActionItemChange.objects.count()) == (items, changes)


def test_the_depth_error_names_the_limit(manager_client):
    response = manager_client.post("/api/v1/action-items/", DEEP, content_type="application/json")

    [error] = errors_of(response)
    assert "100,001 levels deep; the limit is 64" in error["message"]


def test_a_body_at_the_depth_limit_reaches_the_serializer(manager_client):
    nested = "[" * 62 + "]" * 62
    body = f'{{"title": "Deep but allowed", "extra": {nested}}}'.encode()

    response = manager_client.post("/api/v1/action-items/", body, content_type="application/json")

    assert response.status_code == 201, response.content
    assert ActionItem.objects.filter(title="Deep but allowed").exists()

"""Emails of 255 to 320 characters pass email validation but not the 254 characters of
a person's email column: every edge that takes an owner's email refuses them, naming
the field, and writes nothing (on PostgreSQL they were server errors)."""

import json

import pytest

from tests import factories
from tracker.models import ActionItem, Person

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

COLUMN = Person._meta.get_field("email").max_length
# 64 + 1 + 192 + 3 = 260 characters: a valid address, too long for the column.
TOO_LONG = "a" * 64 + "@" + ("b" * 63 + ".") * 3 + "com"
LONGEST_VALID = "a" * 64 + "@" + ("b" * 63 + ".") * 3 + "c" * 59 + ".com"


@pytest.fixture
def item() -> ActionItem:
    return factories.make_action_item(title="Rotate the keys")


def unchanged(item: ActionItem, people: int) -> bool:
    version = item.version
    item.refresh_from_db()
    return item.version == version and Person.objects.count() == people


def test_the_addresses_are_valid_and_too_long_for_the_column():
    from django.core.validators import validate_email

    for email in (TOO_LONG, LONGEST_VALID):
        validate_email(email)
        assert len(email) > COLUMN
    assert len(LONGEST_VALID) == 320


@pytest.mark.parametrize("email", [TOO_LONG, LONGEST_VALID], ids=["260", "320"])
def test_the_api_refuses_an_overlong_owner_on_patch(manager_client, item, email):
    people = Person.objects.count()

    response = manager_client.patch(
        f"/api/v1/action-items/{item.pk}/", {"owner": email}, content_type="application/json"
    )

    assert response.status_code == 400
    errors = json.loads(response.content)["errors"]
    assert [(e["path"], e["code"]) for e in errors] == [("owner", "max_length")]
    assert str(COLUMN) in errors[0]["message"]
    assert unchanged(item, people)


def test_the_api_refuses_an_overlong_owner_on_create(manager_client):
    count = ActionItem.objects.count()

    response = manager_client.post(
        "/api/v1/action-items/",
        {"title": "New", "owner": TOO_LONG},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert json.loads(response.content)["errors"][0]["path"] == "owner"
    assert ActionItem.objects.count() == count
    assert not Person.objects.filter(email__startswith="aaaa").exists()


def test_the_api_still_takes_the_longest_email_the_column_holds(manager_client, item):
    email = "a" * 64 + "@" + ("b" * 63 + ".") * 2 + "c" * (COLUMN - 64 - 1 - 128 - 4) + ".com"
    assert len(email) == COLUMN

    response = manager_client.patch(
        f"/api/v1/action-items/{item.pk}/", {"owner": email}, content_type="application/json"
    )

    assert response.status_code == 200
    assert json.loads(response.content)["owner"] == email


def test_the_item_page_refuses_an_overlong_owner_email(manager_client, item):
    people = Person.objects.count()

    response = manager_client.post(
        f"/items/{item.pk}/edit/",
        {"title": item.title, "priority": item.priority, "owner_email": TOO_LONG, "version": 1},
    )

    assert response.status_code == 400
    errors = response.context["edit_form"].errors
    assert list(errors) == ["owner_email"]
    assert f"at most {COLUMN} characters" in errors["owner_email"][0]
    assert unchanged(item, people)


def test_the_admins_reassign_action_refuses_an_overlong_email(superuser_client, item):
    people = Person.objects.count()

    response = superuser_client.post(
        "/admin/tracker/actionitem/",
        {
            "action": "reassign",
            "_selected_action": [item.pk],
            "apply": "1",
            "owner_email": TOO_LONG,
        },
    )

    assert response.status_code == 200
    assert response.templates[0].name == "admin/tracker/actionitem/action_form.html"
    errors = response.context["form"].errors
    assert f"at most {COLUMN} characters" in errors["owner_email"][0]
    assert unchanged(item, people)

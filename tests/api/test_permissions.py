"""Who may write what: managers everything, owners the status of their own items
and comments on them, other signed-in users nothing, anonymous callers 401."""

import pytest

from incidents.models import Incident
from tests import factories
from tracker.models import ActionItem, Comment

from .helpers import IMPORT, ITEMS, assert_error, item_url

pytestmark = pytest.mark.django_db


def _create(item, sample_bytes):
    return "post", ITEMS, {"title": "New item", "incident": item.incident.external_id}, "json"


def _patch_title(item, sample_bytes):
    return "patch", item_url(item), {"title": "Renamed"}, "json"


def _patch_status(item, sample_bytes):
    return "patch", item_url(item), {"status": "in_progress"}, "json"


def _delete(item, sample_bytes):
    return "delete", item_url(item), None, "json"


def _comment(item, sample_bytes):
    return "post", item_url(item, "comments"), {"body": "On it"}, "json"


def _import(item, sample_bytes):
    return "post", IMPORT, sample_bytes, "application/json"


WRITES = {
    "create": _create,
    "patch_title": _patch_title,
    "patch_status": _patch_status,
    "delete": _delete,
    "comment": _comment,
    "import": _import,
}

# The status each role gets for each write on the owner's own item.
EXPECTED = {
    "anonymous": dict.fromkeys(WRITES, 401),
    "reader": dict.fromkeys(WRITES, 403),
    "owner": {
        "create": 403,
        "patch_title": 403,
        "patch_status": 200,
        "delete": 403,
        "comment": 201,
        "import": 403,
    },
    "manager": {
        "create": 201,
        "patch_title": 200,
        "patch_status": 200,
        "delete": 405,  # allowed to ask, refused for every item: never deleted
        "comment": 201,
        "import": 201,
    },
}


def _snapshot(item_id: int) -> tuple:
    item = ActionItem.objects.filter(pk=item_id).values("title", "status", "version").first()
    return (
        item,
        ActionItem.objects.count(),
        Comment.objects.count(),
        Incident.objects.count(),
    )


def _send(client, method, url, body, fmt):
    if fmt == "json":
        return getattr(client, method)(url, body, format="json")
    return getattr(client, method)(url, body, content_type=fmt)


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("role", EXPECTED)
def test_it_applies_the_permission_matrix(
    role, write, api_client, client_for, reader, owner, manager, own_item, sample_bytes
):
    users = {"reader": reader, "owner": owner, "manager": manager}
    client = api_client if role == "anonymous" else client_for(users[role])
    before = _snapshot(own_item.pk)

    response = _send(client, *WRITES[write](own_item, sample_bytes))

    expected = EXPECTED[role][write]
    if expected >= 400:
        assert_error(response, expected)
        assert _snapshot(own_item.pk) == before, "a refused write changed something"
    else:
        assert response.status_code == expected, response.content
        assert _snapshot(own_item.pk) != before


def test_it_tells_anonymous_callers_how_to_authenticate(api_client, own_item):
    response = api_client.patch(item_url(own_item), {"status": "done"}, format="json")

    assert_error(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("role", ["anonymous", "reader", "owner", "manager"])
def test_it_lets_every_signed_in_user_read(role, api_client, client_for, reader, owner, manager):
    item = factories.ActionItemFactory()
    users = {"reader": reader, "owner": owner, "manager": manager}
    client = api_client if role == "anonymous" else client_for(users[role])
    urls = [
        ITEMS,
        item_url(item),
        item_url(item, "history"),
        item_url(item, "comments"),
        "/api/v1/people/",
        f"/api/v1/people/{item.owner_id}/",
        "/api/v1/incidents/",
        f"/api/v1/incidents/{item.incident.external_id}/",
    ]

    statuses = {url: client.get(url).status_code for url in urls}

    expected = 401 if role == "anonymous" else 200
    assert statuses == dict.fromkeys(urls, expected)


def test_it_refuses_an_owner_changing_another_owners_status(owner_client, other_item):
    response = owner_client.patch(item_url(other_item), {"status": "done"}, format="json")

    assert_error(response, 403)
    other_item.refresh_from_db()
    assert other_item.status == "open"
    assert other_item.completed_at is None


def test_it_refuses_an_owner_commenting_on_another_owners_item(owner_client, other_item):
    response = owner_client.post(item_url(other_item, "comments"), {"body": "x"}, format="json")

    assert_error(response, 403)
    assert not Comment.objects.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"deadline": "2030-01-01"},
        {"priority": "P0"},
        {"title": "Mine now"},
        {"owner": "olivia@example.com"},
        {"description": "more"},
        {"status": "done", "priority": "P0"},
    ],
)
def test_it_lets_an_owner_change_only_the_status_of_their_own_item(owner_client, own_item, changes):
    before = ActionItem.objects.values().get(pk=own_item.pk)

    response = owner_client.patch(item_url(own_item), changes, format="json")

    errors = assert_error(response, 403)
    assert "only its status" in errors[0]["message"]
    assert ActionItem.objects.values().get(pk=own_item.pk) == before


def test_it_lets_an_owner_mark_their_item_done_and_records_them(owner_client, owner, own_item):
    response = owner_client.patch(item_url(own_item), {"status": "done"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "done"
    change = own_item.changes.get(field="status")
    assert (change.source, change.actor, change.new_value) == ("api", owner, "done")


def test_it_lets_an_owner_comment_on_their_own_item(owner_client, own_item):
    response = owner_client.post(
        item_url(own_item, "comments"), {"body": "Done soon"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["author"] == "olivia"
    assert own_item.comments.get().body == "Done soon"


def test_it_matches_the_owner_email_whatever_its_case(client_for, own_item):
    shouting = factories.UserFactory(username="olivia2", email="  OLIVIA@Example.COM ")
    own_item.owner.email = "Olivia@EXAMPLE.com"
    own_item.owner.save()

    response = client_for(shouting).patch(
        item_url(own_item), {"status": "in_progress"}, format="json"
    )

    assert response.status_code == 200, response.content
    own_item.refresh_from_db()
    assert own_item.status == "in_progress"


def test_it_does_not_treat_a_user_without_email_as_owner(client_for):
    item = factories.ActionItemFactory(owner=None)
    nobody = factories.UserFactory(username="noemail", email="")

    response = client_for(nobody).patch(item_url(item), {"status": "done"}, format="json")

    assert_error(response, 403)


def test_it_treats_a_managers_group_member_who_is_not_staff_as_manager(
    client_for, managers_group, other_item
):
    member = factories.UserFactory(username="grouped", is_staff=False)
    member.groups.add(managers_group)

    response = client_for(member).patch(item_url(other_item), {"priority": "P0"}, format="json")

    assert response.status_code == 200, response.content
    other_item.refresh_from_db()
    assert other_item.priority == "P0"


def test_it_does_not_treat_staff_outside_the_group_as_manager(client_for, other_item):
    staff = factories.UserFactory(username="staffer", is_staff=True)

    response = client_for(staff).delete(item_url(other_item))

    assert_error(response, 403)
    assert ActionItem.objects.filter(pk=other_item.pk).exists()


def test_it_treats_a_superuser_as_manager(client_for, other_item):
    superuser = factories.UserFactory(username="root", is_staff=True, is_superuser=True)

    response = client_for(superuser).patch(
        item_url(other_item), {"title": "Renamed by root"}, format="json"
    )

    assert response.status_code == 200


def test_it_refuses_a_reader_even_with_only_a_status_change(reader_client, own_item):
    response = reader_client.patch(item_url(own_item), {"status": "done"}, format="json")

    assert_error(response, 403)
    own_item.refresh_from_db()
    assert own_item.status == "open"

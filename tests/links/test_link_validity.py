"""Links expire, cannot be altered or forged, and follow the item's current owner."""

import datetime as dt

import pytest
from django.core import signing

from tests import factories
from tracker import services
from tracker.links import SALT, action_token

from .helpers import NOW, link, path_of, state, token_of

pytestmark = pytest.mark.django_db

ACTING = pytest.mark.parametrize("action", ["done", "snooze"])


def other_character(c: str) -> str:
    return "A" if c != "A" else "B"


@ACTING
def test_it_accepts_a_link_until_it_expires(client, item, settings, time_machine, action):
    settings.TRACKER_ACTION_LINK_MAX_AGE_DAYS = 3
    path = link(item, action)
    time_machine.move_to(NOW + dt.timedelta(days=3) - dt.timedelta(seconds=1), tick=False)

    assert client.get(path).status_code == 200


@ACTING
def test_it_refuses_an_expired_link(client, item, settings, time_machine, action):
    settings.TRACKER_ACTION_LINK_MAX_AGE_DAYS = 3
    path = link(item, action)
    before = state(item)
    time_machine.move_to(NOW + dt.timedelta(days=3, seconds=1), tick=False)

    for response in (client.get(path), client.post(path)):
        assert response.status_code == 400
        assert "expired" in response.content.decode()
    assert state(item) == before


def test_it_expires_open_links_too(client, item, settings, time_machine):
    path = link(item, "open")
    time_machine.move_to(
        NOW + dt.timedelta(days=settings.TRACKER_ACTION_LINK_MAX_AGE_DAYS, seconds=1), tick=False
    )

    response = client.get(path)

    assert response.status_code == 400
    assert "Add alerting" not in response.content.decode()


@pytest.mark.parametrize("part", [0, 1, 2], ids=["payload", "timestamp", "signature"])
def test_it_refuses_a_link_with_one_character_changed(client, item, part):
    token = token_of(link(item, "done"))
    pieces = token.split(":")
    assert len(pieces) == 3
    middle = len(pieces[part]) // 2
    pieces[part] = (
        pieces[part][:middle] + other_character(pieces[part][middle]) + pieces[part][middle + 1 :]
    )
    before = state(item)

    for response in (client.get(path_of(":".join(pieces))), client.post(path_of(":".join(pieces)))):
        assert response.status_code == 400
        assert "not valid" in response.content.decode()
    assert state(item) == before


def test_it_refuses_the_payload_of_one_link_with_the_signature_of_another(client, owner, item):
    other = factories.ActionItemFactory(owner=owner)
    mine = token_of(link(item, "open")).split(":")
    theirs = token_of(link(other, "done")).split(":")
    before = state(other)

    for swapped in (
        [theirs[0], mine[1], mine[2]],
        [theirs[0], theirs[1], mine[2]],
        [mine[0], theirs[1], theirs[2]],
    ):
        response = client.post(path_of(":".join(swapped)))
        assert response.status_code == 400, swapped
    assert state(other) == before


def test_it_refuses_a_link_made_up_for_another_item(client, owner, item):
    other = factories.ActionItemFactory(owner=owner)
    payload = {"i": other.pk, "r": "owner@example.com", "a": "done"}
    forged = [
        # Signed with a key that is not the project's secret.
        signing.TimestampSigner(key="guessed-secret", salt=SALT).sign_object(payload),
        # Signed by the project for another purpose.
        signing.TimestampSigner(salt="some.other.salt").sign_object(payload),
        signing.dumps(payload),
        # This item's valid signature on the other item's payload.
        signing.TimestampSigner(salt=SALT).sign_object(payload).split(":", 1)[0]
        + ":"
        + token_of(link(item, "done")).split(":", 1)[1],
    ]
    before = state(other)

    for token in forged:
        response = client.post(path_of(token))
        assert response.status_code == 400, token
    assert state(other) == before


def test_it_refuses_a_token_with_an_unknown_action(client, item):
    token = signing.TimestampSigner(salt=SALT).sign_object(
        {"i": item.pk, "r": "owner@example.com", "a": "delete"}
    )

    assert client.post(path_of(token)).status_code == 400
    with pytest.raises(ValueError):
        action_token(
            item_id=item.pk, version=item.version, recipient="owner@example.com", action="delete"
        )


@ACTING
def test_it_refuses_the_previous_owner_after_a_reassignment(client, item, action):
    path = link(item, action)
    services.action_item_update(
        item=item,
        actor=services.Actor.system(),
        owner=factories.PersonFactory(email="newowner@example.com"),
    )
    before = state(item)

    for response in (client.get(path), client.post(path)):
        assert response.status_code == 403
        assert "previous owner" in response.content.decode()
        assert "<form" not in response.content.decode()
    assert state(item) == before


@ACTING
def test_it_refuses_a_link_to_someone_who_never_owned_the_item(client, item, action):
    before = state(item)

    response = client.post(link(item, action, recipient="director@example.com"))

    assert response.status_code == 403
    assert state(item) == before


@ACTING
def test_it_refuses_acting_on_an_item_left_unassigned(client, item, action):
    path = link(item, action)
    services.action_item_update(item=item, actor=services.Actor.system(), owner=None)
    before = state(item)

    assert client.post(path).status_code == 403
    assert state(item) == before


def test_it_matches_the_owner_whatever_the_case_of_the_address(client, item):
    response = client.post(link(item, "done", recipient="OWNER@example.COM"))

    assert response.status_code == 200
    item.refresh_from_db()
    assert item.status == "done"


@pytest.mark.parametrize("action", ["open", "done", "snooze"])
def test_it_says_a_deleted_item_no_longer_exists(client, item, action):
    path = link(item, action)
    item.delete()

    for response in (client.get(path), client.post(path)):
        assert response.status_code == 404
        assert "no longer exists" in response.content.decode()

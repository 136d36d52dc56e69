"""/api/v1/people/: everyone who owns items, with their open and overdue counts."""

import datetime as dt

import pytest
import time_machine

from tests import factories

from .helpers import PEOPLE, assert_error

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


@pytest.fixture
def alice():
    person = factories.PersonFactory(email="alice@company.com", name="Alice Chen")
    for status, offset in [("open", -1), ("blocked", -5), ("in_progress", 3), ("open", None)]:
        deadline = TODAY + dt.timedelta(days=offset) if offset is not None else None
        factories.ActionItemFactory(owner=person, status=status, deadline=deadline)
    factories.ActionItemFactory(
        owner=person, status="done", completed_at=NOW, deadline=TODAY - dt.timedelta(days=9)
    )
    factories.ActionItemFactory(
        owner=person, status="cancelled", deadline=TODAY - dt.timedelta(days=9)
    )
    return person


@time_machine.travel(NOW, tick=False)
def test_it_lists_people_with_open_and_overdue_counts(reader_client, alice):
    factories.PersonFactory(email="bob@company.com")

    data = reader_client.get(PEOPLE).json()

    rows = {row["email"]: row for row in data["results"]}
    assert data["count"] == 2
    assert (
        rows["alice@company.com"]["open_items"],
        rows["alice@company.com"]["overdue_items"],
    ) == (
        4,
        2,
    )
    assert (rows["bob@company.com"]["open_items"], rows["bob@company.com"]["overdue_items"]) == (
        0,
        0,
    )
    assert set(rows["alice@company.com"]) == {
        "id",
        "email",
        "name",
        "time_zone",
        "manager_email",
        "open_items",
        "overdue_items",
    }


@time_machine.travel(NOW, tick=False)
def test_it_shows_one_person_with_counts(reader_client, alice):
    data = reader_client.get(f"{PEOPLE}{alice.pk}/").json()

    assert (data["email"], data["name"]) == ("alice@company.com", "Alice Chen")
    assert (data["open_items"], data["overdue_items"]) == (4, 2)


def test_it_counts_an_item_overdue_once_its_deadline_has_passed(reader_client, alice):
    with time_machine.travel(NOW + dt.timedelta(days=4), tick=False):
        data = reader_client.get(f"{PEOPLE}{alice.pk}/").json()

    assert data["overdue_items"] == 3


def test_it_searches_and_orders_people(reader_client):
    factories.PersonFactory(email="zed@company.com", name="Alice Z")
    factories.PersonFactory(email="amy@company.com", name="Amy")
    factories.PersonFactory(email="bob@other.org", name="Bob")

    def emails(**params):
        return [row["email"] for row in reader_client.get(PEOPLE, params).json()["results"]]

    assert emails() == ["amy@company.com", "bob@other.org", "zed@company.com"]
    assert emails(q="alice") == ["zed@company.com"]
    assert emails(q="COMPANY") == ["amy@company.com", "zed@company.com"]
    assert emails(ordering="-email") == ["zed@company.com", "bob@other.org", "amy@company.com"]


def test_it_gives_404_for_an_unknown_person(reader_client):
    assert_error(reader_client.get(f"{PEOPLE}424242/"), 404)


def test_it_does_not_let_anyone_change_people(manager_client, alice):
    assert_error(manager_client.patch(f"{PEOPLE}{alice.pk}/", {"name": "x"}, format="json"), 405)
    assert_error(manager_client.post(PEOPLE, {"email": "x@y.io"}, format="json"), 405)

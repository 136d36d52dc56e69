"""Filtering, ordering and paginating the list of action items."""

import datetime as dt

import pytest
import time_machine

from tests import factories
from tracker.models import ActionItem

from .helpers import ITEMS, assert_error, error_paths

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
STATUSES = ["open", "in_progress", "blocked", "done", "cancelled"]


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def titles(client, query: str = "", **params) -> list[str]:
    response = client.get(ITEMS + query, params)
    assert response.status_code == 200, response.content
    return sorted(row["title"] for row in response.json()["results"])


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def make(title: str, **fields) -> ActionItem:
    return factories.ActionItemFactory(title=title, **fields)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status=open", ["a"]),
        ("?status=open,blocked", ["a", "c"]),
        ("?status=open&status=blocked", ["a", "c"]),
        ("?status=open, done", ["a", "d"]),
        ("?status=open,blocked&status=done", ["a", "c", "d"]),
        ("", ["a", "b", "c", "d", "e"]),
    ],
)
def test_it_filters_by_one_or_several_statuses(reader_client, query, expected):
    for title, status in zip("abcde", STATUSES, strict=True):
        make(title, status=status, completed_at=NOW if status == "done" else None)

    assert titles(reader_client, query) == expected


@pytest.mark.parametrize("query", ["?status=finished", "?status=open,finished"])
def test_it_refuses_an_unknown_status(reader_client, query):
    response = reader_client.get(ITEMS + query)

    assert_error(response, 400)
    assert error_paths(response) == ["status"]


def test_it_filters_by_owner_email_whatever_its_case(reader_client):
    make("alice's", owner=factories.PersonFactory(email="Alice@Company.com"))
    make("bob's", owner=factories.PersonFactory(email="bob@company.com"))
    make("nobody's", owner=None)

    assert titles(reader_client, owner="aLiCe@company.COM") == ["alice's"]
    assert titles(reader_client, owner="bob@company.com") == ["bob's"]
    assert titles(reader_client, owner="carol@company.com") == []


def test_it_filters_by_priority(reader_client):
    for priority in ["P0", "P1", "P2"]:
        make(priority, priority=priority)

    assert titles(reader_client, priority="P1") == ["P1"]
    assert titles(reader_client, "?priority=P0,P2") == ["P0", "P2"]
    assert_error(reader_client.get(ITEMS, {"priority": "P7"}), 400)


def test_it_filters_by_type(reader_client):
    make("detect", type="detection")
    make("prevent", type="prevention")

    assert titles(reader_client, type="prevention") == ["prevent"]


def test_it_filters_by_incident_external_id(reader_client):
    make("first", incident=factories.IncidentFactory(external_id="INC-1"))
    make("second", incident=factories.IncidentFactory(external_id="INC-2"))
    make("none", incident=None)

    assert titles(reader_client, incident="INC-2") == ["second"]
    assert titles(reader_client, incident="INC-404") == []


def test_it_filters_overdue_items(reader_client, frozen):
    make("late", deadline=days(-1))
    make("late and blocked", deadline=days(-30), status="blocked")
    make("due today", deadline=days(0))
    make("later", deadline=days(5))
    make("late but done", deadline=days(-3), status="done", completed_at=NOW)
    make("late but cancelled", deadline=days(-3), status="cancelled")
    make("no deadline", deadline=None)

    assert titles(reader_client, overdue="true") == ["late", "late and blocked"]
    assert titles(reader_client, overdue="false") == [
        "due today",
        "late but cancelled",
        "late but done",
        "later",
        "no deadline",
    ]


def test_it_filters_by_deadline_range_inclusively(reader_client, frozen):
    for n in [-2, -1, 0, 1, 2]:
        make(f"d{n:+d}", deadline=days(n))
    make("undated", deadline=None)

    assert titles(reader_client, due_before=str(days(0))) == ["d+0", "d-1", "d-2"]
    assert titles(reader_client, due_after=str(days(0))) == ["d+0", "d+1", "d+2"]
    assert titles(reader_client, due_after=str(days(-1)), due_before=str(days(1))) == [
        "d+0",
        "d+1",
        "d-1",
    ]
    assert_error(reader_client.get(ITEMS, {"due_before": "soon"}), 400)


def test_it_filters_open_items_due_within_days(reader_client, frozen):
    make("overdue", deadline=days(-1))
    make("today", deadline=days(0))
    make("in 7", deadline=days(7))
    make("in 8", deadline=days(8))
    make("in 3 but done", deadline=days(3), status="done", completed_at=NOW)
    make("undated", deadline=None)

    assert titles(reader_client, due_within_days="7") == ["in 7", "today"]
    assert titles(reader_client, due_within_days="0") == ["today"]


@pytest.mark.parametrize("value", ["-1", "soon"])
def test_it_refuses_a_bad_due_within_days(reader_client, value):
    response = reader_client.get(ITEMS, {"due_within_days": value})

    assert_error(response, 400)
    assert error_paths(response) == ["due_within_days"]


def test_it_follows_today_as_time_passes(reader_client):
    make("due on the 15th", deadline=dt.date(2024, 3, 15))

    with time_machine.travel(NOW, tick=False):
        assert titles(reader_client, overdue="true") == []
        assert titles(reader_client, due_within_days="5") == ["due on the 15th"]
    with time_machine.travel(NOW + dt.timedelta(days=6), tick=False):
        assert titles(reader_client, overdue="true") == ["due on the 15th"]
        assert titles(reader_client, due_within_days="5") == []


def test_it_filters_items_removed_from_the_source(reader_client):
    make("kept")
    make("removed", removed_from_source=True)

    assert titles(reader_client, removed_from_source="true") == ["removed"]
    assert titles(reader_client, removed_from_source="false") == ["kept"]


def test_it_searches_title_description_incident_and_owner(reader_client):
    make("Tune the pool", incident=factories.IncidentFactory(external_id="INC-A"))
    make("x", description="about the connection POOL", incident=None)
    make("y", incident=factories.IncidentFactory(external_id="INC-POOL-7"))
    make("z", owner=factories.PersonFactory(email="pool-team@example.com"), incident=None)
    make("unrelated", incident=None)

    assert titles(reader_client, q="pool") == ["Tune the pool", "x", "y", "z"]
    assert titles(reader_client, q="unrel") == ["unrelated"]


def test_it_combines_filters(reader_client, frozen):
    alice = factories.PersonFactory(email="alice@company.com")
    make("match", owner=alice, priority="P1", deadline=days(-1))
    make("wrong priority", owner=alice, priority="P2", deadline=days(-1))
    make("not overdue", owner=alice, priority="P1", deadline=days(1))
    make("someone else", priority="P1", deadline=days(-1))

    assert titles(reader_client, owner="alice@company.com", priority="P1", overdue="true") == [
        "match"
    ]


# --- Ordering -----------------------------------------------------------------


@pytest.fixture
def ordered_items():
    """Four items whose deadline, priority, created_at and updated_at all sort differently."""
    rows = [
        # title, deadline offset, priority, created at (hours), updated at (hours)
        ("a", 3, "P2", 1, 8),
        ("b", 1, "P0", 3, 5),
        ("c", 4, "P3", 2, 7),
        ("d", 2, "P1", 4, 6),
    ]
    items = {}
    for title, deadline, priority, created, _ in rows:
        with time_machine.travel(NOW + dt.timedelta(hours=created), tick=False):
            items[title] = make(title, deadline=days(deadline), priority=priority)
    for title, *_, updated in rows:
        ActionItem.objects.filter(pk=items[title].pk).update(
            updated_at=NOW + dt.timedelta(hours=updated)
        )
    return items


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("deadline", "bdac"),
        ("-deadline", "cadb"),
        ("priority", "bdac"),
        ("-priority", "cadb"),
        ("created_at", "acbd"),
        ("-created_at", "dbca"),
        ("updated_at", "bdca"),
        ("-updated_at", "acdb"),
    ],
)
def test_it_orders_by_each_field(reader_client, ordered_items, ordering, expected):
    response = reader_client.get(ITEMS, {"ordering": ordering})

    assert response.status_code == 200
    assert "".join(row["title"] for row in response.json()["results"]) == expected


def test_it_orders_by_deadline_by_default(reader_client, ordered_items):
    response = reader_client.get(ITEMS)

    assert "".join(row["title"] for row in response.json()["results"]) == "bdac"


def test_it_breaks_ties_by_id_so_pages_never_overlap(reader_client):
    incident = factories.IncidentFactory()
    owner = factories.PersonFactory()
    ActionItem.objects.bulk_create(
        ActionItem(incident=incident, owner=owner, title=f"t{n}", priority="P2") for n in range(30)
    )

    ids = []
    for offset in range(0, 30, 7):
        page = reader_client.get(ITEMS, {"ordering": "priority", "limit": 7, "offset": offset})
        ids += [row["id"] for row in page.json()["results"]]

    assert ids == sorted(ActionItem.objects.values_list("id", flat=True))


def test_it_ignores_an_unknown_ordering_field(reader_client, ordered_items):
    response = reader_client.get(ITEMS, {"ordering": "source_values"})

    assert response.status_code == 200
    assert "".join(row["title"] for row in response.json()["results"]) == "bdac"


# --- Pagination ---------------------------------------------------------------


def _bulk_items(count: int) -> None:
    incident = factories.IncidentFactory()
    owner = factories.PersonFactory()
    ActionItem.objects.bulk_create(
        ActionItem(incident=incident, owner=owner, title=f"t{n:04d}", deadline=days(n))
        for n in range(count)
    )


def test_it_pages_by_50_by_default(reader_client):
    _bulk_items(60)

    data = reader_client.get(ITEMS).json()

    assert data["count"] == 60
    assert len(data["results"]) == 50
    assert data["next"] is not None and "offset=50" in data["next"]
    assert data["previous"] is None
    rest = reader_client.get(data["next"]).json()
    assert [row["title"] for row in rest["results"]] == [f"t{n:04d}" for n in range(50, 60)]


def test_it_caps_the_page_size_at_500(reader_client):
    _bulk_items(501)

    data = reader_client.get(ITEMS, {"limit": 1000}).json()

    assert data["count"] == 501
    assert len(data["results"]) == 500


def test_it_honours_a_smaller_limit_and_an_offset(reader_client):
    _bulk_items(10)

    data = reader_client.get(ITEMS, {"limit": 3, "offset": 4}).json()

    assert [row["title"] for row in data["results"]] == ["t0004", "t0005", "t0006"]

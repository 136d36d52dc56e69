"""The items list: the API's filters and ordering, pagination, CSV export, escaping."""

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests import factories

pytestmark = pytest.mark.django_db

LIST = reverse("item-list")
NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
XSS_TITLE = "<script>alert(1)</script>"
XSS_DESCRIPTION = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def reader(db):
    return factories.UserFactory(username="reader", email="reader@example.com")


@pytest.fixture
def reader_client(client, reader):
    client.force_login(reader)
    return client


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def titles(response) -> list[str]:
    return [item.title for item in response.context["page"]]


@pytest.fixture
def items():
    """A few items that each filter tells apart."""
    inc_a = factories.IncidentFactory(external_id="INC-A")
    inc_b = factories.IncidentFactory(external_id="INC-B")
    ann = factories.PersonFactory(email="ann@example.com")
    bob = factories.PersonFactory(email="bob@example.com")
    make = factories.ActionItemFactory
    return {
        "late": make(
            title="Late", incident=inc_a, owner=ann, priority="P1", deadline=days(-3), type="fix"
        ),
        "soon": make(title="Soon", incident=inc_a, owner=bob, priority="P0", deadline=days(2)),
        "later": make(
            title="Later",
            incident=inc_b,
            owner=ann,
            priority="P3",
            deadline=days(20),
            status="blocked",
            description="needs the pool metrics",
        ),
        "done": make(
            title="Done",
            incident=inc_b,
            owner=bob,
            priority="P2",
            deadline=days(-10),
            status="done",
            completed_at=NOW,
        ),
    }


def test_it_redirects_anonymous_visitors_to_login(client):
    response = client.get(LIST)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_lists_every_item_by_deadline(reader_client, items):
    response = reader_client.get(LIST)

    assert response.status_code == 200
    assert titles(response) == ["Done", "Late", "Soon", "Later"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "open"}, ["Late", "Soon"]),
        ({"status": ["blocked", "done"]}, ["Done", "Later"]),
        ({"status": "blocked,done"}, ["Done", "Later"]),
        ({"owner": "ANN@example.com"}, ["Late", "Later"]),
        ({"priority": ["P0", "P1"]}, ["Late", "Soon"]),
        ({"type": "fix"}, ["Late"]),
        ({"incident": "INC-B"}, ["Done", "Later"]),
        ({"overdue": "true"}, ["Late"]),
        ({"overdue": "false"}, ["Done", "Soon", "Later"]),
        ({"due_within_days": "7"}, ["Soon"]),
        ({"q": "pool metrics"}, ["Later"]),
        ({"q": "inc-a"}, ["Late", "Soon"]),
        ({"q": "bob@"}, ["Done", "Soon"]),
        ({"status": "open", "owner": "bob@example.com"}, ["Soon"]),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_it_filters_as_the_api_does(reader_client, items, query, expected):
    response = reader_client.get(LIST, query)

    assert response.status_code == 200
    assert titles(response) == expected


def test_it_keeps_the_filters_in_the_form_so_the_url_can_be_shared(reader_client, items):
    response = reader_client.get(LIST, {"status": "open", "q": "late", "overdue": "true"})

    html = response.content.decode()
    assert 'name="status" value="open" id="id_status_0" checked' in html
    assert 'name="status" value="blocked" id="id_status_2">' in html
    assert 'name="q" value="late"' in html
    assert '<option value="true" selected>' in html


def test_it_refuses_an_invalid_filter_with_an_error(reader_client, items):
    response = reader_client.get(LIST, {"status": "someday", "due_within_days": "-1"})

    assert response.status_code == 400
    assert "page" not in response.context
    assert response.context["form"].errors.keys() == {"status", "due_within_days"}
    assert "Some filters are not valid" in response.content.decode()


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("priority", ["Soon", "Late", "Done", "Later"]),
        ("-priority", ["Later", "Done", "Late", "Soon"]),
        ("-deadline", ["Later", "Soon", "Late", "Done"]),
        # "status" is not an ordering the API offers: ignored, like any unknown field.
        ("status,-priority", ["Later", "Done", "Late", "Soon"]),
        ("nonsense", ["Done", "Late", "Soon", "Later"]),
    ],
)
def test_it_orders_as_the_api_does(reader_client, items, ordering, expected):
    response = reader_client.get(LIST, {"ordering": ordering})

    assert titles(response) == expected


def test_it_breaks_ties_by_id_so_pages_never_overlap(reader_client):
    made = [factories.ActionItemFactory(deadline=days(5), priority="P2") for _ in range(60)]

    first = reader_client.get(LIST, {"ordering": "priority"})
    second = reader_client.get(LIST, {"ordering": "priority", "page": 2})

    shown = [i.pk for i in first.context["page"]] + [i.pk for i in second.context["page"]]
    assert shown == [item.pk for item in made]


def test_it_paginates_and_keeps_the_filters_in_the_page_links(reader_client):
    for _ in range(55):
        factories.ActionItemFactory(status="open")
    factories.ActionItemFactory(status="done", completed_at=NOW)

    first = reader_client.get(LIST, {"status": "open"})
    second = reader_client.get(LIST, {"status": "open", "page": "2"})

    assert len(first.context["page"]) == 50
    assert len(second.context["page"]) == 5
    assert first.context["page"].paginator.count == 55
    assert 'href="?status=open&amp;page=2"' in first.content.decode()
    assert 'href="?status=open&amp;page=1"' in second.content.decode()


def test_it_shows_the_last_page_for_a_page_past_the_end(reader_client, items):
    response = reader_client.get(LIST, {"page": "99"})

    assert response.status_code == 200
    assert response.context["page"].number == 1


def _csv_rows(response) -> list[dict]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="action-items-2025-03-12.csv"'
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_it_exports_the_filtered_list_as_csv(reader_client, items):
    response = reader_client.get(
        LIST, {"status": "open,blocked", "ordering": "-deadline", "export": "csv"}
    )

    rows = _csv_rows(response)
    assert [r["title"] for r in rows] == ["Later", "Soon", "Late"]
    assert rows[2]["overdue"] == "yes"
    assert rows[2]["incident"] == "INC-A"
    assert rows[2]["owner"] == "ann@example.com"
    assert rows[2]["deadline"] == days(-3).isoformat()


def test_it_exports_every_page(reader_client):
    for _ in range(60):
        factories.ActionItemFactory()

    assert len(_csv_rows(reader_client.get(LIST, {"export": "csv", "page": "2"}))) == 60


def test_it_defuses_formulas_in_the_csv(reader_client):
    factories.ActionItemFactory(title='=HYPERLINK("http://evil")', type="@SUM(A1)")
    factories.ActionItemFactory(title="-2+3", owner=factories.PersonFactory(email="x@example.com"))

    rows = _csv_rows(reader_client.get(LIST, {"export": "csv", "ordering": "id"}))

    assert rows[0]["title"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["type"] == "'@SUM(A1)"
    assert rows[1]["title"] == "'-2+3"


def test_it_does_not_export_when_a_filter_is_invalid(reader_client, items):
    response = reader_client.get(LIST, {"export": "csv", "overdue": "maybe", "priority": "P9"})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_the_export_link_keeps_the_filters(reader_client, items):
    response = reader_client.get(LIST, {"status": "open", "page": "1"})

    assert 'href="?status=open&amp;export=csv"' in response.content.decode()


def _queries(client, query: dict) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(LIST, query)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "query",
    [{}, {"status": "open,blocked", "overdue": "false", "q": "follow", "ordering": "-priority"}],
)
def test_it_lists_in_a_constant_number_of_queries(reader_client, query):
    def make(count):
        # Each with its own incident and owner, so that a missing join shows.
        for _ in range(count):
            factories.ActionItemFactory(description="some words")

    make(5)
    few = _queries(reader_client, query)
    make(45)
    many = _queries(reader_client, query)

    assert len(reader_client.get(LIST, query).context["page"]) == 50
    assert many == few


def test_it_escapes_titles_and_descriptions(reader_client):
    factories.ActionItemFactory(title=XSS_TITLE, description=XSS_DESCRIPTION)

    html = reader_client.get(LIST).content.decode()

    assert XSS_TITLE not in html
    assert XSS_DESCRIPTION not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_page_has_no_inline_script_or_handlers(reader_client, items):
    html = reader_client.get(LIST).content.decode()

    assert "<script>" not in html
    assert " onclick=" not in html and " onchange=" not in html


def test_an_item_due_today_is_not_overdue(reader_client):
    factories.ActionItemFactory(title="Today", deadline=timezone.localdate())

    assert titles(reader_client.get(LIST, {"overdue": "true"})) == []

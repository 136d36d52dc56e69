"""The dashboard: its figures on a crafted set of items, its cost in queries, its charts."""

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests import factories
from tracker.charts import nice_ceiling
from tracker.dashboard import trend_moments
from tracker.models import ActionItem

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 12, 12, 0, tzinfo=dt.UTC)  # a Wednesday
TODAY = NOW.date()


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def make_item(*, created_days_ago: float, updated_days_ago: float | None = None, **fields):
    """An item as if created (and last changed) that long before NOW."""
    item = factories.make_action_item(**fields)
    created = NOW - dt.timedelta(days=created_days_ago)
    updated = NOW - dt.timedelta(days=updated_days_ago) if updated_days_ago is not None else NOW
    ActionItem.objects.filter(pk=item.pk).update(created_at=created, updated_at=updated)
    return item


@pytest.fixture
def traveller():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def items(traveller):
    """Ten items whose figures are worked out by hand in the tests below."""
    checkout_sev1 = factories.IncidentFactory(service="checkout", severity="SEV1")
    payments_sev2 = factories.IncidentFactory(service="payments", severity="SEV2")
    search_sev3 = factories.IncidentFactory(service="search", severity="SEV3")
    alice = factories.PersonFactory(name="Alice", email="alice@example.com")
    bob = factories.PersonFactory(name="Bob", email="bob@example.com")
    return {
        # Overdue, since 2 Mar; open since 20 Feb.
        "a": make_item(
            created_days_ago=20,
            incident=checkout_sev1,
            owner=alice,
            priority="P0",
            status="open",
            deadline=days(-10),
        ),
        # Overdue since yesterday; created last Friday.
        "b": make_item(
            created_days_ago=5,
            incident=payments_sev2,
            owner=alice,
            priority="P1",
            status="in_progress",
            deadline=days(-1),
        ),
        # Due this week (blocked is open).
        "c": make_item(
            created_days_ago=40,
            incident=payments_sev2,
            owner=bob,
            priority="P2",
            status="blocked",
            deadline=days(3),
        ),
        # Due on the last day of the next seven.
        "d": make_item(
            created_days_ago=1,
            incident=search_sev3,
            owner=bob,
            priority="P2",
            status="open",
            deadline=days(6),
        ),
        # Due the day after the next seven.
        "e": make_item(
            created_days_ago=1,
            incident=search_sev3,
            owner=None,
            priority="P3",
            status="open",
            deadline=days(7),
        ),
        # Due today: due this week, not overdue.
        "f": make_item(
            created_days_ago=1,
            incident=search_sev3,
            owner=bob,
            priority="P2",
            status="open",
            deadline=days(0),
        ),
        # Done two days ago, five days late, ten days after creation.
        "g": make_item(
            created_days_ago=12,
            incident=checkout_sev1,
            owner=alice,
            priority="P0",
            status="done",
            deadline=days(-5),
            completed_at=NOW - dt.timedelta(days=2),
        ),
        # Done 40 days ago, on time, four days after creation.
        "h": make_item(
            created_days_ago=44,
            incident=checkout_sev1,
            owner=alice,
            priority="P0",
            status="done",
            deadline=days(5),
            completed_at=NOW - dt.timedelta(days=40),
        ),
        # Cancelled 50 days ago: never overdue, not open in any week shown.
        "i": make_item(
            created_days_ago=60,
            updated_days_ago=50,
            incident=payments_sev2,
            owner=bob,
            priority="P1",
            status="cancelled",
            deadline=days(-30),
        ),
        # No incident, no owner, no deadline.
        "j": make_item(
            created_days_ago=1,
            incident=None,
            owner=None,
            priority="P4",
            status="open",
            deadline=None,
        ),
    }


def _dashboard(client, user):
    client.force_login(user)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    return response


def test_it_counts_open_overdue_due_this_week_and_recently_done(client, manager, items):
    summary = _dashboard(client, manager).context["summary"]

    assert summary.open == 7  # a b c d e f j
    assert summary.overdue == 2  # a b
    assert summary.due_this_week == 3  # c d f
    assert summary.done_last_30_days == 1  # g


def test_it_shows_the_headline_figures_on_the_page(client, manager, items):
    html = _dashboard(client, manager).content.decode()

    kpis = re.search(r'<ul class="kpis".*?</ul>', html, re.S).group(0)
    values = re.findall(r'<span class="kpi-value">(\d+)</span>', kpis)
    assert values == ["7", "2", "3", "1"]


def test_it_lists_overdue_by_owner_and_priority(client, manager, items):
    summary = _dashboard(client, manager).context["summary"]

    assert [(row.email, row.overdue) for row in summary.overdue_by_owner] == [
        ("alice@example.com", 2)
    ]
    overdue = {p.priority: p.overdue for p in summary.by_priority}
    assert overdue == {"P0": 1, "P1": 1, "P2": 0, "P3": 0, "P4": 0}


def test_it_counts_by_service_and_severity(client, manager, items):
    summary = _dashboard(client, manager).context["summary"]

    assert [(g.label, g.open, g.overdue) for g in summary.by_service] == [
        ("payments", 2, 1),
        ("checkout", 1, 1),
        ("search", 3, 0),
        ("", 1, 0),
    ]
    assert [(g.label, g.open, g.overdue) for g in summary.by_severity] == [
        ("SEV1", 1, 1),
        ("SEV2", 2, 1),
        ("SEV3", 3, 0),
        ("SEV4", 0, 0),
        ("SEV5", 0, 0),
        ("", 1, 0),
    ]


def test_it_lists_the_oldest_overdue_first(client, manager, items):
    summary = _dashboard(client, manager).context["summary"]

    assert [(row.item.pk, row.days_overdue) for row in summary.oldest_overdue] == [
        (items["a"].pk, 10),
        (items["b"].pk, 1),
    ]


def test_it_computes_completion_and_on_time_rates_by_priority(client, manager, items):
    by_priority = {
        p.priority: p for p in _dashboard(client, manager).context["summary"].by_priority
    }

    p0 = by_priority["P0"]
    assert (p0.total, p0.done, p0.cancelled) == (3, 2, 0)
    assert p0.completion_rate == 67  # 2 done of 3
    assert p0.on_time_rate == 50  # h on time, g five days late
    assert p0.mean_days_to_done == 7.0  # (10 + 4) / 2
    assert by_priority["P1"].completion_rate == 0  # b open; i cancelled does not count
    assert by_priority["P2"].on_time_rate is None  # nothing done


@pytest.mark.postgres
def test_it_computes_the_median_time_to_done_on_postgresql(client, manager, items, traveller):
    # A third P0 item done 31 days after creation: the mean moves, the median does not follow.
    make_item(
        created_days_ago=32,
        priority="P0",
        status="done",
        deadline=days(-20),
        completed_at=NOW - dt.timedelta(days=1),
    )
    p0 = _dashboard(client, manager).context["summary"].by_priority[0]

    assert p0.median_days_to_done == 10.0  # 4, 10, 31
    assert p0.mean_days_to_done == 15.0


def test_it_counts_open_and_overdue_at_the_end_of_each_week(client, manager, items):
    weeks = _dashboard(client, manager).context["summary"].weeks

    assert len(weeks) == 12
    assert weeks[-1].label == "now"
    assert (weeks[-1].open, weeks[-1].overdue) == (7, 2)
    # End of the week to Sunday 9 March (Monday 00:00): a, c, g (done on the 10th)
    # and b were open; a (due 2 March) and g (due 7 March) were overdue.
    last_week = weeks[-2]
    assert last_week.label == "9 Mar"
    assert (last_week.open, last_week.overdue) == (4, 2)
    # Week to 2 March: a, c and g (created 28 Feb); a, due on the 2nd, was overdue at its end.
    assert weeks[-3].label == "2 Mar"
    assert (weeks[-3].open, weeks[-3].overdue) == (3, 1)
    # Week to 19 January: only i (created 11 Jan, cancelled 21 Jan: its last change).
    assert weeks[3].label == "19 Jan"
    assert (weeks[3].open, weeks[3].overdue) == (1, 0)
    # Week to 26 January: i cancelled, h created on the 27th.
    assert (weeks[4].open, weeks[4].overdue) == (0, 0)
    # Week to 2 February: h was done on 31 January; c was created that day.
    assert (weeks[5].open, weeks[5].overdue) == (1, 0)


def test_trend_moments_end_each_week_on_monday_midnight_and_finish_now():
    moments = trend_moments(now=NOW)

    assert len(moments) == 12
    assert moments[-1] == (NOW, "now")
    assert moments[-2] == (dt.datetime(2025, 3, 10, tzinfo=dt.UTC), "9 Mar")
    assert moments[0] == (dt.datetime(2024, 12, 30, tzinfo=dt.UTC), "29 Dec")


def test_it_uses_the_same_number_of_queries_for_5_and_50_items(client, manager, traveller):
    client.force_login(manager)
    url = reverse("dashboard")

    def queries_with(n: int) -> int:
        for index in range(n):
            make_item(
                created_days_ago=index % 80,
                incident=factories.IncidentFactory(
                    service=f"service-{index % 7}", severity=f"SEV{1 + index % 5}"
                ),
                priority=f"P{index % 5}",
                status="done" if index % 4 == 0 else "open",
                deadline=days(index % 30 - 15),
                completed_at=NOW - dt.timedelta(days=index % 10) if index % 4 == 0 else None,
            )
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = queries_with(5)
    large = queries_with(45)  # 50 in all

    assert small == large
    assert small <= 10  # session, user, and the dashboard's six


def test_it_draws_two_svg_charts_without_scripts(client, manager, items):
    html = _dashboard(client, manager).content.decode()

    charts = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(charts) == 2
    for chart in charts:
        assert "<script" not in chart.lower()
        assert re.search(r'role="img" aria-labelledby="[\w-]+-title [\w-]+-desc"', chart)
        assert "<title id=" in chart and "<desc id=" in chart
    assert charts[0].count("<polyline") == 2  # open and overdue
    assert 'class="bar-mean"' in charts[1]
    # Each chart has its figures as a table too.
    assert html.count("Figures as a table") == 2


def test_it_has_no_inline_script_or_event_handler(client, manager, items):
    html = _dashboard(client, manager).content.decode()

    for tag, body in re.findall(r"(<script\b[^>]*>)(.*?)</script>", html, re.S | re.I):
        assert "src=" in tag and not body.strip()
    assert not re.search(r"<[^>]+\son\w+\s*=", html, re.I)


def test_it_escapes_text_that_came_from_documents(client, manager, traveller):
    incident = factories.IncidentFactory(
        external_id="INC-<b>1</b>", title="<img src=x onerror=alert(1)>", service="<i>svc</i>"
    )
    owner = factories.PersonFactory(name="<script>alert(2)</script>")
    make_item(
        created_days_ago=10,
        incident=incident,
        owner=owner,
        title="<script>alert(1)</script>",
        status="open",
        deadline=days(-3),
    )

    html = _dashboard(client, manager).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&lt;i&gt;svc&lt;/i&gt;" in html
    assert "INC-&lt;b&gt;1&lt;/b&gt;" in html
    assert "<script>alert" not in html
    assert "<img src=x" not in html


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get(reverse("dashboard"))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_it_lets_a_signed_in_non_manager_read_it(client, items):
    reader = factories.UserFactory()

    response = _dashboard(client, reader)

    assert response.context["summary"].open == 7
    assert 'href="/import/"' not in response.content.decode()


def test_it_renders_with_no_items_at_all(client, manager, traveller):
    html = _dashboard(client, manager).content.decode()

    assert html.count("Nothing is overdue.") == 2
    assert "No item is done yet." in html


def test_nice_ceiling_gives_round_axis_maxima():
    assert nice_ceiling(0) == (4, 1)
    assert nice_ceiling(7) == (8, 2)
    assert nice_ceiling(37) == (40, 10)
    assert nice_ceiling(1234) == (2000, 500)

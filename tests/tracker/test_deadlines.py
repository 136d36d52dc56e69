"""One meaning of overdue, due today and due soon, on every surface that shows them.

The owners live at both ends of the day: Pacific/Pago_Pago (UTC-11) and
Pacific/Kiritimati (UTC+14), beside an owner without a time zone and an unowned
item (both on TIME_ZONE, UTC here). At 10:30 UTC on the 10th it is still the
9th in Pago Pago and already the 11th on Kiritimati, so the same deadline is
overdue for one owner and not yet due for another. Each surface is compared
with the owners' own dates written out below, not with the code under test.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from rest_framework.test import APIClient

from tests import factories
from tracker import deadlines
from tracker.calendar import calendar_feed_build, calendar_items
from tracker.dashboard import dashboard_summary
from tracker.models import ActionItem

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 10, 30, tzinfo=dt.UTC)
D = dt.date(2026, 3, 10)  # the server's (TIME_ZONE's) date at NOW
OWNER_TODAY = {
    "pago": D - dt.timedelta(days=1),  # UTC-11: 23:30 on the 9th
    "kiri": D + dt.timedelta(days=1),  # UTC+14: 00:30 on the 11th
    "plain": D,  # no time zone: TIME_ZONE
    "nobody": D,  # unowned: TIME_ZONE
}
ZONES = {"pago": "Pacific/Pago_Pago", "kiri": "Pacific/Kiritimati", "plain": ""}
OFFSETS = range(-2, 9)  # deadlines from D-2 to D+8


@pytest.fixture
def frozen():
    with time_machine.travel(NOW - dt.timedelta(days=2), tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(frozen):
    """One open item per owner and deadline, made two days before NOW, and a done
    item that is past due; the clock then stands at NOW."""
    people = {
        key: factories.PersonFactory(email=f"{key}@example.com", time_zone=zone)
        for key, zone in ZONES.items()
    }
    items = {}
    for key in OWNER_TODAY:
        for offset in OFFSETS:
            items[(key, offset)] = factories.ActionItemFactory(
                title=f"{key} {offset:+d}",
                owner=people.get(key),
                deadline=D + dt.timedelta(days=offset),
                status="open",
            )
    factories.ActionItemFactory(
        title="done late",
        owner=people["kiri"],
        deadline=D - dt.timedelta(days=5),
        status="done",
        completed_at=NOW - dt.timedelta(days=2),
    )
    frozen.move_to(NOW)
    return people, items


def expected(rule: str) -> set[str]:
    """The titles that `rule` selects, from the owners' dates written out above."""
    titles = set()
    soon = deadlines.due_soon_days()
    for key, today in OWNER_TODAY.items():
        for offset in OFFSETS:
            deadline = D + dt.timedelta(days=offset)
            chosen = {
                "overdue": deadline < today,
                "due_today": deadline == today,
                "due_soon": today <= deadline < today + dt.timedelta(days=soon),
            }[rule]
            if chosen:
                titles.add(f"{key} {offset:+d}")
    return titles


def test_the_owners_are_on_three_different_dates(world):
    people, _ = world
    assert deadlines.owner_today(people["pago"]) == D - dt.timedelta(days=1)
    assert deadlines.owner_today(people["kiri"]) == D + dt.timedelta(days=1)
    assert deadlines.owner_today(people["plain"]) == D
    assert deadlines.owner_today(None) == D
    # The example that started it: due yesterday by the server's date.
    assert "pago -1" not in expected("overdue")
    assert "kiri +0" in expected("overdue")


@pytest.mark.parametrize("rule", ["overdue", "due_today", "due_soon"])
def test_the_python_rule_and_the_query_agree(world, rule):
    condition = {
        "overdue": deadlines.overdue_q,
        "due_today": deadlines.due_today_q,
        "due_soon": deadlines.due_soon_q,
    }[rule]()
    check = {
        "overdue": deadlines.is_overdue,
        "due_today": deadlines.is_due_today,
        "due_soon": deadlines.is_due_soon,
    }[rule]
    by_query = set(ActionItem.objects.filter(condition).values_list("title", flat=True))
    by_python = {
        item.title
        for item in ActionItem.objects.select_related("owner")
        if check(item, today=deadlines.item_owner_today(item))
    }
    assert by_query == by_python == expected(rule)


# --- The API -----------------------------------------------------------------------


@pytest.fixture
def api(world, manager):
    client = APIClient()
    client.force_login(manager)
    return client


def api_titles(client, **params) -> set[str]:
    response = client.get("/api/v1/action-items/", {"limit": 500, **params})
    assert response.status_code == 200, response.content
    return {row["title"] for row in response.json()["results"]}


def test_the_api_field_follows_the_definition(api):
    response = api.get("/api/v1/action-items/", {"limit": 500, "status": "open"})
    rows = response.json()["results"]
    assert {r["title"] for r in rows if r["is_overdue"]} == expected("overdue")
    days = {r["title"]: r["days_until_due"] for r in rows}
    assert days["pago -1"] == 0
    assert days["kiri +1"] == 0
    assert days["plain +0"] == 0


def test_the_api_filters_follow_the_definition(api):
    assert api_titles(api, overdue="true") == expected("overdue")
    assert api_titles(api, overdue="false", status="open") == (
        api_titles(api, status="open") - expected("overdue")
    )
    assert api_titles(api, due_soon="true") == expected("due_soon")
    assert api_titles(api, due_within_days=str(deadlines.due_soon_days() - 1)) == expected(
        "due_soon"
    )
    assert api_titles(api, due_within_days="0") == expected("due_today")


def test_the_people_api_counts_overdue_on_each_owners_calendar(api, world):
    response = api.get("/api/v1/people/", {"limit": 100})
    counts = {row["email"]: row["overdue_items"] for row in response.json()["results"]}
    for key in ZONES:
        want = len({t for t in expected("overdue") if t.startswith(f"{key} ")})
        assert counts[f"{key}@example.com"] == want


# --- Pages and the admin -----------------------------------------------------------


def test_the_items_page_filters_follow_the_definition(client, manager, world):
    client.force_login(manager)

    def page_titles(**params) -> set[str]:
        response = client.get(reverse("item-list"), {**params})
        assert response.status_code == 200
        return {item.title for item in response.context["page"].paginator.object_list}

    assert page_titles(overdue="true") == expected("overdue")
    assert page_titles(due_soon="true") == expected("due_soon")
    shown = {
        item.title
        for item in client.get(reverse("item-list"), {"status": "open"})
        .context["page"]
        .paginator.object_list
        if item.is_overdue
    }
    assert shown == expected("overdue")


def test_the_admin_filters_follow_the_definition(client, manager, world):
    client.force_login(manager)
    url = reverse("admin:tracker_actionitem_changelist")

    def admin_titles(query: str) -> set[str]:
        response = client.get(url + query)
        assert response.status_code == 200
        cl = response.context["cl"]
        return {item.title for item in cl.queryset}

    assert admin_titles("?overdue=yes") == expected("overdue")
    assert admin_titles(f"?due_within={deadlines.due_soon_days()}") == expected("due_soon")


def test_the_dashboard_follows_the_definition(world):
    summary = dashboard_summary(now=NOW)

    assert summary.overdue == len(expected("overdue"))
    assert summary.due_this_week == len(expected("due_soon"))
    assert summary.weeks[-1].overdue == len(expected("overdue"))
    by_owner = {row.email: row.overdue for row in summary.overdue_by_owner}
    assert by_owner["kiri@example.com"] == len([t for t in expected("overdue") if "kiri" in t])
    for row in summary.oldest_overdue:
        key = row.item.title.split()[0]
        assert row.days_overdue == (OWNER_TODAY[key] - row.item.deadline).days > 0


def test_the_metrics_follow_the_definition(client, settings, world):
    settings.TRACKER_METRICS_ALLOW = ["127.0.0.1"]
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()

    def total(name: str) -> float:
        pattern = rf"^{name}{{priority=\"P\d\"}} ([0-9.e+]+)$"
        return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))

    assert total("tracker_action_items_overdue") == len(expected("overdue"))
    assert total("tracker_action_items_due_this_week") == len(expected("due_soon"))


def test_the_calendar_feed_marks_what_is_overdue_for_its_owner(world):
    people, _ = world
    for key in ZONES:
        person = people[key]
        feed = calendar_feed_build(person=person, items=calendar_items(person=person))
        text = feed.decode().replace("\r\n ", "")
        marked = set()
        for event in text.split("BEGIN:VEVENT")[1:]:
            title = re.search(r"SUMMARY:\[P\d\] (.+?)\r\n", event).group(1)
            if "(overdue)" in event:
                marked.add(title)
        assert marked == {t for t in expected("overdue") if t.startswith(f"{key} ")}


def test_the_managers_digest_counts_follow_the_definition(world, manager, settings):
    from tracker.reminders import digest

    context = digest.manager_digest_context(now=NOW)

    assert context["totals"]["overdue"] == len(expected("overdue"))
    assert context["totals"]["due_this_week"] == len(expected("due_soon"))
    assert {item.title for item in context["oldest_overdue"]} <= expected("overdue")
    assert mail.outbox == []

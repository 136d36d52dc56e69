"""Deadlines at the ends of the calendar.

One supported range, tracker.models.DEADLINE_MIN..DEADLINE_MAX, refused outside at every
edge that takes a deadline (API, item page, admin form and its "move deadline" action),
with the field named and nothing written. The calendar feed computes each event's end
(the day after the deadline): a deadline of 9999-12-31 overflowed it and the owner's
feed answered 500 on every poll; the admin's shift overflowed the same way.
"""

import datetime as dt
import json

import icalendar
import pytest
from django.urls import reverse

from tests import factories
from tracker.calendar import calendar_token_ensure
from tracker.models import DEADLINE_MAX, DEADLINE_MIN, ActionItem, validate_deadline

pytestmark = pytest.mark.django_db

OUTSIDE = [dt.date(1, 1, 1), dt.date(1899, 12, 31), dt.date(9999, 1, 1), dt.date(9999, 12, 31)]
OUTSIDE_IDS = [d.isoformat() for d in OUTSIDE]
CHANGELIST = reverse("admin:tracker_actionitem_changelist")


@pytest.fixture
def item() -> ActionItem:
    return factories.make_action_item(title="Rotate the keys", deadline=dt.date(2030, 6, 1))


def unchanged(item: ActionItem) -> bool:
    version, deadline = item.version, item.deadline
    item.refresh_from_db()
    return (item.version, item.deadline) == (version, deadline)


def feed_events(client, person) -> dict[str, icalendar.Event]:
    response = client.get(reverse("calendar-feed", args=[calendar_token_ensure(person=person)]))
    assert response.status_code == 200, response.status_code
    calendar = icalendar.Calendar.from_ical(response.content)
    return {str(e["summary"]): e for e in calendar.walk("VEVENT")}


def test_the_range_is_a_year_short_of_the_end_of_the_calendar():
    assert DEADLINE_MAX + dt.timedelta(days=365) <= dt.date.max
    validate_deadline(DEADLINE_MIN)
    validate_deadline(DEADLINE_MAX)
    validate_deadline(None)


# --- The calendar feed --------------------------------------------------------------------


def test_the_feed_still_answers_when_a_stored_deadline_is_the_last_day_of_the_calendar(
    anonymous,
):
    owner = factories.PersonFactory()
    # Stored directly, as it could be before the range was enforced.
    factories.ActionItemFactory(owner=owner, title="Absurd", deadline=dt.date.max)
    factories.ActionItemFactory(owner=owner, title="Ancient", deadline=dt.date.min)
    factories.ActionItemFactory(owner=owner, title="Real", deadline=dt.date(2030, 6, 1))

    events = feed_events(anonymous, owner)

    assert set(events) == {"[P2] Real"}


def test_the_feed_lists_the_ends_of_the_supported_range(anonymous):
    owner = factories.PersonFactory()
    factories.make_action_item(owner=owner, title="Last", deadline=DEADLINE_MAX)
    factories.make_action_item(owner=owner, title="First", deadline=DEADLINE_MIN)

    events = feed_events(anonymous, owner)

    assert events["[P2] Last"].decoded("dtstart") == DEADLINE_MAX
    assert events["[P2] Last"].decoded("dtend") == DEADLINE_MAX + dt.timedelta(days=1)
    assert events["[P2] First"].decoded("dtstart") == DEADLINE_MIN


# --- The API ----------------------------------------------------------------------------


@pytest.mark.parametrize("deadline", OUTSIDE, ids=OUTSIDE_IDS)
def test_the_api_refuses_a_deadline_outside_the_range_on_patch(manager_client, item, deadline):
    response = manager_client.patch(
        f"/api/v1/action-items/{item.pk}/",
        {"deadline": deadline.isoformat()},
        content_type="application/json",
    )

    assert response.status_code == 400
    errors = json.loads(response.content)["errors"]
    assert [(e["path"], e["code"]) for e in errors] == [("deadline", "out_of_range")]
    assert "1900-01-01 to 9998-12-31" in errors[0]["message"]
    assert unchanged(item)


def test_the_api_refuses_a_deadline_outside_the_range_on_create(manager_client):
    count = ActionItem.objects.count()

    response = manager_client.post(
        "/api/v1/action-items/",
        {"title": "New", "deadline": "9999-12-31"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert json.loads(response.content)["errors"][0]["path"] == "deadline"
    assert ActionItem.objects.count() == count


@pytest.mark.parametrize("deadline", [DEADLINE_MIN, DEADLINE_MAX], ids=["min", "max"])
def test_the_api_accepts_the_ends_of_the_range(manager_client, item, deadline):
    response = manager_client.patch(
        f"/api/v1/action-items/{item.pk}/",
        {"deadline": deadline.isoformat()},
        content_type="application/json",
    )

    assert response.status_code == 200
    item.refresh_from_db()
    assert item.deadline == deadline


# --- The item page ------------------------------------------------------------------------


@pytest.mark.parametrize("deadline", OUTSIDE, ids=OUTSIDE_IDS)
def test_the_item_page_refuses_a_deadline_outside_the_range(manager_client, item, deadline):
    response = manager_client.post(
        f"/items/{item.pk}/edit/",
        {
            "title": item.title,
            "priority": item.priority,
            "deadline": deadline.isoformat(),
            "owner_email": item.owner.email,
            "version": item.version,
        },
    )

    assert response.status_code == 400
    errors = response.context["edit_form"].errors
    assert list(errors) == ["deadline"]
    assert "outside the supported deadlines" in errors["deadline"][0]
    assert unchanged(item)


# --- The admin ------------------------------------------------------------------------------


def admin_item_data(item: ActionItem, **overrides) -> dict:
    data = {
        "incident": item.incident_id or "",
        "title": item.title,
        "description": item.description,
        "owner": item.owner_id or "",
        "priority": item.priority,
        "type": item.type,
        "status": item.status,
        "deadline": item.deadline.isoformat() if item.deadline else "",
        "changes-TOTAL_FORMS": 0,
        "changes-INITIAL_FORMS": 0,
        "comments-TOTAL_FORMS": 0,
        "comments-INITIAL_FORMS": 0,
    }
    return data | overrides


def test_the_admin_form_refuses_a_deadline_outside_the_range(superuser_client, item):
    response = superuser_client.post(
        reverse("admin:tracker_actionitem_change", args=[item.pk]),
        admin_item_data(item, deadline="9999-12-31"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["deadline"]
    assert "outside the supported deadlines" in errors["deadline"][0]
    assert unchanged(item)


def move(client, items, **data):
    return client.post(
        CHANGELIST,
        {"action": "move_deadline", "_selected_action": [i.pk for i in items], "apply": "1"} | data,
    )


@pytest.mark.parametrize("deadline", OUTSIDE, ids=OUTSIDE_IDS)
def test_the_move_action_refuses_a_new_deadline_outside_the_range(superuser_client, item, deadline):
    response = move(superuser_client, [item], new_deadline=deadline.isoformat())

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "outside the supported deadlines" in errors["new_deadline"][0]
    assert unchanged(item)


@pytest.mark.parametrize(
    ("deadline", "days"),
    [
        (DEADLINE_MAX - dt.timedelta(days=2), 5),
        (DEADLINE_MIN + dt.timedelta(days=2), -5),
        # Stored before the range was enforced: shifting them overflowed the date.
        (dt.date.max, 1),
        (dt.date.min, -1),
    ],
    ids=["past-max", "before-min", "date.max", "date.min"],
)
def test_the_move_action_refuses_a_shift_that_leaves_the_range(
    superuser_client, item, deadline, days
):
    ActionItem.objects.filter(pk=item.pk).update(deadline=deadline)
    item.refresh_from_db()
    other = factories.make_action_item(title="Ordinary", deadline=dt.date(2030, 6, 1))

    response = move(superuser_client, [item, other], shift_days=str(days))

    assert response.status_code == 200
    message = response.context["form"].errors["shift_days"][0]
    assert "takes 1 deadline outside the supported range, 1900-01-01 to 9998-12-31" in message
    assert "Rotate the keys" in message
    assert "Nothing was moved." in message
    assert unchanged(item)
    assert unchanged(other)


def test_the_move_action_still_shifts_within_the_range(superuser_client, item):
    response = move(superuser_client, [item], shift_days="3")

    assert response.status_code == 302
    item.refresh_from_db()
    assert item.deadline == dt.date(2030, 6, 4)

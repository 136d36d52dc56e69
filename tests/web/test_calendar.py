"""Each owner's deadline feed: its content, its secret URL, and resetting that URL."""

import datetime as dt

import icalendar
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests import factories
from tracker.calendar import calendar_token_ensure
from tracker.models import Person, Status
from tracker.services import Actor, action_item_update

pytestmark = pytest.mark.django_db

BASE_URL = "https://tracker.example.com"
PAGE = reverse("calendar")
RESET = reverse("calendar-reset")


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.TRACKER_BASE_URL = BASE_URL


@pytest.fixture
def owner_user():
    return factories.UserFactory(username="ann", email="Ann@Example.com")


@pytest.fixture
def owner(owner_user) -> Person:
    return factories.PersonFactory(email="ann@example.com", name="Ann")


@pytest.fixture
def owner_client(client, owner_user):
    client.force_login(owner_user)
    return client


def feed_path(person: Person) -> str:
    return reverse("calendar-feed", args=[calendar_token_ensure(person=person)])


def day(n: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=n)


def events(response) -> dict[str, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(response.content)
    return {str(e["summary"]): e for e in calendar.walk("VEVENT")}


def test_it_lists_only_the_owners_open_items_with_deadlines(client, owner):
    make = factories.ActionItemFactory
    wanted = [
        make(owner=owner, title="Add alerting", priority="P1", deadline=day(3)),
        make(owner=owner, title="Load test", status=Status.IN_PROGRESS, deadline=day(-2)),
        make(owner=owner, title="Write runbook", status=Status.BLOCKED, deadline=day(10)),
    ]
    make(owner=owner, title="Done already", status=Status.DONE, completed_at=timezone.now())
    make(owner=owner, title="Cancelled", status=Status.CANCELLED)
    make(owner=owner, title="No deadline", deadline=None)
    make(title="Someone else's", deadline=day(3))

    response = client.get(feed_path(owner))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    found = events(response)
    assert set(found) == {f"[{item.priority}] {item.title}" for item in wanted}
    alerting = found["[P1] Add alerting"]
    item = wanted[0]
    assert alerting["dtstart"].dt == day(3)
    assert alerting["dtend"].dt == day(4)
    assert str(alerting["url"]) == f"{BASE_URL}/items/{item.pk}/"
    assert str(alerting["uid"]) == f"action-item-{item.pk}@tracker.example.com"
    assert alerting["dtstamp"].dt == item.updated_at.replace(microsecond=0)
    assert item.incident.external_id in str(alerting["description"])


def test_it_is_a_valid_calendar(client, owner):
    factories.ActionItemFactory(owner=owner, title="Commas, semicolons; and\na newline")

    calendar = icalendar.Calendar.from_ical(client.get(feed_path(owner)).content)

    assert calendar["version"] == "2.0"
    assert calendar["prodid"]
    (event,) = calendar.walk("VEVENT")
    for name in ("uid", "dtstamp", "dtstart", "summary"):
        assert name in event
    assert str(event["summary"]) == "[P2] Commas, semicolons; and\na newline"


def test_it_keeps_an_items_uid_when_its_deadline_moves(client, owner):
    item = factories.ActionItemFactory(owner=owner, deadline=day(3))
    before = events(client.get(feed_path(owner)))
    action_item_update(item=item, actor=Actor.system(), deadline=day(9))

    after = events(client.get(feed_path(owner)))

    (old,), (new,) = before.values(), after.values()
    assert old["uid"] == new["uid"]
    assert new["dtstart"].dt == day(9)


def test_it_answers_404_to_a_wrong_token(client, owner):
    factories.ActionItemFactory(owner=owner)
    token = calendar_token_ensure(person=owner)
    for wrong in ("x" * len(token), token[:-1] + ("A" if token[-1] != "A" else "B"), "short"):
        assert client.get(reverse("calendar-feed", args=[wrong])).status_code == 404


def test_it_makes_long_random_tokens(owner):
    other = factories.PersonFactory()
    token = calendar_token_ensure(person=owner)
    assert len(token) >= 32
    assert token != calendar_token_ensure(person=other)
    # Made once, then kept.
    assert calendar_token_ensure(person=Person.objects.get(pk=owner.pk)) == token


def test_it_needs_no_sign_in_but_only_reads(client, owner):
    path = feed_path(owner)
    assert client.get(path).status_code == 200
    assert client.head(path).status_code == 200
    assert client.post(path).status_code == 405


def test_it_uses_a_constant_number_of_queries(client, owner):
    path = feed_path(owner)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).status_code == 200
        return len(queries)

    factories.ActionItemFactory(owner=owner)
    one = count()
    for _ in range(6):
        factories.ActionItemFactory(owner=owner)
    assert count() == one == 2


def test_it_shows_the_signed_in_users_feed_url(owner_client, owner):
    response = owner_client.get(PAGE)

    assert response.status_code == 200
    owner.refresh_from_db()
    url = f"{BASE_URL}/calendar/{owner.calendar_token}.ics"
    html = response.content.decode()
    assert f'value="{url}"' in html
    assert 'href="webcal://tracker.example.com/calendar/' in html
    assert 'label for="feed-url"' in html
    # The same URL on every visit.
    assert owner_client.get(PAGE).context["feed_url"] == url


def test_it_makes_a_person_for_a_user_who_owns_nothing_yet(client):
    client.force_login(factories.UserFactory(username="new", email="new@example.com"))
    response = client.get(PAGE)
    person = Person.objects.get(email="new@example.com")
    assert response.context["feed_url"].endswith(f"/calendar/{person.calendar_token}.ics")


def test_it_resets_the_url_and_the_old_one_stops_working(owner_client, owner):
    factories.ActionItemFactory(owner=owner)
    old_path = feed_path(owner)
    assert owner_client.get(old_path).status_code == 200

    response = owner_client.post(RESET)

    assert response.status_code == 302
    assert response["Location"] == PAGE
    owner.refresh_from_db()
    new_path = reverse("calendar-feed", args=[owner.calendar_token])
    assert new_path != old_path
    assert owner_client.get(old_path).status_code == 404
    assert owner_client.get(new_path).status_code == 200
    assert owner.calendar_token in owner_client.get(PAGE).content.decode()


def test_it_resets_only_by_post_with_the_csrf_token(owner_user, owner):
    token = calendar_token_ensure(person=owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner_user)

    assert client.get(RESET).status_code == 405
    assert client.post(RESET).status_code == 403
    owner.refresh_from_db()
    assert owner.calendar_token == token


def test_it_needs_sign_in_for_the_page_and_the_reset(client):
    for response in (client.get(PAGE), client.post(RESET)):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))

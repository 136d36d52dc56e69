"""Each owner's deadlines as an iCalendar feed, read by any calendar app.

The feed's URL carries a secret token stored on the Person: calendar apps
cannot sign in, so whoever holds the URL can read the feed. The token is made on
first use (a random 43-character string, found by a unique-index lookup, so it
cannot be guessed or enumerated) and replaced on reset, which makes the old URL
answer 404.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

import icalendar
from django.conf import settings
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.urls import reverse

from . import deadlines
from .models import DEADLINE_MAX, DEADLINE_MIN, OPEN_STATUSES, ActionItem, Person
from .services import person_get_or_create

# secrets.token_urlsafe(32) gives 43 characters; anything shorter is not ours.
TOKEN_BYTES = 32
TOKEN_MIN_LENGTH = 43


def _new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def calendar_person_for_user(*, user) -> Person | None:
    """The Person whose items the signed-in `user` owns: linked to the user, else same email.

    A user with an email but no Person yet gets one (they may own items later);
    a user without an email owns nothing and gets None.
    """
    person = Person.objects.filter(user=user).first()
    if person is not None:
        return person
    email = (user.email or "").strip().lower()
    if not email:
        return None
    person = Person.objects.annotate(email_lower=Lower("email")).filter(email_lower=email).first()
    return person or person_get_or_create(email=email)


def calendar_token_ensure(*, person: Person) -> str:
    """The person's calendar token, made now if they have none.

    Made with a conditional update, so two first visits at once agree on one token.
    """
    if person.calendar_token:
        return person.calendar_token
    Person.objects.filter(pk=person.pk, calendar_token__isnull=True).update(
        calendar_token=_new_token()
    )
    person.calendar_token = Person.objects.values_list("calendar_token", flat=True).get(
        pk=person.pk
    )
    return person.calendar_token


def calendar_token_reset(*, person: Person) -> str:
    """Give the person a new calendar token; the URL with the old one stops working."""
    token = _new_token()
    Person.objects.filter(pk=person.pk).update(calendar_token=token)
    person.calendar_token = token
    return token


def calendar_person_by_token(*, token: str) -> Person | None:
    """The person whose feed `token` opens, or None (the caller answers 404)."""
    if len(token) < TOKEN_MIN_LENGTH:
        return None
    return Person.objects.filter(calendar_token=token).first()


def calendar_feed_url(*, person: Person) -> str:
    """The absolute URL of the person's feed (making their token if needed)."""
    token = calendar_token_ensure(person=person)
    return settings.TRACKER_BASE_URL + reverse("calendar-feed", args=[token])


def calendar_items(*, person: Person) -> QuerySet[ActionItem]:
    """The person's open items that have a deadline: the events of their feed.

    Only deadlines in the supported range (tracker.models.DEADLINE_MIN..DEADLINE_MAX):
    every edge refuses others, and one stored before it did would otherwise make
    its event's end date overflow, and the whole feed fail, on every poll.
    """
    return (
        ActionItem.objects.filter(
            owner=person,
            status__in=OPEN_STATUSES,
            deadline__range=(DEADLINE_MIN, DEADLINE_MAX),
        )
        .select_related("incident")
        .order_by("deadline", "id")
    )


def calendar_feed_build(
    *, person: Person, items: Iterable[ActionItem], now: dt.datetime | None = None
) -> bytes:
    """The iCalendar document: one all-day event per item, on its deadline.

    An overdue item (on the person's own calendar, tracker.deadlines) says so in
    its status line.

    Each event's UID is derived from the item's id, so calendar apps update the
    event in place when the deadline moves. DTSTAMP is the item's last change,
    so an unchanged item gives byte-identical output on every poll.
    """
    base_url = settings.TRACKER_BASE_URL
    host = urlsplit(base_url).hostname or "localhost"
    today = deadlines.owner_today(person, now=now)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Incident follow-up tracker//Deadlines//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"Follow-up deadlines: {person.email}")
    for item in items:
        url = base_url + reverse("item-detail", args=[item.pk])
        event = icalendar.Event()
        event.add("uid", f"action-item-{item.pk}@{host}")
        event.add("dtstamp", item.updated_at)
        event.add("last-modified", item.updated_at)
        event.add("dtstart", item.deadline)
        event.add("dtend", item.deadline + dt.timedelta(days=1))
        event.add("summary", f"[{item.priority}] {item.title}")
        event.add("url", url)
        status = item.get_status_display()
        if deadlines.is_overdue(item, today=today):
            status += " (overdue)"
        lines = [f"Status: {status}"]
        if item.incident is not None:
            lines.append(f"Incident: {item.incident.external_id} {item.incident.title}")
        lines.append(url)
        event.add("description", "\n".join(lines))
        # A deadline is a reminder, not a meeting: it must not make the owner look busy.
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    return calendar.to_ical()

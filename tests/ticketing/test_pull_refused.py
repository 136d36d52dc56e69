"""A ticket that says what an item cannot hold is shown on the link, not taken.

A due date in the year 9999 or an assignee's email longer than any address can
come back from a ticket system; the item keeps its values, the poll goes on,
and the link says why.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tracker.models import ActionItemChange, TicketLink, TicketSyncState
from tracker.ticketing.base import RemoteTicket, TicketBackend
from tracker.ticketing.pull import ticket_apply_remote

pytestmark = pytest.mark.django_db


class PlainBackend(TicketBackend):
    name = "plain"


@pytest.fixture
def link(make_action_item):
    item = make_action_item(deadline=dt.date(2026, 3, 20), status="open")
    return TicketLink.objects.create(
        item=item,
        system="plain",
        key="42",
        state=TicketSyncState.SYNCED,
        pushed_values={"status": "open", "deadline": "2026-03-20", "owner": item.owner.email},
    )


def remote(**fields) -> RemoteTicket:
    values = {"status": "open", "deadline": dt.date(2026, 3, 20), "owner": None}
    values.update(fields)
    values.setdefault("owner_known", values["owner"] is not None)
    return RemoteTicket(key="42", url="", updated_at=timezone.now(), **values)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"deadline": dt.date(9999, 12, 31)}, "deadline"),
        ({"owner": "a" * 250 + "@example.com"}, "owner"),
    ],
)
def test_it_shows_a_value_the_item_cannot_hold_and_keeps_the_item(link, fields, named):
    item = link.item
    history = ActionItemChange.objects.filter(item=item).count()

    changed = ticket_apply_remote(
        link=link, remote=remote(**fields), backend=PlainBackend(config={}, client=None)
    )

    assert changed == []
    item.refresh_from_db()
    assert item.deadline == dt.date(2026, 3, 20)
    assert ActionItemChange.objects.filter(item=item).count() == history
    link.refresh_from_db()
    assert link.state == TicketSyncState.FAILING
    assert f"{named}:" in link.last_error
    assert "plain 42" in link.last_error


def test_it_still_takes_a_due_date_inside_the_range(link):
    changed = ticket_apply_remote(
        link=link,
        remote=remote(deadline=dt.date(2026, 4, 1)),
        backend=PlainBackend(config={}, client=None),
    )

    assert changed == ["deadline"]
    link.item.refresh_from_db()
    assert link.item.deadline == dt.date(2026, 4, 1)

"""Links as a reminder email carries them, and what an item looks like before and after."""

import datetime as dt
import re
from urllib.parse import urlsplit

from django.conf import settings

from tracker.links import action_url
from tracker.models import ActionItem, ActionItemChange

# A Wednesday, after the remind hour.
NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def link(item: ActionItem, action: str, recipient: str | None = None) -> str:
    """The path of the link a reminder to `recipient` (the owner by default) carries."""
    recipient = recipient if recipient is not None else item.owner.email
    # The version the item has now, as in an email written now.
    version = ActionItem.objects.values_list("version", flat=True).get(pk=item.pk)
    url = action_url(item_id=item.pk, version=version, recipient=recipient, action=action)
    assert url.startswith(settings.TRACKER_BASE_URL)
    return urlsplit(url).path


def token_of(path: str) -> str:
    return path.removeprefix("/r/").removesuffix("/")


def path_of(token: str) -> str:
    return f"/r/{token}/"


def state(item: ActionItem) -> dict:
    """Every field a link could change, and the item's number of history rows."""
    item.refresh_from_db()
    return {
        "status": item.status,
        "completed_at": item.completed_at,
        "snoozed_until": item.snoozed_until,
        "next_reminder_on": item.next_reminder_on,
        "owner_id": item.owner_id,
        "version": item.version,
        "updated_at": item.updated_at,
        "history": ActionItemChange.objects.filter(item=item).count(),
    }


def csrf_token_from(response) -> str:
    match = CSRF_INPUT.search(response.content.decode())
    assert match, "the page has no CSRF token"
    return match.group(1)

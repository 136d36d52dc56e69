"""Signed one-click links in reminder emails.

A link names one item, one recipient and one action, is signed with the
project's secret and expires (`TRACKER_ACTION_LINK_MAX_AGE_DAYS`). Following
it only shows a confirmation page; the action happens on POST, so mail
scanners that open links change nothing.

A link also carries the item's version when the email was written, and acts
(done, snooze) only on that version: once the item changes, by this link or
anyone else, the link no longer acts. So a "mark done" link used once cannot
mark the item done again after its owner reopens it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "tracker.email-action"
ACTIONS = ("open", "done", "snooze")


class InvalidLink(Exception):
    pass


@dataclass(frozen=True)
class LinkAction:
    item_id: int
    recipient: str
    action: str
    # The item's version the link was written for (None in links from before versions).
    version: int | None


def action_token(*, item_id: int, version: int, recipient: str, action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(action)
    return signing.TimestampSigner(salt=SALT).sign_object(
        {"i": item_id, "v": version, "r": recipient.lower(), "a": action}, compress=True
    )


def action_url(*, item_id: int, version: int, recipient: str, action: str) -> str:
    """The link for `action` on the item as it is at `version` (its current one)."""
    token = action_token(item_id=item_id, version=version, recipient=recipient, action=action)
    return settings.TRACKER_BASE_URL + reverse("email-action", args=[token])


def read_action_token(token: str) -> LinkAction:
    """The action a token stands for; InvalidLink if tampered with or expired."""
    max_age = settings.TRACKER_ACTION_LINK_MAX_AGE_DAYS * 24 * 3600
    try:
        data = signing.TimestampSigner(salt=SALT).unsign_object(token, max_age=max_age)
    except signing.SignatureExpired:
        raise InvalidLink("This link has expired. Newer reminders carry fresh links.") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise InvalidLink("This link is not valid.") from None
    if not isinstance(data, dict) or data.get("a") not in ACTIONS:
        raise InvalidLink("This link is not valid.")
    version = data.get("v")
    return LinkAction(
        item_id=int(data["i"]),
        recipient=str(data["r"]),
        action=data["a"],
        version=version if isinstance(version, int) else None,
    )


def item_url(item) -> str:
    """The absolute URL of an item's page (for emails, tickets and calendars)."""
    return settings.TRACKER_BASE_URL + reverse("item-detail", args=[item.pk])

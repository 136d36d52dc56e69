"""Delivery: claim the pending Notification rows, send each recipient theirs as one message.

Rows are claimed with a conditional update, so two processes never send the
same row. A claimed row whose sender died is claimed again once its lease
expires. A failed send is retried with backoff, then given up. The message
itself goes through a channel (tracker.reminders.channels); everything else
here is the same for every channel.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..deadlines import person_time_zone
from ..models import (
    OPEN_STATUSES,
    ActionItemChange,
    ChangeSource,
    DeliveryState,
    Notification,
)
from . import channels
from .policy import Policy, reminder_date
from .sweeping import SweepReport

logger = logging.getLogger(__name__)

# Every reminder goes by email until Notification rows name their channel.
CHANNEL = "email"


def claimable(now: dt.datetime, policy: Policy) -> Q:
    """Rows (Notification or ManagerDigest) a sender may claim at `now`."""
    ready = Q(state=DeliveryState.PENDING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    # A sender that claimed rows and died: its lease has run out. Leases run on the
    # real clock, not on `now` (which a catch-up run sets in the past): a claim made
    # a second ago is never taken for an abandoned one.
    abandoned = Q(state=DeliveryState.SENDING, claimed_at__lt=timezone.now() - policy.lease)
    return ready | abandoned


def deliver_pending(
    *, now: dt.datetime, policy: Policy | None = None, report: SweepReport | None = None
) -> SweepReport:
    """Send one digest to each recipient with claimable notifications."""
    policy = policy or Policy.from_settings()
    report = report or SweepReport()
    channel = channels.channel(CHANNEL)
    if not channel.is_configured():
        logger.warning("reminder channel %s is not configured; nothing sent", channel.name)
        return report
    recipients = (
        Notification.objects.filter(claimable(now, policy))
        .values_list("recipient", flat=True)
        .distinct()
        .order_by("recipient")
    )
    for recipient in list(recipients):
        deliver_to(recipient=recipient, now=now, policy=policy, report=report, channel=channel)
    return report


def deliver_to(
    *,
    recipient: str,
    now: dt.datetime,
    policy: Policy | None = None,
    report: SweepReport | None = None,
    channel: channels.Channel | None = None,
) -> int:
    """Claim and send `recipient`'s pending notifications as one message; return how many were sent."""
    policy = policy or Policy.from_settings()
    report = report if report is not None else SweepReport()
    channel = channel or channels.channel(CHANNEL)
    token = uuid.uuid4().hex
    claimed = Notification.objects.filter(claimable(now, policy), recipient=recipient).update(
        state=DeliveryState.SENDING, claim_token=token, claimed_at=timezone.now()
    )
    if not claimed:
        return 0  # another process got there first
    rows = list(
        Notification.objects.filter(claim_token=token, state=DeliveryState.SENDING)
        .select_related("item__owner", "item__incident")
        .order_by("id")
    )
    live = [n for n in rows if _still_due(n, now=now, policy=policy)]
    stale = [n.pk for n in rows if n not in live]
    if stale:
        # Done, cancelled, unassigned, snoozed or re-dated since: nothing to say any more.
        Notification.objects.filter(pk__in=stale, claim_token=token).update(
            state=DeliveryState.SKIPPED
        )
    if not live:
        return 0
    error, permanent = None, False
    try:
        # Written on the real clock, like the claims: a catch-up run for an earlier
        # moment still tells the reader the days left as they are when it arrives.
        channel.send(recipient=recipient, notifications=live, now=timezone.now())
    except channels.ChannelError as exc:
        error, permanent = str(exc), exc.permanent
    except Exception as exc:  # a failure the channel did not foresee: retried like any other
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        attempts = live[0].attempts + 1
        Notification.objects.filter(claim_token=token, state=DeliveryState.SENDING).update(
            **failed_attempt(
                attempts=attempts, error=error, now=now, policy=policy, permanent=permanent
            )
        )
        _record(live, now=now, field="reminder_failed", error=error)
        report.failed += len(live)
        logger.warning(
            "reminder %s to %s failed (attempt %d): %s", channel.name, recipient, attempts, error
        )
        return 0
    # Together: a failure between the two would leave a sent reminder out of the
    # history for good; as one, it leaves the rows claimed, to be resent (the
    # documented at-least-once window) with their history.
    with transaction.atomic():
        Notification.objects.filter(claim_token=token, state=DeliveryState.SENDING).update(
            state=DeliveryState.SENT, sent_at=timezone.now(), attempts=live[0].attempts + 1
        )
        _record(live, now=now, field="reminder_sent")
    report.sent += len(live)
    report.emails += 1
    return len(live)


def failed_attempt(
    *, attempts: int, error: str, now: dt.datetime, policy: Policy, permanent: bool = False
) -> dict:
    """The fields of a delivery whose send failed: back off exponentially, with jitter, then give up."""
    failed = permanent or attempts >= policy.max_attempts
    delay = dt.timedelta(seconds=60 * 2 ** (attempts - 1) * random.uniform(1, 1.5))
    return {
        "state": DeliveryState.FAILED if failed else DeliveryState.PENDING,
        "attempts": attempts,
        "last_error": error[:2000],
        "next_attempt_at": None if failed else now + delay,
    }


def _still_due(notification: Notification, *, now: dt.datetime, policy: Policy) -> bool:
    """Whether the sweep would still send this row: open, owned, same deadline, not snoozed."""
    item = notification.item
    if (
        item.status not in OPEN_STATUSES
        or item.owner is None
        or item.deadline != notification.deadline
    ):
        return False
    # The owner's day, as the sweep reads it: the server's date would hold back, for good,
    # a stage that falls on the day after a snooze in a time zone ahead of the server's.
    today = reminder_date(now=now, tz=person_time_zone(item.owner), policy=policy)
    return not (item.snoozed_until and today <= item.snoozed_until)


def _record(rows: Iterable[Notification], *, now: dt.datetime, field: str, error: str = "") -> None:
    """Reminders sent or failed appear in each item's history."""
    ActionItemChange.objects.bulk_create(
        [
            ActionItemChange(
                item_id=n.item_id,
                at=now,
                source=ChangeSource.REMINDER,
                actor_label="reminders",
                field=field,
                new_value={"stage": n.stage, "recipient": n.recipient},
                note=error,
            )
            for n in rows
        ]
    )

"""The managers' weekly digest: who gets it, what it counts, and sending it once a week.

Each manager's digest is a ManagerDigest row per week, written before sending
and claimed like a reminder (tracker.reminders.delivery), so a manager gets
one a week however many workers run the task.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.utils import timezone

from .. import deadlines
from ..models import OPEN_STATUSES, ActionItem, DeliveryState, ManagerDigest
from .delivery import claimable, failed_attempt
from .messages import manager_digest_message
from .policy import Policy

logger = logging.getLogger(__name__)


def manager_digest_recipients() -> list[str]:
    """TRACKER_MANAGER_DIGEST, and every active member of the managers group with an email."""
    emails = {e.strip().lower() for e in settings.TRACKER_MANAGER_DIGEST if e.strip()}
    emails |= {
        e.lower()
        for e in get_user_model()
        .objects.filter(groups__name=settings.TRACKER_MANAGERS_GROUP, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    }
    return sorted(emails)


def manager_digest_context(*, now: dt.datetime) -> dict:
    """The digest's counts and lists at `now`, overdue and due soon as everywhere else.

    Overdue and due soon are tracker.deadlines' (each owner's today; the due-soon
    window is TRACKER_DUE_SOON_DAYS long), so the digest agrees with the
    dashboard and the metrics. The emails call the due-soon count "due this week":
    sent on Mondays with the default seven days, the two are the same days.
    """
    today = timezone.localdate(now)
    overdue = deadlines.overdue_q(now=now)
    open_items = ActionItem.objects.filter(status__in=OPEN_STATUSES)
    counts = {
        "open": Count("id"),
        "overdue": Count("id", filter=overdue),
        "due_this_week": Count("id", filter=deadlines.due_soon_q(now=now)),
    }
    by_owner = [
        {"owner": row["owner__email"], **{k: row[k] for k in counts}}
        for row in open_items.values("owner__email")
        .annotate(**counts)
        .order_by("-overdue", "owner__email")
    ]
    by_priority = list(open_items.values("priority").annotate(**counts).order_by("priority"))
    totals = open_items.aggregate(**counts)
    related = ("owner", "incident")
    return {
        "period_start": today - dt.timedelta(days=today.weekday()),
        "totals": totals,
        "by_owner": by_owner,
        "by_priority": by_priority,
        "unassigned": list(
            open_items.filter(owner__isnull=True)
            .select_related(*related)
            .order_by("deadline", "id")[:50]
        ),
        "oldest_overdue": list(
            open_items.filter(overdue).select_related(*related).order_by("deadline", "id")[:10]
        ),
    }


def manager_digest_send(*, now: dt.datetime, policy: Policy | None = None) -> int:
    """Send this week's digest to each manager once; return the number sent."""
    policy = policy or Policy.from_settings()
    today = timezone.localdate(now)
    period_start = today - dt.timedelta(days=today.weekday())
    ManagerDigest.objects.bulk_create(
        [
            ManagerDigest(recipient=r, period_start=period_start)
            for r in manager_digest_recipients()
        ],
        ignore_conflicts=True,
    )
    context = None
    sent = 0
    for digest in ManagerDigest.objects.filter(claimable(now, policy), period_start=period_start):
        token = uuid.uuid4().hex
        if not ManagerDigest.objects.filter(claimable(now, policy), pk=digest.pk).update(
            state=DeliveryState.SENDING, claim_token=token, claimed_at=timezone.now()
        ):
            continue
        context = context or manager_digest_context(now=now)
        try:
            manager_digest_message(recipient=digest.recipient, context=context).send()
        except Exception as exc:
            ManagerDigest.objects.filter(pk=digest.pk, claim_token=token).update(
                **failed_attempt(
                    attempts=digest.attempts + 1,
                    error=f"{type(exc).__name__}: {exc}",
                    now=now,
                    policy=policy,
                )
            )
            logger.warning("manager digest to %s failed: %s", digest.recipient, exc)
            continue
        ManagerDigest.objects.filter(pk=digest.pk, claim_token=token).update(
            state=DeliveryState.SENT, sent_at=timezone.now(), attempts=digest.attempts + 1
        )
        sent += 1
    return sent

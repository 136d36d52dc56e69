"""The reminder and digest emails, rendered from templates/emails/, and the stage labels."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from ..deadlines import days_until_due, item_owner_today
from ..links import action_url
from ..models import Notification, ReminderStage

STAGE_ORDER = [
    ReminderStage.ESCALATION,
    ReminderStage.OVERDUE,
    ReminderStage.DUE_TODAY,
    ReminderStage.DUE_SOON,
]
LATE_STAGES = (ReminderStage.ESCALATION, ReminderStage.OVERDUE)
STAGE_TITLES = {
    ReminderStage.ESCALATION: "Overdue past their grace period (you are the escalation contact)",
    ReminderStage.OVERDUE: "Overdue",
    ReminderStage.DUE_TODAY: "Due today",
    ReminderStage.DUE_SOON: "Due soon",
}


def _message(name: str, *, to: list[str], context: dict, connection=None) -> EmailMultiAlternatives:
    subject = " ".join(render_to_string(f"emails/{name}-subject.txt", context).split())
    text = render_to_string(f"emails/{name}-body.txt", context)
    html = render_to_string(f"emails/{name}-body.html", context)
    message = EmailMultiAlternatives(subject, text, to=to, connection=connection)
    message.attach_alternative(html, "text/html")
    return message


def reminder_message(
    *, recipient: str, notifications: list[Notification], now: dt.datetime, connection=None
) -> EmailMultiAlternatives:
    """One digest for one recipient: their items grouped by stage, overdue first.

    `now`: the moment it is written, from which its days left and late count.
    """
    groups = []
    for kind in STAGE_ORDER:
        entries = []
        for n in notifications:
            if n.kind != kind:
                continue
            item = n.item
            # Days counted on the owner's calendar, like the stages: the server's date can
            # be a day behind (an "overdue" item shown as "due today").
            days = days_until_due(item, today=item_owner_today(item, now=now))
            own = item.owner is not None and item.owner.email.lower() == recipient
            entries.append(
                {
                    "item": item,
                    "incident": item.incident.external_id if item.incident else "",
                    "days_late": -days if days < 0 else 0,
                    "days_left": days if days >= 0 else 0,
                    "owner": item.owner.email if item.owner else "",
                    # Bound to the item's version: a link acts on the item this email shows.
                    "open_url": action_url(
                        item_id=item.pk, version=item.version, recipient=recipient, action="open"
                    ),
                    "done_url": own
                    and action_url(
                        item_id=item.pk, version=item.version, recipient=recipient, action="done"
                    ),
                    "snooze_url": own
                    and action_url(
                        item_id=item.pk, version=item.version, recipient=recipient, action="snooze"
                    ),
                }
            )
        if entries:
            groups.append({"kind": kind, "title": STAGE_TITLES[kind], "entries": entries})
    context = {
        "recipient": recipient,
        "groups": groups,
        "count": len(notifications),
        "overdue": sum(len(g["entries"]) for g in groups if g["kind"] in LATE_STAGES),
        "upcoming": sum(len(g["entries"]) for g in groups if g["kind"] not in LATE_STAGES),
        "base_url": settings.TRACKER_BASE_URL,
        "snooze_days": settings.TRACKER_SNOOZE_DAYS,
    }
    return _message("reminder", to=[recipient], context=context, connection=connection)


def manager_digest_message(
    *, recipient: str, context: dict, connection=None
) -> EmailMultiAlternatives:
    return _message(
        "manager-digest",
        to=[recipient],
        context={**context, "base_url": settings.TRACKER_BASE_URL},
        connection=connection,
    )

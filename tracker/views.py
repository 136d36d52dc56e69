from django.db import transaction
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from . import services
from .links import InvalidLink, read_action_token
from .models import OPEN_STATUSES, ActionItem, ChangeSource, Status

CONFIRMATIONS = {
    "done": ("Mark this item done?", "Mark done"),
    "snooze": ("Snooze this item's reminders?", "Snooze"),
}


@require_http_methods(["GET", "POST"])
def email_action(request, token: str):
    """A signed link from a reminder: GET shows the item and asks; only POST acts."""
    try:
        link = read_action_token(token)
    except InvalidLink as exc:
        return render(request, "tracker/email_action.html", {"error": str(exc)}, status=400)
    item = ActionItem.objects.select_related("owner", "incident").filter(pk=link.item_id).first()
    if item is None:
        return render(
            request,
            "tracker/email_action.html",
            {"error": "This item no longer exists."},
            status=404,
        )
    owner_email = item.owner.email.lower() if item.owner else ""
    if link.action != "open" and owner_email != link.recipient:
        return render(
            request,
            "tracker/email_action.html",
            {"error": "This link was sent to the item's previous owner and no longer works."},
            status=403,
        )
    context = {
        "item": item,
        "overdue": item.status in OPEN_STATUSES
        and item.deadline
        and item.deadline < timezone.localdate(),
    }
    if link.action in CONFIRMATIONS:
        question, button = CONFIRMATIONS[link.action]
        if link.action == "snooze":
            question = (
                f"Snooze this item's reminders for {services.settings.TRACKER_SNOOZE_DAYS} days?"
            )
        context.update(confirm=question, confirm_button=button)
    if request.method == "POST" and link.action in CONFIRMATIONS:
        actor = services.Actor(source=ChangeSource.REMINDER, label=f"{link.recipient} (email link)")
        with transaction.atomic():
            item = (
                ActionItem.objects.select_for_update(of=("self",))
                .select_related("owner", "incident")
                .get(pk=item.pk)
            )
            try:
                if link.action == "done":
                    services.action_item_update(item=item, actor=actor, status=Status.DONE)
                    message = "Marked done. Thank you!"
                else:
                    services.action_item_snooze(item=item, actor=actor)
                    message = f"Snoozed until {item.snoozed_until:%Y-%m-%d}."
            except services.ValidationError as exc:
                return render(
                    request,
                    "tracker/email_action.html",
                    {"error": " ".join(exc.messages)},
                    status=400,
                )
        context.update(item=item, done_message=message, confirm=None, overdue=False)
    return render(request, "tracker/email_action.html", context)

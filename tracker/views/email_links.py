from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from .. import deadlines, services
from ..links import InvalidLink, LinkAction, read_action_token
from ..models import ActionItem, ChangeSource, Status

TEMPLATE = "tracker/email_action.html"
PREVIOUS_OWNER = "This link was sent to the item's previous owner and no longer works."
CHANGED_SINCE = (
    "This link no longer acts: it was already used, or the item changed since the email "
    "was sent. The item is shown as it is now; newer reminders carry fresh links."
)


def _page(request, context: dict, status: int = 200):
    return render(request, TEMPLATE, context, status=status)


def _sent_to_owner(item: ActionItem, link: LinkAction) -> bool:
    return item.owner is not None and item.owner.email.lower() == link.recipient


def _changed_since(request, item: ActionItem):
    """The item as it is now, saying why the link no longer acts (409, no form)."""
    context = {"item": item, "overdue": deadlines.item_is_overdue(item), "notice": CHANGED_SINCE}
    return _page(request, context, status=409)


@require_http_methods(["GET", "POST"])
def email_action(request, token: str):
    """A signed link from a reminder: GET shows the item and asks; only POST acts."""
    try:
        link = read_action_token(token)
    except InvalidLink as exc:
        return _page(request, {"error": str(exc)}, status=400)
    item = ActionItem.objects.select_related("owner", "incident").filter(pk=link.item_id).first()
    if item is None:
        return _page(request, {"error": "This item no longer exists."}, status=404)
    acts = link.action in ("done", "snooze")
    if acts and not _sent_to_owner(item, link):
        return _page(request, {"error": PREVIOUS_OWNER}, status=403)
    if acts and item.version != link.version:
        return _changed_since(request, item)

    message = ""
    if acts and request.method == "POST":
        actor = services.Actor(source=ChangeSource.REMINDER, label=f"{link.recipient} (email link)")
        try:
            with transaction.atomic():
                item = (
                    ActionItem.objects.select_for_update(of=("self",))
                    .select_related("owner", "incident")
                    .get(pk=item.pk)
                )
                # Checked again under the lock: the item may have been reassigned meanwhile.
                if not _sent_to_owner(item, link):
                    return _page(request, {"error": PREVIOUS_OWNER}, status=403)
                if item.version != link.version:
                    return _changed_since(request, item)
                if link.action == "done":
                    services.action_item_update(item=item, actor=actor, status=Status.DONE)
                    message = "Marked done. Thank you!"
                else:
                    services.action_item_snooze(item=item, actor=actor)
                    message = f"Snoozed until {item.snoozed_until:%Y-%m-%d}."
        except ValidationError as exc:
            return _page(request, {"error": " ".join(exc.messages)}, status=400)

    context = {
        "item": item,
        "overdue": deadlines.item_is_overdue(item),
        "done_message": message,
    }
    if acts and not message:
        if link.action == "done":
            context.update(confirm="Mark this item done?", confirm_button="Mark done")
        else:
            days = settings.TRACKER_SNOOZE_DAYS
            context.update(
                confirm=f"Snooze this item's reminders for {days} days?", confirm_button="Snooze"
            )
    return _page(request, context)

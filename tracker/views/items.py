"""The items pages: the filtered list (and its CSV), my items, and an item's page.

Every change goes through `tracker.services` with source "web". The forms that
change something work with and without JavaScript: htmx posts them and swaps
in the fragment the view returns; without it they are plain POSTs answered by
a redirect to the page they came from.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import BooleanField, Case, Count, F, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from .. import selectors, services
from ..api import ActionItemViewSet
from ..csv_export import csv_lines
from ..filters import ActionItemFilter
from ..forms import CommentForm, ItemEditForm, ItemFilterForm, ItemStatusForm, TicketLinkForm
from ..models import CLOSED_STATUSES, ActionItem, ChangeSource, Status
from ..permissions import is_manager, is_owner
from ..ticketing import get_backend
from ..ticketing.base import TicketError
from ..ticketing.pull import ticket_link_existing
from ..ticketing.push import ticket_resync_item

ITEMS_PER_PAGE = 50
# The API's orderings, so that a list URL means the same on both.
ORDERING_FIELDS = frozenset(ActionItemViewSet.ordering_fields)
DEFAULT_ORDERING = ("deadline", "id")
# The columns the list shows; the CSV export loads whole rows.
LIST_COLUMNS = (
    "id",
    "incident__external_id",
    "title",
    "description",
    "owner__email",
    "owner__name",
    "priority",
    "type",
    "status",
    "deadline",
)


class ItemListFilter(ActionItemFilter):
    """The API's filters and ordering, with a form made for the page."""

    ordering = django_filters.CharFilter(method="filter_ordering")

    class Meta(ActionItemFilter.Meta):
        form = ItemFilterForm

    def filter_ordering(self, queryset, name, value):
        return queryset.order_by(*_ordering(value))


def _web_actor(request: HttpRequest) -> services.Actor:
    return services.Actor(source=ChangeSource.WEB, user=request.user)


def _may_act_on(user, item: ActionItem) -> bool:
    """Status changes and comments: managers, and the item's owner."""
    return is_manager(user) or is_owner(user, item)


def _ordering(value: str) -> list[str]:
    """`ordering` as the API reads it: comma-separated fields, `-` for descending,
    unknown ones ignored; `id` last so that pages never overlap."""
    terms = [t.strip() for t in (value or "").split(",")]
    terms = [t for t in terms if t and t.removeprefix("-") in ORDERING_FIELDS]
    return [*terms, "id"] if terms else list(DEFAULT_ORDERING)


def _with_overdue(queryset: QuerySet[ActionItem]) -> QuerySet[ActionItem]:
    return selectors.action_items_with_overdue(queryset=queryset)


def _next_url(request: HttpRequest, default: str) -> str:
    """The page a form came from (its `next` field), if it is one of ours."""
    candidate = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


# --- The list ---------------------------------------------------------------------


@login_required
@require_GET
def item_list(request: HttpRequest) -> HttpResponse:
    """Every item, filtered and ordered as the API does; `export=csv` for all of them as CSV."""
    items = ActionItem.objects.select_related("incident", "owner")
    export = request.GET.get("export") == "csv"
    if not export:
        items = items.only(*LIST_COLUMNS)
    filterset = ItemListFilter(request.GET, queryset=items.order_by(*DEFAULT_ORDERING))
    context: dict[str, Any] = {"filterset": filterset, "form": filterset.form}
    if not filterset.is_valid():
        return render(request, "tracker/item_list.html", context, status=400)
    items = _with_overdue(filterset.qs)
    if export:
        response = StreamingHttpResponse(csv_lines(items), content_type="text/csv; charset=utf-8")
        filename = f"action-items-{timezone.localdate():%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    context["page"] = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "tracker/item_list.html", context)


# --- My items ---------------------------------------------------------------------


def _card_items() -> QuerySet[ActionItem]:
    """Items with what a card on "my items" shows."""
    items = ActionItem.objects.select_related("incident", "owner")
    return _with_overdue(items).annotate(
        comment_count=Count("comments"),
        is_closed=Case(
            When(status__in=CLOSED_STATUSES, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    )


def _my_items(user) -> QuerySet[ActionItem]:
    email = (user.email or "").strip()
    items = _card_items()
    return items.filter(owner__email__iexact=email) if email else items.none()


def _card_context(item: ActionItem, next_url: str, **extra) -> dict:
    return {
        "item": item,
        "next_url": next_url,
        "status_form": ItemStatusForm(item=item),
        "comment_form": CommentForm(item=item),
        **extra,
    }


@login_required
@require_GET
def my_items(request: HttpRequest) -> HttpResponse:
    """The signed-in person's items: overdue first, then open ones by deadline, then closed."""
    items = _my_items(request.user).order_by(
        "-is_overdue", "is_closed", F("deadline").asc(nulls_last=True), "id"
    )
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    next_url = request.get_full_path()
    cards = [_card_context(item, next_url) for item in page]
    return render(
        request,
        "tracker/my_items.html",
        {"page": page, "cards": cards, "has_email": bool(request.user.email)},
    )


def _card_response(request: HttpRequest, pk: int, *, message: str, error: str) -> HttpResponse:
    """The item's card, fresh from the database, saying what just happened.

    An error is answered with 200 too: htmx swaps in only successful responses,
    and the person must see why nothing changed.
    """
    item = get_object_or_404(_card_items(), pk=pk)
    next_url = _next_url(request, reverse("my-items"))
    context = _card_context(item, next_url, card_message=message, card_error=error)
    return render(request, "tracker/_item_card.html", context)


# --- Changes -----------------------------------------------------------------------


def _locked_item(pk: int) -> ActionItem:
    # Locks the item only: an outer join's nullable side cannot be locked on PostgreSQL.
    return get_object_or_404(
        ActionItem.objects.select_for_update(of=("self",)).select_related("owner", "incident"),
        pk=pk,
    )


def _answer(request: HttpRequest, pk: int, *, message: str, error: str) -> HttpResponse:
    """The item's card for htmx (the cards of "my items" post with it); otherwise a
    message and back to the page the form was on."""
    if request.htmx:
        return _card_response(request, pk, message=message, error=error)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, message)
    return redirect(_next_url(request, reverse("item-detail", args=[pk])))


@login_required
@require_POST
def item_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an item's status (managers, and the item's owner)."""
    error = message = ""
    try:
        with transaction.atomic():
            item = _locked_item(pk)
            if not _may_act_on(request.user, item):
                raise PermissionDenied
            form = ItemStatusForm(request.POST, item=item)
            if form.is_valid():
                status = form.cleaned_data["status"]
                changed = services.action_item_update(
                    item=item, actor=_web_actor(request), status=status
                )
                label = Status(status).label
                message = f"Status changed to {label}." if changed else f"Status is {label}."
            else:
                error = "Choose a status: " + " ".join(form.errors["status"])
    except ValidationError as exc:
        error = " ".join(exc.messages)
    return _answer(request, pk, message=message, error=error)


@login_required
@require_POST
def item_comment(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a comment to an item (managers, and the item's owner)."""
    error = message = ""
    try:
        with transaction.atomic():
            item = _locked_item(pk)
            if not _may_act_on(request.user, item):
                raise PermissionDenied
            form = CommentForm(request.POST, item=item)
            if form.is_valid():
                services.comment_add(
                    item=item, actor=_web_actor(request), body=form.cleaned_data["body"]
                )
                message = "Comment added."
            else:
                error = "Comment: " + " ".join(form.errors["body"])
    except ValidationError as exc:
        error = " ".join(exc.messages)
    return _answer(request, pk, message=message, error=error)


@login_required
@require_POST
def item_ticket(request: HttpRequest, pk: int) -> HttpResponse:
    """Managers: link the item to an existing ticket, or push it to its ticket again."""
    if not is_manager(request.user):
        raise PermissionDenied
    item = _item_for_page(pk)
    backend = get_backend()
    if backend is None:
        messages.error(request, "No ticket system is configured.")
        return redirect("item-detail", pk=pk)
    if request.POST.get("action") == "resync":
        ticket_resync_item(item=item, system=backend.name)
        messages.success(request, "The item will be pushed to its ticket in a moment.")
        return redirect("item-detail", pk=pk)
    form = TicketLinkForm(request.POST)
    if form.is_valid():
        try:
            link = ticket_link_existing(
                item=item, reference=form.cleaned_data["reference"], backend=backend
            )
        except ValueError as error:
            form.add_error("reference", str(error))
        except TicketError as error:
            form.add_error("reference", f"The ticket system answered: {error.message}")
        else:
            messages.success(request, f"Linked to {link.system} {link.key}.")
            return redirect("item-detail", pk=pk)
    item = _item_for_page(pk)
    return render(
        request,
        "tracker/item_detail.html",
        _detail_context(request, item, ticket_form=form),
        status=400,
    )


@login_required
@require_POST
def item_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an item's title, priority, deadline or owner (managers only)."""
    if not is_manager(request.user):
        raise PermissionDenied
    with transaction.atomic():
        item = _locked_item(pk)
        form = ItemEditForm(request.POST, item=item)
        if form.is_valid() and form.cleaned_data["version"] != item.version:
            form.add_error(
                None,
                "Someone changed this item since you opened the page. "
                "Check the item as it is now, then make your change again.",
            )
        if form.is_valid():
            try:
                # A savepoint: a refused change must not undo the lock's transaction.
                with transaction.atomic():
                    changed = services.action_item_update(
                        item=item, actor=_web_actor(request), **_edit_changes(form)
                    )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, "Item saved." if changed else "Nothing to change.")
                return redirect("item-detail", pk=pk)
    item = _item_for_page(pk)
    return render(
        request, "tracker/item_detail.html", _detail_context(request, item, form), status=400
    )


def _edit_changes(form: ItemEditForm) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    data = form.cleaned_data
    for name in ("title", "priority", "deadline"):
        if name in form.changed_data:
            changes[name] = data[name]
    if "deadline" in changes:
        # A person chose this deadline: it no longer derives from the priority.
        changes["deadline_derived"] = False
    if "owner_email" in form.changed_data:
        email = data["owner_email"]
        changes["owner"] = services.person_get_or_create(email=email) if email else None
    return changes


# --- The item's page ----------------------------------------------------------------


def _item_for_page(pk: int) -> ActionItem:
    items = ActionItem.objects.select_related("incident", "owner", "ticket_link").filter(pk=pk)
    return get_object_or_404(_with_overdue(items))


def _history_value(value: Any) -> str:
    if value is None or value == "":
        return "\N{EN DASH}"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_history_value(v)}" for key, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _detail_context(
    request: HttpRequest,
    item: ActionItem,
    edit_form: ItemEditForm | None = None,
    ticket_form: TicketLinkForm | None = None,
) -> dict:
    may_act = _may_act_on(request.user, item)
    manager = is_manager(request.user)
    history = [
        {
            "change": change,
            "old": _history_value(change.old_value),
            "new": _history_value(change.new_value),
        }
        for change in item.changes.order_by("-at", "-id")
    ]
    return {
        "item": item,
        "next_url": reverse("item-detail", args=[item.pk]),
        "may_change_status": may_act,
        "may_comment": may_act,
        "may_edit": manager,
        "status_form": ItemStatusForm(item=item) if may_act else None,
        "comment_form": CommentForm(item=item) if may_act else None,
        "edit_form": (edit_form or ItemEditForm(item=item)) if manager else None,
        "comments": item.comments.order_by("created_at", "id"),
        "history": history,
        "notifications": item.notifications.order_by("-created_at", "-id"),
        "ticket": getattr(item, "ticket_link", None),
        "ticket_system": settings.TICKETS_BACKEND,
        "ticket_form": (ticket_form or TicketLinkForm()) if manager else None,
    }


@login_required
@require_GET
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = _item_for_page(pk)
    return render(request, "tracker/item_detail.html", _detail_context(request, item))

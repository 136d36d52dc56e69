"""Admin for action items and people.

Every change to an item made here goes through `tracker.services`, so it is
validated and written to the item's history with source "admin"; nothing in
this module calls `save()` on an item.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from . import deadlines, selectors
from .csv_export import csv_lines as _csv_lines
from .forms import ActionItemAdminForm, MoveDeadlineForm, ReassignForm
from .models import (
    DEADLINE_MAX,
    DEADLINE_MIN,
    ActionItem,
    ActionItemChange,
    ApiToken,
    ChangeSource,
    Comment,
    DeliveryState,
    ManagerDigest,
    Notification,
    Person,
    Status,
    TicketLink,
    deadline_shifted,
)
from .services import (
    EDITABLE_FIELDS,
    Actor,
    ItemUpdate,
    action_item_create,
    action_item_update,
    action_items_update,
    person_get_or_create,
)
from .ticketing import get_backend
from .ticketing.preflight import tickets_preflight
from .ticketing.push import tickets_resync, tickets_unlink
from .tokens import api_token_create, api_token_revoke


def _admin_actor(request) -> Actor:
    return Actor(source=ChangeSource.ADMIN, user=request.user)


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return selectors.action_items_overdue(queryset=queryset)
        if self.value() == "no":
            return selectors.action_items_not_overdue(queryset=queryset)
        return queryset


class DueSoonFilter(admin.SimpleListFilter):
    title = "due soon"
    parameter_name = "due_within"

    def lookups(self, request, model_admin):
        days = deadlines.due_soon_days()
        return [(str(days), f"In the next {days} days")]

    def queryset(self, request, queryset):
        if self.value() == str(deadlines.due_soon_days()):
            return selectors.action_items_due_soon(queryset=queryset)
        return queryset


class ActionItemChangeInline(admin.TabularInline):
    """The item's history, read-only: it is written by the services only."""

    model = ActionItemChange
    verbose_name = "history entry"
    verbose_name_plural = "history"
    fields = ("at", "source", "actor_label", "field", "old_value", "new_value", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-at", "-id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TicketLinkInline(admin.StackedInline):
    """The item's ticket and its sync state; resync and unlink from the ticket list."""

    model = TicketLink
    verbose_name = "ticket"
    fields = (
        "system",
        "ticket",
        "state",
        "attempts",
        "next_attempt_at",
        "last_synced_at",
        "last_error",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="ticket")
    def ticket(self, link: TicketLink) -> str:
        return _ticket_html(link)

    def has_view_permission(self, request, obj=None):
        return _may_see_tickets(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _may_see_tickets(request) -> bool:
    # A ticket is part of its item: whoever may see items sees their tickets (the
    # managers group is given no permissions on the TicketLink model itself).
    user = request.user
    return user.has_perm("tracker.view_actionitem") or user.has_perm("tracker.change_actionitem")


def _ticket_html(link: TicketLink) -> str:
    if not link.key:
        return "(not created yet)"
    # The URL comes from the ticket system (a webhook receiver's answer): only
    # http(s) becomes a link, never javascript: or data:.
    if not link.url.lower().startswith(("https://", "http://")):
        return link.key
    return format_html('<a href="{}" rel="noreferrer">{}</a>', link.url, link.key)


@admin.register(ActionItem)
class ActionItemAdmin(admin.ModelAdmin):
    form = ActionItemAdminForm
    list_display = (
        "title",
        "incident_external_id",
        "owner",
        "priority",
        "deadline",
        "status",
        "overdue",
    )
    list_filter = (
        "status",
        "priority",
        ("owner", admin.RelatedOnlyFieldListFilter),
        OverdueFilter,
        DueSoonFilter,
        ("incident", admin.RelatedOnlyFieldListFilter),
        "removed_from_source",
    )
    search_fields = ("title", "owner__email", "incident__external_id")
    list_select_related = ("incident", "owner")
    autocomplete_fields = ("incident", "owner")
    actions = ("mark_done", "reassign", "move_deadline")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "incident",
                    "title",
                    "description",
                    "owner",
                    "priority",
                    "type",
                    "status",
                    "deadline",
                )
            },
        ),
        (
            "Bookkeeping",
            {
                "fields": (
                    "deadline_derived",
                    "completed_at",
                    "created_at",
                    "updated_at",
                    "removed_from_source",
                    "source_key",
                    "source_document",
                    "source_values",
                    "extra",
                ),
            },
        ),
    )
    # Kept by the services and the import: a person editing them would break
    # the three-way merge with the next revision of the document.
    readonly_fields = (
        "deadline_derived",
        "completed_at",
        "created_at",
        "updated_at",
        "removed_from_source",
        "source_key",
        "source_document",
        "source_values",
        "extra",
    )

    def get_queryset(self, request):
        return selectors.action_items_with_overdue(queryset=super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and obj.source_key:
            # An item from a document is matched by its key within its incident:
            # moved to another incident, the next import would create it again.
            return (*fields, "incident")
        return fields

    def get_inlines(self, request, obj):
        if obj is None:
            return []
        # The ticket's inline only for an item that has one: an empty formset would
        # still make the item's form post its management form for nothing.
        ticket = [TicketLinkInline] if TicketLink.objects.filter(item=obj).exists() else []
        return [*ticket, ActionItemChangeInline, CommentInline]

    @admin.display(description="incident", ordering="incident__external_id")
    def incident_external_id(self, obj: ActionItem) -> str:
        return obj.incident.external_id if obj.incident else "-"

    @admin.display(description="overdue", boolean=True, ordering="is_overdue")
    def overdue(self, obj: ActionItem) -> bool:
        return obj.is_overdue

    # --- Saving through the services -----------------------------------------

    def save_model(self, request, obj, form, change):
        actor = _admin_actor(request)
        if change:
            changes = {
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in EDITABLE_FIELDS
            }
            if "deadline" in changes:
                # A person chose this deadline: it no longer derives from the priority.
                changes["deadline_derived"] = False
            # The form has already copied its values onto `obj`; compare with the
            # row as stored so the history records the real old values.
            original = ActionItem.objects.select_for_update().get(pk=obj.pk)
            action_item_update(item=original, actor=actor, **changes)
        else:
            fields = {
                name: form.cleaned_data[name] for name in form.fields if name in EDITABLE_FIELDS
            }
            obj.pk = action_item_create(actor=actor, **fields).pk
        obj.refresh_from_db()

    def has_delete_permission(self, request, obj=None):
        # Items are cancelled, never deleted: their history must survive, and
        # deleting bypasses the services.
        return False

    # --- Bulk actions ----------------------------------------------------------

    @admin.action(description="Mark selected items done", permissions=["change"])
    def mark_done(self, request, queryset):
        items = list(queryset.select_related("owner", "incident"))
        try:
            with transaction.atomic():
                changed = action_items_update(
                    updates=[ItemUpdate(item, {"status": Status.DONE}) for item in items],
                    actor=_admin_actor(request),
                )
        except ValidationError as exc:
            # The services refused one item (a cancelled item must be reopened
            # first): the batch is all or nothing, so nothing changed.
            self.message_user(
                request, f"Nothing changed: {'; '.join(exc.messages)}", messages.ERROR
            )
            return
        self.message_user(
            request, f"Marked {len(changed)} of {len(items)} items done.", messages.SUCCESS
        )

    @admin.action(description="Reassign selected items…", permissions=["change"])
    def reassign(self, request, queryset):
        form = ReassignForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._intermediate_page(
                request, queryset, form, action="reassign", title="Reassign action items"
            )
        items = list(queryset.select_related("owner", "incident"))
        with transaction.atomic():
            person = person_get_or_create(email=form.cleaned_data["owner_email"])
            changed = action_items_update(
                updates=[ItemUpdate(item, {"owner": person}) for item in items],
                actor=_admin_actor(request),
            )
        self.message_user(
            request, f"Reassigned {len(changed)} of {len(items)} items to {person.email}."
        )
        return None

    @admin.action(description="Move deadline of selected items…", permissions=["change"])
    def move_deadline(self, request, queryset):
        form = MoveDeadlineForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._intermediate_page(
                request, queryset, form, action="move_deadline", title="Move deadlines"
            )
        new_deadline: dt.date | None = form.cleaned_data["new_deadline"]
        shift_days: int | None = form.cleaned_data["shift_days"]
        items = list(queryset.select_related("owner", "incident"))
        updates = []
        skipped = 0
        outside = []
        for item in items:
            if new_deadline is not None:
                deadline = new_deadline
            elif item.deadline is not None:
                deadline = deadline_shifted(item.deadline, shift_days)
                if deadline is None:
                    outside.append(item)
                    continue
            else:
                skipped += 1
                continue
            updates.append(ItemUpdate(item, {"deadline": deadline, "deadline_derived": False}))
        if outside:
            # All or nothing, like the other actions: the page says which items to leave out.
            titles = "; ".join(f"{item.title} ({item.deadline})" for item in outside[:5])
            more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
            form.add_error(
                "shift_days",
                f"Shifting by {shift_days} days takes {len(outside)} deadline"
                f"{'s' if len(outside) != 1 else ''} outside the supported range, "
                f"{DEADLINE_MIN} to {DEADLINE_MAX}: {titles}{more}. Nothing was moved.",
            )
            return self._intermediate_page(
                request, queryset, form, action="move_deadline", title="Move deadlines"
            )
        with transaction.atomic():
            changed = action_items_update(updates=updates, actor=_admin_actor(request))
        message = f"Moved the deadline of {len(changed)} of {len(items)} items."
        if skipped:
            message += f" {skipped} without a deadline were skipped."
        self.message_user(request, message)
        return None

    def _intermediate_page(self, request, queryset, form, *, action: str, title: str):
        # The page posts back to the changelist (same query string, so the same
        # filters) with the action, the selected ids and `apply`: the standard
        # admin pattern for actions that need input.
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "form": form,
            "action": action,
            "items": queryset.select_related("incident", "owner"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/tracker/actionitem/action_form.html", context)

    # --- CSV export --------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "export-csv/",
                self.admin_site.admin_view(self.export_csv_view),
                name="{}_{}_export_csv".format(*info),
            ),
            *super().get_urls(),
        ]

    def export_csv_view(self, request):
        """Every row the changelist shows for this query string, on every page, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
            )
        rows = changelist.queryset.select_related("incident", "owner")
        response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
        filename = f"action-items-{timezone.localdate():%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ("email", "name", "time_zone", "manager_email", "user", "open_items")
    search_fields = ("email", "name")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("created_at",)

    def get_queryset(self, request):
        return selectors.people_with_open_item_counts(queryset=super().get_queryset(request))

    @admin.display(description="open items", ordering="open_items")
    def open_items(self, obj: Person) -> int:
        return obj.open_items


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    fields = ("created_at", "author_label", "source", "body")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created here or with `manage.py create_api_token`; the secret is shown once."""

    list_display = (
        "name",
        "user",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "user__email", "prefix")
    list_select_related = ("user",)
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "expires_at")
        return ("user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if change:
            return  # tokens are immutable; revoke and create another
        token, key = api_token_create(user=obj.user, name=obj.name, expires_at=obj.expires_at)
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = (
            token.pk,
            token.prefix,
            token.key_hash,
            token.created_at,
        )
        self.message_user(
            request,
            f"Token created: {key} — copy it now, it will not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token)
        self.message_user(request, f"Revoked {queryset.count()} tokens.", messages.SUCCESS)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Every reminder: pending, sent, failed (with the error) or skipped."""

    list_display = (
        "item",
        "recipient",
        "stage",
        "deadline",
        "state",
        "attempts",
        "sent_at",
        "last_error",
    )
    list_filter = ("state", "kind")
    search_fields = ("recipient", "item__title")
    list_select_related = ("item",)
    date_hierarchy = "created_at"
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry the selected failed reminders now", permissions=["view"])
    def retry(self, request, queryset):
        count = queryset.filter(state=DeliveryState.FAILED).update(
            state=DeliveryState.PENDING, next_attempt_at=None
        )
        self.message_user(request, f"{count} reminders will be sent by the next delivery run.")


@admin.register(ManagerDigest)
class ManagerDigestAdmin(admin.ModelAdmin):
    list_display = ("period_start", "recipient", "state", "attempts", "sent_at", "last_error")
    list_filter = ("state",)
    search_fields = ("recipient",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TicketLink)
class TicketLinkAdmin(admin.ModelAdmin):
    """Every item's ticket: synced, pending, or failing with the last error."""

    list_display = (
        "item",
        "system",
        "ticket",
        "state",
        "attempts",
        "next_attempt_at",
        "last_synced_at",
        "last_error",
    )
    list_filter = ("state", "system")
    search_fields = ("key", "item__title")
    list_select_related = ("item",)
    actions = ["resync", "unlink"]
    change_list_template = "admin/tracker/ticketlink/change_list.html"
    # pushed_values and the claim are the sync's bookkeeping; shown, never edited.
    readonly_fields = [f.name for f in TicketLink._meta.fields] + ["ticket"]

    @admin.display(description="ticket", ordering="key")
    def ticket(self, link: TicketLink) -> str:
        return _ticket_html(link)

    def has_view_permission(self, request, obj=None):
        return _may_see_tickets(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_sync_permission(self, request) -> bool:
        # Whoever may change items may make their tickets agree with them.
        return request.user.has_perm("tracker.change_actionitem")

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "check/",
                self.admin_site.admin_view(self.check_view),
                name="{}_{}_check".format(*info),
            ),
            *super().get_urls(),
        ]

    def check_view(self, request):
        """What `sync_tickets --check` reports: read from the ticket system on each visit."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        backend = get_backend()
        findings = tickets_preflight(backend=backend) if backend else []
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Check the ticket system",
            "backend": backend.name if backend else "",
            "findings": findings,
            "blocking": sum(1 for finding in findings if finding.blocking),
        }
        return TemplateResponse(request, "admin/tracker/ticketlink/check.html", context)

    @admin.action(
        description="Push the selected items to their tickets again", permissions=["sync"]
    )
    def resync(self, request, queryset):
        count = tickets_resync(links=queryset)
        self.message_user(request, f"{count} items will be pushed again in full.", messages.SUCCESS)

    @admin.action(
        description="Unlink the selected tickets (the tickets stay in the ticket system)",
        permissions=["sync"],
    )
    def unlink(self, request, queryset):
        count = tickets_unlink(links=queryset)
        self.message_user(request, f"Unlinked {count} tickets.", messages.SUCCESS)

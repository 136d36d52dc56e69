"""Admin for incidents and their stored documents, and the upload page for managers.

An incident follows its document: its fields are read-only here and change only
when a new revision is imported. Revisions and imports are an audit trail, so
they can be browsed but never added, changed or deleted.

A document may bring thousands of events and items: an incident's page shows the
first INLINE_ROWS of each, with a link to all of them in a paginated list, and
at most DOCUMENT_PREVIEW_CHARS of its document, with the raw one a click away.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import content_disposition_header

from config.json_input import read_json
from tracker.models import ActionItem

from .forms import ImportDocumentsForm
from .importing import ImportSummary, import_document
from .models import DocumentImport, Incident, IncidentDocument, TimelineEvent
from .selectors import incidents_with_item_counts
from .uploads import read_document, summary_line

# The rows of each kind an incident's page shows, and the characters of its document.
INLINE_ROWS = 100
DOCUMENT_PREVIEW_CHARS = 100_000

# Every field that the import sets from the document, and the bookkeeping it keeps.
DOCUMENT_FIELDS = (
    "external_id",
    "title",
    "severity",
    "status",
    "service",
    "commander",
    "declared_at",
    "resolved_at",
    "affected_services",
    "escalation_manager_email",
    "root_cause",
    "impact",
    "signals",
    "context",
    "resolution",
    "extra",
)


def can_import_documents(user) -> bool:
    """Superusers, members of the managers group, and users allowed to add incidents."""
    return user.is_active and (
        user.is_superuser
        or user.has_perm("incidents.add_incident")
        or user.groups.filter(name=settings.TRACKER_MANAGERS_GROUP).exists()
    )


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(read_json(text), indent=2, ensure_ascii=False)
    except ValueError:
        # Only valid documents are stored, but show the text rather than fail.
        return text


def _raw_document_link(document: IncidentDocument) -> str:
    url = reverse("admin:incidents_incidentdocument_raw", args=[document.pk])
    return format_html('<a href="{}">Download the raw document ({} bytes)</a>', url, document.size)


def _document_preview(text: str, document: IncidentDocument) -> str:
    """The document's text in a <pre>, cut at DOCUMENT_PREVIEW_CHARS with a link to it whole."""
    if len(text) <= DOCUMENT_PREVIEW_CHARS:
        return format_html('<pre class="incident-document">{}</pre>', text)
    return format_html(
        '<pre class="incident-document">{}\n…</pre><p>The first {} of {} characters. {}.</p>',
        text[:DOCUMENT_PREVIEW_CHARS],
        f"{DOCUMENT_PREVIEW_CHARS:,}",
        f"{len(text):,}",
        _raw_document_link(document),
    )


class CappedInlineFormSet(BaseInlineFormSet):
    """The first `rows` rows of an inline; `total` counts them all when there are more."""

    rows = INLINE_ROWS
    see_all_url: str | None = None

    def get_queryset(self):
        if not hasattr(self, "_capped"):
            queryset = super().get_queryset()
            self._capped = queryset[: self.rows]
            self.total = len(self._capped)
            if self.total == self.rows:
                self.total = queryset.count()
        return self._capped


class CappedInline(admin.TabularInline):
    """A read-only inline of at most INLINE_ROWS rows, linking to a list of them all."""

    extra = 0
    can_delete = False
    show_change_link = False
    formset = CappedInlineFormSet
    template = "admin/incidents/capped_tabular.html"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def see_all_url(self, obj) -> str:
        raise NotImplementedError

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.see_all_url = self.see_all_url(obj) if obj is not None else None
        return formset


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ActionItemInline(CappedInline):
    model = ActionItem
    fields = ("item_link", "owner", "priority", "status", "deadline", "removed_from_source")
    readonly_fields = fields
    ordering = ("deadline", "id")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner")

    def see_all_url(self, obj: Incident) -> str:
        changelist = reverse("admin:tracker_actionitem_changelist")
        return f"{changelist}?incident__id__exact={obj.pk}"

    @admin.display(description="item")
    def item_link(self, obj: ActionItem) -> str:
        url = reverse("admin:tracker_actionitem_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.title)


class TimelineEventInline(CappedInline):
    model = TimelineEvent
    fields = ("timestamp", "type", "actor", "description")
    readonly_fields = fields
    verbose_name = "timeline event"

    def see_all_url(self, obj: Incident) -> str:
        changelist = reverse("admin:incidents_timelineevent_changelist")
        return f"{changelist}?incident__id__exact={obj.pk}"


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = (
        "external_id",
        "title",
        "severity",
        "status",
        "service",
        "declared_at",
        "open_items",
        "total_items",
    )
    list_filter = ("severity", "status", "service")
    search_fields = ("external_id", "title", "service", "commander")
    date_hierarchy = "declared_at"
    inlines = (ActionItemInline, TimelineEventInline)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "external_id",
                    "title",
                    "severity",
                    "status",
                    "service",
                    "affected_services",
                    "commander",
                    "escalation_manager_email",
                    "declared_at",
                    "resolved_at",
                    "root_cause",
                )
            },
        ),
        (
            "Document sections",
            {
                "classes": ("collapse",),
                "fields": ("impact", "signals", "context", "resolution", "extra"),
            },
        ),
        (
            "Source document",
            {"fields": ("current_document_link", "document_text", "created_at", "updated_at")},
        ),
    )
    readonly_fields = (
        *DOCUMENT_FIELDS,
        "current_document_link",
        "document_text",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request):
        # No select_related("current_document"): it would load every document's
        # content on the changelist; the change page fetches its one document.
        return incidents_with_item_counts(queryset=super().get_queryset(request))

    def has_add_permission(self, request):
        # Incidents come from documents: the import page replaces the add form.
        return False

    def has_change_permission(self, request, obj=None):
        # The document is the source of truth; re-import it to change an incident.
        return False

    @admin.display(description="open items", ordering="items_open")
    def open_items(self, obj: Incident) -> int:
        return obj.items_open

    @admin.display(description="items", ordering="items_total")
    def total_items(self, obj: Incident) -> int:
        return obj.items_total

    @admin.display(description="current revision")
    def current_document_link(self, obj: Incident) -> str:
        document = obj.current_document
        if document is None:
            return "-"
        url = reverse("admin:incidents_incidentdocument_change", args=[document.pk])
        revisions = reverse("admin:incidents_incidentdocument_changelist")
        return format_html(
            '<a href="{}">{}</a> &middot; {} &middot; <a href="{}?incident__id__exact={}">'
            "all revisions</a>",
            url,
            document.sha256,
            _raw_document_link(document),
            revisions,
            obj.pk,
        )

    @admin.display(description="document")
    def document_text(self, obj: Incident) -> str:
        if obj.current_document is None:
            return "-"
        document = obj.current_document
        return _document_preview(_pretty_json(document.text), document)

    # --- Import page -----------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="{}_{}_import".format(*info),
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import": can_import_documents(request.user)}
        return super().changelist_view(request, extra_context=extra_context)

    def import_view(self, request):
        """Upload documents and import each one, showing the same report as the command."""
        if not can_import_documents(request.user):
            raise PermissionDenied
        summaries: list[ImportSummary] = []
        dry_run = False
        if request.method == "POST":
            form = ImportDocumentsForm(request.POST, request.FILES)
            if form.is_valid():
                dry_run = form.cleaned_data["dry_run"]
                for upload in form.cleaned_data["documents"]:
                    summaries.append(
                        import_document(
                            raw=read_document(upload),
                            source="admin",
                            path=upload.name,
                            user=request.user,
                            dry_run=dry_run,
                        )
                    )
        else:
            form = ImportDocumentsForm()

        incident_urls = {}
        if summaries and not dry_run:
            imported = Incident.objects.filter(
                external_id__in=[s.incident for s in summaries if s.ok]
            ).values_list("external_id", "pk")
            incident_urls = {
                external_id: reverse("admin:incidents_incident_change", args=[pk])
                for external_id, pk in imported
            }
        context = {
            **self.admin_site.each_context(request),
            "title": "Import incident documents",
            "opts": self.opts,
            "form": form,
            "dry_run": dry_run,
            "reports": [(s, incident_urls.get(s.incident)) for s in summaries],
            "headline": summary_line(summaries, dry_run=dry_run),
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        # Bad input (an invalid form, or documents that were all rejected) is a 400,
        # with the errors on the page; a partly imported upload is a 200.
        refused = request.method == "POST" and (
            not form.is_valid() or not any(summary.ok for summary in summaries)
        )
        return TemplateResponse(
            request, "admin/incidents/incident/import.html", context, status=400 if refused else 200
        )


class DocumentImportInline(ReadOnlyInline):
    model = DocumentImport
    fields = ("imported_at", "source", "imported_by", "result", "summary")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("imported_by")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browsable, never editable: the audit trail of imports."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(IncidentDocument)
class IncidentDocumentAdmin(ReadOnlyAdmin):
    list_display = ("incident", "sha256", "size", "first_imported_at")
    list_select_related = ("incident",)
    search_fields = ("incident__external_id", "sha256")
    fields = ("incident", "sha256", "size", "first_imported_at", "raw_link", "verbatim")
    readonly_fields = fields
    inlines = (DocumentImportInline,)

    @admin.display(description="raw")
    def raw_link(self, obj: IncidentDocument) -> str:
        return _raw_document_link(obj)

    @admin.display(description="content, verbatim")
    def verbatim(self, obj: IncidentDocument) -> str:
        return _document_preview(obj.text, obj)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:pk>/raw/",
                self.admin_site.admin_view(self.raw_view),
                name="{}_{}_raw".format(*info),
            ),
            *super().get_urls(),
        ]

    def raw_view(self, request, pk: int):
        """The stored bytes exactly as imported, as a JSON download."""
        document = get_object_or_404(IncidentDocument.objects.select_related("incident"), pk=pk)
        if not self.has_view_permission(request, document):
            raise PermissionDenied
        filename = f"{document.incident.external_id}-{document.sha256[:12]}.json"
        return HttpResponse(
            bytes(document.content),
            content_type="application/json",
            headers={
                "Content-Disposition": content_disposition_header(True, filename),
            },
        )


@admin.register(DocumentImport)
class DocumentImportAdmin(ReadOnlyAdmin):
    list_display = ("document", "imported_at", "source", "imported_by", "result")
    list_filter = ("result",)
    list_select_related = ("document__incident", "imported_by")
    search_fields = ("document__incident__external_id", "source")
    fields = ("document", "imported_at", "source", "imported_by", "result", "summary")
    readonly_fields = fields


@admin.register(TimelineEvent)
class TimelineEventAdmin(ReadOnlyAdmin):
    """Every event of an incident, paginated: where its page's "see all" leads."""

    list_display = ("incident", "position", "timestamp", "type", "actor", "description")
    list_select_related = ("incident",)
    search_fields = ("incident__external_id", "actor", "description")

    def has_module_permission(self, request):
        # Reached from an incident's page; the index lists incidents, not their events.
        return False

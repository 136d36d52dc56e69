"""Pages of the incidents: the list, one incident, and the import for managers.

The import page works in two steps. The upload is imported as a dry run and
its report shown; the bytes of the documents that would import are kept in the
session (server-side, in the database like every session, so any web process
can confirm) and the confirm step imports exactly those bytes, once.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import zlib
from collections import Counter
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods, require_safe

from tracker.models import ActionItem, Status
from tracker.permissions import is_manager
from tracker.selectors import action_items_with_overdue

from .forms import ImportConfirmForm, ImportUploadForm, IncidentFilterForm
from .importing import ImportSummary, import_document
from .models import Incident
from .selectors import incidents_with_item_counts
from .uploads import is_too_large, read_document, summary_line

PAGE_SIZE = 25
PREVIEW_SESSION_KEY = "incident_import_preview"
# What the summary line says of a preview (where the command and the admin say "dry run").
PREVIEW_NOTE = "Preview, nothing written yet"
# The most documents one upload may hold; each is also held to TRACKER_IMPORT_MAX_BYTES.
IMPORT_MAX_DOCUMENTS = 50


# --- List and detail ------------------------------------------------------------


@login_required
@require_safe
def incident_list(request):
    statuses = list(Incident.objects.order_by("status").values_list("status", flat=True).distinct())
    form = IncidentFilterForm(request.GET, statuses=statuses)
    incidents = incidents_with_item_counts().annotate(
        items_done=Count("action_items", filter=Q(action_items__status=Status.DONE))
    )
    filtered = False
    if form.is_valid():
        query = form.cleaned_data["q"].strip()
        if query:
            incidents = incidents.filter(
                Q(external_id__icontains=query)
                | Q(title__icontains=query)
                | Q(service__icontains=query)
                | Q(commander__icontains=query)
            )
        if form.cleaned_data["severity"]:
            incidents = incidents.filter(severity=form.cleaned_data["severity"])
        if form.cleaned_data["status"]:
            incidents = incidents.filter(status=form.cleaned_data["status"])
        filtered = any(form.cleaned_data.values())
    page = Paginator(incidents.order_by("-declared_at", "-id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {"form": form, "page": page, "filtered": filtered}
    return render(request, "incidents/incident_list.html", context)


@login_required
@require_safe
def incident_detail(request, external_id: str):
    items = action_items_with_overdue(
        queryset=ActionItem.objects.select_related("owner").order_by("deadline", "id")
    )
    incident = get_object_or_404(
        Incident.objects.prefetch_related(
            "events", "communications", "participants", Prefetch("action_items", queryset=items)
        ),
        external_id=external_id,
    )
    action_items = list(incident.action_items.all())
    statuses = Counter(item.status for item in action_items)
    resolution = incident.resolution if isinstance(incident.resolution, dict) else {}
    extra_incident = incident.extra.get("incident") if isinstance(incident.extra, dict) else None
    summary = extra_incident.get("summary") if isinstance(extra_incident, dict) else None
    context = {
        "incident": incident,
        "summary": summary if isinstance(summary, str) else "",
        "duration": (
            _duration_text(incident.resolved_at - incident.declared_at)
            if incident.resolved_at
            else ""
        ),
        "impact": _facts(incident.impact),
        "customer_impact": _facts(resolution.get("customer_impact")),
        "contributing_factors": _strings(resolution.get("contributing_factors")),
        "mitigation_steps": _strings(resolution.get("mitigation_steps")),
        "permanent_fix": _text(resolution.get("permanent_fix")),
        "action_items": action_items,
        "items_total": len(action_items),
        "items_done": statuses[Status.DONE],
        "items_open": sum(1 for item in action_items if item.is_open),
    }
    return render(request, "incidents/incident_detail.html", context)


def _duration_text(duration: dt.timedelta) -> str:
    minutes = max(int(duration.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min"]
    return " ".join(p for p in parts if p)


def _text(value: Any) -> str:
    """A JSON value as one line of text (escaped later by the template, like all text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return str(value)


def _facts(section: Any) -> list[tuple[str, str]]:
    """A free-form section of the document as (label, text) pairs for a definition list."""
    if not isinstance(section, dict):
        return []
    return [(str(key).replace("_", " ").capitalize(), _text(v)) for key, v in section.items()]


def _strings(value: Any) -> list[str]:
    return [_text(v) for v in value] if isinstance(value, list) else []


# --- Import -----------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def import_documents(request):
    """Upload documents, see the dry-run report, then confirm to import those very bytes."""
    if not is_manager(request.user):
        raise PermissionDenied
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "preview":
        return _import_preview(request)
    if action == "confirm":
        return _import_confirm(request)
    if action == "cancel":
        request.session.pop(PREVIEW_SESSION_KEY, None)
    return _import_page(request)


def _import_page(request, *, status: int = 200, **context: Any):
    context.setdefault("upload_form", ImportUploadForm())
    return render(request, "incidents/import.html", context, status=status)


def _import_preview(request):
    form = ImportUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _import_page(request, upload_form=form, status=400)
    uploads = form.cleaned_data["documents"]
    if len(uploads) > IMPORT_MAX_DOCUMENTS:
        form.add_error("documents", f"Upload at most {IMPORT_MAX_DOCUMENTS} documents at a time.")
        return _import_page(request, upload_form=form, status=400)
    documents = [(upload.name, read_document(upload)) for upload in uploads]
    # Those too large are rejected by the dry run below and never kept.
    importable = sum(len(raw) for _, raw in documents if not is_too_large(raw))
    if importable > settings.TRACKER_IMPORT_MAX_BYTES:
        # The previewed bytes live in the session until confirmed; keep it bounded.
        form.add_error(
            "documents",
            f"These documents hold {importable} bytes together; preview at most "
            f"{settings.TRACKER_IMPORT_MAX_BYTES} bytes at a time.",
        )
        return _import_page(request, upload_form=form, status=400)

    summaries = [
        import_document(raw=raw, source="web", path=name, user=request.user, dry_run=True)
        for name, raw in documents
    ]
    kept = [
        {
            "name": name,
            "content": base64.b64encode(zlib.compress(raw)).decode("ascii"),
            "report": summary.as_dict(),
        }
        for (name, raw), summary in zip(documents, summaries, strict=True)
        if summary.ok
    ]
    preview_id = ""
    if kept:
        preview_id = secrets.token_urlsafe(16)
        request.session[PREVIEW_SESSION_KEY] = {"id": preview_id, "documents": kept}
    else:
        request.session.pop(PREVIEW_SESSION_KEY, None)
    return _import_page(
        request,
        dry_run=True,
        reports=_reports(summaries, dry_run=True),
        headline=summary_line(summaries, dry_run=True, dry_run_note=PREVIEW_NOTE),
        to_import=len(kept),
        rejected=len(summaries) - len(kept),
        confirm_form=ImportConfirmForm(initial={"preview": preview_id}) if kept else None,
        # Nothing importable is bad input: 400, with each document's errors shown.
        status=200 if kept else 400,
    )


def _import_confirm(request):
    form = ImportConfirmForm(request.POST)
    preview = request.session.get(PREVIEW_SESSION_KEY)
    if preview is None or not form.is_valid():
        return _import_page(
            request,
            error="There is nothing to import: upload documents and check the preview first.",
            status=400,
        )
    if not secrets.compare_digest(form.cleaned_data["preview"], preview["id"]):
        return _import_page(
            request,
            error="This preview was replaced by a newer one (in another tab?): "
            "check the newer preview, or upload the documents again.",
            status=409,
        )
    # Taken out of the session before importing: a second submit finds nothing to import.
    request.session.pop(PREVIEW_SESSION_KEY)
    summaries = []
    changed_since_preview = []
    for document in preview["documents"]:
        raw = zlib.decompress(base64.b64decode(document["content"]))
        summary = import_document(
            raw=raw, source="web", path=document["name"], user=request.user, dry_run=False
        )
        summaries.append(summary)
        if summary.as_dict() != document["report"]:
            changed_since_preview.append(document["name"])
    return _import_page(
        request,
        dry_run=False,
        reports=_reports(summaries, dry_run=False),
        headline=summary_line(summaries),
        changed_since_preview=changed_since_preview,
    )


def _reports(summaries: list[ImportSummary], *, dry_run: bool) -> list[dict[str, Any]]:
    """Each summary with whether its incident page exists (after a real import)."""
    linkable = set()
    if not dry_run:
        linkable = set(
            Incident.objects.filter(
                external_id__in=[s.incident for s in summaries if s.ok]
            ).values_list("external_id", flat=True)
        )
    return [{"summary": s, "linked": s.incident in linkable} for s in summaries]

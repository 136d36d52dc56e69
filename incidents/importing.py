"""Import incident documents: the one code path behind the command, the admin's
upload page, the import page and the REST API (which read documents with
`incidents.uploads`).

`import_document()` validates a document whole (see `incidents.document`), then
merges it into the database in one transaction, locked per incident:

- the incident's own fields, timeline, communications and participants follow
  the document (the document is their source of truth);
- action items are matched by a stable identity (their `id`, else their
  normalised title) and merged field by field: a field takes the document's
  value only when the document changed it since its previous import, so edits
  made in the tracker survive re-imports; when both changed, the tracker's
  value is kept and the conflict is reported as a warning;
- items that vanished from the document are flagged `removed_from_source`,
  never deleted.

Re-importing the same bytes changes nothing and reports `unchanged`. Every
revision is kept verbatim with its sha256, and every import is logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tracker.models import ActionItem, ChangeSource, Status, normalise_type
from tracker.services import (
    TRACKED_FIELDS,
    Actor,
    ItemUpdate,
    action_items_create,
    action_items_update,
    people_get_or_create,
)

from .document import (
    DocumentRejected,
    ParsedDocument,
    Problem,
    item_source_key,
    parse_document,
)
from .models import (
    Communication,
    DocumentImport,
    ImportResult,
    Incident,
    IncidentDocument,
    Participant,
    TimelineEvent,
)


@dataclass
class ImportSummary:
    path: str
    incident: str | None = None
    result: str = ImportResult.REJECTED
    items_created: int = 0
    items_updated: int = 0
    items_unchanged: int = 0
    items_removed_from_source: int = 0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.result != ImportResult.REJECTED

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "incident": self.incident,
            "result": str(self.result),
            "items_created": self.items_created,
            "items_updated": self.items_updated,
            "items_unchanged": self.items_unchanged,
            "items_removed_from_source": self.items_removed_from_source,
            "errors": [e.as_dict() for e in self.errors],
            "warnings": [w.as_dict() for w in self.warnings],
        }


class _DryRunRollback(Exception):
    pass


def import_document(
    *,
    raw: bytes,
    source: str,
    path: str = "-",
    user: Any = None,
    dry_run: bool = False,
) -> ImportSummary:
    """Validate and import one document; never raises for bad input.

    `source` says where the document came from (``command``, ``admin``,
    ``api``); `path` is the name shown in the report. With `dry_run`, the whole
    import runs and is then rolled back, so the report is exact and nothing is
    written.
    """
    summary = ImportSummary(path=path, dry_run=dry_run)
    try:
        parsed = parse_document(raw, max_bytes=settings.TRACKER_IMPORT_MAX_BYTES)
    except DocumentRejected as exc:
        summary.errors = exc.errors
        return summary
    summary.incident = parsed.document.incident.id
    summary.warnings = list(parsed.warnings)
    try:
        with transaction.atomic():
            _Merge(parsed=parsed, summary=summary, source=source, user=user).run()
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        pass
    return summary


class _Merge:
    def __init__(self, *, parsed: ParsedDocument, summary: ImportSummary, source: str, user: Any):
        self.parsed = parsed
        self.doc = parsed.document
        self.summary = summary
        self.source = source
        self.user = user
        self.now = timezone.now()
        self.sha256 = hashlib.sha256(parsed.raw).hexdigest()
        label = f"import {source}" + (f" ({user.get_username()})" if user is not None else "")
        self.actor = Actor(source=ChangeSource.IMPORT, user=user, label=label)

    def run(self) -> None:
        incident, created = self._lock_or_create_incident()
        previous = incident.current_document
        revision = self._revision(incident)
        if not created and previous is not None and previous.sha256 == self.sha256:
            result = ImportResult.UNCHANGED
            self.summary.items_unchanged = (
                incident.action_items.filter(removed_from_source=False)
                .exclude(source_key="")
                .count()
            )
        else:
            changed = created
            changed |= self._update_incident(incident, revision, created)
            changed |= self._replace_rows(incident, created)
            changed |= self._merge_items(incident, revision)
            if created:
                result = ImportResult.CREATED
            elif changed:
                result = ImportResult.UPDATED
            else:
                result = ImportResult.UNCHANGED
        self.summary.result = result
        DocumentImport.objects.create(
            document=revision,
            imported_at=self.now,
            source=self.source[:500],
            imported_by=self.user,
            result=result,
            summary=self.summary.as_dict(),
        )

    # --- Incident ----------------------------------------------------------

    def _lock_or_create_incident(self) -> tuple[Incident, bool]:
        external_id = self.doc.incident.id
        incident = (
            Incident.objects.select_for_update(of=("self",))
            .select_related("current_document")
            .filter(external_id=external_id)
            .first()
        )
        if incident is not None:
            return incident, False
        try:
            # A concurrent import of the same new incident waits here on the
            # unique index, then fails and takes the row the winner created.
            with transaction.atomic():
                incident = Incident.objects.create(**self._incident_values())
            return incident, True
        except IntegrityError:
            return (
                Incident.objects.select_for_update(of=("self",))
                .select_related("current_document")
                .get(external_id=external_id),
                False,
            )

    def _revision(self, incident: Incident) -> IncidentDocument:
        revision = IncidentDocument.objects.filter(incident=incident, sha256=self.sha256).first()
        if revision is None:
            revision = IncidentDocument.objects.create(
                incident=incident,
                sha256=self.sha256,
                content=self.parsed.raw,
                size=len(self.parsed.raw),
                first_imported_at=self.now,
            )
        return revision

    def _incident_values(self) -> dict[str, Any]:
        section = self.doc.incident
        on_call = self.doc.context.on_call
        known = set(type(self.doc).model_fields)
        extra = {k: v for k, v in self.parsed.data.items() if k not in known}
        if section.model_extra:
            extra["incident"] = section.model_extra
        return {
            "external_id": section.id,
            "title": section.title,
            "severity": section.severity,
            "status": normalise_type(section.status) or "open",
            "declared_at": as_aware(section.declared_at),
            "resolved_at": as_aware(section.resolved_at),
            "commander": section.commander or "",
            "service": section.service or "",
            "affected_services": section.affected_services,
            "impact": self.parsed.data.get("impact") or {},
            "signals": self.parsed.data.get("signals") or {},
            "context": self.parsed.data.get("context") or {},
            "resolution": self.parsed.data.get("resolution") or {},
            "root_cause": self.doc.resolution.root_cause or "",
            "escalation_manager_email": (on_call.escalation_manager if on_call else None) or "",
            "extra": extra,
        }

    def _update_incident(
        self, incident: Incident, revision: IncidentDocument, created: bool
    ) -> bool:
        changed_fields = []
        if not created:
            for name, value in self._incident_values().items():
                if getattr(incident, name) != value:
                    setattr(incident, name, value)
                    changed_fields.append(name)
        incident.current_document = revision
        incident.save(update_fields=[*changed_fields, "current_document", "updated_at"])
        return bool(changed_fields)

    # --- Timeline, communications, participants ----------------------------

    def _replace_rows(self, incident: Incident, created: bool) -> bool:
        changed = False
        for model, rows in (
            (TimelineEvent, self._events()),
            (Communication, self._communications()),
            (Participant, self._participants()),
        ):
            fields = [f for f in rows[0] if f not in ("incident", "position")] if rows else []
            if not created:
                current = list(
                    model.objects.filter(incident=incident).order_by("position").values(*fields)
                    if fields
                    else model.objects.filter(incident=incident).values("id")
                )
                wanted = [{f: row[f] for f in fields} for row in rows]
                if current == wanted:
                    continue
                model.objects.filter(incident=incident).delete()
            model.objects.bulk_create([model(incident=incident, **row) for row in rows])
            changed = True
        return changed and not created

    def _events(self) -> list[dict[str, Any]]:
        return [
            {
                "position": i,
                "timestamp": as_aware(e.timestamp),
                "type": normalise_type(e.type),
                "actor": e.actor or "",
                "description": e.description or "",
                "metadata": e.metadata or {},
                "extra": e.model_extra or {},
            }
            for i, e in enumerate(self.doc.events)
        ]

    def _communications(self) -> list[dict[str, Any]]:
        return [
            {
                "position": i,
                "timestamp": as_aware(c.timestamp),
                "channel": c.channel or "",
                "audience": c.audience or "",
                "message": c.message or "",
                "extra": c.model_extra or {},
            }
            for i, c in enumerate(self.doc.communications)
        ]

    def _participants(self) -> list[dict[str, Any]]:
        return [
            {
                "position": i,
                "name": p.name,
                "role": p.role or "",
                "email": p.email or "",
                "extra": p.model_extra or {},
            }
            for i, p in enumerate(self.doc.participants)
        ]

    # --- Action items --------------------------------------------------------

    def _document_items(self) -> dict[str, dict[str, Any]]:
        """Each item of the document as the values it gives, keyed by identity."""
        items = {}
        for index, section in enumerate(self.doc.action_items):
            # Derived from the priority when the document gives none (see parse_document).
            deadline = self.parsed.deadlines[index]
            items[item_source_key(section)] = {
                "index": index,
                "values": {
                    "title": section.title,
                    "description": section.description or "",
                    "owner": section.owner,
                    "priority": section.priority,
                    "type": normalise_type(section.type),
                    "status": section.status,
                    "deadline": deadline.deadline.isoformat() if deadline.deadline else None,
                },
                "deadline_derived": deadline.derived,
                "completed_at": as_aware(section.completed_at),
                "extra": section.model_extra or {},
            }
        return items

    def _merge_items(self, incident: Incident, revision: IncidentDocument) -> bool:
        wanted = self._document_items()
        people = people_get_or_create(
            emails=[w["values"]["owner"] for w in wanted.values() if w["values"]["owner"]]
        )
        existing = {
            item.source_key: item
            for item in ActionItem.objects.filter(incident=incident)
            .exclude(source_key="")
            .select_related("owner")
        }
        to_create: list[ActionItem] = []
        updates: list[ItemUpdate] = []
        for key, entry in wanted.items():
            values = entry["values"]
            item = existing.get(key)
            if item is None:
                to_create.append(
                    ActionItem(
                        incident=incident,
                        title=values["title"],
                        description=values["description"],
                        owner=people.get(values["owner"]) if values["owner"] else None,
                        priority=values["priority"],
                        type=values["type"],
                        status=values["status"],
                        deadline=_date(values["deadline"]),
                        deadline_derived=entry["deadline_derived"],
                        completed_at=entry["completed_at"],
                        source_key=key,
                        source_document=revision,
                        source_values=values,
                        extra=entry["extra"],
                    )
                )
                continue
            changes = self._three_way(item, entry, people)
            bookkeeping = {
                "source_values": values,
                "source_document": revision,
                "removed_from_source": False,
                "extra": entry["extra"],
            }
            if item.removed_from_source:
                changes["removed_from_source"] = False
            updates.append(ItemUpdate(item, changes, bookkeeping))
        for key, item in existing.items():
            if key not in wanted and not item.removed_from_source:
                updates.append(ItemUpdate(item, {"removed_from_source": True}))
                self.summary.items_removed_from_source += 1
                self.summary.warnings.append(
                    Problem(
                        "action_items",
                        f"item {item.id} ({item.title!r}) is no longer in the document; "
                        "kept and marked removed from source",
                    )
                )

        note = f"document {self.sha256[:12]}"
        if to_create:
            action_items_create(items=to_create, actor=self.actor, note=note)
        changed = action_items_update(updates=updates, actor=self.actor, note=note)
        really_changed = {
            u.item.pk
            for u in updates
            if u.changes and u.item in changed and u.changes != {"removed_from_source": True}
        }
        self.summary.items_created = len(to_create)
        self.summary.items_updated = len(really_changed)
        self.summary.items_unchanged = len(wanted) - len(to_create) - len(really_changed)
        return bool(to_create or really_changed or self.summary.items_removed_from_source)

    def _three_way(self, item: ActionItem, entry: dict[str, Any], people: dict) -> dict[str, Any]:
        """The changes the document brings to `item`, leaving tracker edits alone."""
        values, previous = entry["values"], item.source_values or {}
        changes: dict[str, Any] = {}
        for name in TRACKED_FIELDS:
            new, old, current = values[name], previous.get(name), _current(item, name)
            if new in (old, current):
                continue
            if name in previous and current != old:
                self.summary.warnings.append(
                    Problem(
                        f"action_items[{entry['index']}].{name}",
                        f"conflict: the document changed {name} from {old!r} to {new!r}, "
                        f"but it was changed to {current!r} in the tracker; kept {current!r}",
                    )
                )
                continue
            if name == "owner":
                changes["owner"] = people.get(new) if new else None
            elif name == "deadline":
                changes["deadline"] = _date(new)
                changes["deadline_derived"] = entry["deadline_derived"]
            else:
                changes[name] = new
            if name == "status" and new == Status.DONE and entry["completed_at"]:
                changes["completed_at"] = entry["completed_at"]
        return changes


def _current(item: ActionItem, name: str) -> Any:
    if name == "owner":
        return item.owner.email.lower() if item.owner else None
    if name == "deadline":
        return item.deadline.isoformat() if item.deadline else None
    return getattr(item, name)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def as_aware(value: dt.datetime | None) -> dt.datetime | None:
    """Timestamps without an offset are read as UTC (the parser warned about them)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)

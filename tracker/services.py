"""Every change to people and action items.

Each change to an item, whatever its path (import, admin, API, web, reminders,
ticket sync), goes through `action_items_create` or `action_items_update`, which
keep `completed_at` consistent with the status and write one history row per
changed field. The single-item services are thin wrappers over the bulk ones so
that there is one code path, and imports stay at a constant number of queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from .deadlines import owner_today
from .models import (
    ActionItem,
    ActionItemChange,
    ChangeSource,
    Comment,
    Person,
    Priority,
    Status,
    validate_deadline,
)
from .reminders import next_reminder_on
from .ticketing import outbox

# Fields of an item that documents set (an import merges them three ways, see
# incidents.importing), that people edit, and that history records.
TRACKED_FIELDS = ("title", "description", "owner", "priority", "type", "status", "deadline")
EDITABLE_FIELDS = (*TRACKED_FIELDS, "deadline_derived", "incident", "completed_at", "snoozed_until")
# A change to one of these moves the item's next reminder.
REMINDER_FIELDS = frozenset({"deadline", "status", "owner", "priority", "snoozed_until"})


@dataclass(frozen=True)
class Actor:
    """Who changes something, and through which path."""

    source: str
    user: Any = None
    label: str = ""

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(source=ChangeSource.SYSTEM, label=label)

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        if self.user is not None:
            return self.user.get_username()
        return self.source


# Status changes a person may make. The document and the ticket system report
# facts rather than requests, so imports and ticket sync are not held to these.
ALLOWED_TRANSITIONS = {
    Status.OPEN: {Status.IN_PROGRESS, Status.BLOCKED, Status.DONE, Status.CANCELLED},
    Status.IN_PROGRESS: {Status.OPEN, Status.BLOCKED, Status.DONE, Status.CANCELLED},
    Status.BLOCKED: {Status.OPEN, Status.IN_PROGRESS, Status.DONE, Status.CANCELLED},
    Status.DONE: {Status.OPEN, Status.IN_PROGRESS},
    Status.CANCELLED: {Status.OPEN},
}
UNCHECKED_TRANSITION_SOURCES = {ChangeSource.IMPORT, ChangeSource.TICKET}


def status_choices_from(current: str) -> set[str]:
    """The statuses a person may set on an item whose status is `current` (itself included)."""
    return ALLOWED_TRANSITIONS.get(current, set()) | {current}


# --- People ------------------------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


def people_get_or_create(*, emails: Iterable[str]) -> dict[str, Person]:
    """Return a Person for each email (keyed by lowercased email), creating those missing.

    A constant number of queries whatever the number of emails; safe when two
    imports create the same person at once (the unique index decides).
    """
    wanted = {normalise_email(e) for e in emails if e}
    if not wanted:
        return {}
    limit = Person._meta.get_field("email").max_length
    too_long = sorted(email for email in wanted if len(email) > limit)
    if too_long:
        # Every edge checks this first; here it guards the paths that cannot (a ticket's
        # assignee), so that no insert reaches the database to be refused there.
        raise ValidationError({"owner": f"{too_long[0][:40]}... is longer than {limit} characters"})
    found = _people_by_email(wanted)
    missing = wanted - found.keys()
    if missing:
        users = {
            u.email_lower: u
            for u in get_user_model()
            .objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=missing, person__isnull=True)
        }
        Person.objects.bulk_create(
            [Person(email=email, user=users.get(email)) for email in sorted(missing)],
            ignore_conflicts=True,
        )
        found = _people_by_email(wanted)
    return found


def _people_by_email(emails: set[str]) -> dict[str, Person]:
    people = Person.objects.annotate(email_lower=Lower("email")).filter(email_lower__in=emails)
    return {p.email_lower: p for p in people}


def person_get_or_create(*, email: str) -> Person:
    return people_get_or_create(emails=[email])[normalise_email(email)]


# --- Action items ------------------------------------------------------------


def _history_value(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field == "owner":
        return value.email if isinstance(value, Person) else value
    if field == "incident":
        return getattr(value, "external_id", value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _validate(item: ActionItem) -> None:
    errors = {}
    if item.status not in Status.values:
        errors["status"] = f"expected one of {', '.join(Status.values)}"
    if item.priority not in Priority.values:
        errors["priority"] = f"expected one of {', '.join(Priority.values)}"
    if not (item.title or "").strip():
        errors["title"] = "must not be empty"
    try:
        validate_deadline(item.deadline)
    except ValidationError as exc:
        errors["deadline"] = exc.messages[0]
    if errors:
        raise ValidationError(errors)


def _sync_completed_at(item: ActionItem, now: dt.datetime) -> None:
    if item.status == Status.DONE:
        item.completed_at = item.completed_at or now
    else:
        item.completed_at = None


@transaction.atomic(savepoint=False)
def action_items_create(
    *, items: list[ActionItem], actor: Actor, note: str = ""
) -> list[ActionItem]:
    """Create items (unsaved instances) and a "created" history row for each."""
    now = timezone.now()
    for item in items:
        _validate(item)
        _sync_completed_at(item, now)
        item.next_reminder_on = next_reminder_on(item=item, now=now)
    created = ActionItem.objects.bulk_create(items)
    ActionItemChange.objects.bulk_create(
        [
            ActionItemChange(
                item=item,
                at=now,
                source=actor.source,
                actor=actor.user,
                actor_label=actor.display,
                field="created",
                new_value={f: _history_value(f, getattr(item, f)) for f in TRACKED_FIELDS},
                note=note,
            )
            for item in created
        ]
    )
    outbox.items_created(items=created)
    return created


def action_item_create(*, actor: Actor, note: str = "", **fields: Any) -> ActionItem:
    """Create one item; see action_items_create."""
    unknown = (
        set(fields)
        - set(EDITABLE_FIELDS)
        - {"source_key", "source_document", "source_values", "extra"}
    )
    if unknown:
        raise TypeError(f"unknown action item fields: {sorted(unknown)}")
    return action_items_create(items=[ActionItem(**fields)], actor=actor, note=note)[0]


@dataclass
class ItemUpdate:
    item: ActionItem
    changes: dict[str, Any]
    # Bookkeeping fields (source_*, removed_from_source) saved without history rows
    # of their own unless listed in `changes`.
    bookkeeping: dict[str, Any] | None = None


@transaction.atomic(savepoint=False)
def action_items_update(
    *, updates: list[ItemUpdate], actor: Actor, note: str = ""
) -> list[ActionItem]:
    """Apply changes to items; return the items that changed.

    Only fields whose value really changes are saved and written to history.
    `completed_at` follows the status: set when an item becomes done, cleared
    when it is reopened.
    """
    now = timezone.now()
    history: list[ActionItemChange] = []
    changed_items: list[ActionItem] = []
    saved_fields: set[str] = set()
    # The fields that changed on each item, for the ticket outbox to decide what to push.
    changed_fields: dict[int, list[str]] = {}
    for update in updates:
        item = update.item
        unknown = set(update.changes) - set(EDITABLE_FIELDS) - {"removed_from_source"}
        if unknown:
            raise TypeError(f"unknown action item fields: {sorted(unknown)}")
        before = {f: getattr(item, f) for f in (*update.changes, "completed_at")}
        for name, value in update.changes.items():
            setattr(item, name, value)
        if "status" in update.changes and before["status"] != item.status:
            if "completed_at" not in update.changes:
                item.completed_at = None if item.status != Status.DONE else before["completed_at"]
            _sync_completed_at(item, now)
        _validate(item)
        if (
            "status" in update.changes
            and before["status"] != item.status
            and actor.source not in UNCHECKED_TRANSITION_SOURCES
            and item.status not in status_choices_from(before["status"])
        ):
            raise ValidationError(
                {
                    "status": f"cannot change from {before['status']} to {item.status}; "
                    f"allowed: {', '.join(sorted(ALLOWED_TRANSITIONS[before['status']]))}"
                }
            )
        fields = [f for f, old in before.items() if old != getattr(item, f)]
        for name, value in (update.bookkeeping or {}).items():
            # Compare foreign keys by id: reading the related row would cost a query per item.
            attname = ActionItem._meta.get_field(name).attname
            new = value.pk if isinstance(value, models.Model) else value
            if getattr(item, attname) != new:
                setattr(item, name, value)
                fields.append(name)
        if not fields:
            continue
        if REMINDER_FIELDS.intersection(fields):
            item.next_reminder_on = next_reminder_on(item=item, now=now)
            fields.append("next_reminder_on")
        item.updated_at = now
        item.version += 1
        changed_items.append(item)
        changed_fields[item.pk] = fields
        saved_fields.update(fields)
        for name in fields:
            if name in before:
                history.append(
                    ActionItemChange(
                        item=item,
                        at=now,
                        source=actor.source,
                        actor=actor.user,
                        actor_label=actor.display,
                        field=name,
                        old_value=_history_value(name, before[name]),
                        new_value=_history_value(name, getattr(item, name)),
                        note=note,
                    )
                )
    if changed_items:
        ActionItem.objects.bulk_update(
            changed_items, sorted(saved_fields | {"updated_at", "version"})
        )
        ActionItemChange.objects.bulk_create(history)
        outbox.items_changed(changes=changed_fields, source=actor.source)
    return changed_items


def action_item_update(*, item: ActionItem, actor: Actor, note: str = "", **changes: Any) -> bool:
    """Change one item; True if anything changed. See action_items_update."""
    return bool(action_items_update(updates=[ItemUpdate(item, changes)], actor=actor, note=note))


def comment_add(*, item: ActionItem, actor: Actor, body: str) -> Comment:
    """Add a comment to an item."""
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "must not be empty"})
    return Comment.objects.create(
        item=item, author=actor.user, author_label=actor.display, source=actor.source, body=body
    )


def action_item_snooze(*, item: ActionItem, actor: Actor, days: int | None = None) -> bool:
    """Hold the item's reminders for `days` (TRACKER_SNOOZE_DAYS) from today."""
    days = settings.TRACKER_SNOOZE_DAYS if days is None else days
    # "Today" where the owner lives: the reminders count days there too.
    until = owner_today(item.owner) + dt.timedelta(days=days)
    return action_item_update(item=item, actor=actor, snoozed_until=until)

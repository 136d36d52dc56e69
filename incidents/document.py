"""Parse and validate an incident document.

`parse_document(raw)` turns the bytes of a document into a `ParsedDocument`, or
raises `DocumentRejected` with every problem found, each naming its JSON path
(`action_items[1].deadline`) and what was expected. Nothing here touches the
database: a document is judged whole before anything is written.

Strict where the data drives behaviour (ids, severity, priority, status,
owners, dates), lenient where real documents vary (any UTC offset, a deadline
as a date or a timestamp, owner emails in any case, unknown keys and types kept
with a warning).

Limits come from where they are kept, so that validation and storage cannot
drift apart: the JSON itself is read by config.json_input (nesting, numbers,
duplicate keys, characters PostgreSQL refuses), text and email lengths are the
columns' max_length, dates are held to tracker.models' DEADLINE_MIN..DEADLINE_MAX
(derived deadlines included), and the list sections that become rows are held to
the TRACKER_IMPORT_MAX_* settings before anything else is validated.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import models
from django.utils import timezone
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic import ValidationError as PydanticValidationError

from config.json_input import JSONInputError, read_json
from tracker.models import (
    DEADLINE_MAX,
    DEADLINE_MIN,
    KNOWN_ITEM_TYPES,
    ActionItem,
    Person,
    Priority,
    Status,
    normalise_type,
    validate_deadline,
)

from .models import Communication, Incident, Participant, TimelineEvent

KNOWN_TOP_LEVEL_KEYS = frozenset(
    {
        "incident",
        "events",
        "communications",
        "impact",
        "signals",
        "context",
        "resolution",
        "action_items",
        "participants",
    }
)
# Words some postmortem templates use instead of P0..P4 (documented in the README).
PRIORITY_WORDS = {"critical": "P0", "urgent": "P0", "high": "P1", "medium": "P2", "low": "P3"}
STATUS_ALIASES = {
    "open": Status.OPEN,
    "new": Status.OPEN,
    "todo": Status.OPEN,
    "to_do": Status.OPEN,
    "in_progress": Status.IN_PROGRESS,
    "started": Status.IN_PROGRESS,
    "blocked": Status.BLOCKED,
    "done": Status.DONE,
    "completed": Status.DONE,
    "complete": Status.DONE,
    "closed": Status.DONE,
    "resolved": Status.DONE,
    "cancelled": Status.CANCELLED,
    "canceled": Status.CANCELLED,
    "wont_fix": Status.CANCELLED,
}
INCIDENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
SEVERITY_RE = re.compile(r"^\s*sev\s*[-_ ]?\s*([1-5])\s*$", re.IGNORECASE)
# The sections whose entries become rows, and the setting that bounds each: checked
# on the parsed JSON, before the entries are validated or anything is written.
SECTION_LIMITS = {
    "action_items": "TRACKER_IMPORT_MAX_ITEMS",
    "events": "TRACKER_IMPORT_MAX_EVENTS",
    "communications": "TRACKER_IMPORT_MAX_COMMUNICATIONS",
    "participants": "TRACKER_IMPORT_MAX_PARTICIPANTS",
}


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class DocumentRejected(Exception):
    """The document cannot be imported; `errors` says why, path by path."""

    def __init__(self, errors: list[Problem]):
        super().__init__("; ".join(f"{e.path}: {e.message}" for e in errors))
        self.errors = errors


# --- Field types -------------------------------------------------------------


def _strict_str(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"expected a string, got {_json_type(value)}")
    return value


def _timestamp(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 timestamp string, got {_json_type(value)}")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 timestamp such as 2024-01-15T14:23:00Z, got {value!r}"
        ) from None
    try:
        parsed = parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed
    except OverflowError:
        raise ValueError(f"timestamp {value!r} is out of range") from None
    if not DEADLINE_MIN <= parsed.date() <= DEADLINE_MAX:
        raise ValueError(
            f"timestamp {value!r} is outside the supported dates, "
            f"{DEADLINE_MIN.isoformat()} to {DEADLINE_MAX.isoformat()} (UTC)"
        )
    return parsed


def _deadline(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a date (YYYY-MM-DD) or a timestamp, got {_json_type(value)}")
    text = value.strip()
    try:
        deadline = dt.date.fromisoformat(text)
    except ValueError:
        try:
            # A timestamp's deadline is its date where it was written (its own offset).
            deadline = dt.datetime.fromisoformat(text).date()
        except ValueError:
            raise ValueError(
                f"expected a date (YYYY-MM-DD) or an ISO 8601 timestamp, got {value!r}"
            ) from None
    try:
        validate_deadline(deadline)
    except DjangoValidationError as exc:
        raise ValueError(exc.messages[0].rstrip(".")) from None
    return deadline


def _severity(value: Any) -> Any:
    if isinstance(value, str) and (match := SEVERITY_RE.match(value)):
        return f"SEV{match.group(1)}"
    raise ValueError(f"expected one of SEV1, SEV2, SEV3, SEV4, SEV5, got {value!r}")


def _priority(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        if word.upper() in Priority.values:
            return word.upper()
        if word in PRIORITY_WORDS:
            return PRIORITY_WORDS[word]
    raise ValueError(
        "expected one of P0, P1, P2, P3, P4 (or critical, urgent, high, medium, low), "
        f"got {value!r}"
    )


def _status(value: Any) -> Any:
    if isinstance(value, str):
        key = re.sub(r"[\s-]+", "_", value.strip().lower())
        if key in STATUS_ALIASES:
            return STATUS_ALIASES[key]
    raise ValueError(f"expected one of open, in_progress, blocked, done, cancelled, got {value!r}")


def _email(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an email address, got {_json_type(value)}")
    email = value.strip()
    if email == "":
        return None
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValueError(f"expected an email address, got {value!r}") from None
    return email.lower()


def column_length(model: type[models.Model], name: str) -> int:
    """The max_length of a column: what a document's text bound for it may hold."""
    return model._meta.get_field(name).max_length


def _at_most(limit: int) -> AfterValidator:
    def check(value: str | None) -> str | None:
        if value is not None and len(value) > limit:
            raise ValueError(f"expected at most {limit:,} characters, got {len(value):,}")
        return value

    return AfterValidator(check)


def _incident_id(value: Any) -> Any:
    if isinstance(value, str) and INCIDENT_ID_RE.match(value.strip()):
        return value.strip()
    raise ValueError(
        f"expected an id of letters, digits and . _ : - (at most 64 characters), got {value!r}"
    )


def _item_id(value: Any) -> Any:
    # Ids may be numbers or strings in real documents; they are compared as text.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"expected a string or an integer, got {_json_type(value)}")
    text = str(value).strip()
    if not text or len(text) > 200:
        raise ValueError("expected a non-empty id of at most 200 characters")
    return text


Text = Annotated[str, BeforeValidator(_strict_str)]
OptionalText = Annotated[str | None, BeforeValidator(_strict_str)]
RequiredText = Annotated[
    str, BeforeValidator(_strict_str), StringConstraints(strip_whitespace=True, min_length=1)
]
Timestamp = Annotated[dt.datetime, BeforeValidator(_timestamp)]
OptionalTimestamp = Annotated[dt.datetime | None, BeforeValidator(_timestamp)]
Deadline = Annotated[dt.date | None, BeforeValidator(_deadline)]
Email = Annotated[str | None, BeforeValidator(_email)]


def column_text(model: type[models.Model], name: str) -> Any:
    """Optional text bound for `model.name`: at most that column's length."""
    return Annotated[OptionalText, _at_most(column_length(model, name))]


def column_title(model: type[models.Model], name: str) -> Any:
    """Required text, stripped, bound for `model.name`: at most that column's length."""
    return Annotated[RequiredText, _at_most(column_length(model, name))]


def column_email(model: type[models.Model], name: str) -> Any:
    """An optional email address bound for `model.name`: at most that column's length."""
    return Annotated[Email, _at_most(column_length(model, name))]


def _optional(validator):
    return lambda v: None if v is None else validator(v)


class _Section(BaseModel):
    # Unknown keys are kept (in `model_extra`), never dropped.
    model_config = ConfigDict(extra="allow", strict=False)


class IncidentSection(_Section):
    id: Annotated[str, BeforeValidator(_incident_id)]
    title: column_title(Incident, "title")
    severity: Annotated[str, BeforeValidator(_severity)]
    status: Annotated[str, BeforeValidator(_strict_str)] = "open"
    declared_at: Timestamp
    resolved_at: Annotated[dt.datetime | None, BeforeValidator(_optional(_timestamp))] = None
    commander: column_text(Incident, "commander") = None
    service: column_text(Incident, "service") = None
    affected_services: list[Text] = Field(default_factory=list)


class EventSection(_Section):
    timestamp: Timestamp
    type: OptionalText = None
    actor: column_text(TimelineEvent, "actor") = None
    description: OptionalText = None
    metadata: dict[str, Any] | None = None


class CommunicationSection(_Section):
    timestamp: Annotated[dt.datetime | None, BeforeValidator(_optional(_timestamp))] = None
    channel: column_text(Communication, "channel") = None
    audience: column_text(Communication, "audience") = None
    message: OptionalText = None


class ParticipantSection(_Section):
    name: column_title(Participant, "name")
    role: column_text(Participant, "role") = None
    email: column_email(Participant, "email") = None


class OnCallSection(_Section):
    primary: OptionalText = None
    secondary: OptionalText = None
    escalation_manager: column_email(Incident, "escalation_manager_email") = None


class ContextSection(_Section):
    recent_deployments: list[dict[str, Any]] = Field(default_factory=list)
    ongoing_incidents: list[Any] = Field(default_factory=list)
    maintenance_windows: list[Any] = Field(default_factory=list)
    on_call: OnCallSection | None = None


class ResolutionSection(_Section):
    root_cause: OptionalText = None
    contributing_factors: list[Text] = Field(default_factory=list)
    mitigation_steps: list[Text] = Field(default_factory=list)
    permanent_fix: OptionalText = None
    customer_impact: dict[str, Any] | None = None


class ActionItemSection(_Section):
    id: Annotated[str | None, BeforeValidator(_item_id)] = None
    title: column_title(ActionItem, "title")
    description: OptionalText = None
    owner: column_email(Person, "email") = None
    priority: Annotated[str, BeforeValidator(_priority)]
    deadline: Deadline = None
    type: OptionalText = None
    status: Annotated[str, BeforeValidator(_status)] = Status.OPEN
    completed_at: Annotated[dt.datetime | None, BeforeValidator(_optional(_timestamp))] = None


class Document(_Section):
    incident: IncidentSection
    events: list[EventSection] = Field(default_factory=list)
    communications: list[CommunicationSection] = Field(default_factory=list)
    impact: dict[str, Any] = Field(default_factory=dict)
    signals: dict[str, Any] = Field(default_factory=dict)
    context: ContextSection = Field(default_factory=ContextSection)
    resolution: ResolutionSection = Field(default_factory=ResolutionSection)
    action_items: list[ActionItemSection] = Field(default_factory=list)
    participants: list[ParticipantSection] = Field(default_factory=list)


# --- Parsing -----------------------------------------------------------------


@dataclass(frozen=True)
class ItemDeadline:
    """An item's deadline: the document's, else derived from its priority."""

    deadline: dt.date | None
    derived: bool


@dataclass
class ParsedDocument:
    raw: bytes
    data: dict[str, Any]
    document: Document
    warnings: list[Problem] = field(default_factory=list)
    # One per action item, in the document's order.
    deadlines: list[ItemDeadline] = field(default_factory=list)


def parse_document(
    raw: bytes, *, max_bytes: int, deadline_days: Mapping[str, int] | None = None
) -> ParsedDocument:
    """Decode, parse and validate `raw`; raise DocumentRejected on any error.

    `deadline_days` (TRACKER_DEFAULT_DEADLINE_DAYS by default) gives the days from
    the incident's resolution, or declaration, to the deadline of an item without one.
    """
    if len(raw) > max_bytes:
        raise DocumentRejected(
            [Problem("$", f"document is {len(raw):,} bytes; the limit is {max_bytes:,} bytes")]
        )
    if not raw.strip():
        raise DocumentRejected([Problem("$", "document is empty")])
    try:
        data = read_json(raw)
    except JSONInputError as exc:
        raise DocumentRejected(
            [Problem(p.path, _as_document(p.message)) for p in exc.problems]
        ) from None
    if not isinstance(data, dict):
        raise DocumentRejected(
            [Problem("$", f"expected a JSON object at the top level, got {_json_type(data)}")]
        )
    _check_section_sizes(data)
    for key in (
        "events",
        "communications",
        "action_items",
        "participants",
        "impact",
        "signals",
        "context",
        "resolution",
    ):
        # An explicit null is the same as an absent section.
        if key in data and data[key] is None:
            data = {k: v for k, v in data.items() if k != key}
    try:
        document = Document.model_validate(data)
    except PydanticValidationError as exc:
        raise DocumentRejected(_problems_from_pydantic(exc, data)) from None

    parsed = ParsedDocument(raw=raw, data=data, document=document)
    _check_item_identities(parsed)
    parsed.deadlines = _item_deadlines(
        document,
        settings.TRACKER_DEFAULT_DEADLINE_DAYS if deadline_days is None else deadline_days,
    )
    _collect_warnings(parsed)
    return parsed


def _as_document(message: str) -> str:
    # config.json_input speaks of any JSON text; here it is the document.
    return message.replace("not valid UTF-8", "document is not valid UTF-8").replace(
        "(it looks truncated)", "(the document looks truncated)"
    )


def _check_section_sizes(data: dict[str, Any]) -> None:
    """Refuse a section with more entries than its setting allows, before validating
    them: each entry costs rows, queries and memory, and admin and incident pages show
    them all."""
    problems = []
    for key, setting in SECTION_LIMITS.items():
        limit = getattr(settings, setting)
        entries = data.get(key)
        if isinstance(entries, list) and len(entries) > limit:
            problems.append(
                Problem(key, f"{len(entries):,} entries; the limit is {limit:,} ({setting})")
            )
    if problems:
        raise DocumentRejected(problems)


def _item_deadlines(doc: Document, days_by_priority: Mapping[str, int]) -> list[ItemDeadline]:
    """Each item's deadline; one derived past the supported dates is an error at its path.

    A derived deadline counts its priority's days from the incident's resolution, or
    its declaration while unresolved, on the server's date (TIME_ZONE).
    """
    base = doc.incident.resolved_at or doc.incident.declared_at
    base = base if base.tzinfo else base.replace(tzinfo=dt.UTC)
    base_date = timezone.localdate(base)
    deadlines, problems = [], []
    for index, item in enumerate(doc.action_items):
        if item.deadline is not None:
            deadlines.append(ItemDeadline(item.deadline, derived=False))
            continue
        days = days_by_priority.get(item.priority)
        derived = None
        if days is not None:
            try:
                derived = base_date + dt.timedelta(days=days)
            except OverflowError:
                derived = dt.date.max
            if not DEADLINE_MIN <= derived <= DEADLINE_MAX:
                problems.append(
                    Problem(
                        f"action_items[{index}].deadline",
                        f"no deadline given, and {item.priority}'s {days} days from "
                        f"{base_date.isoformat()} fall outside the supported deadlines, "
                        f"{DEADLINE_MIN.isoformat()} to {DEADLINE_MAX.isoformat()}; "
                        "give the item a deadline",
                    )
                )
        deadlines.append(ItemDeadline(derived, derived=True))
    if problems:
        raise DocumentRejected(problems)
    return deadlines


def item_source_key(item: ActionItemSection) -> str:
    """The item's identity within its incident: its id, else its normalised title."""
    if item.id is not None:
        return f"id:{item.id}"
    return f"title:{normalise_title(item.title)}"


def normalise_title(title: str) -> str:
    text = unicodedata.normalize("NFKC", title).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def _check_item_identities(parsed: ParsedDocument) -> None:
    seen: dict[str, int] = {}
    errors = []
    longest = column_length(ActionItem, "source_key")
    for index, item in enumerate(parsed.document.action_items):
        key = item_source_key(item)
        if len(key) > longest:
            # Only titles of characters that normalise to several (NFKC) grow so long.
            errors.append(
                Problem(
                    f"action_items[{index}].title",
                    f"this title normalises to {len(key) - len('title:'):,} characters, too "
                    "long to identify the item; give the item an id",
                )
            )
        elif key in seen:
            what = "id" if item.id is not None else "title"
            errors.append(
                Problem(
                    f"action_items[{index}].{what}",
                    f"same {what} as action_items[{seen[key]}]; "
                    "each item needs a distinct id (or, without ids, a distinct title)",
                )
            )
        else:
            seen[key] = index
    if errors:
        raise DocumentRejected(errors)


def _collect_warnings(parsed: ParsedDocument) -> None:
    doc, warnings = parsed.document, parsed.warnings
    for key in parsed.data:
        if key not in KNOWN_TOP_LEVEL_KEYS:
            warnings.append(Problem(key, "unknown top-level key; kept in the stored document"))
    for key in doc.incident.model_extra or {}:
        warnings.append(Problem(f"incident.{key}", "unknown key; kept"))
    for index, item in enumerate(doc.action_items):
        slug = normalise_type(item.type)
        if item.type and slug not in KNOWN_ITEM_TYPES:
            warnings.append(
                Problem(
                    f"action_items[{index}].type",
                    f"unknown type {item.type!r}; kept as {slug!r}",
                )
            )
    for path, value in _timestamps(doc):
        if value is not None and value.tzinfo is None:
            warnings.append(Problem(path, "timestamp has no UTC offset; read as UTC"))


def _timestamps(doc: Document):
    yield "incident.declared_at", doc.incident.declared_at
    yield "incident.resolved_at", doc.incident.resolved_at
    for i, event in enumerate(doc.events):
        yield f"events[{i}].timestamp", event.timestamp
    for i, comm in enumerate(doc.communications):
        yield f"communications[{i}].timestamp", comm.timestamp
    for i, item in enumerate(doc.action_items):
        yield f"action_items[{i}].completed_at", item.completed_at


def _problems_from_pydantic(exc: PydanticValidationError, data: Any) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        path = _format_path(error["loc"])
        if error["type"] == "value_error":
            message = str(error["ctx"]["error"])
        elif error["type"] == "missing":
            message = "required"
        elif error["type"] in {"model_type", "dict_type"}:
            message = f"expected an object, got {_json_type(error['input'])}"
        elif error["type"] == "list_type":
            message = f"expected a list, got {_json_type(error['input'])}"
        elif error["type"] in {"string_too_short", "too_short"}:
            # "too_short" when the stripped text is checked after a column's length.
            message = "must not be empty"
        else:
            message = error["msg"][0].lower() + error["msg"][1:]
        problems.append(Problem(path, message))
    return problems


def _format_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "$"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__

"""Parse and validate an incident document.

`parse_document(raw)` turns the bytes of a document into a `ParsedDocument`, or
raises `DocumentRejected` with every problem found, each naming its JSON path
(`action_items[1].deadline`) and what was expected. Nothing here touches the
database: a document is judged whole before anything is written.

Strict where the data drives behaviour (ids, severity, priority, status,
owners, dates), lenient where real documents vary (any UTC offset, a deadline
as a date or a timestamp, owner emails in any case, unknown keys and types kept
with a warning).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from tracker.models import KNOWN_ITEM_TYPES, Priority, Status, normalise_type

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
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed
    except OverflowError:
        raise ValueError(f"timestamp {value!r} is out of range") from None


def _deadline(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a date (YYYY-MM-DD) or a timestamp, got {_json_type(value)}")
    text = value.strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        # A timestamp's deadline is its date where it was written (its own offset).
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(
            f"expected a date (YYYY-MM-DD) or an ISO 8601 timestamp, got {value!r}"
        ) from None


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


def _optional(validator):
    return lambda v: None if v is None else validator(v)


class _Section(BaseModel):
    # Unknown keys are kept (in `model_extra`), never dropped.
    model_config = ConfigDict(extra="allow", strict=False)


class IncidentSection(_Section):
    id: Annotated[str, BeforeValidator(_incident_id)]
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    severity: Annotated[str, BeforeValidator(_severity)]
    status: Annotated[str, BeforeValidator(_strict_str)] = "open"
    declared_at: Timestamp
    resolved_at: Annotated[dt.datetime | None, BeforeValidator(_optional(_timestamp))] = None
    commander: OptionalText = None
    service: OptionalText = None
    affected_services: list[Text] = Field(default_factory=list)


class EventSection(_Section):
    timestamp: Timestamp
    type: OptionalText = None
    actor: OptionalText = None
    description: OptionalText = None
    metadata: dict[str, Any] | None = None


class CommunicationSection(_Section):
    timestamp: Annotated[dt.datetime | None, BeforeValidator(_optional(_timestamp))] = None
    channel: OptionalText = None
    audience: OptionalText = None
    message: OptionalText = None


class ParticipantSection(_Section):
    name: RequiredText
    role: OptionalText = None
    email: Email = None


class OnCallSection(_Section):
    primary: OptionalText = None
    secondary: OptionalText = None
    escalation_manager: Email = None


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
    title: Annotated[
        str,
        BeforeValidator(_strict_str),
        StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    ]
    description: OptionalText = None
    owner: Email = None
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


@dataclass
class ParsedDocument:
    raw: bytes
    data: dict[str, Any]
    document: Document
    warnings: list[Problem] = field(default_factory=list)


def parse_document(raw: bytes, *, max_bytes: int) -> ParsedDocument:
    """Decode, parse and validate `raw`; raise DocumentRejected on any error."""
    if len(raw) > max_bytes:
        raise DocumentRejected(
            [Problem("$", f"document is {len(raw):,} bytes; the limit is {max_bytes:,} bytes")]
        )
    if not raw.strip():
        raise DocumentRejected([Problem("$", "document is empty")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentRejected(
            [Problem("$", f"document is not valid UTF-8 (byte {exc.start}: {exc.reason})")]
        ) from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except _NonStandardNumber as exc:
        raise DocumentRejected([Problem("$", str(exc))]) from None
    except json.JSONDecodeError as exc:
        hint = " (the document looks truncated)" if exc.pos >= len(text.rstrip()) else ""
        raise DocumentRejected(
            [
                Problem(
                    "$", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}{hint}"
                )
            ]
        ) from None
    except RecursionError:
        raise DocumentRejected([Problem("$", "document is nested too deeply")]) from None
    if not isinstance(data, dict):
        raise DocumentRejected(
            [Problem("$", f"expected a JSON object at the top level, got {_json_type(data)}")]
        )
    try:
        unstorable = list(_unstorable_strings(data, ""))
    except RecursionError:
        raise DocumentRejected([Problem("$", "document is nested too deeply")]) from None
    if unstorable:
        raise DocumentRejected(unstorable)
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
    except RecursionError:
        raise DocumentRejected([Problem("$", "document is nested too deeply")]) from None

    parsed = ParsedDocument(raw=raw, data=data, document=document)
    _check_item_identities(parsed)
    _collect_warnings(parsed)
    return parsed


class _NonStandardNumber(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonStandardNumber(f"{name} is not a JSON number")


def _unstorable_strings(value: Any, path: str):
    """NUL characters and lone surrogates cannot be stored by PostgreSQL: refuse them."""
    if isinstance(value, str):
        if "\x00" in value:
            yield Problem(path or "$", "contains a NUL character (\\u0000)")
        elif any("\ud800" <= ch <= "\udfff" for ch in value):
            yield Problem(path or "$", "contains an unpaired surrogate (invalid Unicode)")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unstorable_strings(key, path)
            yield from _unstorable_strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable_strings(item, f"{path}[{index}]")


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
    for index, item in enumerate(parsed.document.action_items):
        key = item_source_key(item)
        if key in seen:
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
        elif error["type"] == "string_too_short":
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

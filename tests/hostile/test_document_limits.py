"""Documents that broke the import on PostgreSQL with DEBUG off are refused whole, with an
error naming the JSON path and the limit, and nothing written: on every edge (the
command, the admin's upload, the import page, the API, dry runs included).

Found there: text longer than its column (DataError), emails of 255 to 320 characters
(valid, but the columns hold 254), 1e999 (infinity, which jsonb refuses), an integer
of 5,000 digits (ValueError), a derived deadline past year 9999 (OverflowError),
deadlines at the ends of the calendar, 100,000 levels of nesting (RecursionError),
duplicate keys (the last one silently won) and 100,000 items in 3.5 MB (37 s).
"""

from __future__ import annotations

import copy
import json
import time
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from incidents.document import Document
from incidents.importing import import_document
from incidents.models import (
    Communication,
    DocumentImport,
    Incident,
    IncidentDocument,
    Participant,
    TimelineEvent,
)
from tracker.models import DEADLINE_MAX, DEADLINE_MIN, ActionItem, ActionItemChange, Person

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

BASE = {
    "incident": {
        "id": "INC-HOSTILE-1",
        "title": "Checkout errors",
        "severity": "SEV2",
        "declared_at": "2024-01-15T14:23:00Z",
        "resolved_at": "2024-01-15T16:00:00Z",
        "commander": "Ana",
        "service": "payments",
    },
    "events": [
        {"timestamp": "2024-01-15T14:23:00Z", "type": "alert", "actor": "pagerduty"},
    ],
    "communications": [
        {"timestamp": "2024-01-15T14:40:00Z", "channel": "status page", "audience": "public"},
    ],
    "participants": [{"name": "Ana", "role": "commander", "email": "ana@example.com"}],
    "context": {"on_call": {"primary": "Ana", "escalation_manager": "boss@example.com"}},
    "impact": {"users": 10},
    "action_items": [
        {"id": "A1", "title": "Add a canary", "owner": "owner@example.com", "priority": "P1"},
        {"id": "A2", "title": "Write the runbook", "priority": "P3", "deadline": "2024-03-01"},
    ],
}
# Valid addresses (Django accepts up to 320 characters) longer than the 254 of the columns.
EMAIL_260 = "a" * 64 + "@" + ("b" * 63 + ".") * 3 + "com"
EMAIL_320 = "a" * 64 + "@" + ("b" * 63 + ".") * 3 + "c" * 59 + ".com"
EMAIL_254 = "a" * 64 + "@" + ("b" * 63 + ".") * 2 + "c" * 57 + ".com"
NUMBER = "__NUMBER__"


def document(change=None, *, number: str | None = None) -> bytes:
    """BASE changed by `change(doc)`; a NUMBER placeholder becomes the literal `number`."""
    doc = copy.deepcopy(BASE)
    if change is not None:
        change(doc)
    raw = json.dumps(doc, indent=2)
    if number is not None:
        raw = raw.replace(f'"{NUMBER}"', number)
    return raw.encode()


def setter(path: str, value):
    """A change that sets `value` at a dotted path (`events.0.actor`)."""

    def change(doc):
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return change


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Incident,
            IncidentDocument,
            DocumentImport,
            TimelineEvent,
            Communication,
            Participant,
            ActionItem,
            ActionItemChange,
            Person,
        )
    }


def assert_nothing_written():
    assert set(counts().values()) == {0}, counts()


def rejected(raw: bytes, *, dry_run: bool = False) -> list[tuple[str, str]]:
    summary = import_document(raw=raw, source="test", dry_run=dry_run)
    assert summary.result == "rejected", summary.as_dict()
    assert_nothing_written()
    return [(e.path, e.message) for e in summary.errors]


def message_at(errors: list[tuple[str, str]], path: str) -> str:
    found = [message for error_path, message in errors if error_path == path]
    assert found, errors
    return found[0]


# --- Text longer than its column ---------------------------------------------------

TOO_LONG = {
    "incident.commander": ("incident.commander", 200),
    "incident.service": ("incident.service", 200),
    "incident.title": ("incident.title", 500),
    "events[0].actor": ("events.0.actor", 200),
    "communications[0].channel": ("communications.0.channel", 200),
    "communications[0].audience": ("communications.0.audience", 64),
    "participants[0].name": ("participants.0.name", 200),
    "participants[0].role": ("participants.0.role", 200),
    "action_items[0].title": ("action_items.0.title", 500),
}


@pytest.mark.parametrize(("path", "where"), TOO_LONG.items(), ids=TOO_LONG.keys())
def test_text_longer_than_its_column_is_refused_naming_the_column_length(path, where):
    dotted, length = where

    errors = rejected(document(setter(dotted, "x" * (length + 1))))

    assert message_at(errors, path) == f"expected at most {length} characters, got {length + 1}"


@pytest.mark.parametrize(("path", "where"), TOO_LONG.items(), ids=TOO_LONG.keys())
def test_text_as_long_as_its_column_is_imported(path, where):
    dotted, length = where

    summary = import_document(raw=document(setter(dotted, "x" * length)), source="test")

    assert summary.result == "created", summary.as_dict()


EMAILS = {
    "action_items[0].owner": "action_items.0.owner",
    "participants[0].email": "participants.0.email",
    "context.on_call.escalation_manager": "context.on_call.escalation_manager",
}


@pytest.mark.parametrize("email", [EMAIL_260, EMAIL_320], ids=["260", "320"])
@pytest.mark.parametrize(("path", "dotted"), EMAILS.items(), ids=EMAILS.keys())
def test_an_email_longer_than_its_column_is_refused(path, dotted, email):
    errors = rejected(document(setter(dotted, email)))

    assert message_at(errors, path) == f"expected at most 254 characters, got {len(email)}"


@pytest.mark.parametrize(("path", "dotted"), EMAILS.items(), ids=EMAILS.keys())
def test_an_email_as_long_as_its_column_is_imported(path, dotted):
    summary = import_document(raw=document(setter(dotted, EMAIL_254)), source="test")

    assert summary.result == "created", summary.as_dict()


def test_a_title_that_normalises_past_the_identity_column_is_refused():
    def change(doc):
        # U+FDFA is one character that NFKC spells with eighteen.
        doc["action_items"][1].update(title="\ufdfa" * 40)
        del doc["action_items"][1]["id"]  # identified by its title

    errors = rejected(document(change))

    assert "give the item an id" in message_at(errors, "action_items[1].title")


# --- Numbers ------------------------------------------------------------------------

KEPT_SECTIONS = {
    "impact.users": "impact.users",
    "events[0].metadata.latency": "events.0.metadata.latency",
    "context.recent_deployments[0].build": "context.recent_deployments",
    "action_items[0].extra_field": "action_items.0.extra_field",
    "an_unknown_section": "an_unknown_section",
}


@pytest.mark.parametrize(("path", "dotted"), KEPT_SECTIONS.items(), ids=KEPT_SECTIONS.keys())
@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry-run"])
def test_1e999_anywhere_is_refused_naming_its_path(path, dotted, dry_run):
    list_of_one = dotted.endswith("recent_deployments")
    change = setter(dotted, [{"build": NUMBER}] if list_of_one else NUMBER)

    errors = rejected(document(change, number="1e999"), dry_run=dry_run)

    assert "too large" in message_at(errors, path)


@pytest.mark.parametrize("literal", ["NaN", "-Infinity"])
def test_non_standard_numbers_are_refused_naming_their_path(literal):
    errors = rejected(document(setter("impact.users", NUMBER), number=literal))

    assert message_at(errors, "impact.users") == f"{literal} is not a JSON number"


@pytest.mark.parametrize(
    ("path", "dotted"),
    [("impact.users", "impact.users"), ("action_items[0].id", "action_items.0.id")],
)
def test_an_integer_of_5000_digits_is_refused(path, dotted):
    errors = rejected(document(setter(dotted, NUMBER), number="9" * 5000))

    assert "5,000 digits; the limit is 100 digits" in message_at(errors, path)


# --- Dates --------------------------------------------------------------------------


def test_a_declaration_at_the_end_of_the_calendar_is_refused():
    errors = rejected(
        document(
            lambda d: d["incident"].update(declared_at="9999-12-30T00:00:00Z", resolved_at=None)
        )
    )

    assert "outside the supported dates" in message_at(errors, "incident.declared_at")


def test_a_derived_deadline_past_the_supported_range_names_the_item():
    def change(doc):
        doc["incident"].update(declared_at="9998-12-30T00:00:00Z", resolved_at=None)
        doc["action_items"][1]["deadline"] = "9998-12-31"

    errors = rejected(document(change))

    assert [path for path, _ in errors] == ["action_items[0].deadline"]
    message = message_at(errors, "action_items[0].deadline")
    assert "P1's 14 days from 9998-12-30" in message
    assert f"{DEADLINE_MIN.isoformat()} to {DEADLINE_MAX.isoformat()}" in message


@pytest.mark.parametrize(
    "deadline", ["9999-12-31", "0001-01-01", "1899-12-31", "9999-12-31T23:59:59-12:00"]
)
def test_a_deadline_outside_the_supported_range_is_refused(deadline):
    errors = rejected(document(setter("action_items.1.deadline", deadline)))

    assert "outside the supported deadlines" in message_at(errors, "action_items[1].deadline")


@pytest.mark.parametrize(
    ("path", "dotted", "timestamp"),
    [
        ("incident.resolved_at", "incident.resolved_at", "9999-12-31T23:59:59Z"),
        ("events[0].timestamp", "events.0.timestamp", "0001-01-01T00:00:00Z"),
        ("communications[0].timestamp", "communications.0.timestamp", "9999-06-01T00:00:00Z"),
        ("action_items[1].completed_at", "action_items.1.completed_at", "1800-01-01T00:00:00Z"),
    ],
)
def test_a_timestamp_outside_the_supported_dates_is_refused(path, dotted, timestamp):
    errors = rejected(document(setter(dotted, timestamp)))

    assert "outside the supported dates" in message_at(errors, path)


def test_deadlines_at_the_ends_of_the_supported_range_are_imported():
    def change(doc):
        doc["action_items"][0]["deadline"] = DEADLINE_MIN.isoformat()
        doc["action_items"][1]["deadline"] = DEADLINE_MAX.isoformat()

    summary = import_document(raw=document(change), source="test")

    assert summary.result == "created", summary.as_dict()
    assert sorted(ActionItem.objects.values_list("deadline", flat=True)) == [
        DEADLINE_MIN,
        DEADLINE_MAX,
    ]


# --- Structure ----------------------------------------------------------------------


def test_a_document_nested_100000_levels_deep_is_refused():
    raw = document(setter("impact.users", NUMBER), number="[" * 100_000 + "]" * 100_000)

    errors = rejected(raw)

    assert errors == [("$", "nested 100,002 levels deep; the limit is 64")]


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b'{"incident": {"id": "A", "id": "B"}}', "incident.id"),
        (document().replace(b'"priority": "P1"', b'"priority": "P1", "priority": "P4"'), None),
        (document().replace(b'"impact": {', b'"impact": {"users": 1,'), "impact.users"),
        (document().replace(b'"impact":', b'"events": [], "impact":'), "events"),
    ],
    ids=["incident.id", "action_items[0].priority", "impact.users", "events"],
)
def test_a_duplicate_key_is_refused_naming_its_path(raw, path):
    errors = rejected(raw)

    path = path or "action_items[0].priority"
    assert message_at(errors, path) == "duplicate key: given more than once"


@pytest.mark.parametrize(
    ("text", "message"),
    [("a\\u0000b", "NUL character"), ("\\udfff", "unpaired surrogate")],
)
def test_text_postgresql_cannot_store_is_refused(text, message):
    raw = document(setter("action_items.0.description", NUMBER), number=f'"{text}"')

    assert message in message_at(rejected(raw), "action_items[0].description")


# --- Sizes --------------------------------------------------------------------------

SECTIONS = {
    "action_items": ("TRACKER_IMPORT_MAX_ITEMS", lambda i: {"title": f"t{i}", "priority": "P2"}),
    "events": ("TRACKER_IMPORT_MAX_EVENTS", lambda i: {"timestamp": "2024-01-15T14:23:00Z"}),
    "communications": ("TRACKER_IMPORT_MAX_COMMUNICATIONS", lambda i: {"channel": "x"}),
    "participants": ("TRACKER_IMPORT_MAX_PARTICIPANTS", lambda i: {"name": f"n{i}"}),
}


@pytest.mark.parametrize(("section", "limit"), SECTIONS.items(), ids=SECTIONS.keys())
def test_a_section_past_its_setting_is_refused_before_validation(settings, section, limit):
    setting, entry = limit
    setattr(settings, setting, 3)
    raw = document(setter(section, [entry(i) for i in range(4)]))

    with mock.patch.object(Document, "model_validate", side_effect=AssertionError("validated")):
        errors = rejected(raw)

    assert errors == [(section, f"4 entries; the limit is 3 ({setting})")]


@pytest.mark.parametrize(("section", "limit"), SECTIONS.items(), ids=SECTIONS.keys())
def test_a_section_at_its_setting_is_imported(settings, section, limit):
    setting, entry = limit
    setattr(settings, setting, 3)

    summary = import_document(
        raw=document(setter(section, [entry(i) for i in range(3)])), source="test"
    )

    assert summary.result == "created", summary.as_dict()


def test_100000_items_in_3_5_mb_are_refused_at_once(settings):
    doc = {
        **BASE,
        "action_items": [{"title": f"Item {i}", "priority": "P2"} for i in range(100_000)],
    }
    raw = json.dumps(doc, separators=(",", ":")).encode()
    assert 3_500_000 < len(raw) < settings.TRACKER_IMPORT_MAX_BYTES

    started = time.perf_counter()
    errors = rejected(raw)

    assert errors == [
        ("action_items", "100,000 entries; the limit is 1,000 (TRACKER_IMPORT_MAX_ITEMS)")
    ]
    assert time.perf_counter() - started < 10  # it took 37 s to import, or to fail


# --- Every edge -----------------------------------------------------------------------

HOSTILE = {
    "commander": (document(setter("incident.commander", "x" * 201)), "incident.commander"),
    "owner": (document(setter("action_items.0.owner", EMAIL_320)), "action_items[0].owner"),
    "1e999": (document(setter("impact.users", NUMBER), number="1e999"), "impact.users"),
    "integer": (document(setter("impact.users", NUMBER), number="9" * 5000), "impact.users"),
    "derived deadline": (
        document(
            lambda d: d["incident"].update(declared_at="9998-12-30T00:00:00Z", resolved_at=None)
        ),
        "action_items[0].deadline",
    ),
    "deep": (document(setter("impact.users", NUMBER), number="[" * 100_000 + "]" * 100_000), "$"),
    "duplicate": (b'{"incident": {"id": "A", "id": "B"}}', "incident.id"),
}


def via_command(client, tmp_path: Path, raw: bytes, dry_run: bool) -> str:
    path = tmp_path / "doc.json"
    path.write_bytes(raw)
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(
            "import_incidents",
            str(path),
            "--json",
            *(["--dry-run"] if dry_run else []),
            stdout=out,
            stderr=StringIO(),
        )
    assert caught.value.returncode == 1
    return out.getvalue()


def via_admin(client, tmp_path: Path, raw: bytes, dry_run: bool) -> str:
    upload = SimpleUploadedFile("doc.json", raw, content_type="application/json")
    data = {"documents": [upload], **({"dry_run": "on"} if dry_run else {})}
    response = client.post(reverse("admin:incidents_incident_import"), data)
    assert response.status_code == 400  # nothing importable: bad input
    assert "1 rejected" in response.context["headline"]
    return response.content.decode()


def via_page(client, tmp_path: Path, raw: bytes, dry_run: bool) -> str:
    upload = SimpleUploadedFile("doc.json", raw, content_type="application/json")
    response = client.post(reverse("import"), {"action": "preview", "documents": [upload]})
    assert response.status_code == 400  # nothing importable: bad input
    assert response.context["to_import"] == 0
    text = response.content.decode()
    if not dry_run:
        # Nothing was kept to confirm: the confirmation imports nothing.
        confirm = client.post(reverse("import"), {"action": "confirm", "preview": "x"})
        assert confirm.status_code == 400
    return text


def via_api(client, tmp_path: Path, raw: bytes, dry_run: bool) -> str:
    url = "/api/v1/incidents/import/" + ("?dry_run=1" if dry_run else "")
    response = client.post(url, raw, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    body = json.loads(response.content)
    assert body["status"] == 400 and body["result"] == "rejected"
    return response.content.decode()


EDGES = {"command": via_command, "admin": via_admin, "page": via_page, "api": via_api}


@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry-run"])
@pytest.mark.parametrize("edge", EDGES.values(), ids=EDGES.keys())
@pytest.mark.parametrize(("raw", "path"), HOSTILE.values(), ids=HOSTILE.keys())
def test_every_edge_refuses_a_hostile_document_and_writes_nothing(
    manager_client, tmp_path, edge, raw, path, dry_run
):
    before = counts()

    text = edge(manager_client, tmp_path, raw, dry_run)

    assert path in text
    assert counts() == before

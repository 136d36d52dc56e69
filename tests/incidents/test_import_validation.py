"""Bad documents are rejected whole, with errors that name a JSON path."""

import codecs
import json

import pytest
from django.test import override_settings

from incidents.models import DocumentImport, Incident, IncidentDocument, TimelineEvent
from tracker.models import ActionItem, ActionItemChange, Person

from .helpers import doc_bytes, error_paths, import_doc

pytestmark = pytest.mark.django_db


def assert_nothing_written():
    for model in (
        Incident,
        IncidentDocument,
        DocumentImport,
        TimelineEvent,
        ActionItem,
        ActionItemChange,
        Person,
    ):
        assert model.objects.count() == 0, f"{model.__name__} rows were written"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "document is empty"),
        (b"   \n\t ", "document is empty"),
        (b'{"incident": {"id": "INC-1", "title": "x"', "truncated"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[1, 2, 3]", "expected a JSON object at the top level, got a list"),
        (b'"just a string"', "expected a JSON object at the top level, got a string"),
        (b"null", "expected a JSON object at the top level, got null"),
        (b"{'incident': 1}", "invalid JSON at line 1, column 2"),
    ],
)
def test_it_rejects_unreadable_documents_with_a_clear_message(raw, message):
    summary = import_doc(raw)

    assert summary.result == "rejected"
    assert summary.errors[0].path == "$"
    assert message in summary.errors[0].message
    assert_nothing_written()


def test_it_rejects_a_non_standard_number_naming_its_path():
    summary = import_doc(b'{"incident": NaN}')

    assert summary.result == "rejected"
    assert [(e.path, e.message) for e in summary.errors] == [
        ("incident", "NaN is not a JSON number")
    ]
    assert_nothing_written()


def test_it_rejects_a_document_nested_too_deeply():
    summary = import_doc(b"[" * 100_000 + b"]" * 100_000)

    assert summary.result == "rejected"
    assert summary.errors[0].path == "$"
    assert_nothing_written()


def test_it_accepts_a_utf8_byte_order_mark(sample_bytes):
    summary = import_doc(codecs.BOM_UTF8 + sample_bytes)

    assert summary.result == "created", summary.errors
    # The stored revision is the exact bytes, BOM included.
    assert bytes(IncidentDocument.objects.get().content) == codecs.BOM_UTF8 + sample_bytes


@override_settings(TRACKER_IMPORT_MAX_BYTES=1000)
def test_it_rejects_a_document_over_the_size_limit(sample_bytes):
    summary = import_doc(sample_bytes)

    assert summary.result == "rejected"
    assert "limit is 1,000 bytes" in summary.errors[0].message
    assert_nothing_written()


@pytest.mark.parametrize(
    ("mutate", "path", "expected"),
    [
        (lambda d: d.pop("incident"), "incident", "required"),
        (lambda d: d["incident"].pop("id"), "incident.id", "required"),
        (lambda d: d["incident"].update(id="has spaces"), "incident.id", "expected an id"),
        (lambda d: d["incident"].update(title=""), "incident.title", "must not be empty"),
        (lambda d: d["incident"].update(severity="SEV9"), "incident.severity", "SEV1"),
        (
            lambda d: d["incident"].update(declared_at="yesterday"),
            "incident.declared_at",
            "ISO 8601",
        ),
        (lambda d: d["incident"].update(resolved_at=12), "incident.resolved_at", "timestamp"),
        (lambda d: d.update(events={}), "events", "expected a list"),
        (lambda d: d["events"][3].pop("timestamp"), "events[3].timestamp", "required"),
        (
            lambda d: d["events"][0].update(metadata=[1]),
            "events[0].metadata",
            "expected an object, got a list",
        ),
        (
            lambda d: d["action_items"][1].update(deadline="next week"),
            "action_items[1].deadline",
            "YYYY-MM-DD",
        ),
        (
            lambda d: d["action_items"][1].update(deadline="2024-02-30"),
            "action_items[1].deadline",
            "date",
        ),
        (
            lambda d: d["action_items"][0].update(priority="P7"),
            "action_items[0].priority",
            "P0, P1",
        ),
        (
            lambda d: d["action_items"][0].update(priority="whenever"),
            "action_items[0].priority",
            "P0, P1",
        ),
        (
            lambda d: d["action_items"][2].update(status="someday"),
            "action_items[2].status",
            "open, in_progress",
        ),
        (
            lambda d: d["action_items"][2].update(owner="not-an-email"),
            "action_items[2].owner",
            "email",
        ),
        (lambda d: d["action_items"][2].update(owner=42), "action_items[2].owner", "email"),
        (lambda d: d["action_items"][4].pop("title"), "action_items[4].title", "required"),
        (lambda d: d["action_items"][4].update(title=["x"]), "action_items[4].title", "string"),
        (
            lambda d: d["action_items"].append(dict(d["action_items"][0])),
            "action_items[5].title",
            "same title as action_items[0]",
        ),
        (lambda d: d["participants"][0].pop("name"), "participants[0].name", "required"),
        (
            lambda d: d["context"]["on_call"].update(escalation_manager="boss"),
            "context.on_call.escalation_manager",
            "email",
        ),
        (
            lambda d: d["resolution"].update(contributing_factors="one"),
            "resolution.contributing_factors",
            "list",
        ),
        (
            lambda d: d["events"][0].update(description="bad\x00byte"),
            "events[0].description",
            "NUL",
        ),
    ],
)
def test_it_rejects_an_invalid_field_naming_its_path(sample_doc, mutate, path, expected):
    mutate(sample_doc)

    summary = import_doc(sample_doc)

    assert summary.result == "rejected"
    assert path in error_paths(summary), summary.errors
    message = next(e.message for e in summary.errors if e.path == path)
    assert expected in message
    assert_nothing_written()


def test_it_reports_every_error_at_once(sample_doc):
    sample_doc["incident"]["severity"] = "high"
    sample_doc["action_items"][0]["deadline"] = "soon"
    sample_doc["action_items"][3]["priority"] = None

    summary = import_doc(sample_doc)

    assert set(error_paths(summary)) == {
        "incident.severity",
        "action_items[0].deadline",
        "action_items[3].priority",
    }


def test_it_writes_nothing_when_only_the_last_item_is_invalid(sample_doc):
    sample_doc["action_items"][-1]["priority"] = "P9"

    summary = import_doc(sample_doc)

    assert summary.result == "rejected"
    assert_nothing_written()


def test_it_leaves_an_existing_incident_untouched_when_a_new_revision_is_rejected(sample_doc):
    assert import_doc(sample_doc).result == "created"
    before = list(ActionItem.objects.values().order_by("id"))
    sample_doc["incident"]["title"] = "Renamed"
    sample_doc["action_items"][0]["deadline"] = "not a date"

    summary = import_doc(sample_doc)

    assert summary.result == "rejected"
    assert Incident.objects.get().title == "Payment Service Degradation"
    assert list(ActionItem.objects.values().order_by("id")) == before
    assert IncidentDocument.objects.count() == 1
    assert DocumentImport.objects.count() == 1


def test_it_rejects_duplicate_item_ids(sample_doc):
    sample_doc["action_items"][0]["id"] = "AI-1"
    sample_doc["action_items"][1]["id"] = "AI-1"

    summary = import_doc(sample_doc)

    assert error_paths(summary) == ["action_items[1].id"]


def test_it_never_returns_a_traceback_in_messages(sample_doc):
    sample_doc["events"] = [None, 3, "x"]

    summary = import_doc(sample_doc)

    assert summary.result == "rejected"
    assert error_paths(summary) == ["events[0]", "events[1]", "events[2]"]
    assert all("Traceback" not in e.message for e in summary.errors)
    assert json.dumps(summary.as_dict())  # serialisable as the command prints it


def test_it_rejects_non_object_sections(sample_doc):
    sample_doc["impact"] = "bad"
    sample_doc["action_items"] = [1]

    summary = import_doc(doc_bytes(sample_doc))

    assert set(error_paths(summary)) == {"impact", "action_items[0]"}

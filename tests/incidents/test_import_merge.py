"""Importing creates, updates and merges without losing anything."""

import datetime as dt
import hashlib
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from incidents.models import DocumentImport, Incident, IncidentDocument, TimelineEvent
from tracker.models import ActionItem, ActionItemChange, Person
from tracker.services import Actor, action_item_update

from .helpers import doc_bytes, import_doc

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def item_titled(prefix: str) -> ActionItem:
    return ActionItem.objects.get(title__startswith=prefix)


def test_it_imports_the_whole_sample(sample_bytes):
    summary = import_doc(sample_bytes, source="command:/tmp/x.json", path="x.json")

    assert summary.as_dict() == {
        "path": "x.json",
        "incident": "INC-2024-0142",
        "result": "created",
        "items_created": 5,
        "items_updated": 0,
        "items_unchanged": 0,
        "items_removed_from_source": 0,
        "errors": [],
        "warnings": [],
    }
    incident = Incident.objects.get()
    assert incident.external_id == "INC-2024-0142"
    assert incident.severity == "SEV1"
    assert incident.status == "resolved"
    assert incident.declared_at == dt.datetime(2024, 1, 15, 14, 23, tzinfo=UTC)
    assert incident.resolved_at == dt.datetime(2024, 1, 15, 16, 45, tzinfo=UTC)
    assert incident.commander == "Jane Smith"
    assert incident.service == "payment-gateway"
    assert incident.affected_services == ["checkout", "subscription-billing"]
    assert incident.impact["affected_regions"] == ["us-east-1", "eu-west-1"]
    assert incident.signals["latency_p99_ms"] == 8500
    assert incident.context["recent_deployments"][0]["version"] == "2.4.1"
    assert incident.escalation_manager_email == "director-eng@company.com"
    assert incident.resolution["customer_impact"]["failed_transactions"] == 342
    assert incident.root_cause.startswith("Database connection pool exhaustion")

    events = list(incident.events.all())
    assert len(events) == 18
    assert [e.position for e in events] == list(range(18))
    assert events[0].type == "trigger"
    assert events[0].metadata == {"metric": "db_pool_utilization", "value": 95, "threshold": 90}
    assert incident.communications.count() == 5
    assert incident.communications.first().audience == "external"
    assert [p.name for p in incident.participants.all()] == [
        "Jane Smith",
        "Alice Chen",
        "Bob Kim",
        "Carol Davis",
    ]

    items = list(incident.action_items.order_by("id"))
    assert [i.owner.email for i in items] == [
        "alice@company.com",
        "bob@company.com",
        "carol@company.com",
        "alice@company.com",
        "carol@company.com",
    ]
    assert items[0].priority == "P1"
    assert items[0].deadline == dt.date(2024, 1, 22)
    assert items[0].deadline_derived is False
    assert items[0].type == "detection"
    assert items[0].status == "open"
    assert Person.objects.count() == 3


def test_it_keeps_the_document_verbatim_and_traces_items_to_it(sample_bytes):
    import_doc(sample_bytes, source="command:/data/inc.json")

    revision = IncidentDocument.objects.get()
    assert bytes(revision.content) == sample_bytes
    assert revision.sha256 == hashlib.sha256(sample_bytes).hexdigest()
    assert revision.size == len(sample_bytes)
    log = DocumentImport.objects.get()
    assert log.document == revision
    assert log.source == "command:/data/inc.json"
    assert log.result == "created"
    assert Incident.objects.get().current_document == revision
    assert set(ActionItem.objects.values_list("source_document", flat=True)) == {revision.id}


def test_it_reports_unchanged_and_changes_nothing_on_reimport(sample_bytes):
    import_doc(sample_bytes)
    items_before = list(ActionItem.objects.values().order_by("id"))
    history_before = ActionItemChange.objects.count()

    summary = import_doc(sample_bytes, source="again")

    assert summary.result == "unchanged"
    assert summary.items_unchanged == 5
    assert (summary.items_created, summary.items_updated) == (0, 0)
    assert list(ActionItem.objects.values().order_by("id")) == items_before
    assert ActionItemChange.objects.count() == history_before
    assert IncidentDocument.objects.count() == 1
    assert list(DocumentImport.objects.order_by("id").values_list("result", "source")) == [
        ("created", "test"),
        ("unchanged", "again"),
    ]


def test_it_reports_unchanged_when_only_the_formatting_changed(sample_doc):
    import_doc(doc_bytes(sample_doc))

    summary = import_doc(json.dumps(sample_doc, separators=(",", ":")).encode())

    assert summary.result == "unchanged"
    # The new bytes are a revision of their own, still kept verbatim.
    assert IncidentDocument.objects.count() == 2


def test_it_reads_timestamps_with_any_offset(sample_doc):
    sample_doc["incident"]["declared_at"] = "2024-01-15T09:23:00-05:00"
    sample_doc["incident"]["resolved_at"] = "2024-01-16T01:45:00+09:00"
    sample_doc["events"][0]["timestamp"] = "2024-01-15T14:15:00+00:00"

    summary = import_doc(sample_doc)

    assert summary.result == "created"
    incident = Incident.objects.get()
    assert incident.declared_at == dt.datetime(2024, 1, 15, 14, 23, tzinfo=UTC)
    assert incident.resolved_at == dt.datetime(2024, 1, 15, 16, 45, tzinfo=UTC)
    assert incident.events.first().timestamp == dt.datetime(2024, 1, 15, 14, 15, tzinfo=UTC)


def test_it_reads_a_timestamp_without_offset_as_utc_with_a_warning(sample_doc):
    sample_doc["events"][2]["timestamp"] = "2024-01-15T14:21:00"

    summary = import_doc(sample_doc)

    assert summary.result == "created"
    assert [w.path for w in summary.warnings] == ["events[2].timestamp"]
    event = TimelineEvent.objects.get(position=2)
    assert event.timestamp == dt.datetime(2024, 1, 15, 14, 21, tzinfo=UTC)


def test_it_takes_a_deadline_given_as_a_timestamp_as_its_local_date(sample_doc):
    sample_doc["action_items"][0]["deadline"] = "2024-01-22T23:30:00-08:00"

    import_doc(sample_doc)

    assert item_titled("Add connection pool").deadline == dt.date(2024, 1, 22)


def test_it_matches_owner_emails_in_any_case(sample_doc, django_user_model):
    Person.objects.create(email="carol@company.com", name="Carol Davis")
    sample_doc["action_items"][0]["owner"] = "Alice@Company.com"
    sample_doc["action_items"][3]["owner"] = "ALICE@COMPANY.COM "
    sample_doc["action_items"][2]["owner"] = "Carol@company.com"

    import_doc(sample_doc)

    assert Person.objects.count() == 3
    alice = Person.objects.get(email="alice@company.com")
    assert alice.action_items.count() == 2
    assert Person.objects.get(email="carol@company.com").name == "Carol Davis"


def test_it_refuses_a_second_person_with_the_same_email_in_another_case(db):
    from django.db import IntegrityError, transaction

    Person.objects.create(email="alice@company.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Person.objects.create(email="Alice@Company.com")


def test_it_links_new_people_to_users_with_the_same_email(sample_doc):
    user = get_user_model().objects.create_user("alice", email="Alice@Company.COM")

    import_doc(sample_doc)

    assert Person.objects.get(email="alice@company.com").user == user


def test_it_keeps_unknown_types_as_slugs_with_a_warning(sample_doc):
    sample_doc["action_items"][4]["type"] = "Chaos Engineering"

    summary = import_doc(sample_doc)

    assert summary.result == "created"
    assert item_titled("Add ORM connection").type == "chaos_engineering"
    assert [(w.path, "chaos_engineering" in w.message) for w in summary.warnings] == [
        ("action_items[4].type", True)
    ]


def test_it_keeps_unknown_keys_with_a_warning(sample_doc):
    sample_doc["postmortem_url"] = "https://wiki.example.com/pm/142"
    sample_doc["incident"]["region"] = "eu"
    sample_doc["action_items"][0]["jira"] = "OPS-1"
    raw = doc_bytes(sample_doc)

    summary = import_doc(raw)

    assert summary.result == "created"
    assert {w.path for w in summary.warnings} == {"postmortem_url", "incident.region"}
    incident = Incident.objects.get()
    assert incident.extra == {
        "postmortem_url": "https://wiki.example.com/pm/142",
        "incident": {"region": "eu"},
    }
    assert item_titled("Add connection pool").extra == {"jira": "OPS-1"}
    assert json.loads(bytes(incident.current_document.content))["postmortem_url"]


def test_it_maps_priority_words_and_status_aliases(sample_doc):
    sample_doc["action_items"][0]["priority"] = "Critical"
    sample_doc["action_items"][1]["priority"] = "high"
    sample_doc["action_items"][2]["priority"] = "medium"
    sample_doc["action_items"][3]["priority"] = "LOW"
    sample_doc["action_items"][4]["priority"] = "p4"
    sample_doc["action_items"][1]["status"] = "In Progress"
    sample_doc["action_items"][2]["status"] = "completed"
    sample_doc["action_items"][3]["status"] = "canceled"

    import_doc(sample_doc)

    items = list(ActionItem.objects.order_by("id"))
    assert [i.priority for i in items] == ["P0", "P1", "P2", "P3", "P4"]
    assert [i.status for i in items] == ["open", "in_progress", "done", "cancelled", "open"]
    assert items[2].completed_at is not None
    assert items[0].completed_at is None


@override_settings(TRACKER_DEFAULT_DEADLINE_DAYS={"P0": 7, "P1": 14, "P2": 30, "P3": 60, "P4": 90})
def test_it_derives_a_missing_deadline_from_the_priority(sample_doc):
    sample_doc["action_items"][0]["deadline"] = None  # P1, resolved 2024-01-15
    del sample_doc["action_items"][2]["deadline"]  # P2

    import_doc(sample_doc)

    first = item_titled("Add connection pool")
    assert (first.deadline, first.deadline_derived) == (dt.date(2024, 1, 29), True)
    third = item_titled("Load test ORM")
    assert (third.deadline, third.deadline_derived) == (dt.date(2024, 2, 14), True)
    assert item_titled("Implement canary").deadline_derived is False


def test_it_derives_from_the_declaration_while_unresolved(sample_doc):
    del sample_doc["incident"]["resolved_at"]
    sample_doc["incident"]["declared_at"] = "2024-03-01T10:00:00Z"
    sample_doc["action_items"][0]["deadline"] = None

    import_doc(sample_doc)

    assert item_titled("Add connection pool").deadline == dt.date(2024, 3, 15)


def test_it_needs_only_the_incident_section():
    summary = import_doc(
        {
            "incident": {
                "id": "INC-7",
                "title": "Minimal",
                "severity": "sev3",
                "declared_at": "2024-05-01T00:00:00Z",
            },
            "events": None,
        }
    )

    assert summary.result == "created", summary.errors
    incident = Incident.objects.get()
    assert (incident.severity, incident.status) == ("SEV3", "open")
    assert incident.action_items.count() == 0


def test_it_updates_a_changed_document_in_place(sample_doc):
    import_doc(sample_doc)
    ids_before = set(ActionItem.objects.values_list("id", flat=True))
    sample_doc["incident"]["title"] = "Payment Service Degradation (EU)"
    sample_doc["events"].append(
        {"timestamp": "2024-01-15T17:00:00Z", "type": "note", "description": "Postmortem held"}
    )
    sample_doc["action_items"][0]["deadline"] = "2024-01-25"
    sample_doc["action_items"][1]["owner"] = "dave@company.com"
    sample_doc["action_items"].append(
        {
            "title": "Write the runbook",
            "owner": "bob@company.com",
            "priority": "P3",
            "deadline": "2024-03-01",
            "type": "documentation",
            "status": "open",
        }
    )

    summary = import_doc(sample_doc)

    assert summary.result == "updated"
    assert (summary.items_created, summary.items_updated, summary.items_unchanged) == (1, 2, 3)
    assert Incident.objects.get().title == "Payment Service Degradation (EU)"
    assert TimelineEvent.objects.count() == 19
    assert ids_before < set(ActionItem.objects.values_list("id", flat=True))
    assert ActionItem.objects.count() == 6
    assert item_titled("Add connection pool").deadline == dt.date(2024, 1, 25)
    assert item_titled("Implement canary").owner.email == "dave@company.com"
    changes = ActionItemChange.objects.exclude(field="created")
    assert sorted(changes.values_list("field", "old_value", "new_value")) == [
        ("deadline", "2024-01-22", "2024-01-25"),
        ("owner", "bob@company.com", "dave@company.com"),
    ]
    assert set(changes.values_list("source", flat=True)) == {"import"}
    new_revision = Incident.objects.get().current_document
    assert item_titled("Add connection pool").source_document == new_revision


def test_it_keeps_changes_made_in_the_tracker(sample_doc):
    import_doc(sample_doc)
    item = item_titled("Add connection pool")
    action_item_update(item=item, actor=Actor(source="api"), status="in_progress")
    action_item_update(item=item, actor=Actor(source="api"), deadline=dt.date(2024, 2, 10))
    # The document changes other fields of the same item, not these.
    sample_doc["action_items"][0]["priority"] = "P0"
    sample_doc["action_items"][0]["title"] = sample_doc["action_items"][0]["title"]

    summary = import_doc(sample_doc)

    item.refresh_from_db()
    assert (item.status, item.deadline, item.priority) == (
        "in_progress",
        dt.date(2024, 2, 10),
        "P0",
    )
    assert summary.warnings == []


def test_it_reports_a_conflict_and_keeps_the_tracker_value(sample_doc):
    import_doc(sample_doc)
    item = item_titled("Add connection pool")
    action_item_update(item=item, actor=Actor(source="api"), deadline=dt.date(2024, 2, 10))
    sample_doc["action_items"][0]["deadline"] = "2024-03-01"

    summary = import_doc(sample_doc)

    item.refresh_from_db()
    assert item.deadline == dt.date(2024, 2, 10)
    assert [w.path for w in summary.warnings] == ["action_items[0].deadline"]
    assert "conflict" in summary.warnings[0].message
    # The conflict is reported once: the next import of the same document is quiet.
    sample_doc["incident"]["title"] = "Retitled"
    assert import_doc(sample_doc).warnings == []


def test_it_flags_items_that_vanished_from_the_document(sample_doc):
    import_doc(sample_doc)
    removed = sample_doc["action_items"].pop(2)

    summary = import_doc(sample_doc)

    assert summary.result == "updated"
    assert summary.items_removed_from_source == 1
    assert any("no longer in the document" in w.message for w in summary.warnings)
    item = item_titled("Load test ORM")
    assert item.removed_from_source is True
    assert ActionItem.objects.count() == 5
    assert ActionItemChange.objects.filter(item=item, field="removed_from_source").exists()

    sample_doc["action_items"].append(removed)
    summary = import_doc(sample_doc)

    item.refresh_from_db()
    assert item.removed_from_source is False
    assert summary.items_removed_from_source == 0
    assert ActionItem.objects.count() == 5


def test_it_matches_items_by_id_when_the_document_has_ids(sample_doc):
    for n, item in enumerate(sample_doc["action_items"], start=1):
        item["id"] = n
    import_doc(sample_doc)
    sample_doc["action_items"][0]["title"] = "Alert on pool utilisation at 70% and 85%"

    summary = import_doc(sample_doc)

    assert (summary.items_created, summary.items_updated) == (0, 1)
    assert ActionItem.objects.filter(removed_from_source=False).count() == 5
    assert ActionItem.objects.get(source_key="id:1").title.startswith("Alert on pool")


def test_it_matches_items_by_normalised_title_without_ids(sample_doc):
    import_doc(sample_doc)
    sample_doc["action_items"][0]["title"] = (
        "  ADD connection-pool utilization alerting at 70% warning and 85% critical thresholds!"
    )

    summary = import_doc(sample_doc)

    assert (summary.items_created, summary.items_updated, summary.items_unchanged) == (0, 1, 4)
    assert ActionItem.objects.count() == 5


def test_it_writes_nothing_on_a_dry_run(sample_doc):
    summary = import_doc(sample_doc, dry_run=True)

    assert (summary.result, summary.items_created) == ("created", 5)
    assert Incident.objects.count() == 0
    assert ActionItem.objects.count() == 0
    assert Person.objects.count() == 0

    import_doc(sample_doc)
    sample_doc["action_items"][0]["deadline"] = "2024-01-30"
    summary = import_doc(sample_doc, dry_run=True)

    assert (summary.result, summary.items_updated) == ("updated", 1)
    assert item_titled("Add connection pool").deadline == dt.date(2024, 1, 22)
    assert DocumentImport.objects.count() == 1


def test_it_records_completion_from_the_document(sample_doc):
    sample_doc["action_items"][0]["status"] = "done"
    sample_doc["action_items"][0]["completed_at"] = "2024-01-20T12:00:00+02:00"

    import_doc(sample_doc)

    item = item_titled("Add connection pool")
    assert item.completed_at == dt.datetime(2024, 1, 20, 10, 0, tzinfo=UTC)


def test_it_writes_a_created_history_row_for_each_new_item(sample_doc):
    import_doc(sample_doc, source="api")

    rows = ActionItemChange.objects.filter(field="created")
    assert rows.count() == 5
    assert set(rows.values_list("source", flat=True)) == {"import"}
    assert rows.first().new_value["owner"] == "alice@company.com"

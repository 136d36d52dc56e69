"""Two imports of the same document at once never create duplicates."""

import threading
import time

import pytest
from django.db import connection

from incidents import importing
from incidents.models import DocumentImport, Incident, IncidentDocument, TimelineEvent
from tracker.models import ActionItem, Person

from .helpers import doc_bytes, import_doc


@pytest.fixture
def slow_merge(monkeypatch):
    """Hold each import inside its transaction for a moment, so that the imports overlap."""
    original = importing._Merge._merge_items

    def slowed(self, *args, **kwargs):
        time.sleep(0.3)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(importing._Merge, "_merge_items", slowed)


def import_in_threads(raws: list[bytes]) -> list:
    barrier = threading.Barrier(len(raws))
    results: list = [None] * len(raws)
    errors: list = []

    def worker(index: int, raw: bytes) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = import_doc(raw)
        except Exception as exc:  # surfaced below, with the thread's error
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, raw)) for i, raw in enumerate(raws)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_creates_one_incident_when_the_same_new_document_is_imported_at_once(
    sample_bytes, slow_merge
):
    results = import_in_threads([sample_bytes] * 4)

    assert sorted(r.result for r in results) == ["created", "unchanged", "unchanged", "unchanged"]
    assert Incident.objects.count() == 1
    assert IncidentDocument.objects.count() == 1
    assert DocumentImport.objects.count() == 4
    assert ActionItem.objects.count() == 5
    assert TimelineEvent.objects.count() == 18
    assert Person.objects.count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_merges_two_revisions_imported_at_once_without_duplicates(sample_doc, slow_merge):
    import_doc(sample_doc)
    first = dict(sample_doc, action_items=[*sample_doc["action_items"]])
    first["action_items"].append(
        {"title": "New item A", "owner": "new@company.com", "priority": "P2", "deadline": None}
    )
    second = dict(sample_doc, action_items=[*sample_doc["action_items"]])
    second["action_items"].append(
        {"title": "New item A", "owner": "NEW@company.com", "priority": "P2", "deadline": None}
    )
    second["action_items"].append(
        {"title": "New item B", "owner": "other@company.com", "priority": "P3"}
    )

    results = import_in_threads([doc_bytes(first), doc_bytes(second)])

    assert all(r.ok for r in results), [r.errors for r in results]
    assert ActionItem.objects.filter(title="New item A").count() == 1
    assert ActionItem.objects.filter(title="New item B").count() == 1
    assert Person.objects.filter(email__iexact="new@company.com").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_creates_each_new_owner_once_when_different_incidents_import_at_once(
    sample_doc, slow_merge
):
    raws = []
    for n in range(4):
        sample_doc["incident"]["id"] = f"INC-C-{n}"
        raws.append(doc_bytes(sample_doc))

    results = import_in_threads(raws)

    assert [r.result for r in results] == ["created"] * 4
    assert Person.objects.count() == 3
    assert ActionItem.objects.count() == 20

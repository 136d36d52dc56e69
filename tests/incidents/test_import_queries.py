"""Importing a document takes the same number of queries whatever its size.

Each test imports a small and a large document the same way and compares the
two counts, so a query issued once per item, event or owner shows up as a
difference, and the failure names the statements that repeat.

The large document stays under SQLite's 999 parameters per statement for
every table (60 events x 8 columns, 40 items x 18 columns): past that, Django
splits a bulk insert into batches, which is not a query per row.
"""

import datetime as dt
import re
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from .helpers import import_doc

pytestmark = pytest.mark.django_db

SMALL = {"items": 2, "events": 3, "owners": 2, "communications": 1, "participants": 2}
LARGE = {"items": 40, "events": 60, "owners": 8, "communications": 10, "participants": 12}


def build_doc(
    sample_doc: dict,
    *,
    incident_id: str,
    items: int,
    events: int,
    owners: int,
    communications: int,
    participants: int,
) -> dict:
    """The sample document resized, with owners distinct to this incident."""
    doc = {**sample_doc, "incident": {**sample_doc["incident"], "id": incident_id}}
    start = dt.datetime(2024, 1, 15, 14, 0, tzinfo=dt.UTC)
    sample_event = sample_doc["events"][0]
    doc["events"] = [
        {
            **sample_event,
            "timestamp": (start + dt.timedelta(minutes=i)).isoformat(),
            "description": f"Event {i}",
            "metadata": {"step": i},
        }
        for i in range(events)
    ]
    sample_message = sample_doc["communications"][0]
    doc["communications"] = [
        {
            **sample_message,
            "timestamp": (start + dt.timedelta(minutes=5 * i)).isoformat(),
            "message": f"Update {i}",
        }
        for i in range(communications)
    ]
    doc["participants"] = [
        {"name": f"Responder {i}", "role": "Engineer", "email": f"responder{i}@example.com"}
        for i in range(participants)
    ]
    doc["action_items"] = [
        {
            "title": f"Follow-up {i} for {incident_id}",
            "owner": f"owner{i % owners}.{incident_id.lower()}@example.com",
            "priority": ["P1", "P2", "P3"][i % 3],
            "deadline": (dt.date(2024, 2, 1) + dt.timedelta(days=i)).isoformat(),
            "type": ["prevention", "detection", "process"][i % 3],
            "status": "open",
        }
        for i in range(items)
    ]
    return doc


def changed(doc: dict) -> dict:
    """Every item's deadline a week later, and two more events."""
    items = [
        {
            **item,
            "deadline": (
                dt.date.fromisoformat(item["deadline"]) + dt.timedelta(days=7)
            ).isoformat(),
        }
        for item in doc["action_items"]
    ]
    last = dt.datetime.fromisoformat(doc["events"][-1]["timestamp"])
    events = [
        *doc["events"],
        *(
            {
                "timestamp": (last + dt.timedelta(minutes=m)).isoformat(),
                "type": "follow_up",
                "actor": "Jane Smith",
                "description": f"Late note {m}",
            }
            for m in (1, 2)
        ),
    ]
    return {**doc, "action_items": items, "events": events}


def count_import(doc: dict, expected_result: str, **expected: int) -> CaptureQueriesContext:
    with CaptureQueriesContext(connection) as queries:
        summary = import_doc(doc)
    assert summary.result == expected_result, summary.as_dict()
    assert {k: getattr(summary, k) for k in expected} == expected, summary.as_dict()
    return queries


def statement_shape(sql: str) -> str:
    """A query without its values, so that the same statement counts once per run."""
    sql = re.sub(r'"s\d+_x\d+"', "<savepoint>", sql)
    sql = re.sub(r"^SELECT .*? FROM ", "SELECT ... FROM ", sql)
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+(?:\.\d+)?\b", "?", sql)
    values = r"\((?:\?|NULL)(?:, (?:\?|NULL))*\)"
    sql = re.sub(rf"{values}(?:, {values})*", "(...)", sql)
    sql = re.sub(r"(?:WHEN .*? THEN .*? )+", "WHEN ... ", sql)
    return sql[:300]


def assert_same_count(small: CaptureQueriesContext, large: CaptureQueriesContext) -> None:
    if len(small) == len(large):
        return
    few = Counter(statement_shape(q["sql"]) for q in small.captured_queries)
    many = Counter(statement_shape(q["sql"]) for q in large.captured_queries)
    differing = "\n".join(
        f"  {few[shape]} -> {many[shape]}: {shape}"
        for shape in sorted(few.keys() | many.keys())
        if few[shape] != many[shape]
    )
    hint = ""
    if connection.vendor == "sqlite":
        hint = (
            "\n(on SQLite, an INSERT that repeats may be Django batching a bulk insert at "
            "999 parameters: if a model gained columns, make LARGE smaller)"
        )
    pytest.fail(
        f"{len(small)} queries for the small document, {len(large)} for the large one; "
        f"statements whose count differs (small -> large):\n{differing}{hint}"
    )


def test_it_imports_a_new_document_in_constant_queries(sample_doc):
    small_doc = build_doc(sample_doc, incident_id="INC-SMALL", **SMALL)
    large_doc = build_doc(sample_doc, incident_id="INC-LARGE", **LARGE)

    small = count_import(small_doc, "created", items_created=SMALL["items"])
    large = count_import(large_doc, "created", items_created=LARGE["items"])

    assert len(small) > 0
    assert_same_count(small, large)


def test_it_reimports_an_unchanged_document_in_constant_queries(sample_doc):
    small_doc = build_doc(sample_doc, incident_id="INC-SMALL", **SMALL)
    large_doc = build_doc(sample_doc, incident_id="INC-LARGE", **LARGE)
    count_import(small_doc, "created")
    count_import(large_doc, "created")

    small = count_import(small_doc, "unchanged", items_unchanged=SMALL["items"])
    large = count_import(large_doc, "unchanged", items_unchanged=LARGE["items"])

    assert_same_count(small, large)


def test_it_reimports_a_changed_document_in_constant_queries(sample_doc):
    small_doc = build_doc(sample_doc, incident_id="INC-SMALL", **SMALL)
    large_doc = build_doc(sample_doc, incident_id="INC-LARGE", **LARGE)
    count_import(small_doc, "created")
    count_import(large_doc, "created")

    small = count_import(changed(small_doc), "updated", items_updated=SMALL["items"])
    large = count_import(changed(large_doc), "updated", items_updated=LARGE["items"])

    assert_same_count(small, large)

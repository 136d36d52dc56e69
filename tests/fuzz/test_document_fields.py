"""Every hostile value in every field of an incident document, through the API's import.

The document is the sample with the optional fields it leaves out filled in (item
ids, descriptions and completion times, participants' emails). One test per class
of value (tests/fuzz/hostile.py) puts that value into each field in turn (one leaf
per field: `events[0].actor` stands for every event's actor, and the sweeps' copy
keeps only the list entries that bring a field of their own), into a new incident
and into one already imported, and as a duplicate of each field's key. Others put
wrong types in place of each section, entry and nested object, and add hostile
keys to each object. Every answer must be below 500, and a rejected
document must write no row. A test reports every field that failed, not the first.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SAMPLE_PATH

from .budget import fuzz_settings
from .conftest import describe, rolled_back, row_counts
from .hostile import (
    STORABLE,
    TYPES,
    VALUES,
    DuplicateKey,
    Path,
    container_paths,
    dotted,
    field_paths,
    first_of_each_shape,
    get,
    hostile_values,
    leaf_paths,
    object_paths,
    one_entry_per_shape,
    put,
    shape,
    to_bytes,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

IMPORT = "/api/v1/incidents/import/"
SAMPLE = json.loads(SAMPLE_PATH.read_text())


def full_sample() -> dict:
    """The sample, with every optional field the import reads given a value."""
    doc = copy.deepcopy(SAMPLE)
    for index, item in enumerate(doc["action_items"]):
        item["id"] = f"AI-{index + 1}"
        item["description"] = f"Follow-up {index + 1} of the payment outage."
        item["completed_at"] = "2024-01-20T10:00:00Z" if index == 0 else None
    doc["action_items"][0]["status"] = "done"
    for participant in doc["participants"]:
        participant["email"] = participant["name"].split()[0].lower() + "@company.com"
    return doc


FULL = full_sample()
# The sweeps import once per field: every field of FULL, each list cut to the entries
# that bring a field of their own (14 of the 18 events, one of each other list).
SWEPT = one_entry_per_shape(FULL)
FIELDS = field_paths(SWEPT)
# Each section, entry and nested object, for the wrong types that can stand in for them.
CONTAINERS = first_of_each_shape(container_paths(SWEPT))
OBJECTS = first_of_each_shape(object_paths(SWEPT))

Mutation = Callable[[dict, Path], Any]


def replace(value: Any) -> Mutation:
    return lambda doc, path: put(doc, path, value)


def duplicate(first_wins: bool) -> Mutation:
    """The field's key twice: with "duplicate" first (the real value wins with Python's
    json) or last (then "duplicate" is what a last-wins reader sees)."""

    def mutate(doc: dict, path: Path) -> Any:
        parent, key = get(doc, path[:-1]), path[-1]
        if not isinstance(key, str):
            return None  # a list entry has no key
        if first_wins:
            return put(doc, path[:-1], DuplicateKey(parent, key, "duplicate"))
        rest = {k: v for k, v in parent.items() if k != key}
        return put(doc, path[:-1], DuplicateKey({**rest, key: "duplicate"}, key, parent[key]))

    return mutate


MUTATIONS: dict[str, Mutation] = {
    **{name: replace(value) for name, value in VALUES.items()},
    "duplicate key, real value last": duplicate(first_wins=True),
    "duplicate key, real value first": duplicate(first_wins=False),
}


def sweep(client, mutate: Mutation, paths: list[Path]) -> list[str]:
    """Import the mutated document once per path; what went wrong, path by path."""
    failures = []
    before = row_counts()  # each import is rolled back: the same before every one
    for path in paths:
        doc = mutate(copy.deepcopy(SWEPT), path)
        if doc is None:
            continue
        raw = to_bytes(doc)
        with rolled_back():
            response = client.post(IMPORT, data=raw, content_type="application/json")
            if response.status_code >= 500:
                failures.append(f"{dotted(path)}: {describe(response)}")
            elif response.status_code >= 400 and row_counts() != before:
                failures.append(f"{dotted(path)}: rejected ({response.status_code}) but wrote rows")
    return failures


def import_through_the_api(client, doc: dict) -> None:
    response = client.post(IMPORT, data=to_bytes(doc), content_type="application/json")
    assert response.status_code == 201, describe(response)


@pytest.mark.parametrize("doc", [FULL, SWEPT], ids=["full", "swept"])
def test_the_documents_import(manager_client, doc):
    import_through_the_api(manager_client, doc)

    incident = manager_client.get(f"/api/v1/incidents/{doc['incident']['id']}/").json()
    assert len(incident["action_items"]) == len(doc["action_items"])
    assert len(incident["timeline"]) == len(doc["events"])
    assert len(incident["participants"]) == len(doc["participants"])


def test_the_swept_document_has_every_field_of_the_full_one():
    assert {shape(path) for path in leaf_paths(SWEPT)} == {shape(p) for p in leaf_paths(FULL)}
    assert len(SWEPT["events"]) == 14


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_every_field_of_a_new_incident_takes_the_value_or_is_refused(manager_client, name):
    failures = sweep(manager_client, MUTATIONS[name], FIELDS)

    assert not failures, f"{name} in {len(failures)} of {len(FIELDS)} fields:\n" + "\n".join(
        failures
    )


@pytest.mark.parametrize("name", STORABLE)
def test_every_field_of_an_imported_incident_takes_the_value_or_is_refused(manager_client, name):
    # Values that reach the columns, over the rows of an earlier import: the update paths.
    import_through_the_api(manager_client, SWEPT)

    failures = sweep(manager_client, MUTATIONS[name], FIELDS)

    assert not failures, f"{name} in {len(failures)} of {len(FIELDS)} fields:\n" + "\n".join(
        failures
    )


@pytest.mark.parametrize("name", [*TYPES, "64 chars", "1e999", "100,000 nested lists"])
def test_every_section_and_entry_takes_a_wrong_type_or_is_refused(manager_client, name):
    failures = sweep(manager_client, MUTATIONS[name], CONTAINERS)

    assert not failures, f"{name} in {len(failures)} of {len(CONTAINERS)} places:\n" + "\n".join(
        failures
    )


HOSTILE_KEYS = {
    "5,000-char key": "k" * 5000,
    "NUL key": "a\u0000b",
    "surrogate key": "\ud800",
    "empty key": "",
}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        *[pytest.param(key, "x", id=f"key: {label}") for label, key in HOSTILE_KEYS.items()],
        pytest.param("extra", VALUES["1e999"], id="1e999"),
        pytest.param("extra", VALUES["100,000 nested lists"], id="100,000 nested lists"),
        pytest.param("extra", VALUES["5,000-digit integer"], id="5,000-digit integer"),
    ],
)
def test_every_object_takes_an_unknown_key_or_is_refused(manager_client, key, value):
    def add_key(doc: dict, path: Path) -> Any:
        target = get(doc, path)
        target[key] = value
        return doc

    failures = sweep(manager_client, add_key, OBJECTS)

    assert not failures, (
        f"{key[:20]!r}: {value!r} in {len(failures)} of {len(OBJECTS)} objects:\n"
        + "\n".join(failures)
    )


# --- Hypothesis: several hostile values at once, anywhere ------------------------------

LEAVES = list(leaf_paths(FULL))  # every entry of every list, not one per field
ALL_OBJECTS = list(object_paths(FULL))
hostile_keys = st.sampled_from(list(HOSTILE_KEYS.values())) | st.text(max_size=10)
mutations = st.one_of(
    st.tuples(st.just("replace"), st.sampled_from(LEAVES + ALL_OBJECTS), hostile_values),
    st.tuples(st.just("delete"), st.sampled_from(LEAVES), st.none()),
    st.tuples(st.just("duplicate"), st.sampled_from(LEAVES), hostile_values),
    st.tuples(
        st.just("add"), st.sampled_from(ALL_OBJECTS), st.tuples(hostile_keys, hostile_values)
    ),
)


def apply(doc: Any, op: str, path: Path, value: Any) -> Any:
    if op == "replace":
        return put(doc, path, value)
    parent = get(doc, path[:-1]) if op in ("delete", "duplicate") else get(doc, path)
    if op == "delete":
        del parent[path[-1]]
        return doc
    if op == "duplicate":
        if not (isinstance(parent, dict) and isinstance(path[-1], str)):
            return doc
        return put(doc, path[:-1], DuplicateKey(parent, path[-1], value))
    key, extra = value
    parent[key] = extra
    return doc


@fuzz_settings(80)
@given(changes=st.lists(mutations, min_size=1, max_size=4), existing=st.booleans())
def test_any_mix_of_hostile_values_is_imported_or_refused_whole(manager_client, changes, existing):
    doc = copy.deepcopy(FULL)
    for op, path, value in changes:
        try:
            doc = apply(doc, op, path, value)
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # an earlier change removed or replaced this path
    with rolled_back():
        if existing:
            import_through_the_api(manager_client, FULL)
        before = row_counts()

        response = manager_client.post(IMPORT, data=to_bytes(doc), content_type="application/json")

        assert response.status_code < 500, describe(response)
        if response.status_code >= 400:
            assert row_counts() == before, "a rejected document wrote rows"
        else:
            assert response.json()["result"] in ("created", "updated", "unchanged")

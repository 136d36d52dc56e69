"""Random mutations of the sample either import or are rejected whole, never crash."""

import copy
import json
from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import given
from hypothesis import strategies as st

from incidents.models import DocumentImport, Incident, IncidentDocument
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.hostile import VALUES, to_bytes
from tracker.models import ActionItem, Person

from .helpers import doc_bytes, import_doc

SAMPLE = json.loads(
    (Path(__file__).resolve().parents[2] / "samples" / "INC-2024-0142.json").read_text()
)
# The same cases on every run (tests/fuzz/budget.py: FUZZ_EXAMPLES, FUZZ_RANDOM).
FUZZ = fuzz_settings(150)


def all_paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from all_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from all_paths(item, (*prefix, index))


PATHS = [p for p in all_paths(SAMPLE) if p]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "",
            "P9",
            "SEV0",
            "2024-13-45",
            "2024-01-15T25:00:00Z",
            "9999-12-31T23:59:59-12:00",
            "not-an-email",
            "x" * 600,
            "\u0000",
            "\ud800",
            "high",
            "done",
            "Alice@Company.com",
        ]
    )
    # At and past the column limits, the ends of the calendar, 1e999, 5,000 digits...
    | st.sampled_from(list(VALUES.values()))
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
mutation = st.tuples(
    st.sampled_from(["replace", "delete", "add_key"]),
    st.sampled_from(PATHS),
    json_values,
    st.text(max_size=10),
)


def apply(doc, op, path, value, key):
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if op == "replace":
        parent[last] = value
    elif op == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    else:
        parent[last] = value


def counts():
    return [
        m.objects.count() for m in (Incident, IncidentDocument, DocumentImport, ActionItem, Person)
    ]


def check(raw: bytes):
    with transaction.atomic():
        before = counts()
        summary = import_doc(raw)
        if summary.ok:
            assert summary.errors == []
            assert Incident.objects.filter(external_id=summary.incident).exists()
        else:
            assert summary.errors, "a rejection must say why"
            assert all(e.path and e.message for e in summary.errors)
            assert counts() == before, "a rejected document wrote something"
        json.dumps(summary.as_dict())
        transaction.set_rollback(True)


@pytest.mark.django_db
@FUZZ
@given(mutations=st.lists(mutation, min_size=1, max_size=4))
def test_it_imports_or_rejects_whole_any_mutation_of_the_sample(mutations):
    doc = copy.deepcopy(SAMPLE)
    for op, path, value, key in mutations:
        try:
            apply(doc, op, path, value, key)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    check(to_bytes(doc))


@pytest.mark.django_db
@FUZZ
@given(
    cut=st.integers(min_value=0, max_value=len(doc_bytes(SAMPLE))),
    byte=st.binary(min_size=1, max_size=3),
)
def test_it_imports_or_rejects_whole_any_corruption_of_the_bytes(cut, byte):
    raw = doc_bytes(SAMPLE)
    check(raw[:cut] + byte + raw[cut + len(byte) :])
    check(raw[:cut])

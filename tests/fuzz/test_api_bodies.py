"""Hostile JSON in every request body the API takes: an item created by a manager, an
item changed by a manager and by its owner, a comment, an import, and signed
webhook deliveries from GitHub and from Jira.

Each body is sent as raw bytes, so the JSON text itself can be hostile. The sweeps
put every value of tests/fuzz/hostile.py into each field in turn, and send each as
the whole body; hypothesis then mixes them. Every answer must be below 500, and a
refused request must write no row.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.models import ActionItem

from .budget import fuzz_settings
from .conftest import SAMPLE_INCIDENT, describe, rolled_back, row_counts, signed_webhook
from .hostile import (
    VALUES,
    DuplicateKey,
    container_paths,
    dotted,
    get,
    hostile_values,
    leaf_paths,
    nested,
    put,
    to_bytes,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ITEMS = "/api/v1/action-items/"
IMPORT = "/api/v1/incidents/import/"

ITEM = {
    "incident": SAMPLE_INCIDENT,
    "title": "Rotate the payment database credentials",
    "description": "After the pool exhaustion.",
    "owner": "alice@company.com",
    "priority": "P1",
    "type": "prevention",
    "status": "in_progress",
    "deadline": "2024-03-01",
}
COMMENT = {"body": "Started on the pool alerts."}
WEBHOOK_DELIVERY = {
    "action": "closed",
    "issue": {"number": 1, "state": "closed", "title": "Pool alerts", "labels": [{"name": "P1"}]},
    "repository": {"full_name": "acme/ops"},
}

# Whole bodies that are not the JSON object each endpoint expects.
RAW_BODIES: dict[str, bytes] = {
    **{f"whole body: {name}": to_bytes(value) for name, value in VALUES.items()},
    "empty": b"",
    "truncated": b'{"title": "x',
    "invalid UTF-8": b'{"title": "\xff\xfe"}',
    "byte order mark": b'\xef\xbb\xbf{"title": "x"}',
    "100,000 nested objects": to_bytes(nested(100_000, kind="object")),
    "a list of 100,000 nested lists": b'{"title": ' + to_bytes(nested(100_000)) + b"}",
}


Send = Callable[[bytes], Any]


def field_mutations(body: dict) -> list[tuple[str, bytes]]:
    """The body with each hostile value in each field (each nested object and list
    too), and each field's key doubled."""
    cases = []
    for path in [*leaf_paths(body), *container_paths(body)]:
        for name, value in VALUES.items():
            cases.append(
                (f"{dotted(path)} = {name}", to_bytes(put(copy.deepcopy(body), path, value)))
            )
        parent, key = path[:-1], path[-1]
        if isinstance(key, str):
            doubled = DuplicateKey(get(body, parent), key, "duplicate")
            cases.append(
                (f"{dotted(path)} twice", to_bytes(put(copy.deepcopy(body), parent, doubled)))
            )
    return cases


def sweep(send: Send, body: dict) -> list[str]:
    """Send every mutation of `body`, and every hostile whole body; what went wrong."""
    failures = []
    before = row_counts()  # each request is rolled back: the same before every one
    for name, raw in [*field_mutations(body), *RAW_BODIES.items()]:
        with rolled_back():
            response = send(raw)
            if response.status_code >= 500:
                failures.append(f"{name}: {describe(response)}")
            elif response.status_code >= 400 and row_counts() != before:
                failures.append(f"{name}: refused ({response.status_code}) but wrote rows")
    return failures


def assert_no_failures(failures: list[str]) -> None:
    assert not failures, f"{len(failures)} server errors or partial writes:\n" + "\n".join(failures)


def json_sender(client, method: str, url: str, **headers: str) -> Send:
    call = getattr(client, method)
    return lambda raw: call(url, data=raw, content_type="application/json", headers=headers)


# --- Sweeps: each value in each field --------------------------------------------------


def test_it_never_fails_on_a_hostile_item_created_by_a_manager(manager_client, sample_incident):
    assert_no_failures(sweep(json_sender(manager_client, "post", ITEMS), ITEM))


def test_it_never_fails_on_a_hostile_change_by_a_manager(manager_client, others_item):
    url = f"{ITEMS}{others_item.pk}/"
    assert_no_failures(sweep(json_sender(manager_client, "patch", url), ITEM))


def test_it_never_fails_on_a_hostile_change_by_the_owner(owner_client, owned_item):
    # Owners may change the status alone; bodies with other fields are refused by their
    # keys, whatever the values (the hypothesis test below sends those too).
    url = f"{ITEMS}{owned_item.pk}/"
    assert_no_failures(sweep(json_sender(owner_client, "patch", url), {"status": "done"}))


@pytest.mark.parametrize("who", ["manager", "owner"])
def test_it_never_fails_on_a_hostile_comment(who, request, owned_item):
    client = request.getfixturevalue(f"{who}_client")
    url = f"{ITEMS}{owned_item.pk}/comments/"
    assert_no_failures(sweep(json_sender(client, "post", url), COMMENT))


def test_it_never_fails_on_a_hostile_import_body(manager_client):
    # Each field of the document: tests/fuzz/test_document_fields.py. Here the body whole.
    send = json_sender(manager_client, "post", IMPORT)
    failures = []
    before = row_counts()
    for name, raw in RAW_BODIES.items():
        with rolled_back():
            response = send(raw)
            if response.status_code >= 500:
                failures.append(f"{name}: {describe(response)}")
            elif response.status_code >= 400 and row_counts() != before:
                failures.append(f"{name}: refused ({response.status_code}) but wrote rows")
    assert_no_failures(failures)


JIRA_DELIVERY = {
    "webhookEvent": "jira:issue_updated",
    "timestamp": 1705329780000,
    "issue": {"key": "OPS-1", "fields": {"status": {"name": "Done"}, "duedate": "2024-03-01"}},
}
DELIVERIES = {"github": WEBHOOK_DELIVERY, "jira": JIRA_DELIVERY}


@pytest.fixture(params=list(DELIVERIES))
def ticket_system(request) -> str:
    """Ticket sync with GitHub, then with Jira."""
    request.getfixturevalue(f"{request.param}_webhooks")
    return request.param


def test_a_signed_delivery_is_accepted(ticket_system, anonymous_client):
    send = signed_webhook(anonymous_client, ticket_system)

    response = send(to_bytes(DELIVERIES[ticket_system]))

    assert response.status_code == 202, describe(response)


def test_it_never_fails_on_a_hostile_signed_webhook_delivery(ticket_system, anonymous_client):
    send = signed_webhook(anonymous_client, ticket_system)
    assert_no_failures(sweep(send, DELIVERIES[ticket_system]))


# --- Hypothesis: hostile values mixed --------------------------------------------------


def bodies(template: dict) -> st.SearchStrategy[dict]:
    """Some of the template's fields, each with its own value or a hostile one, and at
    times an unknown field."""
    fields = {key: st.just(value) | hostile_values for key, value in template.items()}
    return st.fixed_dictionaries({}, optional={**fields, "extra": hostile_values})


def check(send: Send, body: Any) -> None:
    with rolled_back():
        before = row_counts()
        response = send(to_bytes(body))
        assert response.status_code < 500, describe(response)
        if response.status_code >= 400:
            assert row_counts() == before, "a refused request wrote rows"


@fuzz_settings(60)
@given(body=bodies(ITEM) | hostile_values)
def test_any_item_a_manager_creates_is_created_or_refused(manager_client, sample_incident, body):
    check(json_sender(manager_client, "post", ITEMS), body)


@fuzz_settings(60)
@given(body=bodies(ITEM) | hostile_values)
def test_any_change_a_manager_makes_is_made_or_refused(manager_client, others_item, body):
    check(json_sender(manager_client, "patch", f"{ITEMS}{others_item.pk}/"), body)


@fuzz_settings(40)
@given(body=bodies({"status": "done"}) | bodies(ITEM) | hostile_values)
def test_any_change_the_owner_makes_is_made_or_refused(owner_client, owned_item, body):
    check(json_sender(owner_client, "patch", f"{ITEMS}{owned_item.pk}/"), body)


@fuzz_settings(40)
@given(body=bodies(COMMENT) | hostile_values)
def test_any_comment_is_added_or_refused(owner_client, owned_item, body):
    check(json_sender(owner_client, "post", f"{ITEMS}{owned_item.pk}/comments/"), body)


@fuzz_settings(40)
@given(body=bodies(WEBHOOK_DELIVERY) | bodies(JIRA_DELIVERY) | hostile_values)
def test_any_signed_delivery_is_accepted_or_refused(ticket_system, anonymous_client, body):
    check(signed_webhook(anonymous_client, ticket_system), body)


def test_the_sweeps_reach_the_success_path(manager_client, owner_client, owned_item):
    # The templates are valid: the values the sweeps replace are the only trouble.
    count = ActionItem.objects.count()

    created = json_sender(manager_client, "post", ITEMS)(to_bytes(ITEM))
    changed = json_sender(owner_client, "patch", f"{ITEMS}{owned_item.pk}/")(
        to_bytes({"status": "done"})
    )
    comment = json_sender(owner_client, "post", f"{ITEMS}{owned_item.pk}/comments/")(
        to_bytes(COMMENT)
    )

    assert (created.status_code, changed.status_code, comment.status_code) == (201, 200, 201)
    assert ActionItem.objects.count() == count + 1

"""What the fuzz tests share: clients that see a server error as the 500 a visitor
gets, the sample incident, and the rows a request may write. How many cases they
run, and how to run more: tests/fuzz/budget.py.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse
from django.test import Client

from config.api import TokenOrUserRateThrottle
from incidents.importing import import_document
from incidents.models import (
    Communication,
    DocumentImport,
    Incident,
    IncidentDocument,
    Participant,
    TimelineEvent,
)
from tests import factories, webhooks
from tests.conftest import SAMPLE_PATH
from tracker.models import ActionItem, ActionItemChange, Comment, Person

SAMPLE_INCIDENT = "INC-2024-0142"
WEBHOOK_SECRET = "fuzz-webhook-secret"
# alice@company.com owns the sample's first and fourth items (their ids once imported
# into an empty database; look them up rather than rely on that).
OWNER_EMAIL = "alice@company.com"


# The rows a request could write; a refused request writes none of them.
ROW_MODELS = (
    Incident,
    IncidentDocument,
    DocumentImport,
    TimelineEvent,
    Communication,
    Participant,
    ActionItem,
    ActionItemChange,
    Comment,
    Person,
)


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in ROW_MODELS}


@contextlib.contextmanager
def rolled_back() -> Iterator[None]:
    """Run the block in a savepoint that is rolled back: each case starts from the same rows."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def describe(response) -> str:
    body = response.content[:300].decode("utf-8", "replace")
    return f"{response.status_code} {body}"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_throttling(settings, monkeypatch):
    # Thousands of requests a minute from one user: the throttle is not under test. Its
    # counters (and django-axes's) get a fresh cache prefix, shared with no other test.
    monkeypatch.setattr(TokenOrUserRateThrottle, "THROTTLE_RATES", {"user": "1000000/min"})
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"fuzz-{uuid.uuid4().hex}"}
    }
    assert cache.get("anything") is None


def signed_in(user) -> Client:
    """A client signed in as `user` that answers a server error with a 500, not an exception."""
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def anonymous_client() -> Client:
    return Client(raise_request_exception=False)


@pytest.fixture
def manager_client(manager) -> Client:
    return signed_in(manager)


@pytest.fixture
def owner(db):
    """The user whose email owns two of the sample's items."""
    return factories.UserFactory(username="alice", email=OWNER_EMAIL)


@pytest.fixture
def owner_client(owner) -> Client:
    return signed_in(owner)


@pytest.fixture
def sample_incident(manager) -> Incident:
    """The sample document, imported."""
    summary = import_document(raw=SAMPLE_PATH.read_bytes(), source="test", user=manager)
    assert summary.ok, summary.as_dict()
    return Incident.objects.get(external_id=SAMPLE_INCIDENT)


@pytest.fixture
def owned_item(sample_incident) -> ActionItem:
    """An item of the sample that the owner owns."""
    return sample_incident.action_items.filter(owner__email=OWNER_EMAIL).order_by("id").first()


@pytest.fixture
def others_item(sample_incident) -> ActionItem:
    """An item of the sample owned by someone else."""
    return sample_incident.action_items.exclude(owner__email=OWNER_EMAIL).order_by("id").first()


@pytest.fixture
def github_webhooks(settings):
    """Ticket sync with GitHub, so that its webhook checks signatures (no request is sent)."""
    yield from webhooks.github_webhooks(settings, secret=WEBHOOK_SECRET)


@pytest.fixture
def jira_webhooks(settings):
    """Ticket sync with Jira, so that its webhook checks signatures (no request is sent)."""
    yield from webhooks.jira_webhooks(settings, secret=WEBHOOK_SECRET)


def signed_webhook(client, system: str = "github") -> Callable[[bytes], HttpResponse]:
    """Sends a body as GitHub (with a fresh delivery id) or Jira (with none, so that the
    delivery is named from its body) would, signed with the secret."""

    def send(raw: bytes):
        signature = webhooks.signature(raw, secret=WEBHOOK_SECRET)
        if system == "github":
            headers = {
                "X-Hub-Signature-256": signature,
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": str(uuid.uuid4()),
            }
        else:
            headers = {"X-Hub-Signature": signature}
        return client.post(
            f"/api/v1/webhooks/{system}/",
            data=raw,
            content_type="application/json",
            headers=headers,
        )

    return send

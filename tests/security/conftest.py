"""The people of the security tests: one of each role, two owned items, clients for each."""

import uuid
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from tests import factories
from tracker.models import ActionItem
from tracker.tokens import api_token_create

PASSWORD = "correct horse battery staple"
ROLES = ("anonymous", "reader", "owner", "other_owner", "manager")


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings):
    # Throttle and failure counters live in the cache (Redis when REDIS_URL is set),
    # keyed by address or token: a fresh prefix keeps each test's counters its own
    # without flushing those of tests running at the same time in other processes.
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"sectest-{uuid.uuid4().hex}"}
    }
    assert cache.get("anything") is None


@dataclass
class World:
    users: dict  # role -> User, or None for anonymous
    item: ActionItem  # owned by the "owner" role
    other_item: ActionItem  # owned by the "other_owner" role

    def web(self, role: str, *, enforce_csrf: bool = False) -> Client:
        client = Client(enforce_csrf_checks=enforce_csrf)
        if self.users[role] is not None:
            client.force_login(self.users[role])
        return client

    def api(self, role: str) -> APIClient:
        """A client with an API token of `role` (none for anonymous)."""
        client = APIClient()
        if self.users[role] is not None:
            _, key = api_token_create(user=self.users[role], name="security test")
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client


@pytest.fixture
def world(db, managers_group) -> World:
    incident = factories.IncidentFactory(external_id="INC-SEC-0001")
    olivia = factories.PersonFactory(email="olivia@example.com", name="Olivia Owner")
    oscar = factories.PersonFactory(email="oscar@example.com", name="Oscar Other")
    manager = factories.UserFactory(username="maria", email="maria@example.com", is_staff=True)
    manager.groups.add(managers_group)
    users = {
        "anonymous": None,
        "reader": factories.UserFactory(username="rita", email="rita@example.com"),
        # Ownership goes by email whatever its case.
        "owner": factories.UserFactory(username="olivia", email="Olivia@Example.com"),
        "other_owner": factories.UserFactory(username="oscar", email="oscar@example.com"),
        "manager": manager,
    }
    return World(
        users=users,
        item=factories.ActionItemFactory(incident=incident, owner=olivia, title="Olivia's item"),
        other_item=factories.ActionItemFactory(incident=incident, owner=oscar, title="Oscar's"),
    )

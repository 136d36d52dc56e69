"""What the hostile-input tests share: clients that see the answer a visitor would get."""

import uuid

import pytest
from django.core.cache import cache
from django.test import Client

from tests import factories


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings):
    # Throttle counters live in the cache (Redis when REDIS_URL is set): a fresh prefix
    # keeps each test's counters its own without flushing those of other processes.
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"hostile-{uuid.uuid4().hex}"}
    }
    assert cache.get("anything") is None


@pytest.fixture
def anonymous() -> Client:
    """A client that gets the page a visitor gets: a server error is a 500, not an exception."""
    return Client(raise_request_exception=False)


@pytest.fixture
def manager_client(db, managers_group) -> Client:
    user = factories.UserFactory(username="maria", email="maria@example.com", is_staff=True)
    user.groups.add(managers_group)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client(db) -> Client:
    user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client

"""Users in each role, clients signed in as them, and API tokens."""

import uuid

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests import factories
from tracker.tokens import api_token_create


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Each user's password is hashed; the default hasher costs ~0.5 s a user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings):
    # Throttle counters live in the cache (Redis when REDIS_URL is set). A fresh key
    # prefix empties it for each test without flushing the keys of tests running
    # at the same time in other processes (which clear() would, and whose user ids
    # are the same as ours).
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"apitest-{uuid.uuid4().hex}"}
    }
    assert cache.get("anything") is None


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for():
    """A client signed in (by session, as the browser is) as `user`."""

    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def reader(db):
    return factories.UserFactory(username="reader", email="reader@example.com")


@pytest.fixture
def owner_person(db):
    return factories.PersonFactory(email="olivia@example.com", name="Olivia Owner")


@pytest.fixture
def owner(db, owner_person):
    """A user whose email is that of `owner_person`, who owns `own_item`."""
    return factories.UserFactory(username="olivia", email="olivia@example.com")


@pytest.fixture
def own_item(owner_person):
    return factories.ActionItemFactory(owner=owner_person, title="Olivia's item")


@pytest.fixture
def other_item(db):
    return factories.ActionItemFactory(
        owner=factories.PersonFactory(email="oscar@example.com"), title="Oscar's item"
    )


@pytest.fixture
def manager_client(client_for, manager) -> APIClient:
    return client_for(manager)


@pytest.fixture
def reader_client(client_for, reader) -> APIClient:
    return client_for(reader)


@pytest.fixture
def owner_client(client_for, owner) -> APIClient:
    return client_for(owner)


@pytest.fixture
def make_token():
    """Create a token for `user`; return its secret."""

    def make(user, name: str = "test", **kwargs) -> str:
        return api_token_create(user=user, name=name, **kwargs)[1]

    return make


@pytest.fixture
def token_client():
    """A client sending `Authorization: <keyword> <key>`."""

    def make(key: str, keyword: str = "Bearer") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{keyword} {key}")
        return client

    return make

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from tests import factories
from tracker.models import ActionItem

SAMPLE_PATH = Path(__file__).resolve().parent.parent / "samples" / "INC-2024-0142.json"


def pytest_collection_modifyitems(config, items):
    # Tests that need a real service must fail, never skip, when it is missing.
    for item in items:
        if item.get_closest_marker("postgres"):
            item.fixturenames.insert(0, "_require_postgres")
        if item.get_closest_marker("redis"):
            item.fixturenames.insert(0, "_require_redis")


@pytest.fixture
def _require_postgres(django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail(
            f"this test needs PostgreSQL, but DATABASE_URL points to {connection.vendor}; "
            "run it with DATABASE_URL=postgres://..."
        )


@pytest.fixture
def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def _require_redis(redis_url):
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"this test needs Redis at {redis_url}: {exc}")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Block outbound connections except to loopback (databases, Redis, test servers)."""
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and host not in ("127.0.0.1", "::1", "localhost")
            and sock.family
            in (
                socket.AF_INET,
                socket.AF_INET6,
            )
        ):
            raise OSError(f"network access blocked in tests: {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture
def sample_bytes() -> bytes:
    return SAMPLE_PATH.read_bytes()


@pytest.fixture
def sample_doc() -> dict:
    """The sample document as a dict, to mutate freely in a test."""
    return json.loads(SAMPLE_PATH.read_text())


@pytest.fixture
def make_action_item(db) -> Callable[..., ActionItem]:
    """`make_action_item(*, actor=None, note="", **fields)`: an action item created through
    `tracker.services.action_item_create` (the factory's defaults for fields not given)."""
    return factories.make_action_item


@pytest.fixture
def managers_group(db) -> Group:
    group, _ = Group.objects.get_or_create(name="managers")
    return group


@pytest.fixture
def manager(db, managers_group):
    user = factories.UserFactory(is_staff=True)
    user.groups.add(managers_group)
    return user


@pytest.fixture
def superuser(db):
    return factories.UserFactory(is_staff=True, is_superuser=True)

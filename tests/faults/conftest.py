"""Fixtures of the fault tests: private PostgreSQL and Redis, an SMTP sink, a fake
GitHub, and the subprocesses under test (see services.py).

One PostgreSQL cluster and one Redis per session; each test gets a database of
its own, cloned from a migrated template (a `manage.py migrate` once, then a
CREATE DATABASE ... TEMPLATE in well under a second), and an emptied Redis.
Everything is stopped and removed by finalizers, whatever happens.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .services import (
    PrivatePostgres,
    PrivateRedis,
    Processes,
    SmtpSink,
    django_env,
)

TEMPLATE = "tracker_faults_template"


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        cluster = PrivatePostgres.create()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"the fault tests need a private PostgreSQL cluster: {exc}")
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def migrated_template(private_postgres) -> str:
    """A migrated database to clone: the project's own migrations, run once."""
    private_postgres.execute(f'CREATE DATABASE "{TEMPLATE}"')
    workdir = Path(tempfile.mkdtemp(prefix="tracker-faults-migrate-"))
    processes = Processes(workdir)
    try:
        env = django_env(workdir, database_url=private_postgres.url(TEMPLATE))
        processes.manage("migrate", "migrate", "-v0", env=env, timeout=180)
    finally:
        processes.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return TEMPLATE


@pytest.fixture
def scratch_db(private_postgres, migrated_template) -> Iterator[str]:
    """This test's own migrated database on the private cluster; its URL."""
    name = f"faults_{secrets.token_hex(4)}"
    private_postgres.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    try:
        yield private_postgres.url(name)
    finally:
        # The cluster may be down if the test failed half-way through a restart;
        # then the database goes with the whole cluster at the end of the session.
        with contextlib.suppress(Exception):
            private_postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis as brokers usually run: no snapshots, no append-only file, so a
    restart loses whatever was queued."""
    server = PrivateRedis(appendonly=False)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        server.destroy()
        pytest.fail(f"the fault tests need a private Redis: {exc}")
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def redis_server(private_redis) -> PrivateRedis:
    """The session's Redis, emptied for this test (it is ours alone)."""
    if private_redis.process is None or private_redis.process.poll() is not None:
        private_redis.start()
    private_redis.client().flushall()
    return private_redis


@pytest.fixture
def durable_redis() -> Iterator[PrivateRedis]:
    """A Redis with the append-only file on and fsync'ed at every write."""
    server = PrivateRedis(appendonly=True)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path


@pytest.fixture
def processes(workdir) -> Iterator[Processes]:
    processes = Processes(workdir)
    try:
        yield processes
    finally:
        processes.close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    try:
        yield sink
    finally:
        sink.close()


@pytest.fixture
def slow_smtp() -> Iterator[SmtpSink]:
    """Answers 20 ms after taking each message: a sender killed in between leaves
    a message delivered but not marked sent (the documented at-least-once window)."""
    sink = SmtpSink(delay=0.02)
    try:
        yield sink
    finally:
        sink.close()


@pytest.fixture
def github_server():
    """The HTTP server of a fake GitHub (tests/ticketing/fakes.py), on loopback."""
    from tests.ticketing.fakes import threaded_server

    # werkzeug logs every request at INFO: hundreds of lines per test.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    yield from threaded_server()

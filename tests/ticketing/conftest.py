import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from celery.signals import task_prerun

from config import celery_app
from tracker.ticketing import reset_backend
from tracker.ticketing.redmine import RedmineBackend

from .faults import FaultyProxy


class RedmineAdmin:
    """Talks to the test Redmine directly, as a person using Redmine would."""

    def __init__(self, url: str, api_key: str, project: str) -> None:
        self.url, self.project = url, project
        self.session = requests.Session()
        self.session.headers["X-Redmine-API-Key"] = api_key

    def issue(self, key: str) -> dict:
        response = self.session.get(f"{self.url}/issues/{key}.json", timeout=10)
        response.raise_for_status()
        return response.json()["issue"]

    def update(self, key: str, **fields) -> None:
        response = self.session.put(
            f"{self.url}/issues/{key}.json", json={"issue": fields}, timeout=10
        )
        assert response.status_code == 204, response.text

    def create(self, **fields) -> dict:
        body = {"project_id": self.project, **fields}
        response = self.session.post(f"{self.url}/issues.json", json={"issue": body}, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["issue"]

    def create_user(self) -> dict:
        """A new Redmine user, member of no project (so not assignable in ours)."""
        login = f"u{uuid.uuid4().hex[:10]}"
        body = {
            "login": login,
            "firstname": "Outside",
            "lastname": "Member",
            "mail": f"{login}@example.com",
            "password": f"{login}-password",
        }
        response = self.session.post(f"{self.url}/users.json", json={"user": body}, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["user"]

    def issues_marked(self, marker: str) -> list[dict]:
        """Every issue, in any status, whose description carries `marker`."""
        response = self.session.get(
            f"{self.url}/issues.json",
            params={
                "project_id": self.project,
                "status_id": "*",
                "description": f"~[{marker}]",
                "limit": 100,
            },
            timeout=10,
        )
        response.raise_for_status()
        return [
            i for i in response.json()["issues"] if f"[{marker}]" in (i.get("description") or "")
        ]

    def id_of(self, listing: str, name: str) -> int:
        """The id of a status ("issue_statuses"), priority or user by name."""
        paths = {
            "issue_statuses": "/issue_statuses.json",
            "issue_priorities": "/enumerations/issue_priorities.json",
            "users": "/users.json",
        }
        response = self.session.get(self.url + paths[listing], timeout=10)
        response.raise_for_status()
        for entry in response.json()[listing]:
            if name in (entry.get("name"), entry.get("login"), entry.get("mail")):
                return entry["id"]
        raise LookupError(f"no {name!r} in {listing}")


@pytest.fixture(scope="session")
def redmine_env() -> dict:
    names = ("REDMINE_TEST_URL", "REDMINE_TEST_API_KEY", "REDMINE_TEST_PROJECT")
    env = {name: os.environ.get(name, "") for name in names}
    if not all(env.values()):
        pytest.fail(
            "these tests need a running Redmine: scripts/test starts one (scripts/redmine "
            f"start); set {', '.join(names)} to use another"
        )
    return env


@pytest.fixture
def redmine_admin(redmine_env) -> RedmineAdmin:
    return RedmineAdmin(
        redmine_env["REDMINE_TEST_URL"],
        redmine_env["REDMINE_TEST_API_KEY"],
        redmine_env["REDMINE_TEST_PROJECT"],
    )


@pytest.fixture
def redmine_settings(settings, redmine_env) -> Iterator[None]:
    """Ticket sync on, to the test Redmine, with markers no other test uses."""
    settings.TICKETS_BACKEND = "redmine"
    settings.TICKETS_AUTO_CREATE = True
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.REDMINE_URL = redmine_env["REDMINE_TEST_URL"]
    settings.REDMINE_API_KEY = redmine_env["REDMINE_TEST_API_KEY"]
    settings.REDMINE_PROJECT = redmine_env["REDMINE_TEST_PROJECT"]
    # Tests (and xdist workers) share one Redmine project: their own prefix keeps
    # each test's tickets apart.
    settings.TICKETS_MARKER_PREFIX = f"t{uuid.uuid4().hex[:10]}"
    reset_backend()
    yield
    reset_backend()


@pytest.fixture
def redmine_backend(redmine_settings) -> RedmineBackend:
    from tracker.ticketing import get_backend

    return get_backend()


@pytest.fixture(scope="session")
def redmine_sync_api_key(redmine_env) -> str:
    """The key of syncbot, no administrator: its role's workflow forbids
    New -> Closed and every move to Rejected, and makes the due date read-only
    in Feedback (scripts/redmine)."""
    key = os.environ.get("REDMINE_TEST_SYNC_API_KEY", "")
    if not key:
        pytest.fail(
            "these tests need the API key of a Redmine user who is not an administrator: "
            "scripts/test exports scripts/redmine's REDMINE_SYNC_API_KEY as "
            "REDMINE_TEST_SYNC_API_KEY; set it to use another Redmine"
        )
    return key


@pytest.fixture
def redmine_syncbot(redmine_settings, settings, redmine_admin, redmine_sync_api_key):
    """Ticket sync as syncbot. A user who is no administrator cannot find users
    by email nor read their emails, so alice is mapped to her Redmine id."""
    from tracker.ticketing import get_backend

    settings.REDMINE_API_KEY = redmine_sync_api_key
    settings.TICKETS_USER_MAP = {"alice@example.com": str(redmine_admin.id_of("users", "alice"))}
    reset_backend()
    return get_backend()


@pytest.fixture
def proxy(redmine_env) -> Iterator[FaultyProxy]:
    parts = urlsplit(redmine_env["REDMINE_TEST_URL"])
    proxy = FaultyProxy(parts.hostname, parts.port)
    yield proxy
    proxy.close()


@pytest.fixture
def proxied_backend(redmine_settings, settings, proxy) -> RedmineBackend:
    """A Redmine backend that reaches Redmine through the faulty proxy, with short
    timeouts and no sleeping between retries."""
    from tracker.ticketing import backend_config

    settings.REDMINE_URL = proxy.url
    return RedmineBackend.build(
        backend_config("redmine"), timeout=2.0, max_retries=1, sleep=lambda _: None
    )


@pytest.fixture
def tasks_run():
    """Celery tasks run in this process as they are enqueued (no broker); the
    list of (task name, arguments) run."""
    changes = {"task_always_eager": True, "task_eager_propagates": True}
    saved = {key: celery_app.conf[key] for key in changes}
    celery_app.conf.update(changes)
    ran: list[tuple[str, list]] = []

    def record(sender=None, args=None, **kwargs):
        ran.append((sender.name, list(args or [])))

    task_prerun.connect(record, weak=False)
    yield ran
    task_prerun.disconnect(record)
    celery_app.conf.update(saved)

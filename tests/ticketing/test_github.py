"""The GitHub Issues backend against a real HTTP server on the loopback interface."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from pytest_httpserver import HTTPServer as HttpServer
from werkzeug import Request, Response

from tracker.ticketing import github
from tracker.ticketing.base import TicketChangeRefused, TicketError, TicketFields, TicketNotFound
from tracker.ticketing.github import GitHubBackend

from . import contracts

REPO = "/api/v3/repos/acme/ops"
ISSUES = f"{REPO}/issues"
TOKEN = "ghp_not_a_real_token"
VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def make_config(httpserver: HttpServer, **overrides: Any) -> dict[str, Any]:
    return {
        "repository": "acme/ops",
        "token": TOKEN,
        # An Enterprise Server-style prefix, to check it is kept in every path.
        "api_url": httpserver.url_for("/api/v3"),
        "webhook_secret": "webhook-secret",
        "marker_prefix": "followup",
        "user_map": {"ana@example.com": "ana-gh", "bo@example.com": "Bo-GH"},
        **overrides,
    }


@pytest.fixture(autouse=True)
def _requests_held_to_githubs_description(httpserver: HttpServer):
    """Every request a test's backend sent is one GitHub describes (contracts.py)."""
    yield
    problems = [p for request, _ in httpserver.log for p in contracts.github().problems(request)]
    assert not problems, "\n".join(problems)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def backend(httpserver: HttpServer, sleeps: list[float]) -> GitHubBackend:
    return GitHubBackend.build(
        make_config(httpserver),
        allow_local=True,
        sleep=sleeps.append,
        rate_per_second=0,
        max_retries=2,
        timeout=5,
    )


def make_fields(**overrides: Any) -> TicketFields:
    values: dict[str, Any] = {
        "marker": "followup-7",
        "title": "Add a replica to the orders database",
        "description": "The primary had no failover.",
        "priority": "P2",
        "status": "open",
        "deadline": dt.date(2025, 3, 1),
        "owner": "ana@example.com",
        "item_url": "https://tracker.example.com/items/7",
    }
    values.update(overrides)
    return TicketFields(**values)


def make_issue(number: int = 42, **overrides: Any) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "number": number,
        "html_url": f"https://github.com/acme/ops/issues/{number}",
        "title": "Add a replica",
        "body": "Text\n\nDue: 2025-03-01\n\n<!-- followup-7 -->",
        "state": "open",
        "state_reason": None,
        "labels": [{"name": "followup"}, {"name": "priority: P2"}],
        "assignees": [],
        "updated_at": "2025-02-01T10:00:00Z",
    }
    issue.update(overrides)
    return issue


def named(*names: str) -> list[dict[str, str]]:
    return [{"name": name} for name in names]


def offline_backend(secret: str = "webhook-secret") -> GitHubBackend:
    """A backend on github.com that sends no requests."""
    return GitHubBackend(config={"repository": "acme/ops", "webhook_secret": secret}, client=None)


def requests_to(httpserver: HttpServer) -> list[Request]:
    return [request for request, _ in httpserver.log]


class FakeGitHub:
    """Just enough of GitHub's issues API to create, change and read issues back."""

    def __init__(self, httpserver: HttpServer) -> None:
        self.issues: dict[int, dict[str, Any]] = {}
        pattern = re.compile(rf"^{ISSUES}(/\d+)?$")
        httpserver.expect_request(pattern).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        number = request.path.rsplit("/", 1)[-1]
        if request.method == "POST":
            data = request.get_json()
            issue = make_issue(
                len(self.issues) + 1,
                title=data["title"],
                body=data["body"],
                labels=[{"name": name} for name in data["labels"]],
                assignees=[{"login": login} for login in data["assignees"]],
            )
            self.issues[issue["number"]] = issue
            return Response(json.dumps(issue), status=201, content_type="application/json")
        issue = self.issues[int(number)]
        if request.method == "PATCH":
            data = request.get_json()
            for name in ("title", "body", "state", "state_reason"):
                if name in data:
                    issue[name] = data[name]
            if "labels" in data:
                issue["labels"] = [{"name": name} for name in data["labels"]]
            if "assignees" in data:
                issue["assignees"] = [{"login": login} for login in data["assignees"]]
        return Response(json.dumps(issue), content_type="application/json")


# --- Configuration ---------------------------------------------------------------


def test_it_reports_a_missing_repository_and_token():
    problems = GitHubBackend.config_problems({"repository": "", "token": ""})
    assert problems == [
        "GITHUB_REPOSITORY is not set (owner/name).",
        "GITHUB_TOKEN (or GITHUB_TOKEN_FILE) is not set.",
    ]


def test_it_reports_a_malformed_repository_without_showing_the_token():
    problems = GitHubBackend.config_problems(
        {"repository": "https://github.com/acme/ops", "token": TOKEN}
    )
    assert len(problems) == 1
    assert "owner/name" in problems[0]
    assert TOKEN not in " ".join(problems)


def test_it_accepts_a_complete_configuration():
    config = {"repository": "acme/ops", "token": TOKEN, "api_url": "https://ghe.example.com/api/v3"}
    assert GitHubBackend.config_problems(config) == []


def test_it_reads_its_settings(settings):
    settings.GITHUB_REPOSITORY = "acme/ops"
    settings.GITHUB_TOKEN = TOKEN
    settings.GITHUB_API_URL = "https://api.github.com"
    settings.GITHUB_WEBHOOK_SECRET = "s"
    assert GitHubBackend.config_from_settings(settings) == {
        "repository": "acme/ops",
        "token": TOKEN,
        "api_url": "https://api.github.com",
        "webhook_secret": "s",
    }


# --- Create ----------------------------------------------------------------------


def test_it_creates_an_issue_with_labels_assignee_due_line_and_marker(httpserver, backend):
    httpserver.expect_oneshot_request(ISSUES, method="POST").respond_with_json(
        make_issue(
            42,
            labels=named("followup", "priority: P2", "status: in progress"),
            assignees=[{"login": "ana-gh"}],
        ),
        status=201,
    )

    remote = backend.create(make_fields(status="in_progress"))

    (request,) = requests_to(httpserver)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert request.get_json() == {
        "title": "Add a replica to the orders database",
        "body": (
            "The primary had no failover.\n\n"
            "Due: 2025-03-01\n"
            "Tracked in https://tracker.example.com/items/7\n\n"
            "<!-- followup-7 -->"
        ),
        "labels": ["followup", "priority: P2", "status: in progress"],
        "assignees": ["ana-gh"],
    }
    assert (remote.key, remote.url) == ("42", "https://github.com/acme/ops/issues/42")


def test_it_does_not_repeat_the_item_link_the_description_already_has(httpserver, backend):
    httpserver.expect_oneshot_request(ISSUES, method="POST").respond_with_json(
        make_issue(assignees=[{"login": "ana-gh"}]), status=201
    )

    backend.create(
        make_fields(
            description="Tracked in the follow-up tracker: https://tracker.example.com/items/7",
            deadline=None,
        )
    )

    body = requests_to(httpserver)[0].get_json()["body"]
    assert body == (
        "Tracked in the follow-up tracker: https://tracker.example.com/items/7\n\n"
        "<!-- followup-7 -->"
    )


def test_it_uses_the_priority_map_for_labels(httpserver, sleeps):
    backend = GitHubBackend.build(
        make_config(httpserver, priority_map={"P1": "sev-1"}),
        allow_local=True,
        sleep=sleeps.append,
        rate_per_second=0,
    )
    httpserver.expect_oneshot_request(ISSUES, method="POST").respond_with_json(
        make_issue(labels=named("followup", "sev-1"), assignees=[{"login": "ana-gh"}]),
        status=201,
    )

    backend.create(make_fields(priority="P1"))

    assert requests_to(httpserver)[0].get_json()["labels"] == ["followup", "sev-1"]


@pytest.mark.parametrize(
    ("status", "reason"), [("done", "completed"), ("cancelled", "not_planned")]
)
def test_it_closes_a_new_issue_of_a_closed_item(httpserver, backend, status, reason):
    httpserver.expect_ordered_request(ISSUES, method="POST").respond_with_json(
        make_issue(42, assignees=[{"login": "ana-gh"}]), status=201
    )
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue(42, state="closed", state_reason=reason, assignees=[{"login": "ana-gh"}])
    )

    remote = backend.create(make_fields(status=status))

    post, patch = requests_to(httpserver)
    assert "status: " not in " ".join(post.get_json()["labels"])
    assert patch.get_json() == {"state": "closed", "state_reason": reason}
    assert remote.status == status
    httpserver.check_assertions()


def test_it_leaves_an_unmapped_owner_unassigned_without_reading_it_back_as_nobody(
    httpserver, backend
):
    fake = FakeGitHub(httpserver)

    created = backend.create(make_fields(owner="stranger@example.com"))

    assert requests_to(httpserver)[0].get_json()["assignees"] == []
    assert github.OWNER_UNMAPPED in fake.issues[1]["body"]
    # Unassigned on GitHub, but the item's owner is someone GitHub does not know:
    # the sync must leave the owner alone rather than clear it.
    assert (created.owner, created.owner_known) == (None, False)
    assert "owner" not in created.pulled_values()


# --- Update ----------------------------------------------------------------------


def test_it_sends_only_the_changed_fields(httpserver, backend):
    httpserver.expect_oneshot_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue(42, title="New title")
    )

    remote = backend.update("42", make_fields(title="New title"), {"title"})

    (request,) = requests_to(httpserver)
    assert request.get_json() == {"title": "New title"}
    assert remote.key == "42"


def test_it_sends_the_body_when_the_deadline_changes(httpserver, backend):
    httpserver.expect_oneshot_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue()
    )

    backend.update("42", make_fields(deadline=dt.date(2025, 4, 2)), {"deadline"})

    assert set(requests_to(httpserver)[0].get_json()) == {"body"}
    assert "\nDue: 2025-04-02\n" in requests_to(httpserver)[0].get_json()["body"]


def test_it_changes_the_assignee_when_the_owner_changes(httpserver, backend):
    httpserver.expect_oneshot_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue(assignees=[{"login": "Bo-GH"}])
    )

    backend.update("42", make_fields(owner="bo@example.com"), {"owner"})

    assert requests_to(httpserver)[0].get_json()["assignees"] == ["Bo-GH"]


def test_it_unassigns_when_the_item_has_no_owner(httpserver, backend):
    httpserver.expect_oneshot_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue()
    )

    backend.update("42", make_fields(owner=None), {"owner"})

    sent = requests_to(httpserver)[0].get_json()
    assert sent["assignees"] == []
    assert github.OWNER_UNMAPPED not in sent["body"]


def test_it_replaces_the_priority_label_and_keeps_labels_added_on_github(httpserver, backend):
    labels = ["followup", "Priority: P1", "bug", "status: blocked"]
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="GET").respond_with_json(
        make_issue(42, labels=[{"name": name} for name in labels])
    )
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue(labels=named("followup", "bug", "status: blocked", "priority: P3"))
    )

    backend.update("42", make_fields(priority="P3"), {"priority"})

    assert requests_to(httpserver)[1].get_json() == {
        "labels": ["followup", "bug", "status: blocked", "priority: P3"]
    }
    httpserver.check_assertions()


@pytest.mark.parametrize(
    ("status", "reason"), [("done", "completed"), ("cancelled", "not_planned")]
)
def test_it_closes_the_issue_with_the_state_reason(httpserver, backend, status, reason):
    labels = ["followup", "priority: P2", "status: in progress"]
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="GET").respond_with_json(
        make_issue(42, labels=[{"name": name} for name in labels])
    )
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue(42, state="closed", state_reason=reason)
    )

    remote = backend.update("42", make_fields(status=status), {"status"})

    assert requests_to(httpserver)[1].get_json() == {
        "labels": ["followup", "priority: P2"],
        "state": "closed",
        "state_reason": reason,
    }
    assert remote.status == status


def test_it_reopens_a_closed_issue(httpserver, backend):
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="GET").respond_with_json(
        make_issue(42, state="closed", state_reason="completed")
    )
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue(
            42,
            state="open",
            state_reason="reopened",
            labels=named("followup", "priority: P2", "status: blocked"),
        )
    )

    backend.update("42", make_fields(status="blocked"), {"status"})

    assert requests_to(httpserver)[1].get_json() == {
        "labels": ["followup", "priority: P2", "status: blocked"],
        "state": "open",
        "state_reason": "reopened",
    }


def test_it_does_not_send_a_reopen_reason_for_an_open_issue(httpserver, backend):
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="GET").respond_with_json(
        make_issue(42)
    )
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue(labels=named("followup", "priority: P2", "status: in progress"))
    )

    backend.update("42", make_fields(status="in_progress"), {"status"})

    sent = requests_to(httpserver)[1].get_json()
    assert sent["state"] == "open"
    assert "state_reason" not in sent


def test_it_sends_nothing_when_nothing_changed(httpserver, backend):
    assert backend.update("42", make_fields(), set()) is None
    assert requests_to(httpserver) == []


def test_it_round_trips_create_close_and_reopen(httpserver, backend):
    FakeGitHub(httpserver)
    fields = make_fields(status="in_progress", owner="bo@example.com")

    created = backend.create(fields)
    assert created.pulled_values() == {
        "status": "in_progress",
        "deadline": "2025-03-01",
        "owner": "bo@example.com",
    }
    assert created.marker == "followup-7"

    done = make_fields(status="done", owner="bo@example.com", deadline=None)
    backend.update(created.key, done, {"status", "deadline"})
    fetched = backend.fetch(created.key)
    assert (fetched.status, fetched.deadline) == ("done", None)
    assert fetched.raw["state_reason"] == "completed"

    backend.update(created.key, make_fields(status="open", owner="bo@example.com"), {"status"})
    fetched = backend.fetch(created.key)
    assert fetched.status == "open"
    assert fetched.raw["state_reason"] == "reopened"
    assert [label["name"] for label in fetched.raw["labels"]] == ["followup", "priority: P2"]


# --- Find --------------------------------------------------------------------------


def test_it_finds_the_marker_through_the_paginated_listing_not_search_nor_label(
    httpserver, backend
):
    page_two = httpserver.url_for(ISSUES) + "?page=2"
    httpserver.expect_ordered_request(
        ISSUES,
        method="GET",
        query_string={
            "state": "all",
            "sort": "created",
            "direction": "desc",
            "per_page": "100",
        },
    ).respond_with_json(
        [
            # A pull request carrying the marker, and an item whose marker merely starts the same.
            make_issue(80, body="<!-- followup-7 -->", pull_request={"url": "..."}),
            make_issue(70, body="Other\n\n<!-- followup-70 -->"),
        ],
        headers={"Link": f'<{page_two}>; rel="next", <{page_two}>; rel="last"'},
    )
    # Without push access GitHub dropped the marker label: the body's marker is what counts.
    httpserver.expect_ordered_request(
        ISSUES, method="GET", query_string="page=2"
    ).respond_with_json([make_issue(7, body="Text\n\n<!-- followup-7 -->", labels=[])])

    remote = backend.find("followup-7")

    assert remote is not None
    assert (remote.key, remote.marker) == ("7", "followup-7")
    assert len(requests_to(httpserver)) == 2
    assert not any("/search" in request.path for request in requests_to(httpserver))
    httpserver.check_assertions()


def test_it_finds_nothing_when_no_issue_carries_the_marker(httpserver, backend):
    httpserver.expect_request(ISSUES, method="GET").respond_with_json(
        [make_issue(70, body="<!-- followup-70 -->")]
    )

    assert backend.find("followup-7") is None


def test_it_stops_looking_after_a_bounded_number_of_pages(httpserver, backend, monkeypatch):
    monkeypatch.setattr(github, "MAX_FIND_PAGES", 3)
    following = httpserver.url_for(ISSUES) + "?page=2"
    httpserver.expect_request(ISSUES, method="GET").respond_with_json(
        [make_issue(70, body="<!-- followup-70 -->")],
        headers={"Link": f'<{following}>; rel="next"'},
    )

    assert backend.find("followup-7") is None
    assert len(requests_to(httpserver)) == 3


# --- Fetch ---------------------------------------------------------------------------


def test_it_maps_an_open_issue_with_a_status_label_due_line_and_assignee(httpserver, backend):
    httpserver.expect_request(f"{ISSUES}/42", method="GET").respond_with_json(
        make_issue(
            42,
            # Edited in GitHub's web editor: CRLF line ends.
            body="Text\r\n\r\nDue: 2025-05-06\r\nTracked in x\r\n\r\n<!-- followup-7 -->",
            labels=[{"name": "followup"}, {"name": "Status: Blocked"}],
            assignees=[{"login": "bo-gh"}],
            updated_at="2025-02-03T04:05:06Z",
        )
    )

    remote = backend.fetch("42")

    assert remote.key == "42"
    assert remote.url == "https://github.com/acme/ops/issues/42"
    assert remote.updated_at == dt.datetime(2025, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    assert remote.status == "blocked"
    assert remote.deadline == dt.date(2025, 5, 6)
    assert (remote.owner, remote.owner_known) == ("bo@example.com", True)
    assert remote.marker == "followup-7"


@pytest.mark.parametrize(
    ("state", "reason", "labels", "status"),
    [
        ("closed", "completed", [], "done"),
        ("closed", None, [], "done"),
        ("closed", "not_planned", ["status: in progress"], "cancelled"),
        ("open", "reopened", ["status: in progress"], "in_progress"),
        ("open", None, ["bug"], "open"),
    ],
)
def test_it_maps_the_state_and_labels_to_a_status(
    httpserver, backend, state, reason, labels, status
):
    httpserver.expect_request(f"{ISSUES}/42").respond_with_json(
        make_issue(42, state=state, state_reason=reason, labels=[{"name": n} for n in labels])
    )

    assert backend.fetch("42").status == status


def test_it_reads_an_unassigned_issue_as_no_owner_and_an_unknown_login_as_unknown(
    httpserver, backend
):
    httpserver.expect_ordered_request(f"{ISSUES}/1").respond_with_json(make_issue(1))
    httpserver.expect_ordered_request(f"{ISSUES}/2").respond_with_json(
        make_issue(2, assignees=[{"login": "someone-else"}], body="no due line")
    )

    unassigned, unknown = backend.fetch("1"), backend.fetch("2")

    assert (unassigned.owner, unassigned.owner_known) == (None, True)
    assert (unknown.owner, unknown.owner_known, unknown.deadline) == (None, False, None)
    assert unknown.marker is None


def test_it_reports_a_missing_issue_or_a_pull_request_as_not_found(httpserver, backend):
    httpserver.expect_request(f"{ISSUES}/404").respond_with_json(
        {"message": "Not Found"}, status=404
    )
    httpserver.expect_request(f"{ISSUES}/5").respond_with_json(make_issue(5, pull_request={}))

    with pytest.raises(TicketNotFound):
        backend.fetch("404")
    with pytest.raises(TicketNotFound):
        backend.fetch("5")
    with pytest.raises(TicketNotFound):
        backend.fetch("../../user")
    assert len(requests_to(httpserver)) == 2


def test_it_waits_for_the_rate_limit_reset_and_retries(httpserver, backend, sleeps):
    reset = int(time.time()) + 2
    httpserver.expect_ordered_request(f"{ISSUES}/42").respond_with_json(
        {"message": "API rate limit exceeded"},
        status=403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    httpserver.expect_ordered_request(f"{ISSUES}/42").respond_with_json(make_issue(42))

    assert backend.fetch("42").key == "42"

    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= 2
    assert backend.client.requests_sent == 2


def test_it_fails_permanently_on_a_forbidden_request_that_is_not_rate_limited(httpserver, backend):
    httpserver.expect_request(f"{ISSUES}/42").respond_with_json(
        {"message": "Resource not accessible by personal access token"},
        status=403,
        headers={"x-ratelimit-remaining": "4999"},
    )

    with pytest.raises(TicketError) as raised:
        backend.fetch("42")

    assert raised.value.permanent
    assert backend.client.requests_sent == 1


# --- Changed since -------------------------------------------------------------------


def test_it_lists_changed_issues_of_ours_since_a_time_across_pages(httpserver, backend):
    page_two = httpserver.url_for(ISSUES) + "?page=2"
    httpserver.expect_ordered_request(
        ISSUES,
        query_string={
            "state": "all",
            "since": "2025-02-01T09:30:00Z",
            "sort": "updated",
            "direction": "asc",
            "per_page": "100",
        },
    ).respond_with_json(
        [make_issue(1), make_issue(2, pull_request={"url": "..."})],
        headers={"Link": f'<{page_two}>; rel="next"'},
    )
    httpserver.expect_ordered_request(ISSUES, query_string="page=2").respond_with_json(
        # Not ours (no marker in the body), whatever its labels say.
        [make_issue(3), make_issue(4, body="Filed by hand.")]
    )
    since = dt.datetime(2025, 2, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))

    keys = [remote.key for remote in backend.changed_since(since)]

    assert keys == ["1", "3"]
    httpserver.check_assertions()


# --- References ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        "123",
        " #123 ",
        "acme/ops#123",
        "ACME/Ops#123",
        "https://github.com/acme/ops/issues/123",
        "https://github.com/acme/ops/issues/123#issuecomment-1",
    ],
)
def test_it_reads_a_reference(reference):
    assert offline_backend().parse_reference(reference) == "123"


@pytest.mark.parametrize(
    "reference",
    [
        "",
        "followup-7",
        "other/repo#123",
        "https://github.com/other/repo/issues/123",
        "https://github.com/acme/ops/pull/123",
        "https://evil.example.com/acme/ops/issues/123",
    ],
)
def test_it_refuses_a_reference_to_something_else(reference):
    with pytest.raises(ValueError):
        offline_backend().parse_reference(reference)


def test_it_reads_an_enterprise_server_issue_url():
    backend = GitHubBackend(
        config={"repository": "acme/ops", "api_url": "https://ghe.example.com/api/v3"}, client=None
    )
    assert backend.parse_reference("https://ghe.example.com/acme/ops/issues/9") == "9"
    with pytest.raises(ValueError):
        backend.parse_reference("https://github.com/acme/ops/issues/9")


# --- Webhooks ----------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_it_verifies_githubs_documented_test_vector():
    backend = offline_backend(VECTOR_SECRET)

    assert backend.webhook_verify(
        headers={"X-Hub-Signature-256": VECTOR_SIGNATURE}, body=b"Hello, World!"
    )


def test_it_rejects_a_tampered_body():
    backend = offline_backend(VECTOR_SECRET)

    assert not backend.webhook_verify(
        headers={"X-Hub-Signature-256": VECTOR_SIGNATURE}, body=b"Hello, World?"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": ""},
        {"X-Hub-Signature-256": VECTOR_SIGNATURE.replace("sha256=", "sha1=")},
        {"X-Hub-Signature-256": VECTOR_SIGNATURE[:-2]},
        {"X-Hub-Signature-256": VECTOR_SIGNATURE[:-1] + "é"},
    ],
)
def test_it_rejects_a_missing_or_malformed_signature(headers):
    assert not offline_backend(VECTOR_SECRET).webhook_verify(headers=headers, body=b"Hello, World!")


def test_it_rejects_every_delivery_without_a_secret():
    body = b"Hello, World!"
    backend = offline_backend("")

    assert not backend.webhook_verify(headers={"X-Hub-Signature-256": sign("", body)}, body=body)


def test_it_reads_header_names_in_any_case():
    body = b"Hello, World!"
    assert offline_backend(VECTOR_SECRET).webhook_verify(
        headers={"x-hub-signature-256": VECTOR_SIGNATURE}, body=body
    )


def test_it_names_an_issue_of_another_repository_with_its_repository():
    # An organisation webhook: only an issue of ours transferred there is linked so.
    delivery = offline_backend().webhook_parse(
        headers={"X-GitHub-Delivery": "d-4", "X-GitHub-Event": "issues"},
        body=issues_event(42, repository="acme/other"),
    )

    assert delivery.keys == ["acme/other#42"]


def issues_event(number: int = 42, repository: str = "acme/ops") -> bytes:
    return json.dumps(
        {"action": "edited", "issue": {"number": number}, "repository": {"full_name": repository}}
    ).encode()


def test_it_names_the_issue_of_an_issues_event():
    delivery = offline_backend().webhook_parse(
        headers={"X-GitHub-Delivery": "d-1", "X-GitHub-Event": "issues"}, body=issues_event(42)
    )

    assert (delivery.delivery_id, delivery.keys) == ("d-1", ["42"])


def test_it_reads_a_form_encoded_delivery():
    body = urlencode({"payload": issues_event(43).decode()}).encode()

    delivery = offline_backend().webhook_parse(
        headers={"X-GitHub-Delivery": "d-2", "X-GitHub-Event": "issues"}, body=body
    )

    assert delivery.keys == ["43"]


@pytest.mark.parametrize(
    ("event", "body"),
    [
        ("ping", b'{"zen": "Keep it logically awesome.", "hook_id": 1}'),
        ("issue_comment", issues_event(42)),
    ],
)
def test_it_names_no_issue_for_other_events(event, body):
    delivery = offline_backend().webhook_parse(
        headers={"X-GitHub-Delivery": "d-3", "X-GitHub-Event": event}, body=body
    )

    assert (delivery.delivery_id, delivery.keys) == ("d-3", [])


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"X-GitHub-Delivery": "d", "X-GitHub-Event": "issues"}, b"{not json"),
        ({"X-GitHub-Delivery": "d", "X-GitHub-Event": "issues"}, b"[1, 2]"),
        ({"X-GitHub-Delivery": "d", "X-GitHub-Event": "issues"}, b'{"issue": {}}'),
        ({"X-GitHub-Event": "issues"}, issues_event()),
    ],
)
def test_it_refuses_a_malformed_delivery(headers, body):
    with pytest.raises(ValueError):
        offline_backend().webhook_parse(headers=headers, body=body)


# --- What GitHub documents and the backend must live with ---------------------------


def test_it_reopens_then_closes_to_change_the_close_reason(httpserver, backend):
    # GitHub ignores state_reason unless state changes: closing a closed issue
    # as not planned would leave it completed.
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="GET").respond_with_json(
        make_issue(42, state="closed", state_reason="completed")
    )
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue(42, state="open", state_reason="reopened")
    )
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue(42, state="closed", state_reason="not_planned")
    )

    remote = backend.update("42", make_fields(status="cancelled"), {"status"})

    _, reopen, close = requests_to(httpserver)
    assert reopen.get_json() == {"state": "open", "state_reason": "reopened"}
    assert (close.get_json()["state"], close.get_json()["state_reason"]) == (
        "closed",
        "not_planned",
    )
    assert remote.status == "cancelled"
    httpserver.check_assertions()


def test_it_reports_a_close_reason_github_did_not_take(httpserver, backend):
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="GET").respond_with_json(
        make_issue(42)
    )
    httpserver.expect_ordered_request(f"{ISSUES}/42", method="PATCH").respond_with_json(
        make_issue(42, state="closed", state_reason="completed")  # asked: not planned
    )

    with pytest.raises(TicketChangeRefused) as raised:
        backend.update("42", make_fields(status="cancelled"), {"status"})

    assert "kept the issue closed (completed)" in raised.value.message
    assert raised.value.permanent
    # What the issue says, so that the next poll does not take it for a change on GitHub.
    assert raised.value.known_values == {"status": "done"}


def test_it_reports_labels_and_assignees_github_dropped_and_keeps_the_issue(httpserver, backend):
    # Without push access GitHub makes the issue but silently drops both.
    httpserver.expect_oneshot_request(ISSUES, method="POST").respond_with_json(
        make_issue(42, labels=[], assignees=[]), status=201
    )

    with pytest.raises(TicketChangeRefused) as raised:
        backend.create(make_fields(status="blocked"))

    message = raised.value.message
    assert "dropped the label 'followup', label 'priority: P2', label 'status: blocked'" in message
    assert "assignee 'ana-gh'" in message
    assert "push access to acme/ops" in message
    assert raised.value.ticket.key == "42"  # the sync keeps its key: no second issue
    assert raised.value.known_values == {
        "title": "Add a replica to the orders database",
        "description": "The primary had no failover.",
        "priority": None,
        "status": "open",
        "deadline": "2025-03-01",
        "owner": None,
    }


def test_it_waits_a_minute_for_a_secondary_rate_limit_and_retries(httpserver, backend, sleeps):
    httpserver.expect_ordered_request(f"{ISSUES}/42").respond_with_json(
        {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
        status=403,
        headers={"x-ratelimit-remaining": "4990"},
    )
    httpserver.expect_ordered_request(f"{ISSUES}/42").respond_with_json(make_issue(42))

    assert backend.fetch("42").key == "42"
    assert sleeps == [60.0]


def test_it_honours_retry_after_on_a_secondary_rate_limit(httpserver, backend, sleeps):
    httpserver.expect_ordered_request(ISSUES, method="POST").respond_with_json(
        {"message": "You have exceeded a secondary rate limit."},
        status=403,
        headers={"Retry-After": "7", "x-ratelimit-remaining": "4990"},
    )
    httpserver.expect_ordered_request(ISSUES, method="POST").respond_with_json(
        make_issue(42, assignees=[{"login": "ana-gh"}]), status=201
    )

    assert backend.create(make_fields()).key == "42"
    assert sleeps == [7.0]


def test_it_follows_a_transferred_issue_and_takes_its_new_key(httpserver, backend):
    moved = httpserver.url_for("/api/v3/repos/acme/platform/issues/9")
    httpserver.expect_ordered_request(f"{ISSUES}/42").respond_with_json(
        {"message": "Moved Permanently", "url": moved, "documentation_url": "https://docs"},
        status=301,
        headers={"Location": moved},
    )
    httpserver.expect_ordered_request("/api/v3/repos/acme/platform/issues/9").respond_with_json(
        make_issue(
            9,
            repository_url=httpserver.url_for("/api/v3/repos/acme/platform"),
            html_url="https://github.com/acme/platform/issues/9",
        )
    )

    remote = backend.fetch("42")

    assert (remote.key, remote.url) == (
        "acme/platform#9",
        "https://github.com/acme/platform/issues/9",
    )
    httpserver.check_assertions()
    # The new key reaches the new repository directly.
    httpserver.expect_oneshot_request(
        "/api/v3/repos/acme/platform/issues/9", method="PATCH"
    ).respond_with_json(make_issue(9, title="New title"))
    backend.update(remote.key, make_fields(title="New title"), {"title"})


def test_it_does_not_follow_a_redirect_off_the_api_host(httpserver, backend):
    httpserver.expect_request(f"{ISSUES}/42").respond_with_json(
        {"message": "Moved Permanently"},
        status=301,
        headers={"Location": "https://evil.example.com/repos/acme/ops/issues/9"},
    )

    with pytest.raises(TicketError) as raised:
        backend.fetch("42")

    assert raised.value.permanent
    assert "moved off the API's host" in raised.value.message
    assert len(requests_to(httpserver)) == 1

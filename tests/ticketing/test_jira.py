"""The Jira backend against a real HTTP server: the requests Jira's REST APIs
expect (Cloud v3 and Server/Data Center v2), and how their answers are read."""

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from tracker.ticketing.base import TicketChangeRefused, TicketConfigError, TicketError, TicketFields
from tracker.ticketing.jira import JiraBackend, adf_document

from . import contracts

UTC = dt.UTC
EMAIL = "bot@example.com"
API_TOKEN = "cloud-token-s3cret"
PAT = "server-pat-s3cret"
WEBHOOK_SECRET = "hook-s3cret"
ITEM_URL = "https://tracker.example.org/items/123/"
FIELDS = TicketFields(
    marker="followup-123",
    title="Add an alert on queue depth",
    description=f"Page before the queue fills.\nThreshold: 80%.\n\nTracked in the follow-up tracker: {ITEM_URL}",
    priority="P2",
    status="open",
    deadline=dt.date(2024, 4, 1),
    owner="alice@example.com",
    item_url=ITEM_URL,
)
READ_FIELDS = ["summary", "status", "assignee", "duedate", "updated", "labels"]
BASIC = "Basic " + base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()
BEARER = f"Bearer {PAT}"


@pytest.fixture(autouse=True)
def _cloud_requests_held_to_jiras_description(httpserver: HTTPServer):
    """Every request a test's Cloud backend sent is one Jira Cloud describes
    (contracts.py); the description says nothing of Server's REST v2."""
    yield
    problems = [
        p
        for request, _ in httpserver.log
        if request.path.startswith("/rest/api/3/")
        for p in contracts.jira().problems(request)
    ]
    assert not problems, "\n".join(problems)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def _config(httpserver: HTTPServer, flavour: str, **overrides) -> dict:
    config = {
        "url": httpserver.url_for("").rstrip("/"),
        "project": "OPS",
        "email": EMAIL if flavour == "cloud" else "",
        "api_token": API_TOKEN if flavour == "cloud" else "",
        "pat": PAT if flavour == "server" else "",
        "issue_type": "Task",
        "webhook_secret": WEBHOOK_SECRET,
        "priority_map": {},
        "status_map": {},
        "status_read_map": {},
        "user_map": {},
        "marker_prefix": "followup",
    }
    return {**config, **overrides}


@pytest.fixture
def cloud(httpserver, sleeps):
    def make(**overrides) -> JiraBackend:
        return JiraBackend.build(
            _config(httpserver, "cloud", **overrides),
            allow_local=True,
            sleep=sleeps,
            rate_per_second=0,
            timeout=5,
            max_retries=2,
        )

    return make


@pytest.fixture
def server(httpserver, sleeps):
    def make(**overrides) -> JiraBackend:
        # Server installs often live under a context path: it must be kept.
        overrides.setdefault("url", httpserver.url_for("/jira"))
        return JiraBackend.build(
            _config(httpserver, "server", **overrides),
            allow_local=True,
            sleep=sleeps,
            rate_per_second=0,
            timeout=5,
            max_retries=2,
        )

    return make


def _issue(key: str, *, status: str = "To Do", assignee=None, labels=None, **fields) -> dict:
    return {
        "id": "10001",
        "key": key,
        "fields": {
            "summary": "Add an alert on queue depth",
            "status": {"name": status},
            "assignee": assignee,
            "duedate": None,
            "updated": "2024-03-01T10:00:00.000+0000",
            "labels": ["followup", "followup-123"] if labels is None else labels,
            **fields,
        },
    }


def _fields(**changes) -> TicketFields:
    return TicketFields(**{**FIELDS.__dict__, **changes})


# --- Create ---------------------------------------------------------------------


def test_it_creates_a_cloud_issue_with_adf_labels_priority_duedate_and_account_id(
    httpserver, cloud
):
    httpserver.expect_oneshot_request(
        "/rest/api/3/user/search",
        method="GET",
        query_string={"query": "alice@example.com"},
        headers={"Authorization": BASIC},
    ).respond_with_json(
        [
            {"accountId": "acc-other", "emailAddress": "alice@example.com.evil"},
            {"accountId": "acc-alice", "emailAddress": "Alice@Example.com"},
        ]
    )
    expected = {
        "fields": {
            "project": {"key": "OPS"},
            "issuetype": {"name": "Task"},
            "labels": ["followup-123", "followup"],
            "summary": "Add an alert on queue depth",
            "description": {
                "type": "doc",
                "version": 1,
                "content": [
                    {
                        "type": "paragraph",
                        "content": [
                            {"type": "text", "text": "Page before the queue fills."},
                            {"type": "hardBreak"},
                            {"type": "text", "text": "Threshold: 80%."},
                        ],
                    },
                    {
                        "type": "paragraph",
                        "content": [
                            {"type": "text", "text": "Tracked in the follow-up tracker: "},
                            {
                                "type": "text",
                                "text": ITEM_URL,
                                "marks": [{"type": "link", "attrs": {"href": ITEM_URL}}],
                            },
                        ],
                    },
                ],
            },
            "priority": {"name": "Medium"},
            "duedate": "2024-04-01",
            "assignee": {"accountId": "acc-alice"},
        }
    }
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue", method="POST", json=expected, headers={"Authorization": BASIC}
    ).respond_with_json({"id": "10001", "key": "OPS-7", "self": "x"}, status=201)

    ticket = cloud().create(FIELDS)

    httpserver.check_assertions()
    assert ticket.key == "OPS-7"
    assert ticket.url == httpserver.url_for("/browse/OPS-7")
    assert ticket.marker == "followup-123"
    assert len(httpserver.log) == 2  # open is the initial status: no transition


def test_it_creates_a_server_issue_with_a_plain_description_and_a_user_name(httpserver, server):
    httpserver.expect_oneshot_request(
        "/jira/rest/api/2/user/search",
        method="GET",
        query_string={"username": "alice@example.com"},
        headers={"Authorization": BEARER},
    ).respond_with_json(
        [{"name": "alice", "key": "JIRAUSER1", "emailAddress": "alice@example.com"}]
    )
    expected = {
        "fields": {
            "project": {"key": "OPS"},
            "issuetype": {"name": "Bug"},
            "labels": ["followup-123", "followup"],
            "summary": "Add an alert on queue depth",
            "description": FIELDS.description,
            "priority": {"name": "High"},
            "duedate": "2024-04-01",
            "assignee": {"name": "alice"},
        }
    }
    httpserver.expect_oneshot_request(
        "/jira/rest/api/2/issue", method="POST", json=expected, headers={"Authorization": BEARER}
    ).respond_with_json({"id": "10001", "key": "OPS-8", "self": "x"}, status=201)

    ticket = server(issue_type="Bug").create(_fields(priority="P1"))

    httpserver.check_assertions()
    assert ticket.key == "OPS-8"
    assert ticket.url == httpserver.url_for("/jira/browse/OPS-8")


def test_it_moves_a_new_ticket_out_of_the_initial_status(httpserver, cloud):
    httpserver.expect_oneshot_request("/rest/api/3/issue", method="POST").respond_with_json(
        {"id": "10001", "key": "OPS-7", "self": "x"}, status=201
    )
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue/OPS-7/transitions", method="GET"
    ).respond_with_json(
        {
            "transitions": [
                {"id": "11", "name": "Start", "to": {"name": "In Progress"}},
                {"id": "31", "name": "Finish", "to": {"name": "Done"}},
            ]
        }
    )
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue/OPS-7/transitions", method="POST", json={"transition": {"id": "11"}}
    ).respond_with_data("", status=204)

    ticket = cloud(user_map={"alice@example.com": "acc-alice"}).create(
        _fields(status="in_progress")
    )

    httpserver.check_assertions()
    assert ticket.status == "in_progress"
    assert len(httpserver.log) == 3


def test_it_trims_the_summary_and_uses_the_user_map_before_searching(httpserver, cloud):
    title = "Queue\ndepth " + "x" * 300
    httpserver.expect_oneshot_request("/rest/api/3/issue", method="POST").respond_with_json(
        {"id": "10001", "key": "OPS-7", "self": "x"}, status=201
    )

    cloud(user_map={"Alice@Example.com": "acc-mapped"}).create(_fields(title=title))

    httpserver.check_assertions()
    sent = json.loads(httpserver.log[0][0].data)["fields"]
    assert sent["summary"] == ("Queue depth " + "x" * 300)[:255]
    assert sent["assignee"] == {"accountId": "acc-mapped"}
    assert len(httpserver.log) == 1  # no user search


def test_it_takes_the_one_person_whose_hidden_email_the_search_matched(httpserver, cloud):
    # Cloud hides most emails, yet `query` matches them: the answer has no emailAddress.
    httpserver.expect_oneshot_request(
        "/rest/api/3/user/search", method="GET", query_string={"query": "alice@example.com"}
    ).respond_with_json(
        [
            {"accountId": "acc-app", "accountType": "app", "displayName": "alice@example.com bot"},
            {"accountId": "acc-alice", "accountType": "atlassian", "displayName": "Alice"},
        ]
    )
    httpserver.expect_oneshot_request("/rest/api/3/issue", method="POST").respond_with_json(
        {"id": "10001", "key": "OPS-7", "self": "x"}, status=201
    )
    backend = cloud()

    ticket = backend.create(FIELDS)

    sent = json.loads(httpserver.log[1][0].data)["fields"]
    assert sent["assignee"] == {"accountId": "acc-alice"}
    assert ticket.owner == "alice@example.com"
    # Read back, the account is known as alice's.
    assert backend._owner({"accountId": "acc-alice"}) == ("alice@example.com", True)


def test_it_leaves_the_ticket_unassigned_when_the_search_is_ambiguous_and_remembers(
    httpserver, cloud
):
    # Two people whose hidden emails start with the query: no guess.
    httpserver.expect_oneshot_request("/rest/api/3/user/search", method="GET").respond_with_json(
        [
            {"accountId": "acc-alice", "displayName": "Alice"},
            {"accountId": "acc-alice-au", "displayName": "Alice (Sydney)"},
        ]
    )
    httpserver.expect_request("/rest/api/3/issue", method="POST").respond_with_json(
        {"id": "10001", "key": "OPS-7", "self": "x"}, status=201
    )
    backend = cloud()

    first = backend.create(FIELDS)
    backend.create(FIELDS)

    httpserver.check_assertions()
    creates = [json.loads(r.data)["fields"] for r, _ in httpserver.log if r.method == "POST"]
    assert [("assignee" in body) for body in creates] == [False, False]
    assert len(httpserver.log) == 3  # one user search for two creates
    assert first.owner is None


def test_it_retries_a_create_throttled_with_retry_after_and_makes_one_ticket(
    httpserver, cloud, sleeps
):
    httpserver.expect_oneshot_request("/rest/api/3/issue", method="POST").respond_with_json(
        {"errorMessages": ["Rate limit exceeded"]}, status=429, headers={"Retry-After": "2"}
    )
    httpserver.expect_oneshot_request("/rest/api/3/issue", method="POST").respond_with_json(
        {"id": "10001", "key": "OPS-7", "self": "x"}, status=201
    )

    ticket = cloud(user_map={"alice@example.com": "acc-alice"}).create(FIELDS)

    httpserver.check_assertions()
    assert ticket.key == "OPS-7"
    assert sleeps == [2.0]
    assert [r.method for r, _ in httpserver.log] == ["POST", "POST"]


# --- Update ---------------------------------------------------------------------


def test_it_updates_only_the_changed_fields(httpserver, cloud):
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue/OPS-7",
        method="PUT",
        json={
            "fields": {"summary": "Alert earlier", "duedate": None, "priority": {"name": "Lowest"}}
        },
        headers={"Authorization": BASIC},
    ).respond_with_data("", status=204)

    result = cloud().update(
        "OPS-7",
        _fields(title="Alert earlier", deadline=None, priority="P4"),
        {"title", "deadline", "priority"},
    )

    httpserver.check_assertions()
    assert result is None
    assert len(httpserver.log) == 1


def test_it_unassigns_on_server_when_the_owner_is_removed(httpserver, server):
    httpserver.expect_oneshot_request(
        "/jira/rest/api/2/issue/OPS-7",
        method="PUT",
        json={
            "fields": {"assignee": None, "description": "Plain text."},
            # A rewritten description also makes sure the ticket carries our labels.
            "update": {"labels": [{"add": "followup-123"}, {"add": "followup"}]},
        },
        headers={"Authorization": BEARER},
    ).respond_with_data("", status=204)

    server().update(
        "OPS-7", _fields(owner=None, description="Plain text."), {"owner", "description"}
    )

    httpserver.check_assertions()


def test_it_transitions_by_the_target_status_name(httpserver, cloud):
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue/OPS-7/transitions", method="GET"
    ).respond_with_json(
        {
            "transitions": [
                {"id": "11", "name": "Done", "to": {"name": "In Progress"}},  # a misleading name
                {"id": "31", "name": "Close it", "to": {"name": "DONE"}},
            ]
        }
    )
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue/OPS-7/transitions", method="POST", json={"transition": {"id": "31"}}
    ).respond_with_data("", status=204)

    cloud().update("OPS-7", _fields(status="cancelled"), {"status"})

    httpserver.check_assertions()
    assert [r.method for r, _ in httpserver.log] == ["GET", "POST"]  # no PUT: nothing else changed


def test_it_refuses_a_status_the_workflow_cannot_reach_naming_the_ones_it_can(httpserver, cloud):
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue/OPS-7/transitions", method="GET"
    ).respond_with_json(
        {
            "transitions": [
                {"id": "11", "name": "Start", "to": {"name": "In Progress"}},
                {"id": "31", "name": "Finish", "to": {"name": "Done"}},
            ]
        }
    )
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue/OPS-7", method="GET", query_string={"fields": "status"}
    ).respond_with_json({"key": "OPS-7", "fields": {"status": {"name": "To Do"}}})

    with pytest.raises(TicketError) as raised:
        cloud(status_map={"blocked": "Blocked"}).update(
            "OPS-7", _fields(status="blocked"), {"status"}
        )

    assert raised.value.permanent
    assert "'Blocked'" in raised.value.message
    assert "'Done', 'In Progress'" in raised.value.message
    assert not any(r.method == "POST" for r, _ in httpserver.log)


def test_it_needs_no_transition_when_the_ticket_is_already_in_the_status(httpserver, server):
    httpserver.expect_oneshot_request(
        "/jira/rest/api/2/issue/OPS-7/transitions", method="GET"
    ).respond_with_json(
        {"transitions": [{"id": "11", "name": "Start", "to": {"name": "In Progress"}}]}
    )
    httpserver.expect_oneshot_request(
        "/jira/rest/api/2/issue/OPS-7", method="GET", query_string={"fields": "status"}
    ).respond_with_json({"key": "OPS-7", "fields": {"status": {"name": "Done"}}})

    server().update("OPS-7", _fields(status="done"), {"status"})

    httpserver.check_assertions()


def test_it_labels_a_ticket_it_knows_nothing_about(httpserver, cloud):
    # Found again after a lost answer, or linked by hand: every field is pushed.
    httpserver.expect_oneshot_request("/rest/api/3/issue/OPS-7", method="PUT").respond_with_data(
        "", status=204
    )
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue/OPS-7/transitions", method="GET"
    ).respond_with_json(
        {"transitions": [{"id": "11", "name": "Start", "to": {"name": "In Progress"}}]}
    )
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue/OPS-7", method="GET", query_string={"fields": "status"}
    ).respond_with_json({"key": "OPS-7", "fields": {"status": {"name": "To Do"}}})

    cloud(user_map={"alice@example.com": "acc-alice"}).update(
        "OPS-7", FIELDS, {"title", "description", "priority", "status", "deadline", "owner"}
    )

    httpserver.check_assertions()
    body = json.loads(httpserver.log[0][0].data)
    assert body["update"] == {"labels": [{"add": "followup-123"}, {"add": "followup"}]}
    assert set(body["fields"]) == {"summary", "description", "priority", "duedate", "assignee"}
    assert body["fields"]["assignee"] == {"accountId": "acc-alice"}
    assert [r.method for r, _ in httpserver.log] == ["PUT", "GET", "GET"]  # already To Do: no POST


# --- Find -----------------------------------------------------------------------


def test_it_finds_by_marker_through_cloud_search_jql_across_pages(httpserver, cloud):
    jql = 'project = "OPS" AND labels = "followup-123" ORDER BY created ASC'
    first = {"jql": jql, "fields": READ_FIELDS, "maxResults": 100}
    httpserver.expect_oneshot_request(
        "/rest/api/3/search/jql", method="POST", json=first, headers={"Authorization": BASIC}
    ).respond_with_json({"issues": [], "nextPageToken": "page-2", "isLast": False})
    httpserver.expect_oneshot_request(
        "/rest/api/3/search/jql", method="POST", json={**first, "nextPageToken": "page-2"}
    ).respond_with_json({"issues": [_issue("OPS-7", status="In Progress")], "isLast": True})

    ticket = cloud().find("followup-123")

    httpserver.check_assertions()
    assert ticket is not None
    assert (ticket.key, ticket.status, ticket.marker) == ("OPS-7", "in_progress", "followup-123")


def test_it_finds_by_marker_through_server_search_with_start_at(httpserver, server):
    jql = 'project = "OPS" AND labels = "followup-123" ORDER BY created ASC'
    first = {"jql": jql, "fields": READ_FIELDS, "maxResults": 100, "startAt": 0}
    # Label matching is not exact in JQL: a look-alike is skipped, the next page read.
    httpserver.expect_oneshot_request(
        "/jira/rest/api/2/search", method="POST", json=first, headers={"Authorization": BEARER}
    ).respond_with_json(
        {
            "startAt": 0,
            "maxResults": 1,
            "total": 2,
            "issues": [_issue("OPS-3", labels=["FOLLOWUP-123"])],
        }
    )
    httpserver.expect_oneshot_request(
        "/jira/rest/api/2/search", method="POST", json={**first, "startAt": 1}
    ).respond_with_json({"startAt": 1, "maxResults": 1, "total": 2, "issues": [_issue("OPS-7")]})

    ticket = server().find("followup-123")

    httpserver.check_assertions()
    assert ticket is not None and ticket.key == "OPS-7"


def test_it_finds_nothing_when_no_ticket_carries_the_marker(httpserver, cloud):
    httpserver.expect_oneshot_request("/rest/api/3/search/jql", method="POST").respond_with_json(
        {"issues": []}
    )

    assert cloud().find("followup-123") is None
    assert len(httpserver.log) == 1


# --- Fetch and changes ------------------------------------------------------------


def test_it_fetches_and_maps_status_assignee_duedate_and_updated(httpserver, cloud):
    httpserver.expect_oneshot_request(
        "/rest/api/3/issue/OPS-7",
        method="GET",
        query_string={"fields": "summary,status,assignee,duedate,updated,labels"},
        headers={"Authorization": BASIC},
    ).respond_with_json(
        _issue(
            "OPS-7",
            status="Won't Do",
            assignee={"accountId": "acc-alice", "emailAddress": "Alice@Example.com"},
            duedate="2024-04-02",
            updated="2024-03-01T10:00:00.000+0100",
        )
    )

    ticket = cloud().fetch("OPS-7")

    assert ticket.key == "OPS-7"
    assert ticket.status == "cancelled"
    assert (ticket.owner, ticket.owner_known) == ("alice@example.com", True)
    assert ticket.deadline == dt.date(2024, 4, 2)
    assert ticket.updated_at == dt.datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    assert ticket.marker == "followup-123"
    assert ticket.url == httpserver.url_for("/browse/OPS-7")


def test_it_maps_a_hidden_cloud_email_back_through_the_user_map(httpserver, cloud):
    httpserver.expect_request("/rest/api/3/issue/OPS-7", method="GET").respond_with_json(
        _issue("OPS-7", status="Backlog", assignee={"accountId": "acc-alice"})
    )
    httpserver.expect_request("/rest/api/3/issue/OPS-8", method="GET").respond_with_json(
        _issue("OPS-8", status="Some custom status", assignee={"accountId": "acc-stranger"})
    )
    backend = cloud(user_map={"alice@example.com": "acc-alice"})

    mapped, unknown = backend.fetch("OPS-7"), backend.fetch("OPS-8")

    assert (mapped.status, mapped.owner, mapped.owner_known) == ("open", "alice@example.com", True)
    assert (unknown.status, unknown.owner, unknown.owner_known) == (None, None, False)
    assert "owner" not in unknown.pulled_values() and "status" not in unknown.pulled_values()


def test_it_reads_an_unassigned_server_ticket(httpserver, server):
    httpserver.expect_oneshot_request(
        "/jira/rest/api/2/issue/OPS-7", method="GET"
    ).respond_with_json(_issue("OPS-7", status="Resolved", assignee=None))

    ticket = server().fetch("OPS-7")

    assert (ticket.status, ticket.owner, ticket.owner_known) == ("done", None, True)


def test_it_retries_a_get_that_failed_with_a_server_error(httpserver, cloud, sleeps):
    httpserver.expect_oneshot_request("/rest/api/3/issue/OPS-7", method="GET").respond_with_data(
        "Bad gateway", status=502
    )
    httpserver.expect_oneshot_request("/rest/api/3/issue/OPS-7", method="GET").respond_with_json(
        _issue("OPS-7")
    )

    ticket = cloud().fetch("OPS-7")

    assert ticket.key == "OPS-7"
    assert len(httpserver.log) == 2
    assert len(sleeps) == 1


def test_it_reads_cloud_changes_since_across_pages_with_a_minute_to_spare(httpserver, cloud):
    httpserver.expect_oneshot_request("/rest/api/3/myself", method="GET").respond_with_json(
        {"accountId": "acc-bot", "timeZone": "UTC"}
    )
    jql = (
        'project = "OPS" AND labels = "followup" AND updated >= "2024/03/01 09:59"'
        " ORDER BY updated ASC"
    )
    first = {"jql": jql, "fields": READ_FIELDS, "maxResults": 100}
    httpserver.expect_oneshot_request(
        "/rest/api/3/search/jql", method="POST", json=first
    ).respond_with_json({"issues": [_issue("OPS-1"), _issue("OPS-2")], "nextPageToken": "t2"})
    httpserver.expect_oneshot_request(
        "/rest/api/3/search/jql", method="POST", json={**first, "nextPageToken": "t2"}
    ).respond_with_json({"issues": [_issue("OPS-3", status="Done")], "isLast": True})

    tickets = list(cloud().changed_since(dt.datetime(2024, 3, 1, 10, 0, 30, tzinfo=UTC)))

    httpserver.check_assertions()
    assert [t.key for t in tickets] == ["OPS-1", "OPS-2", "OPS-3"]
    assert tickets[2].status == "done"


def test_it_writes_since_in_the_jira_users_time_zone_and_pages_with_start_at(httpserver, server):
    # JQL reads times in the Jira user's zone: 15:00 UTC is 10:00 in New York (EST).
    httpserver.expect_oneshot_request("/jira/rest/api/2/myself", method="GET").respond_with_json(
        {"name": "bot", "timeZone": "America/New_York"}
    )
    jql = (
        'project = "OPS" AND labels = "followup" AND updated >= "2024/03/01 09:59"'
        " ORDER BY updated ASC"
    )
    first = {"jql": jql, "fields": READ_FIELDS, "maxResults": 100, "startAt": 0}
    httpserver.expect_oneshot_request(
        "/jira/rest/api/2/search", method="POST", json=first
    ).respond_with_json({"startAt": 0, "total": 3, "issues": [_issue("OPS-1"), _issue("OPS-2")]})
    httpserver.expect_oneshot_request(
        "/jira/rest/api/2/search", method="POST", json={**first, "startAt": 2}
    ).respond_with_json({"startAt": 2, "total": 3, "issues": [_issue("OPS-3")]})
    backend = server()

    tickets = list(backend.changed_since(dt.datetime(2024, 3, 1, 15, 0, tzinfo=UTC)))

    httpserver.check_assertions()
    assert [t.key for t in tickets] == ["OPS-1", "OPS-2", "OPS-3"]
    httpserver.clear_log()
    httpserver.expect_oneshot_request("/jira/rest/api/2/search", method="POST").respond_with_json(
        {"startAt": 0, "total": 0, "issues": []}
    )
    assert list(backend.changed_since(dt.datetime(2024, 3, 1, 15, 0, tzinfo=UTC))) == []
    assert [r.path for r, _ in httpserver.log] == ["/jira/rest/api/2/search"]  # zone remembered


def test_it_reaches_back_twelve_hours_when_the_users_zone_is_unknown(httpserver, cloud):
    httpserver.expect_oneshot_request("/rest/api/3/myself", method="GET").respond_with_json(
        {"accountId": "acc-bot"}
    )
    httpserver.expect_oneshot_request("/rest/api/3/search/jql", method="POST").respond_with_json(
        {"issues": [], "isLast": True}
    )

    list(cloud().changed_since(dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)))

    assert 'updated >= "2024/02/29 21:59"' in json.loads(httpserver.log[1][0].data)["jql"]


# --- References ---------------------------------------------------------------------


def test_it_reads_a_key_or_a_browse_url(httpserver, cloud):
    backend = cloud()
    base = httpserver.url_for("").rstrip("/")

    assert backend.parse_reference(" ops-12 ") == "OPS-12"
    assert backend.parse_reference(f"{base}/browse/OPS-12") == "OPS-12"
    assert backend.parse_reference(f"{base}/browse/ops_2-7?focusedCommentId=1") == "OPS_2-7"
    for wrong in (
        "12",
        "#12",
        "OPS",
        "https://elsewhere.example/browse/OPS-12",
        f"{base}/issues/12",
    ):
        with pytest.raises(ValueError):
            backend.parse_reference(wrong)


# --- Webhooks -----------------------------------------------------------------------


def _signed(body: bytes, secret: str = WEBHOOK_SECRET) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={digest}"}


BODY = json.dumps(
    {"timestamp": 1709287200000, "webhookEvent": "jira:issue_updated", "issue": {"key": "OPS-7"}}
).encode()


def test_it_accepts_a_webhook_signed_with_the_secret(cloud):
    assert cloud().webhook_verify(headers=_signed(BODY), body=BODY)
    lower = {k.lower(): v for k, v in _signed(BODY).items()}
    assert cloud().webhook_verify(headers=lower, body=BODY)


def test_it_rejects_a_tampered_body_a_wrong_secret_or_a_malformed_signature(cloud):
    backend = cloud()
    signature = _signed(BODY)["X-Hub-Signature"]

    assert not backend.webhook_verify(headers=_signed(BODY), body=BODY.replace(b"OPS-7", b"OPS-8"))
    assert not backend.webhook_verify(headers=_signed(BODY, "another secret"), body=BODY)
    assert not backend.webhook_verify(headers={}, body=BODY)
    assert not backend.webhook_verify(headers={"X-Hub-Signature": signature[7:]}, body=BODY)
    assert not backend.webhook_verify(
        headers={"X-Hub-Signature": signature.replace("sha256", "sha1")}, body=BODY
    )


def test_it_rejects_every_webhook_when_no_secret_is_configured(cloud):
    backend = cloud(webhook_secret="")

    assert not backend.webhook_verify(headers=_signed(BODY, ""), body=BODY)


def test_it_reads_the_delivery_id_and_the_issue_key(cloud):
    backend = cloud()

    named = backend.webhook_parse(headers={"X-Atlassian-Webhook-Identifier": "d-1"}, body=BODY)
    derived = backend.webhook_parse(headers={}, body=BODY)

    assert (named.delivery_id, named.keys) == ("d-1", ["OPS-7"])
    assert derived.delivery_id == "1709287200000:OPS-7:jira:issue_updated"


def test_it_refuses_a_malformed_delivery(cloud):
    backend = cloud()

    for body in (b"{not json", b"[]", json.dumps({"webhookEvent": "project_created"}).encode()):
        with pytest.raises(ValueError):
            backend.webhook_parse(headers={}, body=body)


# --- Configuration and secrets --------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"url": ""}, ["JIRA_URL is not set."]),
        ({"url": "jira.example.com"}, ["JIRA_URL must start with http:// or https://."]),
        ({"project": ""}, ["JIRA_PROJECT is not set."]),
        ({"email": "", "api_token": ""}, ["No Jira credentials"]),
        ({"api_token": ""}, ["JIRA_API_TOKEN (or JIRA_API_TOKEN_FILE) is not set"]),
        ({"email": ""}, ["JIRA_EMAIL is not set"]),
        ({"pat": PAT}, ["not both"]),
    ],
)
def test_it_names_what_is_missing_without_repeating_secrets(httpserver, overrides, expected):
    config = _config(httpserver, "cloud", **overrides)

    problems = JiraBackend.config_problems(config)

    assert len(problems) == len(expected)
    for problem, wanted in zip(problems, expected, strict=True):
        assert wanted in problem
    for secret in (API_TOKEN, PAT, EMAIL, WEBHOOK_SECRET):
        assert secret not in " ".join(problems)


def test_it_finds_nothing_missing_in_either_flavour(httpserver):
    assert JiraBackend.config_problems(_config(httpserver, "cloud")) == []
    assert JiraBackend.config_problems(_config(httpserver, "server")) == []


def test_it_refuses_to_build_with_both_credentials_and_keeps_them_secret(httpserver):
    with pytest.raises(TicketConfigError) as raised:
        JiraBackend.build(_config(httpserver, "cloud", pat=PAT), allow_local=True)

    assert "not both" in raised.value.message
    assert API_TOKEN not in str(raised.value) and PAT not in str(raised.value)


def test_it_keeps_credentials_out_of_errors(httpserver, cloud, server):
    httpserver.expect_request("/rest/api/3/issue", method="POST").respond_with_json(
        {"errorMessages": ["You are not authorized"]}, status=401
    )
    httpserver.expect_request("/jira/rest/api/2/issue/OPS-7", method="GET").respond_with_json(
        {"errorMessages": ["Forbidden"]}, status=403
    )

    with pytest.raises(TicketError) as cloud_error:
        cloud(user_map={"alice@example.com": "acc-alice"}).create(FIELDS)
    with pytest.raises(TicketError) as server_error:
        server().fetch("OPS-7")

    for error in (cloud_error.value, server_error.value):
        assert error.permanent
        text = f"{error} {error.message!r} {error!r}"
        for secret in (API_TOKEN, PAT, BASIC.split()[1], WEBHOOK_SECRET):
            assert secret not in text


def test_it_reads_its_configuration_from_settings(settings):
    settings.JIRA_URL = "https://example.atlassian.net"
    settings.JIRA_PROJECT = "OPS"
    settings.JIRA_EMAIL = EMAIL
    settings.JIRA_API_TOKEN = API_TOKEN
    settings.JIRA_PAT = ""
    settings.JIRA_ISSUE_TYPE = "Task"
    settings.JIRA_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.TICKETS_PRIORITY_MAP = {"P1": "Blocker"}
    settings.TICKETS_USER_MAP = {"alice@example.com": "acc-alice"}
    settings.TICKETS_MARKER_PREFIX = "ops-followup"

    config = JiraBackend.config_from_settings(settings)
    backend = JiraBackend(config=config, client=None)

    assert (config["url"], config["project"], config["api_token"]) == (
        "https://example.atlassian.net",
        "OPS",
        API_TOKEN,
    )
    assert backend.cloud and backend.api == "/rest/api/3"
    assert backend.priority_map["P1"] == "Blocker" and backend.priority_map["P2"] == "Medium"
    assert backend.marker_prefix == "ops-followup"
    assert JiraBackend.config_problems(config) == []


# --- Atlassian Document Format ----------------------------------------------------------


def test_it_writes_plain_text_as_adf_paragraphs_without_empty_text_nodes():
    document = adf_document(
        "One\r\n\r\n\r\nTwo\n\nsee https://t.example/i/1 now", link="https://t.example/i/1"
    )

    assert document == {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "One"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "Two"}]},
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "see "},
                    {
                        "type": "text",
                        "text": "https://t.example/i/1",
                        "marks": [{"type": "link", "attrs": {"href": "https://t.example/i/1"}}],
                    },
                    {"type": "text", "text": " now"},
                ],
            },
        ],
    }
    assert adf_document("") == {"type": "doc", "version": 1, "content": []}


# --- What Jira documents and the backend must live with ----------------------------


def test_it_sends_an_edit_again_after_a_conflicting_update(httpserver, cloud, sleeps):
    conflict = {"errorMessages": ["The issue could not be updated due to a conflicting update."]}
    httpserver.expect_ordered_request("/rest/api/3/issue/OPS-7", method="PUT").respond_with_json(
        conflict, status=409
    )
    httpserver.expect_ordered_request("/rest/api/3/issue/OPS-7", method="PUT").respond_with_data(
        "", status=204
    )

    cloud().update("OPS-7", _fields(title="Alert earlier"), {"title"})

    httpserver.check_assertions()
    assert len(sleeps) == 1


def test_it_sends_a_transition_again_after_a_conflict_and_reports_one_that_persists(
    httpserver, cloud
):
    conflict = {"errorMessages": ["The issue could not be updated due to a conflicting update."]}
    httpserver.expect_request(
        "/rest/api/3/issue/OPS-7/transitions", method="GET"
    ).respond_with_json({"transitions": [{"id": "31", "name": "Done", "to": {"name": "Done"}}]})
    httpserver.expect_request(
        "/rest/api/3/issue/OPS-7/transitions", method="POST"
    ).respond_with_json(conflict, status=409)

    with pytest.raises(TicketError) as raised:
        cloud().update("OPS-7", _fields(status="done"), {"status"})

    assert not raised.value.permanent  # the sync tries again later
    assert raised.value.status == 409
    assert [r.method for r, _ in httpserver.log] == ["GET", "POST", "POST", "POST"]


def test_it_keeps_the_key_of_a_ticket_created_but_not_moved(httpserver, cloud):
    httpserver.expect_oneshot_request("/rest/api/3/issue", method="POST").respond_with_json(
        {"id": "10001", "key": "OPS-7", "self": "x"}, status=201
    )
    httpserver.expect_request(
        "/rest/api/3/issue/OPS-7/transitions", method="GET"
    ).respond_with_data("Service Unavailable", status=503)

    with pytest.raises(TicketChangeRefused) as raised:
        cloud(user_map={"alice@example.com": "acc-alice"}).create(_fields(status="done"))

    error = raised.value
    assert error.ticket.key == "OPS-7"  # the sync saves it: no second ticket
    assert not error.permanent and error.status == 503  # and tries the move again later
    assert error.known_values["status"] == "open"
    assert "created Jira OPS-7 but could not move it to 'Done'" in error.message


def test_it_starts_a_search_again_when_its_page_token_expired(httpserver, cloud):
    jql = 'project = "OPS" AND labels = "followup-123" ORDER BY created ASC'
    first = {"jql": jql, "fields": READ_FIELDS, "maxResults": 100}
    pages = iter(
        [
            {"issues": [_issue("OPS-1", labels=["x"])], "nextPageToken": "opaque-1"},
            {"errorMessages": ["The provided next page token is invalid or expired."]},
            {"issues": [_issue("OPS-1", labels=["x"])], "nextPageToken": "opaque-2"},
            {"issues": [_issue("OPS-7")], "isLast": True},
        ]
    )

    def answer(request):
        page = next(pages)
        return Response(
            json.dumps(page),
            status=400 if "errorMessages" in page else 200,
            content_type="application/json",
        )

    httpserver.expect_request("/rest/api/3/search/jql", method="POST").respond_with_handler(answer)

    ticket = cloud().find("followup-123")

    assert ticket is not None and ticket.key == "OPS-7"
    bodies = [json.loads(r.data) for r, _ in httpserver.log]
    assert bodies == [
        first,
        {**first, "nextPageToken": "opaque-1"},
        first,
        {**first, "nextPageToken": "opaque-2"},
    ]


def test_it_does_not_start_a_search_again_for_a_bad_query(httpserver, cloud):
    httpserver.expect_request("/rest/api/3/search/jql", method="POST").respond_with_json(
        {"errorMessages": ["Error in the JQL Query"]}, status=400
    )

    with pytest.raises(TicketError):
        cloud().find("followup-123")

    assert len(httpserver.log) == 1

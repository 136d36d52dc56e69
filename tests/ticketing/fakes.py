"""Small stateful stand-ins for GitHub and Jira Cloud, served over real loopback HTTP
by pytest-httpserver, for the sync engine's tests (test_sync_github.py, test_sync_jira.py).

Each fake keeps its issues in a dict and answers the requests the backends send
as the vendors document them, awkward parts included; every request and every
answer is checked against the vendor's published API description
(contracts.py), and `assert_kept_contract()` fails the test that departed from
it. A person's edits on the remote side are methods that change an issue and
move its `updated` time. Faults both fakes have:

- `down`: every request is answered 503 with `Retry-After: 0`, and nothing is done.
- `lose_next_create()`: the next create is made, then its answer is held back
  until the test calls `release()`, so the client times out not knowing it.

Each fake's docstring lists its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import re
import secrets
import threading
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from incidents.models import Incident
from tests import factories
from tracker import services
from tracker.models import ActionItem, ChangeSource

from . import contracts

Route = tuple[str, re.Pattern[str], Callable[..., Response]]


def threaded_server() -> Iterator[HTTPServer]:
    """A module's HTTP server on 127.0.0.1 (no IPv6 detour), threaded, so that an
    answer held back for a timeout does not queue the client's next request."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def as_json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(data), status=status, headers=headers, content_type="application/json"
    )


class FakeRemote:
    """The plumbing both fakes share: one handler for every request (`routes`:
    method, path pattern, handler), the faults, the contract check, and a lock,
    as the server is threaded."""

    routes: list[Route] = []

    def __init__(self, httpserver: HTTPServer) -> None:
        self.base = httpserver.url_for("").rstrip("/")
        self.down = False
        self.violations: list[str] = []
        self._lose_create = False
        self._released = threading.Event()
        self._lock = threading.Lock()
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self._serve)

    @staticmethod
    def contract() -> contracts.Contract:
        raise NotImplementedError

    def lose_next_create(self) -> None:
        self._lose_create = True
        self._released.clear()

    def release(self) -> None:
        """Let a held-back answer go (to a client that stopped waiting for it)."""
        self._released.set()

    def now(self) -> dt.datetime:
        return timezone.now().astimezone(dt.UTC)

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        """An error answer in the vendor's shape."""
        raise NotImplementedError

    def assert_kept_contract(self) -> None:
        """Fail if any request or answer departed from the vendor's description."""
        problems, self.violations = self.violations, []
        assert not problems, "\n".join(problems)

    def _serve(self, request: Request) -> Response:
        response = self._handle(request)
        self.violations.extend(self.contract().problems(request, response))
        if response.status_code == 201 and self._lose_create:
            self._lose_create = False
            self._released.wait(timeout=5)
        return response

    def _handle(self, request: Request) -> Response:
        if self.down:
            return self.error(503, "Service Unavailable", {"Retry-After": "0"})
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match and request.method == method:
                with self._lock:
                    return handler(self, request, *match.groups())
        return self.error(404, f"the fake has no {request.method} {request.path}")


# --- GitHub ------------------------------------------------------------------------


class FakeGitHub(FakeRemote):
    """GitHub's REST issues API for one repository (and a second one, that issues
    can be transferred to), at the server's root, with the web pages on the same
    host (as GitHub Enterprise Server has them). As GitHub documents it:

    - `state_reason` is ignored unless `state` changes: a closed issue keeps its
      close reason when asked to close again with another.
    - `push_access = False`: the token's user may open issues but not triage them,
      so labels and assignees (on create and edit) are silently dropped.
    - `secondary_rate_limit(n)`: the next n requests are refused with 403, no
      Retry-After and requests left in the primary quota, and not acted on.
    - `transfer(number)`: the issue moves to OTHER_REPOSITORY, under a new number;
      its old address answers 301 Moved Permanently with the new one.
    """

    REPOSITORY = "acme/ops"
    OTHER_REPOSITORY = "acme/platform"
    TOKEN = "ghp_fake_token"
    LOGINS = ("alice-gh", "bob-gh")
    BOT = "tracker-bot"
    DOCS = "https://docs.github.com/rest"

    @staticmethod
    def contract() -> contracts.Contract:
        return contracts.github()

    def __init__(self, httpserver: HTTPServer) -> None:
        super().__init__(httpserver)
        self.repositories: dict[str, dict[int, dict[str, Any]]] = {
            self.REPOSITORY: {},
            self.OTHER_REPOSITORY: {},
        }
        self.issues = self.repositories[self.REPOSITORY]
        self.repository_labels: dict[str, list[str]] = {name: [] for name in self.repositories}
        # (repository, number) -> (repository, number) it was transferred to.
        self.moved: dict[tuple[str, int], tuple[str, int]] = {}
        self.push_access = True
        self.limited = 0
        self._ids = itertools.count(1001)

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        body = {"message": message, "documentation_url": self.DOCS, "status": str(status)}
        return as_json(body, status, headers)

    def secondary_rate_limit(self, requests: int = 1) -> None:
        self.limited = requests

    def _handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.TOKEN}":
            return self.error(401, "Bad credentials")
        if self.limited:
            self.limited -= 1
            return self.error(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes "
                "before you try again.",
                {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4990"},
            )
        return super()._handle(request)

    # --- Routes ---

    def create(self, request: Request) -> Response:
        data = request.get_json()
        if not data.get("title"):
            return self._invalid("title", "missing_field")
        labels, assignees = data.get("labels", []), data.get("assignees", [])
        if not self.push_access:
            labels, assignees = [], []  # silently dropped
        invalid = [login for login in assignees if login not in self.LOGINS]
        if invalid:
            return self._invalid("assignees", "invalid")
        number = self.file(
            data["title"], body=data.get("body"), labels=labels, assignees=assignees, by_bot=True
        )
        issue = self.issues[number]
        return as_json(issue, 201, {"Location": issue["url"]})

    def list_issues(self, request: Request, repository: str) -> Response:
        if repository not in self.repositories:
            return self.error(404, "Not Found")
        args = request.args
        wanted = {name for name in args.get("labels", "").split(",") if name}
        state, since = args.get("state", "open"), args.get("since")
        creator = args.get("creator")
        issues = [
            issue
            for issue in self.repositories[repository].values()
            if wanted <= {label["name"] for label in issue["labels"]}
            and state in ("all", issue["state"])
            and (since is None or issue["updated_at"] >= since)
            and (creator is None or issue["user"]["login"] == creator)
        ]
        order = "created_at" if args.get("sort", "created") == "created" else "updated_at"
        issues.sort(key=lambda i: (i[order], i["number"]), reverse=args.get("direction") != "asc")
        return self._page(request, issues)

    def get(self, request: Request, repository: str, number: str) -> Response:
        issue = self.repositories.get(repository, {}).get(int(number))
        if issue is None:
            return self._moved(repository, int(number), request) or self.error(404, "Not Found")
        return as_json(issue)

    def patch(self, request: Request, repository: str, number: str) -> Response:
        issue = self.repositories.get(repository, {}).get(int(number))
        if issue is None:
            return self._moved(repository, int(number), request) or self.error(404, "Not Found")
        data = dict(request.get_json())
        changes = {k: data[k] for k in ("title", "body") if k in data}
        state = data.get("state", issue["state"])
        if state not in ("open", "closed"):
            return self._invalid("state", "invalid")
        if state != issue["state"]:
            # The only time state_reason counts ("ignored unless state is changed").
            default = "completed" if state == "closed" else "reopened"
            reason = data.get("state_reason") or default
            allowed = {"open": ("reopened",), "closed": ("completed", "not_planned", "duplicate")}
            if reason not in allowed[state]:
                return self._invalid("state_reason", "invalid")
            changes.update(state=state, state_reason=reason)
        if self.push_access:
            invalid = [login for login in data.get("assignees", []) if login not in self.LOGINS]
            if invalid:
                return self._invalid("assignees", "invalid")
            changes.update({k: data[k] for k in ("labels", "assignees") if k in data})
        return as_json(self.edit(int(number), repository=repository, **changes))

    def repository(self, request: Request, repository: str) -> Response:
        if repository not in self.repositories:
            return self.error(404, "Not Found")
        owner, name = repository.split("/")
        number = list(self.repositories).index(repository) + 1
        api = f"{self.base}/repos/{repository}"
        permissions = {
            "admin": False,
            "maintain": False,
            "push": self.push_access,
            "triage": self.push_access,
            "pull": True,
        }
        return as_json(
            self.contract().example(
                "full-repository",
                id=number,
                node_id=f"R_{number}",
                name=name,
                full_name=repository,
                owner=self.user(owner),
                url=api,
                html_url=f"{self.base}/{repository}",
                issues_url=api + "/issues{/number}",
                labels_url=api + "/labels{/name}",
                has_issues=True,
                default_branch="main",
                permissions=permissions,
            )
        )

    def list_labels(self, request: Request, repository: str) -> Response:
        if repository not in self.repositories:
            return self.error(404, "Not Found")
        return self._page(request, [self._label(n) for n in self.repository_labels[repository]])

    def assignable(self, request: Request, repository: str, login: str) -> Response:
        if repository in self.repositories and login in (*self.LOGINS, self.BOT):
            return Response(status=204)
        return self.error(404, "Not Found")

    routes = [
        ("POST", re.compile(rf"/repos/{REPOSITORY}/issues"), create),
        ("GET", re.compile(r"/repos/([\w.-]+/[\w.-]+)/issues"), list_issues),
        ("GET", re.compile(r"/repos/([\w.-]+/[\w.-]+)/issues/(\d+)"), get),
        ("PATCH", re.compile(r"/repos/([\w.-]+/[\w.-]+)/issues/(\d+)"), patch),
        ("GET", re.compile(r"/repos/([\w.-]+/[\w.-]+)"), repository),
        ("GET", re.compile(r"/repos/([\w.-]+/[\w.-]+)/labels"), list_labels),
        ("GET", re.compile(r"/repos/([\w.-]+/[\w.-]+)/assignees/([\w-]+)"), assignable),
    ]

    # --- What people do on GitHub ---

    def file(
        self, title: str, *, repository: str = REPOSITORY, by_bot: bool = False, **changes: Any
    ) -> int:
        """An issue filed by hand (none of the tracker's labels or markers), or by a
        create; its number."""
        issues = self.repositories[repository]
        number = max(issues, default=0) + 1
        now = _github_time(self.now())
        issues[number] = {
            **self._addresses(repository, number),
            "id": next(self._ids),
            "node_id": f"I_{number}",
            "number": number,
            "title": title,
            "body": "Filed by hand.",
            "user": self.user(self.BOT if by_bot else "carol-gh"),
            "state": "open",
            "state_reason": None,
            "labels": [],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "locked": False,
            "comments": 0,
            "author_association": "MEMBER",
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
        }
        self.edit(number, repository=repository, **changes)
        return number

    def edit(self, number: int, *, repository: str = REPOSITORY, **changes: Any) -> dict[str, Any]:
        """Change an issue as a person does on GitHub (labels and assignees by name)."""
        issue = self.repositories[repository][number]
        for name in ("title", "body", "state", "state_reason"):
            if name in changes:
                issue[name] = changes[name]
        if "labels" in changes:
            for name in changes["labels"]:
                known = self.repository_labels[repository]
                if name.casefold() not in {label.casefold() for label in known}:
                    known.append(name)  # GitHub makes a label on first use
            issue["labels"] = [self._label(name) for name in changes["labels"]]
        if "assignees" in changes:
            issue["assignees"] = [self.user(login) for login in changes["assignees"]]
            issue["assignee"] = issue["assignees"][0] if issue["assignees"] else None
        if "state" in changes:
            closed = changes["state"] == "closed"
            issue["closed_at"] = _github_time(self.now()) if closed else None
        issue["updated_at"] = _github_time(self.now())
        return issue

    def transfer(self, number: int, *, to: str = OTHER_REPOSITORY) -> int:
        """Transfer an issue to another repository; its number there."""
        issue = self.issues.pop(number)
        target = self.repositories[to]
        moved = max(target, default=0) + 1
        target[moved] = {**issue, **self._addresses(to, moved), "number": moved}
        self.moved[(self.REPOSITORY, number)] = (to, moved)
        self.edit(moved, repository=to)
        return moved

    def marked(self, marker: str) -> list[dict[str, Any]]:
        """The issues, in any repository, whose body carries the item's hidden marker."""
        return [
            issue
            for issues in self.repositories.values()
            for issue in issues.values()
            if f"<!-- {marker} -->" in (issue["body"] or "")
        ]

    def labels(self, number: int, *, repository: str = REPOSITORY) -> list[str]:
        return [label["name"] for label in self.repositories[repository][number]["labels"]]

    def user(self, login: str) -> dict[str, Any]:
        """A simple-user object, as issues carry them."""
        api = f"{self.base}/users/{login}"
        return {
            "login": login,
            "id": abs(hash(login)) % 10**6,
            "node_id": f"U_{login}",
            "avatar_url": f"{self.base}/avatars/{login}",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{self.base}/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "User",
            "site_admin": False,
        }

    # --- Helpers ---

    def _addresses(self, repository: str, number: int) -> dict[str, str]:
        api = f"{self.base}/repos/{repository}"
        return {
            "url": f"{api}/issues/{number}",
            "repository_url": api,
            "labels_url": f"{api}/issues/{number}/labels{{/name}}",
            "comments_url": f"{api}/issues/{number}/comments",
            "events_url": f"{api}/issues/{number}/events",
            "html_url": f"{self.base}/{repository}/issues/{number}",
        }

    def _label(self, name: str) -> dict[str, Any]:
        return {
            "id": abs(hash(name)) % 10**6,
            "node_id": f"L_{name}",
            "url": f"{self.base}/repos/{self.REPOSITORY}/labels/{name}",
            "name": name,
            "description": None,
            "color": "ededed",
            "default": False,
        }

    def _moved(self, repository: str, number: int, request: Request) -> Response | None:
        target = self.moved.get((repository, number))
        if target is None:
            return None
        url = self.repositories[target[0]][target[1]]["url"]
        body = {"message": "Moved Permanently", "url": url, "documentation_url": self.DOCS}
        return as_json(body, 301, {"Location": url})

    def _invalid(self, field: str, code: str) -> Response:
        body = {
            "message": "Validation Failed",
            "errors": [{"resource": "Issue", "field": field, "code": code}],
            "documentation_url": self.DOCS,
        }
        return as_json(body, 422)

    def _page(self, request: Request, entries: list[Any]) -> Response:
        """One page of a listing, with GitHub's `Link: rel="next"` when there are more."""
        per_page = int(request.args.get("per_page", 30))
        page = int(request.args.get("page", 1))
        headers = {}
        if page * per_page < len(entries):
            query = urlencode({**request.args.to_dict(), "page": page + 1})
            headers["Link"] = f'<{self.base}{request.path}?{query}>; rel="next"'
        return as_json(entries[(page - 1) * per_page : page * per_page], headers=headers)


def _github_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # GitHub's times are to the second


# --- Jira Cloud ---------------------------------------------------------------------


class FakeJira(FakeRemote):
    """Jira Cloud's REST API v3 for one project with the stock workflow (To Do,
    In Progress, Done: each reachable from the others). As Atlassian documents it:

    - Emails are hidden (the default profile visibility): user objects carry no
      `emailAddress`, yet the user search's `query` matches emails all the same.
    - JQL search lags: with `index_lag` on, issues made since are not found by
      search until `catch_up()` (unless named in `reconcileIssues`, which Jira
      documents for read-after-write).
    - `nextPageToken`s are opaque; `expire_page_tokens()` makes every one given so
      far invalid, as their seven days running out would.
    - `conflict(n)`: the next n edits or transitions answer 409 (a conflicting
      update) and do nothing.
    - `missing_permissions`: project permissions the API user lacks (mypermissions).
    """

    PROJECT = "OPS"
    PROJECT_ID = "10000"
    ISSUE_TYPES = ("Task", "Bug")
    STATUSES = ("To Do", "In Progress", "Done")
    PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
    # accountId -> email; Cloud hides emails by default, so no answer carries them.
    ACCOUNTS = {"acc-alice": "alice@example.com", "acc-bob": "bob@example.com"}
    # The API user's, which JQL dates are read in; west of UTC, so that a date
    # written in UTC would be read as hours later and changes would be missed.
    TIME_ZONE = "America/New_York"
    PERMISSIONS = (
        "BROWSE_PROJECTS",
        "CREATE_ISSUES",
        "EDIT_ISSUES",
        "TRANSITION_ISSUES",
        "ASSIGN_ISSUES",
    )

    EMAIL = "bot@example.com"
    API_TOKEN = "jira-fake-token"

    @staticmethod
    def contract() -> contracts.Contract:
        return contracts.jira()

    def __init__(self, httpserver: HTTPServer) -> None:
        super().__init__(httpserver)
        self.issues: dict[str, dict[str, Any]] = {}
        self.index_lag = False
        self.unindexed: set[str] = set()
        self.missing_permissions: set[str] = set()
        self.conflicts = 0
        # token -> (jql, offset) of the page it fetches
        self._page_tokens: dict[str, tuple[str, int]] = {}
        self._ids = itertools.count(10001)

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return as_json({"errorMessages": [message], "errors": {}}, status, headers)

    def catch_up(self) -> None:
        """The search index catches up with every create."""
        self.unindexed.clear()

    def expire_page_tokens(self) -> None:
        self._page_tokens.clear()

    def conflict(self, requests: int = 1) -> None:
        self.conflicts = requests

    def _handle(self, request: Request) -> Response:
        auth = request.authorization
        if not auth or (auth.username, auth.password) != (self.EMAIL, self.API_TOKEN):
            return self.error(401, "Client must be authenticated to access this resource.")
        return super()._handle(request)

    # --- Routes ---

    def myself(self, request: Request) -> Response:
        return as_json({**self.user("acc-bot"), "timeZone": self.TIME_ZONE})

    def create(self, request: Request) -> Response:
        fields = request.get_json()["fields"]
        errors = self._field_errors(fields)
        if fields.get("project", {}).get("key") != self.PROJECT:
            errors["project"] = "valid project is required"
        if fields.get("issuetype", {}).get("name") not in self.ISSUE_TYPES:
            errors["issuetype"] = "valid issue type is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if errors:
            return as_json({"errorMessages": [], "errors": errors}, 400)
        key = self.file(
            fields["summary"],
            description=fields.get("description"),
            priority=self._priority(fields.get("priority", {"name": "Medium"})),
            assignee=self.user(fields["assignee"]["accountId"]) if "assignee" in fields else None,
            duedate=fields.get("duedate"),
            labels=list(fields.get("labels", [])),
        )
        if self.index_lag:
            self.unindexed.add(key)
        issue = self.issues[key]
        return as_json({"id": issue["id"], "key": key, "self": issue["self"]}, 201)

    def get(self, request: Request, key: str) -> Response:
        if key not in self.issues:
            return self._missing()
        return as_json(self._shown(self.issues[key], request.args.get("fields")))

    def put(self, request: Request, key: str) -> Response:
        if key not in self.issues:
            return self._missing()
        if self.conflicts:
            self.conflicts -= 1
            return self.error(409, "The issue could not be updated due to a conflicting update.")
        data = request.get_json()
        errors = self._field_errors(data.get("fields", {}))
        if errors:
            return as_json({"errorMessages": [], "errors": errors}, 400)
        fields = dict(data.get("fields", {}))
        if "assignee" in fields:
            fields["assignee"] = fields["assignee"] and self.user(fields["assignee"]["accountId"])
        if "priority" in fields:
            fields["priority"] = self._priority(fields["priority"])
        labels = list(self.issues[key]["fields"]["labels"])
        for operation in data.get("update", {}).get("labels", []):
            if "add" in operation and operation["add"] not in labels:
                labels.append(operation["add"])
            if "remove" in operation and operation["remove"] in labels:
                labels.remove(operation["remove"])
        self.edit(key, labels=labels, **fields)
        return Response(status=204)

    def transitions(self, request: Request, key: str) -> Response:
        if key not in self.issues:
            return self._missing()
        current = self.issues[key]["fields"]["status"]["name"]
        return as_json(
            {
                "transitions": [
                    {"id": self._transition_id(name), "name": name, "to": self._status(name)}
                    for name in self.STATUSES
                    if name != current
                ]
            }
        )

    def transition(self, request: Request, key: str) -> Response:
        if key not in self.issues:
            return self._missing()
        if self.conflicts:
            self.conflicts -= 1
            return self.error(409, "The issue could not be updated due to a conflicting update.")
        ids = {self._transition_id(name): name for name in self.STATUSES}
        target = ids.get(str(request.get_json().get("transition", {}).get("id")))
        if target is None or target == self.issues[key]["fields"]["status"]["name"]:
            return as_json({"errorMessages": ["Transition id is not valid"], "errors": {}}, 400)
        self.edit(key, status=self._status(target))
        return Response(status=204)

    def search(self, request: Request) -> Response:
        body = request.get_json()
        jql = body["jql"]
        match = re.fullmatch(
            r'project = "(?P<project>[^"]+)" AND labels = "(?P<label>[^"]+)"'
            r'(?: AND updated >= "(?P<since>\d{4}/\d\d/\d\d \d\d:\d\d)")?'
            r" ORDER BY (?P<order>created|updated) ASC",
            jql,
        )
        if not match:
            return self.error(400, f"the fake cannot read {jql!r}")
        start = 0
        if "nextPageToken" in body:
            page = self._page_tokens.get(body["nextPageToken"])
            if page is None or page[0] != jql:
                return self.error(400, "The provided next page token is invalid or expired.")
            start = page[1]
        since = None
        if match["since"]:
            since = dt.datetime.strptime(match["since"], "%Y/%m/%d %H:%M")
            since = since.replace(tzinfo=zoneinfo.ZoneInfo(self.TIME_ZONE))
        reconciled = {str(number) for number in body.get("reconcileIssues", [])}
        issues = sorted(
            (
                issue
                for issue in self.issues.values()
                if match["project"] == self.PROJECT
                and (issue["key"] not in self.unindexed or issue["id"] in reconciled)
                and match["label"] in issue["fields"]["labels"]
                and (since is None or _read_jira_time(issue["fields"]["updated"]) >= since)
            ),
            key=lambda issue: (issue["fields"][match["order"]], int(issue["id"])),
        )
        size = body.get("maxResults", 50)
        if not isinstance(size, int):
            return self.error(400, "maxResults must be a number")
        page = issues[start : start + size]
        wanted = ",".join(body.get("fields", [])) or "id"
        answer: dict[str, Any] = {"issues": [self._shown(issue, wanted) for issue in page]}
        following = start + len(page)
        if following >= len(issues):
            return as_json({**answer, "isLast": True})
        token = secrets.token_urlsafe(24)
        self._page_tokens[token] = (jql, following)
        return as_json({**answer, "isLast": False, "nextPageToken": token})

    def user_search(self, request: Request) -> Response:
        # Matches the start of the email or the display name, hidden or not.
        query = request.args.get("query", "").strip().casefold()
        found = [
            self.user(account)
            for account, email in self.ACCOUNTS.items()
            if query
            and (
                email.casefold().startswith(query)
                or self._name(account).casefold().startswith(query)
            )
        ]
        return as_json(found)

    def project(self, request: Request, key: str) -> Response:
        if key != self.PROJECT:
            return self._missing("No project could be found with key")
        return as_json(
            {
                "id": self.PROJECT_ID,
                "key": self.PROJECT,
                "name": "Operations",
                "self": f"{self.base}/rest/api/3/project/{self.PROJECT_ID}",
                "projectTypeKey": "software",
                "simplified": False,
                "style": "classic",
                "issueTypes": [
                    {"id": str(10001 + n), "name": name, "subtask": False, "hierarchyLevel": 0}
                    for n, name in enumerate(self.ISSUE_TYPES)
                ],
            }
        )

    def project_statuses(self, request: Request, key: str) -> Response:
        if key != self.PROJECT:
            return self._missing("No project could be found with key")
        return as_json(
            [
                {
                    "id": str(10001 + n),
                    "name": name,
                    "self": f"{self.base}/rest/api/3/issuetype/{10001 + n}",
                    "subtask": False,
                    "statuses": [self._status(status) for status in self.STATUSES],
                }
                for n, name in enumerate(self.ISSUE_TYPES)
            ]
        )

    def my_permissions(self, request: Request) -> Response:
        if request.args.get("projectKey") not in (None, self.PROJECT):
            return self._missing("No project could be found with key")
        wanted = [p for p in request.args.get("permissions", "").split(",") if p]
        return as_json(
            {
                "permissions": {
                    key: {
                        "id": str(n),
                        "key": key,
                        "name": key.replace("_", " ").title(),
                        "type": "PROJECT",
                        "description": "",
                        "havePermission": key not in self.missing_permissions,
                    }
                    for n, key in enumerate(wanted, start=1)
                }
            }
        )

    routes = [
        ("GET", re.compile(r"/rest/api/3/myself"), myself),
        ("POST", re.compile(r"/rest/api/3/issue"), create),
        ("GET", re.compile(r"/rest/api/3/issue/([A-Z]+-\d+)"), get),
        ("PUT", re.compile(r"/rest/api/3/issue/([A-Z]+-\d+)"), put),
        ("GET", re.compile(r"/rest/api/3/issue/([A-Z]+-\d+)/transitions"), transitions),
        ("POST", re.compile(r"/rest/api/3/issue/([A-Z]+-\d+)/transitions"), transition),
        ("POST", re.compile(r"/rest/api/3/search/jql"), search),
        ("GET", re.compile(r"/rest/api/3/user/search"), user_search),
        ("GET", re.compile(r"/rest/api/3/project/([A-Z]+)"), project),
        ("GET", re.compile(r"/rest/api/3/project/([A-Z]+)/statuses"), project_statuses),
        ("GET", re.compile(r"/rest/api/3/mypermissions"), my_permissions),
    ]

    # --- What people do in Jira ---

    def file(self, summary: str, **fields: Any) -> str:
        """An issue filed by hand (none of the tracker's labels), or by a create; its key."""
        number = next(self._ids)
        key = f"{self.PROJECT}-{number - 10000}"
        now = _jira_time(self.now())
        self.issues[key] = {
            "id": str(number),
            "key": key,
            "self": f"{self.base}/rest/api/3/issue/{number}",
            "fields": {
                "summary": summary,
                "description": None,
                "status": self._status("To Do"),
                "priority": self._priority({"name": "Medium"}),
                "assignee": None,
                "duedate": None,
                "labels": [],
                "created": now,
                "updated": now,
            },
        }
        self.edit(key, **fields)
        return key

    def edit(self, key: str, **fields: Any) -> dict[str, Any]:
        """Change an issue's fields (`assignee` as an accountId, a user or None;
        `status` as a name or a status)."""
        issue = self.issues[key]
        if isinstance(fields.get("assignee"), str):
            fields["assignee"] = self.user(fields["assignee"])
        elif isinstance(fields.get("assignee"), dict):
            fields["assignee"] = self.user(fields["assignee"]["accountId"])
        if isinstance(fields.get("status"), str):
            fields["status"] = self._status(fields["status"])
        elif isinstance(fields.get("status"), dict):
            fields["status"] = self._status(fields["status"]["name"])
        issue["fields"].update(fields, updated=_jira_time(self.now()))
        return issue

    def marked(self, marker: str) -> list[dict[str, Any]]:
        return [i for i in self.issues.values() if marker in i["fields"]["labels"]]

    def status(self, key: str) -> str:
        return self.issues[key]["fields"]["status"]["name"]

    def user(self, account: str) -> dict[str, Any]:
        """A user as Cloud shows it to others: no emailAddress (hidden)."""
        return {
            "accountId": account,
            "accountType": "atlassian" if account != "acc-bot" else "app",
            "active": True,
            "displayName": self._name(account),
            "self": f"{self.base}/rest/api/3/user?accountId={account}",
        }

    # --- Helpers ---

    def _name(self, account: str) -> str:
        return account.removeprefix("acc-").title()

    def _status(self, name: str) -> dict[str, Any]:
        number = self.STATUSES.index(name) + 1
        category = ("new", "indeterminate", "done")[number - 1]
        return {
            "id": str(number),
            "name": name,
            "self": f"{self.base}/rest/api/3/status/{number}",
            "statusCategory": {"id": number + 1, "key": category},
        }

    def _priority(self, reference: dict[str, Any]) -> dict[str, Any]:
        number = self.PRIORITIES.index(reference["name"]) + 1
        return {"id": str(number), "name": reference["name"]}

    def _transition_id(self, status: str) -> str:
        return str(11 + 10 * self.STATUSES.index(status))

    def _shown(self, issue: dict[str, Any], wanted: str | None) -> dict[str, Any]:
        """The issue with the fields asked for (all when none named)."""
        fields = issue["fields"]
        if wanted:
            names = wanted.split(",")
            fields = {name: fields.get(name) for name in names if name in fields}
        return {**issue, "fields": fields}

    def _field_errors(self, fields: dict[str, Any]) -> dict[str, str]:
        errors = {}
        description = fields.get("description")
        if description is not None and not (
            isinstance(description, dict) and description.get("type") == "doc"
        ):
            errors["description"] = "Operation value must be an Atlassian Document."
        if "priority" in fields and fields["priority"].get("name") not in self.PRIORITIES:
            errors["priority"] = "Specify a valid priority."
        assignee = fields.get("assignee")
        if assignee is not None and assignee.get("accountId") not in self.ACCOUNTS:
            errors["assignee"] = "Specify a valid accountId."
        return errors

    def _missing(self, message: str = "") -> Response:
        message = message or "Issue does not exist or you do not have permission to see it."
        return as_json({"errorMessages": [message], "errors": {}}, 404)


def _jira_time(moment: dt.datetime) -> str:
    # "2024-03-01T10:00:00.123+0000", as Jira writes it.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _read_jira_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


# --- Items ---------------------------------------------------------------

WEB = services.Actor(source=ChangeSource.WEB, label="tester")


@contextlib.contextmanager
def celery_eager() -> Iterator[None]:
    """Tasks run where they are enqueued (settings.CELERY_TASK_ALWAYS_EAGER alone
    does not reach the app, configured when it was loaded)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


def make_item(**fields: Any) -> ActionItem:
    """An item made through the services, so that the outbox gives it a pending link."""
    incident, _ = Incident.objects.get_or_create(
        external_id="INC-2024-0142",
        defaults={
            "title": "Payment API degradation",
            "severity": "SEV2",
            "declared_at": timezone.now(),
        },
    )
    values = {
        "incident": incident,
        "title": "Add circuit breaker to payment client",
        "description": "Trip after 5 failures in 10 s.",
        "priority": "P2",
        "deadline": dt.date(2030, 3, 1),
        "owner": services.person_get_or_create(email="alice@example.com"),
        **fields,
    }
    return factories.make_action_item(actor=WEB, **values)


def reload(item: ActionItem) -> ActionItem:
    return ActionItem.objects.select_related("owner", "ticket_link").get(pk=item.pk)


def change(item: ActionItem, **changes: Any) -> None:
    """A person changes the item in the tracker."""
    services.action_item_update(item=reload(item), actor=WEB, **changes)

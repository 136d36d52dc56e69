"""Small stateful stand-ins for GitHub and Jira Cloud, served over real loopback HTTP
by pytest-httpserver, for the sync engine's tests (test_sync_github.py, test_sync_jira.py).

Each fake keeps its issues in a dict and answers the requests the backends send
with the shapes the real APIs document; a person's edits on the remote side are
methods that change an issue and move its `updated` time. Two faults:

- `down`: every request is answered 503 with `Retry-After: 0`, and nothing is done.
- `lose_next_create()`: the next create is made, then its answer is held back
  until the test calls `release()`, so the client times out not knowing it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import re
import threading
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from incidents.models import Incident
from tests import factories
from tracker import services
from tracker.models import ActionItem, ChangeSource

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
    method, path pattern, handler), the faults, and a lock, as the server is threaded."""

    routes: list[Route] = []

    def __init__(self, httpserver: HTTPServer) -> None:
        self.base = httpserver.url_for("").rstrip("/")
        self.down = False
        self._lose_create = False
        self._released = threading.Event()
        self._lock = threading.Lock()
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    def lose_next_create(self) -> None:
        self._lose_create = True
        self._released.clear()

    def release(self) -> None:
        """Let a held-back answer go (to a client that stopped waiting for it)."""
        self._released.set()

    def now(self) -> dt.datetime:
        return timezone.now().astimezone(dt.UTC)

    def _handle(self, request: Request) -> Response:
        if self.down:
            return as_json({"message": "Service Unavailable"}, 503, {"Retry-After": "0"})
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match and request.method == method:
                with self._lock:
                    response = handler(self, request, *match.groups())
                if response.status_code == 201 and self._lose_create:
                    self._lose_create = False
                    self._released.wait(timeout=5)
                return response
        return as_json({"message": f"the fake has no {request.method} {request.path}"}, 404)


# --- GitHub ------------------------------------------------------------------------


class FakeGitHub(FakeRemote):
    """GitHub's REST issues API for one repository, at the server's root, with
    the web pages on the same host (as GitHub Enterprise Server has them)."""

    REPOSITORY = "acme/ops"
    TOKEN = "ghp_fake_token"
    LOGINS = ("alice-gh", "bob-gh")

    def __init__(self, httpserver: HTTPServer) -> None:
        super().__init__(httpserver)
        self.issues: dict[int, dict[str, Any]] = {}

    def _handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.TOKEN}":
            return as_json({"message": "Bad credentials"}, 401)
        return super()._handle(request)

    def create(self, request: Request) -> Response:
        data = request.get_json()
        if not data.get("title"):
            return as_json({"message": "Validation Failed", "errors": [{"field": "title"}]}, 422)
        invalid = [login for login in data.get("assignees", []) if login not in self.LOGINS]
        if invalid:
            return as_json({"message": "Validation Failed", "errors": [{"value": invalid}]}, 422)
        number = self.file(
            data["title"],
            body=data.get("body"),
            labels=data.get("labels", []),
            assignees=data.get("assignees", []),
        )
        return as_json(self.issues[number], 201)

    def list_issues(self, request: Request) -> Response:
        args = request.args
        wanted = {name for name in args.get("labels", "").split(",") if name}
        state, since = args.get("state", "open"), args.get("since")
        issues = [
            issue
            for issue in self.issues.values()
            if wanted <= {label["name"] for label in issue["labels"]}
            and state in ("all", issue["state"])
            and (since is None or issue["updated_at"] >= since)
        ]
        order = "created_at" if args.get("sort", "created") == "created" else "updated_at"
        issues.sort(key=lambda i: (i[order], i["number"]), reverse=args.get("direction") != "asc")
        return as_json(issues[: int(args.get("per_page", 30))])

    def get(self, request: Request, number: str) -> Response:
        issue = self.issues.get(int(number))
        return as_json(issue) if issue else as_json({"message": "Not Found"}, 404)

    def patch(self, request: Request, number: str) -> Response:
        if int(number) not in self.issues:
            return as_json({"message": "Not Found"}, 404)
        data = request.get_json()
        reasons = {"open": (None, "reopened"), "closed": ("completed", "not_planned", "duplicate")}
        state = data.get("state", self.issues[int(number)]["state"])
        if data.get("state_reason") not in reasons[state]:
            return as_json({"message": "Validation Failed", "errors": [{"field": "state"}]}, 422)
        invalid = [login for login in data.get("assignees", []) if login not in self.LOGINS]
        if invalid:
            return as_json({"message": "Validation Failed", "errors": [{"value": invalid}]}, 422)
        return as_json(self.edit(int(number), **data))

    routes = [
        ("POST", re.compile(rf"/repos/{REPOSITORY}/issues"), create),
        ("GET", re.compile(rf"/repos/{REPOSITORY}/issues"), list_issues),
        ("GET", re.compile(rf"/repos/{REPOSITORY}/issues/(\d+)"), get),
        ("PATCH", re.compile(rf"/repos/{REPOSITORY}/issues/(\d+)"), patch),
    ]

    # --- What people do on GitHub ---

    def file(self, title: str, **changes: Any) -> int:
        """An issue filed by hand (none of the tracker's labels or markers), or by a
        create; its number."""
        number = len(self.issues) + 1
        now = _github_time(self.now())
        self.issues[number] = {
            "id": 1000 + number,
            "number": number,
            "html_url": f"{self.base}/{self.REPOSITORY}/issues/{number}",
            "title": title,
            "body": "Filed by hand.",
            "state": "open",
            "state_reason": None,
            "labels": [],
            "assignees": [],
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
        }
        self.edit(number, **changes)
        return number

    def edit(self, number: int, **changes: Any) -> dict[str, Any]:
        """Change an issue as GitHub does for a PATCH (labels and assignees by name)."""
        issue = self.issues[number]
        for name in ("title", "body", "state", "state_reason"):
            if name in changes:
                issue[name] = changes[name]
        if "labels" in changes:
            issue["labels"] = [{"name": name} for name in changes["labels"]]
        if "assignees" in changes:
            issue["assignees"] = [{"login": login} for login in changes["assignees"]]
        if "state" in changes:
            closed = changes["state"] == "closed"
            issue["closed_at"] = _github_time(self.now()) if closed else None
        issue["updated_at"] = _github_time(self.now())
        return issue

    def marked(self, marker: str) -> list[dict[str, Any]]:
        """The issues whose body carries the item's hidden marker."""
        return [i for i in self.issues.values() if f"<!-- {marker} -->" in (i["body"] or "")]

    def labels(self, number: int) -> list[str]:
        return [label["name"] for label in self.issues[number]["labels"]]


def _github_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # GitHub's times are to the second


# --- Jira Cloud ---------------------------------------------------------------------


class FakeJira(FakeRemote):
    """Jira Cloud's REST API v3 for one project with the stock workflow
    (To Do, In Progress, Done: each reachable from the others)."""

    PROJECT = "OPS"
    STATUSES = ("To Do", "In Progress", "Done")
    PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
    # accountId -> email; Cloud hides emails by default, so issues carry none.
    ACCOUNTS = {"acc-alice": "alice@example.com", "acc-bob": "bob@example.com"}
    # The API user's, which JQL dates are read in; west of UTC, so that a date
    # written in UTC would be read as hours later and changes would be missed.
    TIME_ZONE = "America/New_York"

    EMAIL = "bot@example.com"
    API_TOKEN = "jira-fake-token"

    def __init__(self, httpserver: HTTPServer) -> None:
        super().__init__(httpserver)
        self.issues: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(10001)

    def _handle(self, request: Request) -> Response:
        auth = request.authorization
        if not auth or (auth.username, auth.password) != (self.EMAIL, self.API_TOKEN):
            return as_json({"errorMessages": ["Client must be authenticated"]}, 401)
        return super()._handle(request)

    def myself(self, request: Request) -> Response:
        return as_json({"accountId": "acc-bot", "timeZone": self.TIME_ZONE})

    def create(self, request: Request) -> Response:
        fields = request.get_json()["fields"]
        errors = self._field_errors(fields)
        if fields.get("project", {}).get("key") != self.PROJECT:
            errors["project"] = "valid project is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if errors:
            return as_json({"errorMessages": [], "errors": errors}, 400)
        key = self.file(
            fields["summary"],
            description=fields.get("description"),
            priority=fields.get("priority", {"name": "Medium"}),
            assignee=self._user(fields.get("assignee")),
            duedate=fields.get("duedate"),
            labels=list(fields.get("labels", [])),
        )
        number = self.issues[key]["id"]
        return as_json(
            {"id": number, "key": key, "self": f"{self.base}/rest/api/3/issue/{number}"}, 201
        )

    def get(self, request: Request, key: str) -> Response:
        if key not in self.issues:
            return self._missing()
        issue = self.issues[key]
        wanted = request.args.get("fields")
        fields = issue["fields"]
        if wanted:
            fields = {name: fields.get(name) for name in wanted.split(",")}
        return as_json({**issue, "fields": fields})

    def put(self, request: Request, key: str) -> Response:
        if key not in self.issues:
            return self._missing()
        data = request.get_json()
        errors = self._field_errors(data.get("fields", {}))
        if errors:
            return as_json({"errorMessages": [], "errors": errors}, 400)
        fields = dict(data.get("fields", {}))
        if "assignee" in fields:
            fields["assignee"] = self._user(fields["assignee"])
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
                    {"id": str(11 + 10 * n), "name": name, "to": {"name": name}}
                    for n, name in enumerate(self.STATUSES)
                    if name != current
                ]
            }
        )

    def transition(self, request: Request, key: str) -> Response:
        if key not in self.issues:
            return self._missing()
        ids = {str(11 + 10 * n): name for n, name in enumerate(self.STATUSES)}
        target = ids.get(str(request.get_json().get("transition", {}).get("id")))
        if target is None or target == self.issues[key]["fields"]["status"]["name"]:
            return as_json({"errorMessages": ["Transition id is not valid"], "errors": {}}, 400)
        self.edit(key, status={"name": target})
        return Response(status=204)

    def search(self, request: Request) -> Response:
        body = request.get_json()
        match = re.fullmatch(
            r'project = "(?P<project>[^"]+)" AND labels = "(?P<label>[^"]+)"'
            r'(?: AND updated >= "(?P<since>\d{4}/\d\d/\d\d \d\d:\d\d)")?'
            r" ORDER BY (?P<order>created|updated) ASC",
            body["jql"],
        )
        if not match:
            return as_json({"errorMessages": [f"the fake cannot read {body['jql']!r}"]}, 400)
        since = None
        if match["since"]:
            since = dt.datetime.strptime(match["since"], "%Y/%m/%d %H:%M")
            since = since.replace(tzinfo=zoneinfo.ZoneInfo(self.TIME_ZONE))
        issues = sorted(
            (
                issue
                for issue in self.issues.values()
                if match["project"] == self.PROJECT
                and match["label"] in issue["fields"]["labels"]
                and (since is None or _read_jira_time(issue["fields"]["updated"]) >= since)
            ),
            key=lambda issue: (issue["fields"][match["order"]], int(issue["id"])),
        )
        start = int(body.get("nextPageToken") or 0)
        page = issues[start : start + body.get("maxResults", 50)]
        wanted = body.get("fields", [])
        page = [{**i, "fields": {f: i["fields"].get(f) for f in wanted}} for i in page]
        following = start + len(page)
        if following >= len(issues):
            return as_json({"issues": page, "isLast": True})
        return as_json({"issues": page, "nextPageToken": str(following)})

    def user_search(self, request: Request) -> Response:
        # Emails are hidden: a search by email finds nobody whose email it could show.
        return as_json([])

    routes = [
        ("GET", re.compile(r"/rest/api/3/myself"), myself),
        ("POST", re.compile(r"/rest/api/3/issue"), create),
        ("GET", re.compile(r"/rest/api/3/issue/([A-Z]+-\d+)"), get),
        ("PUT", re.compile(r"/rest/api/3/issue/([A-Z]+-\d+)"), put),
        ("GET", re.compile(r"/rest/api/3/issue/([A-Z]+-\d+)/transitions"), transitions),
        ("POST", re.compile(r"/rest/api/3/issue/([A-Z]+-\d+)/transitions"), transition),
        ("POST", re.compile(r"/rest/api/3/search/jql"), search),
        ("GET", re.compile(r"/rest/api/3/user/search"), user_search),
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
            "fields": {
                "summary": summary,
                "description": None,
                "status": {"name": "To Do"},
                "priority": {"name": "Medium"},
                "assignee": None,
                "duedate": None,
                "labels": [],
                "created": now,
                "updated": now,
                **fields,
            },
        }
        return key

    def edit(self, key: str, **fields: Any) -> dict[str, Any]:
        """Change an issue's fields (`assignee` as an accountId or None)."""
        issue = self.issues[key]
        if isinstance(fields.get("assignee"), str):
            fields["assignee"] = self._user({"accountId": fields["assignee"]})
        issue["fields"].update(fields, updated=_jira_time(self.now()))
        return issue

    def marked(self, marker: str) -> list[dict[str, Any]]:
        return [i for i in self.issues.values() if marker in i["fields"]["labels"]]

    def status(self, key: str) -> str:
        return self.issues[key]["fields"]["status"]["name"]

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

    def _user(self, reference: dict[str, Any] | None) -> dict[str, Any] | None:
        if not reference:
            return None
        account = reference["accountId"]
        return {"accountId": account, "displayName": account.removeprefix("acc-").title()}

    def _missing(self) -> Response:
        message = "Issue does not exist or you do not have permission to see it."
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

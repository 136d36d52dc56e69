"""Jira, in two flavours chosen by configuration.

- Jira Cloud: JIRA_EMAIL + JIRA_API_TOKEN (basic auth), REST v3 (`/rest/api/3`),
  descriptions in Atlassian Document Format, assignees by `accountId`.
- Jira Server / Data Center: JIRA_PAT (`Authorization: Bearer`), REST v2
  (`/rest/api/2`), descriptions as plain strings, assignees by user `name`.

Defaults fit a stock Jira Software project:

- priority: P0 -> Highest, P1 -> High, P2 -> Medium, P3 -> Low, P4 -> Lowest
  (stock Jira's five priorities)
- status pushed: open -> To Do, in_progress -> In Progress, done -> Done;
  blocked -> In Progress (stock workflows have no Blocked status: a blocked item
  stays in progress in Jira), cancelled -> Done (stock workflows have no
  cancelled status; the resolution is left as the workflow sets it, we do not
  set "Won't Do")
- status read back: To Do, Open, Backlog, Selected for Development, Reopened
  -> open; In Progress, In Review -> in_progress; Blocked -> blocked; Done,
  Closed, Resolved -> done; Won't Do, Cancelled, Rejected -> cancelled

TICKETS_*_MAP settings override any of these; a priority mapped to "" is not
sent (for projects whose screens have no Priority field). Statuses change by
workflow transitions: the one whose target status has the mapped name is used.

Assignees: TICKETS_USER_MAP (email -> accountId on Cloud, user name on Server)
first, else Jira's user search by email, remembered per process. Cloud hides
most users' emails (profile visibility), yet its `user/search?query=` matches
them all the same and answers the accountId without the email: an exact
visible email wins, else the one person found whose email is hidden (the query
matches the start of an email, so two such answers are ambiguous and none is
taken). Server matches `username=` against emails and shows them. An owner Jira
cannot resolve leaves the ticket unassigned rather than failing the push.

Jira answers 409 to an edit or a transition that conflicts with another update
made at the same time; nothing was done, so the client sends it again (with
backoff) and the sync retries later if it keeps conflicting.

Every ticket of ours carries two labels: the item's marker ("followup-123"),
its stable identity, and the marker prefix alone ("followup"), which is how
`changed_since` finds our tickets among the project's others. Jira finds labels
only through JQL search, whose index is updated asynchronously and can lag a
create by a few seconds (Jira Cloud documents this as eventual consistency).
Its remedy, `reconcileIssues`, needs the ids of the issues to reconcile, which
is just what a create whose answer was lost does not have, and issue
properties are found through the same index: Jira offers no lookup that does
not lag. So the window is narrowed, not closed:

- the key of a created issue reaches the sync before anything else can fail:
  a transition after the create that fails raises TicketChangeRefused with
  the ticket, which the sync saves, retrying as the failure allows;
- only a create whose answer never came (a timeout, a connection lost) leaves
  the sync without the key, and it looks the marker up again only after
  TICKETS_RETRY_BASE_SECONDS (60 s by default, and the 5-minute claim of a
  worker that died), far longer than the lag Jira shows; a retry forced sooner
  (a resync) inside the lag could make a second ticket.

Cloud's search pages with an opaque `nextPageToken` that expires (after seven
days, or sooner as Jira sees fit): a page refused for its token starts the
query again from the first page, skipping the issues already read.

Inbound webhooks are signed with JIRA_WEBHOOK_SECRET (`X-Hub-Signature:
sha256=<hex>`), as Jira Cloud's admin webhooks and Data Center 10 do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import time
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from config.json_input import read_json

from .base import (
    PreflightFinding,
    RemoteTicket,
    TicketBackend,
    TicketChangeRefused,
    TicketConfigError,
    TicketError,
    TicketFields,
    WebhookDelivery,
)
from .http import HttpClient

PAGE_SIZE = 100
SUMMARY_MAX_CHARS = 255
# The fields every read asks for: all a RemoteTicket needs, nothing more.
READ_FIELDS = ("summary", "status", "assignee", "duedate", "updated", "labels")
# A user search that found nobody is asked again after this long (people join Jira).
USER_MISS_SECONDS = 600
# A search whose page token expired is started again at most this many times.
MAX_SEARCH_RESTARTS = 2
# Jira's answer to an edit or transition that conflicts with another update: nothing done.
CONFLICT = 409
# What the sync does in a project: preflight asks whether the API user may.
PERMISSIONS = (
    "BROWSE_PROJECTS",
    "CREATE_ISSUES",
    "EDIT_ISSUES",
    "TRANSITION_ISSUES",
    "ASSIGN_ISSUES",
)
# West-most UTC offset in use: JQL times in an unknown zone are moved back this far.
WIDEST_OFFSET = dt.timedelta(hours=12)
KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-\d+")
BROWSE_URL = re.compile(r"https?://[^?#]*/browse/([A-Za-z][A-Za-z0-9_]*-\d+)/?(?:[?#].*)?")


class JiraBackend(TicketBackend):
    name = "jira"
    default_priority_map = {
        "P0": "Highest",
        "P1": "High",
        "P2": "Medium",
        "P3": "Low",
        "P4": "Lowest",
    }
    default_status_map = {
        "open": "To Do",
        "in_progress": "In Progress",
        "blocked": "In Progress",
        "done": "Done",
        "cancelled": "Done",
    }
    default_status_read_map = {
        "To Do": "open",
        "Open": "open",
        "Backlog": "open",
        "Selected for Development": "open",
        "Reopened": "open",
        "In Progress": "in_progress",
        "In Review": "in_progress",
        "Blocked": "blocked",
        "Done": "done",
        "Closed": "done",
        "Resolved": "done",
        "Won't Do": "cancelled",
        "Cancelled": "cancelled",
        "Rejected": "cancelled",
    }

    def __init__(self, *, config: Mapping[str, Any], client: Any) -> None:
        super().__init__(config=config, client=client)
        self.cloud = _is_cloud(config)
        self.url = str(config["url"]).rstrip("/")
        self.api = "/rest/api/3" if self.cloud else "/rest/api/2"
        self.marker_prefix = config.get("marker_prefix") or "followup"
        self._marker_label = re.compile(rf"{re.escape(self.marker_prefix)}-\d+")
        # email -> (accountId or user name, or None; when looked up)
        self._users: dict[str, tuple[str | None, float]] = {}
        self._time_zone: dt.tzinfo | None = None
        self._time_zone_read = False

    # --- Configuration ------------------------------------------------------------

    @classmethod
    def config_from_settings(cls, settings: Any) -> dict[str, Any]:
        return {
            "url": settings.JIRA_URL.rstrip("/"),
            "project": settings.JIRA_PROJECT,
            "email": settings.JIRA_EMAIL,
            "api_token": settings.JIRA_API_TOKEN,
            "pat": settings.JIRA_PAT,
            "issue_type": settings.JIRA_ISSUE_TYPE or "Task",
            "webhook_secret": settings.JIRA_WEBHOOK_SECRET,
            "priority_map": settings.TICKETS_PRIORITY_MAP,
            "status_map": settings.TICKETS_STATUS_MAP,
            "status_read_map": settings.TICKETS_STATUS_READ_MAP,
            "user_map": settings.TICKETS_USER_MAP,
            "marker_prefix": settings.TICKETS_MARKER_PREFIX,
        }

    @classmethod
    def config_problems(cls, config: Mapping[str, Any]) -> list[str]:
        # Only names of settings here: these sentences are shown at start-up and in logs.
        problems = []
        if not config.get("url"):
            problems.append("JIRA_URL is not set.")
        elif not str(config["url"]).startswith(("http://", "https://")):
            problems.append("JIRA_URL must start with http:// or https://.")
        if not config.get("project"):
            problems.append("JIRA_PROJECT is not set.")
        email, token, pat = config.get("email"), config.get("api_token"), config.get("pat")
        if pat and (email or token):
            problems.append(
                "Set either JIRA_EMAIL and JIRA_API_TOKEN (Jira Cloud) or JIRA_PAT "
                "(Jira Server/Data Center), not both."
            )
        elif not pat and not email and not token:
            problems.append(
                "No Jira credentials: set JIRA_EMAIL and JIRA_API_TOKEN (Jira Cloud) "
                "or JIRA_PAT (Jira Server/Data Center)."
            )
        elif not pat and not token:
            problems.append("JIRA_API_TOKEN (or JIRA_API_TOKEN_FILE) is not set; JIRA_EMAIL is.")
        elif not pat and not email:
            problems.append("JIRA_EMAIL is not set; JIRA_API_TOKEN is.")
        return problems

    @classmethod
    def build(cls, config: Mapping[str, Any], **client_options: Any) -> JiraBackend:
        problems = cls.config_problems(config)
        if problems:
            raise TicketConfigError("Jira is not configured: " + " ".join(problems))
        headers = {"Accept": "application/json"}
        auth = None
        if _is_cloud(config):
            auth = (config["email"], config["api_token"])
        else:
            headers["Authorization"] = f"Bearer {config['pat']}"
        client = HttpClient(
            name=cls.name,
            base_url=str(config["url"]).rstrip("/"),
            headers=headers,
            auth=auth,
            retry_statuses=frozenset({CONFLICT}),
            **client_options,
        )
        return cls(config=config, client=client)

    # --- Push ---------------------------------------------------------------

    def find(self, marker: str) -> RemoteTicket | None:
        """The oldest ticket labelled `marker`. Reads JQL search, which can lag a
        create (see the module docstring): accepted, for want of any other way
        to look a Jira issue up by something other than its key."""
        jql = f"{self._project_clause()} AND labels = {_jql_string(marker)} ORDER BY created ASC"
        for issue in self._search(jql):
            # JQL label matching is not exact everywhere (case): check ourselves.
            if marker in ((issue.get("fields") or {}).get("labels") or []):
                return self._ticket(issue)
        return None

    def create(self, fields: TicketFields) -> RemoteTicket:
        body: dict[str, Any] = {
            "project": {"key": self.config["project"]},
            "issuetype": {"name": self.config.get("issue_type") or "Task"},
            "labels": [fields.marker, self.marker_prefix],
            **self._field_values(fields, {"title", "description", "priority"}),
        }
        # Empty values are left out rather than sent as null: a field missing
        # from the create screen is refused even when null.
        if fields.deadline:
            body["duedate"] = fields.deadline.isoformat()
        assignee = self._assignee(fields.owner)
        if assignee:
            body["assignee"] = assignee
        created = self.client.post(f"{self.api}/issue", json={"fields": body}).json()
        key = created["key"]
        ticket = RemoteTicket(
            key=key,
            url=self._browse_url(key),
            # Jira answers a create with the key only; our clock stands in for its own.
            updated_at=dt.datetime.now(dt.UTC),
            status=fields.status,
            deadline=fields.deadline,
            owner=fields.owner if assignee else None,
            marker=fields.marker,
            raw=created,
        )
        # A new issue starts in its workflow's initial status; anything else is a transition.
        wanted = self.status_map.get(fields.status)
        if wanted and wanted.casefold() != (self.status_map.get("open") or "").casefold():
            try:
                self._transition(key, wanted)
            except TicketError as error:
                # The ticket exists: its key must reach the sync, not wait for JQL.
                raise CreatedNotMoved(
                    f"created Jira {key} but could not move it to {wanted!r}: {error.message}",
                    ticket=ticket,
                    known_values={**fields.as_values(), "status": "open"},
                    cause=error,
                ) from error
        return ticket

    def update(self, key: str, fields: TicketFields, changed: set[str]) -> RemoteTicket | None:
        body: dict[str, Any] = {"fields": self._field_values(fields, changed)}
        if "description" in changed:
            # Whenever the description is (re)written, as after a ticket was found
            # again or linked by hand, make sure it carries our labels, so that
            # polls see it; "add" keeps labels people put on it.
            body["update"] = {
                "labels": [{"add": fields.marker}, {"add": self.marker_prefix}],
            }
        if body["fields"] or "update" in body:
            # Jira answers 204 with no body: the ticket is not returned.
            self.client.put(f"{self.api}/issue/{_path(key)}", json=body)
        if "status" in changed:
            wanted = self.status_map.get(fields.status)
            if wanted:
                self._transition(key, wanted)
        return None

    def _field_values(self, fields: TicketFields, changed: set[str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if "title" in changed:
            # One line, at most 255 characters: Jira refuses anything else.
            values["summary"] = " ".join(fields.title.split())[:SUMMARY_MAX_CHARS]
        if "description" in changed:
            values["description"] = (
                adf_document(fields.description, link=fields.item_url)
                if self.cloud
                else fields.description
            )
        if "priority" in changed:
            priority = self.priority_map.get(fields.priority)
            if priority:
                values["priority"] = {"name": priority}
        if "deadline" in changed:
            values["duedate"] = fields.deadline.isoformat() if fields.deadline else None
        if "owner" in changed:
            values["assignee"] = self._assignee(fields.owner)
        return values

    def _transition(self, key: str, wanted: str) -> None:
        """Move the ticket to the status named `wanted` through the workflow."""
        path = f"{self.api}/issue/{_path(key)}/transitions"
        transitions = self.client.get(path).json().get("transitions", [])
        target = wanted.casefold()
        chosen = next(
            (
                t
                for t in transitions
                if ((t.get("to") or {}).get("name") or "").casefold() == target
            ),
            None,
        ) or next((t for t in transitions if (t.get("name") or "").casefold() == target), None)
        if chosen is None:
            # Workflows seldom offer a transition to the status an issue is already in.
            if (self._status_name(key) or "").casefold() == target:
                return
            available = sorted(
                {(t.get("to") or {}).get("name") or t.get("name") or "?" for t in transitions}
            )
            raise TicketError(
                f"Jira {key} cannot move to status {wanted!r}: its workflow offers "
                f"{', '.join(repr(a) for a in available) or 'no transitions'}. "
                "Set TICKETS_STATUS_MAP.",
                permanent=True,
            )
        self.client.post(path, json={"transition": {"id": chosen["id"]}})

    def _status_name(self, key: str) -> str | None:
        issue = self.client.get(
            f"{self.api}/issue/{_path(key)}", params={"fields": "status"}
        ).json()
        return ((issue.get("fields") or {}).get("status") or {}).get("name")

    def owner_read_back(self, email: str | None) -> str | None:
        # An owner with no Jira account was pushed as "unassigned": reading that
        # back is not someone removing the owner in Jira.
        return email if self._user_for(email) else None

    def _assignee(self, email: str | None) -> dict[str, str] | None:
        user = self._user_for(email)
        if not user:
            return None
        return {"accountId": user} if self.cloud else {"name": user}

    def _user_for(self, email: str | None) -> str | None:
        """The Jira account (Cloud accountId, Server user name) of `email`, or None."""
        if not email:
            return None
        mapped = self.remote_user_for(email)
        if mapped:
            return mapped
        address = email.strip().lower()
        cached = self._users.get(address)
        if cached and (cached[0] or time.monotonic() - cached[1] < USER_MISS_SECONDS):
            return cached[0]
        if self.cloud:
            users = self.client.get(f"{self.api}/user/search", params={"query": address}).json()
            found = _cloud_account(users, address)
        else:
            users = self.client.get(f"{self.api}/user/search", params={"username": address}).json()
            found = next(
                (
                    u.get("name")
                    for u in users
                    if (u.get("emailAddress") or "").strip().lower() == address
                ),
                None,
            )
        self._users[address] = (found, time.monotonic())
        return found

    # --- Pull ---------------------------------------------------------------

    def fetch(self, key: str) -> RemoteTicket:
        issue = self.client.get(
            f"{self.api}/issue/{_path(key)}", params={"fields": ",".join(READ_FIELDS)}
        ).json()
        return self._ticket(issue)

    def changed_since(self, since: dt.datetime) -> Iterator[RemoteTicket]:
        # JQL compares in whole minutes, in the time zone of the Jira user we
        # act as: `since` is written in that zone and a minute early, so that
        # nothing changed at or after it is missed (the overlap re-reads are cheap).
        jql = (
            f"{self._project_clause()} AND labels = {_jql_string(self.marker_prefix)}"
            f" AND updated >= {_jql_string(self._jql_time(since))} ORDER BY updated ASC"
        )
        for issue in self._search(jql):
            yield self._ticket(issue)

    def _search(self, jql: str) -> Iterator[Mapping[str, Any]]:
        """Every issue `jql` matches, page after page."""
        first: dict[str, Any] = {"jql": jql, "fields": list(READ_FIELDS), "maxResults": PAGE_SIZE}
        body = first
        if self.cloud:
            # Cloud's /search/jql pages with a token (the old /search is gone there);
            # the last page may omit the token instead of saying isLast.
            read: set[str] = set()
            restarts = 0
            while True:
                try:
                    # A search only reads: safe to send again after a 502.
                    page = self.client.post(
                        f"{self.api}/search/jql", json=body, idempotent=True
                    ).json()
                except TicketError as error:
                    # The token is opaque and expires: read the query again from the top.
                    if body is first or error.status != 400 or restarts >= MAX_SEARCH_RESTARTS:
                        raise
                    restarts += 1
                    body = first
                    continue
                for issue in page.get("issues", []):
                    if issue.get("key") not in read:
                        read.add(issue.get("key"))
                        yield issue
                token = page.get("nextPageToken")
                if page.get("isLast") or not token:
                    return
                body = {**first, "nextPageToken": token}
        else:
            start = 0
            while True:
                page = self.client.post(
                    f"{self.api}/search", json={**body, "startAt": start}, idempotent=True
                ).json()
                issues = page.get("issues", [])
                yield from issues
                start += len(issues)
                if not issues or start >= page.get("total", 0):
                    return

    def _jql_time(self, since: dt.datetime) -> str:
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        moment = since - dt.timedelta(minutes=1)
        zone = self._user_time_zone()
        if zone is None:
            # Unknown zone: read as if it were the west-most one; more, never fewer, tickets.
            local = moment.astimezone(dt.UTC) - WIDEST_OFFSET
        else:
            local = moment.astimezone(zone)
        return local.strftime("%Y/%m/%d %H:%M")

    def _user_time_zone(self) -> dt.tzinfo | None:
        """The time zone of the Jira user we act as, which JQL reads dates in."""
        if not self._time_zone_read:
            name = self.client.get(f"{self.api}/myself").json().get("timeZone") or ""
            try:
                self._time_zone = zoneinfo.ZoneInfo(name) if name else None
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self._time_zone = None
            self._time_zone_read = True
        return self._time_zone

    def parse_reference(self, reference: str) -> str:
        text = reference.strip()
        match = KEY.fullmatch(text) or BROWSE_URL.fullmatch(text)
        if not match:
            raise ValueError(f"not a Jira issue key or browse URL: {reference!r}")
        if match.re is BROWSE_URL and not text.startswith(self.url + "/"):
            raise ValueError(f"not an issue of {self.url}: {reference!r}")
        return (match.group(1) if match.re is BROWSE_URL else match.group(0)).upper()

    # --- Preflight ----------------------------------------------------------------

    def preflight(self, *, owner_emails: Iterable[str] = ()) -> list[PreflightFinding]:
        """The project readable, with the issue type; the API user's permissions
        in it (browse, create, edit, transition, assign); every status
        TICKETS_STATUS_MAP names in the issue type's workflow, and reachable by
        one transition from where a ticket of ours stands; owners with no
        account. Read-only."""
        project_key = self.config["project"]
        project_path = f"{self.api}/project/{_path(project_key)}"
        try:
            project = self.client.get(project_path).json()
        except TicketError as error:
            return [PreflightFinding("connection", f"cannot read project {project_key}: {error}")]
        findings = []
        issue_type = self.config.get("issue_type") or "Task"
        types = [str(t.get("name") or "") for t in project.get("issueTypes") or []]
        if types and issue_type.casefold() not in {t.casefold() for t in types}:
            findings.append(
                PreflightFinding(
                    "workflow",
                    f"project {project_key} has no issue type {issue_type!r} "
                    f"(JIRA_ISSUE_TYPE); it has {', '.join(map(repr, types))}",
                )
            )
        granted = self.client.get(
            f"{self.api}/mypermissions",
            params={"projectKey": project_key, "permissions": ",".join(PERMISSIONS)},
        ).json()
        held = granted.get("permissions") or {}
        missing = [p for p in PERMISSIONS if not (held.get(p) or {}).get("havePermission")]
        if missing:
            findings.append(
                PreflightFinding(
                    "permission",
                    f"the API user lacks {', '.join(missing)} in project {project_key}",
                )
            )
        findings += self._workflow_findings(project_path, issue_type)
        unknown = []
        for email in sorted({e.strip().lower() for e in owner_emails if e.strip()}):
            if not self._user_for(email):
                unknown.append(email)
        if unknown:
            findings.append(
                PreflightFinding(
                    "owner",
                    f"no Jira account found for {', '.join(unknown)} (nor in "
                    "TICKETS_USER_MAP): their tickets stay unassigned",
                    blocking=False,
                )
            )
        return findings

    def _workflow_findings(self, project_path: str, issue_type: str) -> list[PreflightFinding]:
        mapped = list(dict.fromkeys(name for name in self.status_map.values() if name))
        per_type = self.client.get(f"{project_path}/statuses").json()
        statuses = next(
            (
                [s.get("name") or "" for s in entry.get("statuses") or []]
                for entry in per_type
                if str(entry.get("name") or "").casefold() == issue_type.casefold()
            ),
            None,
        )
        findings = []
        if statuses is not None:
            have = {name.casefold() for name in statuses}
            absent = [name for name in mapped if name.casefold() not in have]
            if absent:
                findings.append(
                    PreflightFinding(
                        "status",
                        f"the {issue_type} workflow has no status "
                        f"{', '.join(map(repr, absent))} (TICKETS_STATUS_MAP); it has "
                        f"{', '.join(map(repr, statuses))}",
                    )
                )
        # Transitions are offered per issue, from where it stands: ask one of ours.
        jql = (
            f"{self._project_clause()} AND labels = {_jql_string(self.marker_prefix)}"
            " ORDER BY created ASC"
        )
        sample = next(iter(self._search(jql)), None)
        if sample is None:
            return findings
        key = sample["key"]
        current = ((sample.get("fields") or {}).get("status") or {}).get("name") or ""
        transitions = self.client.get(f"{self.api}/issue/{_path(key)}/transitions").json()
        reachable = {
            ((t.get("to") or {}).get("name") or "").casefold()
            for t in transitions.get("transitions", [])
        }
        unreachable = [
            name
            for name in mapped
            if name.casefold() != current.casefold() and name.casefold() not in reachable
        ]
        if unreachable:
            findings.append(
                PreflightFinding(
                    "workflow",
                    f"from {current!r} (as {key} is) the workflow offers no transition to "
                    f"{', '.join(map(repr, unreachable))}: a ticket there cannot follow its item",
                )
            )
        return findings

    # --- Reading Jira's answers ------------------------------------------------

    def _ticket(self, issue: Mapping[str, Any]) -> RemoteTicket:
        fields = issue.get("fields") or {}
        key = issue["key"]
        owner, owner_known = self._owner(fields.get("assignee"))
        due = fields.get("duedate")
        labels = fields.get("labels") or []
        return RemoteTicket(
            key=key,
            url=self._browse_url(key),
            updated_at=_parse_time(fields.get("updated")),
            status=self.tracker_status((fields.get("status") or {}).get("name")),
            deadline=dt.date.fromisoformat(due) if due else None,
            owner=owner,
            owner_known=owner_known,
            marker=next((label for label in labels if self._marker_label.fullmatch(label)), None),
            raw=issue,
        )

    def _owner(self, assignee: Mapping[str, Any] | None) -> tuple[str | None, bool]:
        """(owner email, known) for a Jira assignee."""
        if not assignee:
            return None, True
        email = (assignee.get("emailAddress") or "").strip().lower()
        if email:
            return email, True
        # Cloud hides the email of users who chose so: map the account back.
        account = assignee.get("accountId") if self.cloud else assignee.get("name")
        email = self.email_for_remote_user(account) or next(
            (address for address, (user, _) in self._users.items() if user and user == account),
            None,
        )
        return email, email is not None

    def _browse_url(self, key: str) -> str:
        return f"{self.url}/browse/{key}"

    def _project_clause(self) -> str:
        return f"project = {_jql_string(self.config['project'])}"

    # --- Inbound webhooks -----------------------------------------------------

    def webhook_verify(self, *, headers: Mapping[str, str], body: bytes) -> bool:
        secret = self.config.get("webhook_secret")
        signature = _header(headers, "X-Hub-Signature")
        if not secret or not signature:
            return False
        method, _, digest = signature.strip().partition("=")
        if method.lower() != "sha256" or not digest:
            return False
        expected = hmac.new(str(secret).encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, digest.strip().lower())

    def webhook_parse(self, *, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        try:
            payload = read_json(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"not JSON: {error}") from None
        issue = payload.get("issue") if isinstance(payload, dict) else None
        key = issue.get("key") if isinstance(issue, dict) else None
        if not key or not isinstance(key, str):
            raise ValueError("no issue key in the delivery")
        delivery_id = _header(headers, "X-Atlassian-Webhook-Identifier")
        if not delivery_id:
            if payload.get("timestamp"):
                delivery_id = f"{payload['timestamp']}:{key}:{payload.get('webhookEvent', '')}"
            else:
                delivery_id = "sha256:" + hashlib.sha256(body).hexdigest()
        return WebhookDelivery(delivery_id=delivery_id, keys=[key])


class CreatedNotMoved(TicketChangeRefused):
    """A ticket created but not moved out of its initial status. As a refused
    change, it gives the sync the ticket to keep (no second create) and what it
    says (its initial status); unlike one, it is retried as the failure that
    stopped the transition allows (a conflict, an outage)."""

    def __init__(
        self,
        message: str,
        *,
        ticket: RemoteTicket,
        known_values: Mapping[str, Any],
        cause: TicketError,
    ) -> None:
        super().__init__(
            message, ticket=ticket, known_values=known_values, permanent=cause.permanent
        )
        self.status = cause.status
        self.retry_after = cause.retry_after


def _cloud_account(users: list[Mapping[str, Any]], address: str) -> str | None:
    """The accountId Cloud's user search found for `address`: the person whose
    visible email is it, else the one person found whose email is hidden."""
    people = [
        u
        for u in users
        if u.get("accountId")
        and u.get("accountType", "atlassian") == "atlassian"
        and u.get("active", True)
    ]
    for user in people:
        if (user.get("emailAddress") or "").strip().lower() == address:
            return user["accountId"]
    hidden = [u for u in people if not u.get("emailAddress")]
    return hidden[0]["accountId"] if len(hidden) == 1 else None


def adf_document(text: str, *, link: str | None = None) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document: a paragraph per
    blank-line-separated block, hard breaks between its lines, and `link` (the
    item's URL) made a link wherever it appears."""
    content = []
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    for block in re.split(r"\n\s*\n", normalized):
        nodes: list[dict[str, Any]] = []
        for line in block.split("\n"):
            line = line.rstrip()
            if nodes:
                nodes.append({"type": "hardBreak"})
            nodes.extend(_text_nodes(line, link))
        if any(node["type"] == "text" for node in nodes):
            content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


def _text_nodes(line: str, link: str | None) -> list[dict[str, Any]]:
    # ADF refuses empty text nodes.
    if not link or link not in line:
        return [{"type": "text", "text": line}] if line else []
    nodes: list[dict[str, Any]] = []
    for index, part in enumerate(line.split(link)):
        if index:
            nodes.append(
                {"type": "text", "text": link, "marks": [{"type": "link", "attrs": {"href": link}}]}
            )
        if part:
            nodes.append({"type": "text", "text": part})
    return nodes


def _is_cloud(config: Mapping[str, Any]) -> bool:
    return not config.get("pat")


def _jql_string(value: str) -> str:
    """`value` as a quoted JQL string (quoted even when not needed: project
    keys and labels can collide with JQL's reserved words)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _path(key: str) -> str:
    return quote(str(key), safe="")


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header's value, whatever the case of its name in `headers`."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value or ""


def _parse_time(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    # Jira writes "2024-03-01T10:00:00.000+0000", which fromisoformat reads since 3.11.
    return dt.datetime.fromisoformat(value)

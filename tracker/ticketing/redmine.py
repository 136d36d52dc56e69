"""Redmine, through its REST API (JSON, `X-Redmine-API-Key`).

Defaults fit Redmine's stock data (`rake redmine:load_default_data`):

- priority: P0 -> Immediate, P1 -> Urgent, P2 -> High, P3 -> Normal, P4 -> Low
- status pushed: open -> New, in_progress -> In Progress, blocked -> Feedback,
  done -> Closed, cancelled -> Rejected
- status read back: New -> open, In Progress -> in_progress, Feedback -> blocked,
  Resolved and Closed -> done, Rejected -> cancelled

Names are looked up in Redmine (`/enumerations/issue_priorities.json`,
`/issue_statuses.json`) once per process, so renamed statuses only need the
TICKETS_*_MAP settings. Assignees: TICKETS_USER_MAP (email -> Redmine user id)
first, else the Redmine user with that email (`/users.json?name=`, which needs
an administrator's key); an owner Redmine cannot assign leaves the ticket
unassigned rather than failing the push.

Each ticket's description ends with the item's marker in brackets
("[followup-123]"); `find` looks it up with Redmine's description filter over
every status, reading the database, not a search index, so a ticket created by
an attempt whose answer was lost is found at once. Redmine 5 sends no webhooks:
changes come back by polling `updated_on`.

Redmine gives a new issue today's date as its start date and refuses a due
date before it, so a ticket is created with the earlier of today and its due
date as start date (an overdue item's ticket starts on its due date); a later
due date that Redmine refuses for the same reason is sent again with that start.

Writes are confirmed. Redmine answers 204 to a status its workflow does not
allow for the user's roles (only administrators bypass workflows), or to a field
the workflow makes read-only, and keeps the old value. So after a change of
status, assignee or due date the issue is read back, and a value it did not
take raises TicketChangeRefused naming the workflow, the role and the move.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from django.utils import timezone

from .base import (
    PreflightFinding,
    RemoteTicket,
    TicketBackend,
    TicketChangeRefused,
    TicketError,
    TicketFields,
    TicketNotFound,
)
from .http import HttpClient

PAGE_SIZE = 100
MARKER_LINE = re.compile(r"\[([A-Za-z0-9_.-]+-\d+)\]\s*$")
# What Redmine may silently keep: read back after every change to one of them.
CONFIRMED_FIELDS = frozenset({"status", "deadline", "owner"})
ALLOWED_NOW = ", which its workflow allows now: trying again"
# A role needs these to sync (edit_own_issues only reaches issues the user created).
NEEDED_PERMISSIONS = {
    "view_issues": "view issues",
    "add_issues": "add issues",
    "edit_issues": "edit issues",
}


class RedmineBackend(TicketBackend):
    name = "redmine"
    default_priority_map = {
        "P0": "Immediate",
        "P1": "Urgent",
        "P2": "High",
        "P3": "Normal",
        "P4": "Low",
    }
    default_status_map = {
        "open": "New",
        "in_progress": "In Progress",
        "blocked": "Feedback",
        "done": "Closed",
        "cancelled": "Rejected",
    }
    default_status_read_map = {
        "New": "open",
        "In Progress": "in_progress",
        "Feedback": "blocked",
        "Resolved": "done",
        "Closed": "done",
        "Rejected": "cancelled",
    }

    def __init__(self, *, config: Mapping[str, Any], client: Any) -> None:
        super().__init__(config=config, client=client)
        self._statuses: dict[str, int] | None = None
        self._priorities: dict[str, int] | None = None
        self._user_ids: dict[str, int | None] = {}
        self._user_emails: dict[int, str | None] = {}
        # Users Redmine refused as assignees (not members of the project).
        self._unassignable: set[int] = set()
        self._closed_statuses: set[str] = set()
        # The API user's role names by project id, and whether it is an administrator.
        self._roles: dict[int, list[str]] | None = None
        self._admin = False
        self._role_details: dict[int, dict[str, Any]] = {}

    @classmethod
    def config_from_settings(cls, settings: Any) -> dict[str, Any]:
        return {
            "url": settings.REDMINE_URL,
            "api_key": settings.REDMINE_API_KEY,
            "project": settings.REDMINE_PROJECT,
            "tracker": settings.REDMINE_TRACKER,
        }

    @classmethod
    def config_problems(cls, config: Mapping[str, Any]) -> list[str]:
        problems = []
        if not config.get("url"):
            problems.append("REDMINE_URL is not set.")
        elif not str(config["url"]).startswith(("http://", "https://")):
            problems.append("REDMINE_URL must start with http:// or https://.")
        if not config.get("api_key"):
            problems.append("REDMINE_API_KEY (or REDMINE_API_KEY_FILE) is not set.")
        if not config.get("project"):
            problems.append("REDMINE_PROJECT is not set.")
        return problems

    @classmethod
    def build(cls, config: Mapping[str, Any], **client_options: Any) -> RedmineBackend:
        client = HttpClient(
            name=cls.name,
            base_url=config["url"],
            headers={"X-Redmine-API-Key": config["api_key"], "Accept": "application/json"},
            **client_options,
        )
        return cls(config=config, client=client)

    # --- Push ---------------------------------------------------------------

    def find(self, marker: str) -> RemoteTicket | None:
        params = {
            "project_id": self.config["project"],
            "status_id": "*",
            "description": f"~[{marker}]",
            "limit": PAGE_SIZE,
        }
        for issue in self.client.get("/issues.json", params=params).json().get("issues", []):
            ticket = self._ticket(issue)
            if ticket.marker == marker:
                return ticket
        return None

    def create(self, fields: TicketFields) -> RemoteTicket:
        sent = {"title", "description", "priority", "deadline", "owner"}
        body = self._issue_body(fields, sent)
        if fields.deadline:
            body["start_date"] = _start_date(fields.deadline).isoformat()
        body["project_id"] = self.config["project"]
        if self.config.get("tracker"):
            body["tracker_id"] = self._tracker_id(self.config["tracker"])
        # New tickets start in the tracker's default status (Redmine ignores one
        # given here); any other status is a move afterwards.
        issue = self._send("post", "/issues.json", body).json()["issue"]
        key = str(issue["id"])
        if not self._status_is(issue, fields.status):
            sent.add("status")
            self._send("put", f"/issues/{key}.json", {"status_id": self._status_id(fields.status)})
            # The answer to the create says the rest; only the move needs reading.
            issue = self._read(key)
        self._confirm(issue, fields, sent)
        return self._ticket(issue)

    def update(self, key: str, fields: TicketFields, changed: set[str]) -> RemoteTicket | None:
        body = self._issue_body(fields, changed)
        if "status" in changed:
            body["status_id"] = self._status_id(fields.status)
        if not body:
            return None
        # Redmine answers 204 with no body, also when it kept some of the old values.
        self._send("put", f"/issues/{self._key(key)}.json", body)
        if not changed & CONFIRMED_FIELDS:
            return None  # title, description, priority: applied or refused with a 422
        issue = self._read(key)
        self._confirm(issue, fields, changed)
        return self._ticket(issue)

    def _issue_body(self, fields: TicketFields, changed: set[str]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if "title" in changed:
            body["subject"] = fields.title[:255]
        if "description" in changed:
            body["description"] = f"{fields.description}\n\n[{fields.marker}]"
        if "priority" in changed:
            body["priority_id"] = self._priority_id(fields.priority)
        if "deadline" in changed:
            body["due_date"] = fields.deadline.isoformat() if fields.deadline else ""
        if "owner" in changed:
            body["assigned_to_id"] = self._user_id(fields.owner) or ""
        return body

    def owner_read_back(self, email: str | None) -> str | None:
        # Owners Redmine has no (assignable) user for were pushed as "unassigned".
        user_id = self._user_id(email)
        return email if user_id and user_id not in self._unassignable else None

    def _send(self, method: str, path: str, issue: dict[str, Any]):
        try:
            response = getattr(self.client, method)(path, json={"issue": issue})
        except TicketError as error:
            if error.status != 422:
                raise
            text = error.message.lower()
            again = dict(issue)
            if issue.get("assigned_to_id") and "assign" in text:
                # An owner who is not a member of the project cannot be assigned:
                # keep the rest of the change rather than fail the whole push.
                self._unassignable.add(int(issue["assigned_to_id"]))
                again["assigned_to_id"] = ""
            if issue.get("due_date") and "start_date" not in issue and "start date" in text:
                # A due date before the start date someone gave the ticket.
                due = dt.date.fromisoformat(issue["due_date"])
                again["start_date"] = _start_date(due).isoformat()
            if again == issue:
                raise
            return self._send(method, path, again)
        if issue.get("assigned_to_id"):
            self._unassignable.discard(int(issue["assigned_to_id"]))
        return response

    # --- Confirming writes ------------------------------------------------------

    def _read(self, key: str, *, include: str = "") -> dict[str, Any]:
        params = {"include": include} if include else None
        return self.client.get(f"/issues/{self._key(key)}.json", params=params).json()["issue"]

    def _status_is(self, issue: Mapping[str, Any], status: str) -> bool:
        wanted = self.status_map.get(status, status)
        return (issue.get("status") or {}).get("name", "").casefold() == wanted.casefold()

    def _assignee_id(self, email: str | None) -> int | None:
        """Who the ticket is assigned to once `email` is pushed as its owner."""
        user_id = self._user_id(email)
        return None if user_id in self._unassignable else user_id

    def _confirm(self, issue: Mapping[str, Any], fields: TicketFields, sent: set[str]) -> None:
        """Raise TicketChangeRefused if `issue`, read back after a write of the
        `sent` fields, kept an old status, due date or assignee."""
        refused: dict[str, str] = {}
        if "status" in sent and not self._status_is(issue, fields.status):
            refused["status"] = self._status_refusal(issue, fields.status)
        due = fields.deadline.isoformat() if fields.deadline else None
        if "deadline" in sent and (issue.get("due_date") or None) != due:
            refused["deadline"] = (
                f"kept due date {issue.get('due_date') or '(none)'} instead of "
                f"{due or '(none)'}: {self._read_only_reason(issue)}, "
                "or its dates come from its subtasks"
            )
        assignee = (issue.get("assigned_to") or {}).get("id")
        if "owner" in sent and assignee != self._assignee_id(fields.owner):
            kept = (issue.get("assigned_to") or {}).get("name") or "(nobody)"
            refused["owner"] = (
                f"kept assignee {kept} instead of {fields.owner or '(nobody)'}: "
                f"{self._read_only_reason(issue)}"
            )
        if not refused:
            return
        # A move the workflow allows, read back undone: changed meanwhile, try again.
        permanent = not refused.get("status", "").endswith(ALLOWED_NOW)
        ticket = self._ticket(issue)
        known = {name: value for name, value in fields.as_values().items() if name in sent}
        read_back = ticket.pulled_values()
        for name in refused:
            # What the ticket kept, when it reads back as a tracker value; else
            # the last value known to be pushed stays.
            known.pop(name, None)
            if name in read_back:
                known[name] = read_back[name]
        raise TicketChangeRefused(
            f"Redmine issue {ticket.key} " + "; ".join(refused.values()),
            ticket=ticket,
            known_values=known,
            permanent=permanent,
        )

    def _status_refusal(self, issue: Mapping[str, Any], status: str) -> str:
        kept = (issue.get("status") or {}).get("name", "?")
        wanted = self.status_map.get(status, status)
        issue = self._read(str(issue["id"]), include="allowed_statuses,children,relations")
        listed = issue.get("allowed_statuses")
        message = f"kept status '{kept}'"
        if listed is None:  # Redmine before 5.0 does not say
            return f"{message} instead of '{wanted}': the workflow does not allow it for this user"
        allowed = [s["name"] for s in listed if s["name"] != kept]
        if wanted.casefold() in {name.casefold() for name in allowed}:
            return f"{message} instead of '{wanted}'{ALLOWED_NOW}"
        message += (
            f": the workflow of {self._roles_named(issue)} (tracker "
            f"{(issue.get('tracker') or {}).get('name', '?')}) does not allow "
            f"{kept} → {wanted} for this user"
        )
        message += f" (from {kept} it allows {', '.join(allowed)})" if allowed else ""
        closing = wanted.casefold() in self._status_ids()[1]
        blocked = any(
            r.get("relation_type") == "blocks" and r.get("issue_to_id") == issue["id"]
            for r in issue.get("relations", [])
        )
        if closing and (issue.get("children") or blocked):
            message += "; or Redmine will not close it before its subtasks and blocking issues"
        elif not closing and issue.get("parent"):
            message += "; or Redmine will not reopen a subtask of a closed issue"
        return message

    def _read_only_reason(self, issue: Mapping[str, Any]) -> str:
        tracker = (issue.get("tracker") or {}).get("name", "?")
        return (
            f"the field is read-only for {self._roles_named(issue)} in the workflow of "
            f"tracker {tracker} (Administration → Workflow → Fields permissions), "
            "or the tracker does not use it"
        )

    def _roles_named(self, issue: Mapping[str, Any]) -> str:
        """The API user's roles in the issue's project, for a message."""
        if self._roles is None:
            user = self.client.get("/users/current.json", params={"include": "memberships"})
            me = user.json()["user"]
            self._admin = bool(me.get("admin"))
            self._roles = {
                m["project"]["id"]: [r["name"] for r in m.get("roles", [])]
                for m in me.get("memberships", [])
                if m.get("project")
            }
        if self._admin:
            return "every role (the user is an administrator)"
        names = self._roles.get((issue.get("project") or {}).get("id"), [])
        if not names:
            return "the user's roles"
        return f"role{'s' if len(names) > 1 else ''} {', '.join(names)}"

    # --- Pull ---------------------------------------------------------------

    def fetch(self, key: str) -> RemoteTicket:
        return self._ticket(self.client.get(f"/issues/{self._key(key)}.json").json()["issue"])

    def changed_since(self, since: dt.datetime) -> Iterator[RemoteTicket]:
        stamp = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        offset = 0
        while True:
            page = self.client.get(
                "/issues.json",
                params={
                    "project_id": self.config["project"],
                    "status_id": "*",
                    "updated_on": f">={stamp}",
                    "sort": "updated_on,id",
                    "limit": PAGE_SIZE,
                    "offset": offset,
                },
            ).json()
            issues = page.get("issues", [])
            for issue in issues:
                yield self._ticket(issue)
            offset += len(issues)
            if not issues or offset >= page.get("total_count", 0):
                return

    def parse_reference(self, reference: str) -> str:
        text = reference.strip()
        match = re.fullmatch(r"(?:.*/issues/)?#?(\d+)(?:\.json)?/?(?:[?#].*)?", text)
        if not match:
            raise ValueError(f"not a Redmine issue number or URL: {reference!r}")
        if "/issues/" in text and not text.startswith(self.config["url"] + "/"):
            raise ValueError(f"not an issue of {self.config['url']}: {reference!r}")
        return match.group(1)

    # --- Preflight ----------------------------------------------------------------

    def preflight(self, *, owner_emails: Iterable[str] = ()) -> list[PreflightFinding]:
        """Read-only checks, as the configured API key: the project and the
        user's permissions in it, the tracker, the mapped statuses and
        priorities, which mapped statuses the workflow does not reach from each
        (Redmine shows a user's allowed moves only on an existing issue: one
        issue of the project in each status is read), and who of `owner_emails`
        cannot be assigned (finding users by email needs an administrator)."""
        findings: list[PreflightFinding] = []
        try:
            self._preflight(findings, owner_emails)
        except TicketError as error:
            findings.append(PreflightFinding("connection", self._connection_problem(error)))
        return findings

    def _preflight(self, findings: list[PreflightFinding], owner_emails: Iterable[str]) -> None:
        def found(area: str, message: str, blocking: bool = True) -> None:
            findings.append(PreflightFinding(area, message, blocking))

        me = self.client.get("/users/current.json", params={"include": "memberships"})
        me = me.json()["user"]
        login = me.get("login", "?")
        reference = self.config["project"]
        try:
            project = self.client.get(
                f"/projects/{reference}.json", params={"include": "trackers"}
            ).json()["project"]
        except TicketError as error:
            if error.status not in (403, 404):
                raise
            found(
                "project",
                f"Redmine user {login} cannot see project {reference!r}: it does not exist or "
                "the user is not a member (REDMINE_PROJECT is the project's identifier).",
            )
            return
        admin = bool(me.get("admin"))
        roles = [
            role
            for membership in me.get("memberships", [])
            if (membership.get("project") or {}).get("id") == project["id"]
            for role in membership.get("roles", [])
        ]
        who = (
            "every role (the user is an administrator)"
            if admin
            else f"role{'s' if len(roles) > 1 else ''} {', '.join(r['name'] for r in roles)}"
        )
        if not admin:
            self._preflight_permissions(found, login, project, roles)

        tracker = self._preflight_tracker(found, project)
        statuses = self.client.get("/issue_statuses.json").json()["issue_statuses"]
        names = {s["name"].casefold(): s for s in statuses}
        targets: dict[str, dict[str, Any]] = {}
        for status, name in self.status_map.items():
            if name.casefold() in names:
                targets[status] = names[name.casefold()]
            else:
                found(
                    "status",
                    f"Redmine has no status {name!r} for {status} (it has "
                    f"{', '.join(s['name'] for s in statuses)}): set TICKETS_STATUS_MAP.",
                )
        for remote in statuses:
            if self.tracker_status(remote["name"]) is None:
                found(
                    "status",
                    f"Redmine status {remote['name']!r} is not read back: an item whose ticket is "
                    "moved there keeps its status (add it to TICKETS_STATUS_READ_MAP).",
                    blocking=False,
                )
        priorities = self.client.get("/enumerations/issue_priorities.json").json()
        active = {
            p["name"].casefold() for p in priorities["issue_priorities"] if p.get("active", 1)
        }
        for priority, name in self.priority_map.items():
            if name.casefold() not in active:
                found(
                    "priority",
                    f"Redmine has no active priority {name!r} for {priority}: "
                    "set TICKETS_PRIORITY_MAP.",
                )
        if tracker is not None:
            self._preflight_workflow(found, project, tracker, targets, who)
        self._preflight_owners(found, project, admin, login, owner_emails)

    def _preflight_permissions(self, found, login: str, project: Mapping, roles: list) -> None:
        if not roles:
            found(
                "permission",
                f"Redmine user {login} is not a member of project {project['name']}: "
                "add it with a role that may view, add and edit issues.",
            )
            return
        granted: set[str] = set()
        for role in roles:
            granted |= set(self._role(role["id"]).get("permissions", []))
        missing = [words for name, words in NEEDED_PERMISSIONS.items() if name not in granted]
        if "edit_issues" not in granted and "edit_own_issues" in granted:
            missing.remove("edit issues")
            found(
                "permission",
                f"Redmine user {login} may edit only the issues it created: linking an item "
                'to an existing ticket will fail (give its role "Edit issues").',
                blocking=False,
            )
        if missing:
            found(
                "permission",
                f"Redmine user {login} may not {', '.join(missing)} in project "
                f"{project['name']}: give its role those permissions "
                "(Administration → Roles and permissions).",
            )

    def _preflight_tracker(self, found, project: Mapping) -> Mapping[str, Any] | None:
        enabled = project.get("trackers", [])
        wanted = self.config.get("tracker")
        if wanted:
            for candidate in enabled:
                if (
                    str(wanted) == str(candidate["id"])
                    or str(wanted).casefold() == candidate["name"].casefold()
                ):
                    break
            else:
                found(
                    "tracker",
                    f"Project {project['name']} has no tracker {wanted!r} (it has "
                    f"{', '.join(t['name'] for t in enabled) or 'none'}): set REDMINE_TRACKER.",
                )
                return None
        elif enabled:
            candidate = enabled[0]  # Redmine's choice when none is given
        else:
            found("tracker", f"Project {project['name']} has no tracker enabled.")
            return None
        for tracker in self.client.get("/trackers.json").json()["trackers"]:
            if tracker["id"] == candidate["id"]:
                return tracker
        return candidate

    def _preflight_workflow(
        self, found, project: Mapping, tracker: Mapping, targets: Mapping, who: str
    ) -> None:
        # A ticket is in its tracker's default status when created, and then in
        # whatever status was pushed last.
        sources = [tracker.get("default_status") or {}, *targets.values()]
        seen: set[int] = set()
        for source in sources:
            if not source or source["id"] in seen:
                continue
            seen.add(source["id"])
            sample = self.client.get(
                "/issues.json",
                params={
                    "project_id": project["id"],
                    "tracker_id": tracker["id"],
                    "status_id": source["id"],
                    "limit": 1,
                },
            ).json()["issues"]
            if not sample:
                found(
                    "workflow",
                    f"Moves from {source['name']} not checked: no {tracker['name']} issue of "
                    f"project {project['name']} is {source['name']} (Redmine shows the allowed "
                    "moves only on an existing issue).",
                    blocking=False,
                )
                continue
            sample_issue = self._read(str(sample[0]["id"]), include="allowed_statuses")
            listed = sample_issue.get("allowed_statuses")
            if listed is None:
                found(
                    "workflow",
                    "Redmine does not list allowed statuses (it is older than 5.0): "
                    "the workflow was not checked.",
                    blocking=False,
                )
                return
            allowed = {s["id"] for s in listed} | {source["id"]}
            refused = {
                status: target["name"]
                for status, target in targets.items()
                if target["id"] not in allowed
            }
            if refused:
                found(
                    "workflow",
                    f"From {source['name']}, the workflow of {who} (tracker {tracker['name']}) "
                    f"allows no move to {_either(refused.values())}: an item made "
                    f"{_either(refused)} while its ticket is {source['name']} cannot be pushed "
                    "(Administration → Workflow).",
                )

    def _preflight_owners(
        self, found, project: Mapping, admin: bool, login: str, owner_emails: Iterable[str]
    ) -> None:
        emails = sorted({e.strip().lower() for e in owner_emails if e and e.strip()})
        if not emails:
            return
        members = self._assignable_members(project["id"])
        unsearchable = []
        for email in emails:
            mapped = self.remote_user_for(email)
            if mapped and str(mapped).isdigit():
                user_id: int | None = int(mapped)
            elif admin:
                user_id = self._lookup_user(mapped or email)
            else:
                unsearchable.append(email)
                continue
            if user_id is None:
                found(
                    "owner",
                    f"{email} has no Redmine user: their tickets stay unassigned "
                    "(or map them in TICKETS_USER_MAP).",
                    blocking=False,
                )
            elif user_id not in members:
                found(
                    "owner",
                    f"{email} (Redmine user {user_id}) is not a member of project "
                    f"{project['name']} with a role that may be assigned issues: "
                    "their tickets stay unassigned.",
                    blocking=False,
                )
        if unsearchable:
            shown = ", ".join(unsearchable[:10])
            more = f" and {len(unsearchable) - 10} more" if len(unsearchable) > 10 else ""
            listed = ", ".join(f"{name} = {pk}" for pk, name in sorted(members.items()))
            found(
                "owner",
                f"Redmine user {login} is not an administrator, so it cannot look users up by "
                f"email: {shown}{more} are not in TICKETS_USER_MAP, so their tickets stay "
                "unassigned and an assignee set in Redmine is not read back. Map each to a "
                f"Redmine user id (assignable members: {listed or 'none'}).",
                blocking=False,
            )

    def _assignable_members(self, project_id: int) -> dict[int, str]:
        """Users who may be assigned issues of the project: id -> name."""
        members: dict[int, str] = {}
        offset = 0
        while True:
            page = self.client.get(
                f"/projects/{project_id}/memberships.json",
                params={"limit": PAGE_SIZE, "offset": offset},
            ).json()
            listed = page.get("memberships", [])
            for membership in listed:
                user = membership.get("user")
                if user and any(
                    self._role(r["id"]).get("assignable") for r in membership.get("roles", [])
                ):
                    members[user["id"]] = user.get("name", "")
            offset += len(listed)
            if not listed or offset >= page.get("total_count", 0):
                return members

    def _role(self, role_id: int) -> dict[str, Any]:
        if role_id not in self._role_details:
            self._role_details[role_id] = self.client.get(f"/roles/{role_id}.json").json()["role"]
        return self._role_details[role_id]

    def _connection_problem(self, error: TicketError) -> str:
        url = self.config["url"]
        if error.status == 401:
            return f"Redmine at {url} refused the API key (401): check REDMINE_API_KEY."
        if error.status == 403:
            return (
                f"Redmine at {url} answered 403: the REST API may be off "
                "(Administration → Settings → API → Enable REST web service)."
            )
        return f"Cannot use Redmine at {url}: {error.message}"

    # --- Reading Redmine's answers -------------------------------------------

    def _ticket(self, issue: Mapping[str, Any]) -> RemoteTicket:
        key = str(issue["id"])
        assignee = issue.get("assigned_to")
        owner: str | None = None
        owner_known = True
        if assignee:
            owner = self._email_for_user(int(assignee["id"]))
            owner_known = owner is not None
        description = issue.get("description") or ""
        marker = MARKER_LINE.search(description)
        due = issue.get("due_date")
        return RemoteTicket(
            key=key,
            url=f"{self.config['url']}/issues/{key}",
            updated_at=_parse_time(issue.get("updated_on")),
            status=self.tracker_status((issue.get("status") or {}).get("name")),
            deadline=dt.date.fromisoformat(due) if due else None,
            owner=owner,
            owner_known=owner_known,
            marker=marker.group(1) if marker else None,
            raw=issue,
        )

    @staticmethod
    def _key(key: str) -> str:
        if not str(key).isdigit():
            raise TicketNotFound(f"not a Redmine issue number: {key!r}")
        return str(key)

    def _status_id(self, status: str) -> int:
        statuses, _ = self._status_ids()
        wanted = self.status_map.get(status, status)
        if wanted.casefold() not in statuses:
            raise TicketError(
                f"Redmine has no status {wanted!r} (for {status}); "
                f"it has: {', '.join(sorted(statuses))}. Set TICKETS_STATUS_MAP.",
                permanent=True,
            )
        return statuses[wanted.casefold()]

    def _status_ids(self) -> tuple[dict[str, int], set[str]]:
        """Redmine's statuses (casefolded name -> id), and which of them are closed."""
        if self._statuses is None:
            listed = self.client.get("/issue_statuses.json").json()["issue_statuses"]
            self._statuses = {s["name"].casefold(): s["id"] for s in listed}
            self._closed_statuses = {s["name"].casefold() for s in listed if s.get("is_closed")}
        return self._statuses, self._closed_statuses

    def _priority_id(self, priority: str) -> int:
        if self._priorities is None:
            listed = self.client.get("/enumerations/issue_priorities.json").json()
            self._priorities = {p["name"].casefold(): p["id"] for p in listed["issue_priorities"]}
        wanted = self.priority_map.get(priority, priority)
        if wanted.casefold() not in self._priorities:
            raise TicketError(
                f"Redmine has no priority {wanted!r} (for {priority}); "
                f"it has: {', '.join(sorted(self._priorities))}. Set TICKETS_PRIORITY_MAP.",
                permanent=True,
            )
        return self._priorities[wanted.casefold()]

    def _tracker_id(self, tracker: str) -> int:
        if str(tracker).isdigit():
            return int(tracker)
        listed = self.client.get("/trackers.json").json()["trackers"]
        for candidate in listed:
            if candidate["name"].casefold() == tracker.casefold():
                return candidate["id"]
        raise TicketError(f"Redmine has no tracker {tracker!r}", permanent=True)

    def _user_id(self, email: str | None) -> int | None:
        if not email:
            return None
        mapped = self.remote_user_for(email)
        if mapped:
            return int(mapped) if str(mapped).isdigit() else self._lookup_user(mapped)
        return self._lookup_user(email)

    def _lookup_user(self, name: str) -> int | None:
        if name not in self._user_ids:
            try:
                users = self.client.get("/users.json", params={"name": name}).json()["users"]
            except TicketError as error:
                if error.status != 403:
                    raise
                users = []  # not an administrator's key: no lookup, tickets stay unassigned
            exact = [
                u
                for u in users
                if name.lower() in (u.get("mail", "").lower(), u.get("login", "").lower())
            ]
            self._user_ids[name] = exact[0]["id"] if exact else None
            if exact:
                self._user_emails[exact[0]["id"]] = exact[0].get("mail", "").lower() or None
        return self._user_ids[name]

    def _email_for_user(self, user_id: int) -> str | None:
        mapped = self.email_for_remote_user(str(user_id))
        if mapped:
            return mapped
        if user_id not in self._user_emails:
            try:
                user = self.client.get(f"/users/{user_id}.json").json()["user"]
                self._user_emails[user_id] = (user.get("mail") or "").lower() or None
            except TicketError as error:
                if error.status not in (403, 404):
                    raise
                self._user_emails[user_id] = None
        return self._user_emails[user_id]


def _either(names: Iterable[str]) -> str:
    """Names joined for a sentence: a; a or b; a, b or c."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _start_date(due: dt.date) -> dt.date:
    """The start date a ticket due on `due` is given: the earlier of today and
    its due date, since Redmine refuses a due date before the start date."""
    return min(timezone.localdate(), due)


def _parse_time(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))

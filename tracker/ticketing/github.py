"""GitHub Issues (github.com or GitHub Enterprise Server), through the REST API.

Configuration: GITHUB_REPOSITORY ("owner/name"), GITHUB_TOKEN (a fine-grained
token with "Issues: read and write", sent as a bearer token), GITHUB_API_URL
(https://api.github.com, or https://host/api/v3 for Enterprise Server) and, for
inbound webhooks, GITHUB_WEBHOOK_SECRET.

GitHub Issues has fewer fields than the tracker, so some live in labels and in
the issue body (defaults, overridable with the TICKETS_*_MAP settings):

- marker: the body ends with a hidden line `<!-- followup-123 -->`, the item's
  identity; tickets also carry the label TICKETS_MARKER_PREFIX ("followup"),
  for people to filter by. Nothing depends on the label: GitHub silently drops
  labels set by a user without push access.
- priority: a label, P0 -> "priority: P0" ... P4 -> "priority: P4"
  (TICKETS_PRIORITY_MAP). A priority change replaces every other priority label.
- status: open/closed with GitHub's `state_reason`: done -> closed as completed,
  cancelled -> closed as not planned, open/in_progress/blocked -> open (reopened
  if it was closed). in_progress and blocked are also labels, "status: in
  progress" and "status: blocked" (TICKETS_STATUS_MAP for the names), so they
  come back when read. Read back: closed as not planned (or duplicate) ->
  cancelled, any other closed -> done, open with a status label -> that status
  (TICKETS_STATUS_READ_MAP may name more labels), open -> open.
- deadline: GitHub Issues has no due date, so the body carries a line
  "Due: YYYY-MM-DD", which is read back (the last such line wins); deleting it
  on GitHub clears the item's deadline.
- owner: the assignee is the GitHub login TICKETS_USER_MAP gives for the owner's
  email (GitHub does not reliably expose users' emails, so there is no lookup).
  GitHub silently drops assignees, like labels, set without push access: every
  create and edit compares its answer with what was sent, and what was dropped
  is a sync error (TicketChangeRefused) naming the missing permission.
  An owner with no login leaves the issue unassigned, and the body says so in
  a hidden line, so that reading the issue back does not mistake it for "nobody
  owns this" and clear the item's owner. An assignee with no email in the map
  is reported as unknown and leaves the owner alone.

Status changes are confirmed: GitHub ignores `state_reason` unless `state`
changes, so a closed issue moving between done and cancelled is reopened, then
closed with the new reason, and the answer must read back as the item's status;
one that does not is a sync error, never a silent revert by the next poll.

An issue transferred to another repository answers 301 with its new address:
requests follow it (within the API's origin, through the address guard) and
the ticket's key becomes "owner/name#number", which every call accepts. Polls
list the configured repository only: a transferred issue is read back on each
push and when a webhook names it (an organisation webhook sees both).

`find` does not use the search API: its index lags by seconds to minutes, so the
issue made by a create whose answer was lost would not be found and would be
made twice. It lists the repository's issues, newest first, and reads bodies
for the marker (not the label, which may have been dropped); it stops after
MAX_FIND_PAGES pages (the 1,000 newest issues), which is plenty, since it looks
for an issue created by an attempt minutes ago. `changed_since` likewise lists
every issue changed and keeps those whose body carries a marker of ours.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from config.json_input import read_json

from .base import (
    SYNCED_FIELDS,
    PreflightFinding,
    RemoteTicket,
    TicketBackend,
    TicketChangeRefused,
    TicketError,
    TicketFields,
    TicketNotFound,
    WebhookDelivery,
)
from .http import HttpClient, TicketRedirected

PAGE_SIZE = 100
# find() reads at most this many pages of the newest issues (see the module docstring).
MAX_FIND_PAGES = 10
# Redirects followed for one request (a transferred issue answers one).
MAX_REDIRECTS = 3
API_VERSION = "2022-11-28"
TITLE_MAX_CHARS = 256
BODY_MAX_CHARS = 65536
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# A ticket's key: its number in the configured repository, or "owner/name#number".
TICKET_KEY = re.compile(r"(?:([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)#)?(\d+)")
DUE_LINE = re.compile(
    r"^[ \t]*Due:[ \t]*(\d{4}-\d{2}-\d{2})[ \t]*\r?$", re.MULTILINE | re.IGNORECASE
)
# Written when the owner has no GitHub login: "unassigned" then means "not known here".
OWNER_UNMAPPED = "<!-- owner has no GitHub login in TICKETS_USER_MAP -->"
SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
# Statuses that live in a label of an open issue; the others are the issue's state.
LABELLED_STATUSES = ("in_progress", "blocked")
OPEN_STATUSES = ("open", "in_progress", "blocked")


class GitHubBackend(TicketBackend):
    name = "github"
    default_priority_map = {
        "P0": "priority: P0",
        "P1": "priority: P1",
        "P2": "priority: P2",
        "P3": "priority: P3",
        "P4": "priority: P4",
    }
    default_status_map = {"in_progress": "status: in progress", "blocked": "status: blocked"}
    default_status_read_map = {"status: in progress": "in_progress", "status: blocked": "blocked"}

    def __init__(self, *, config: Mapping[str, Any], client: Any) -> None:
        super().__init__(config=config, client=client)
        self.repository = str(config.get("repository", "")).strip()
        self.marker_label = str(config.get("marker_prefix") or "followup")
        # A renamed status label is read back without a second setting.
        for status in LABELLED_STATUSES:
            self.status_read_map.setdefault(self.status_map[status].casefold(), status)
        self._priority_labels = {
            label.casefold()
            for label in [*self.default_priority_map.values(), *self.priority_map.values()]
        }
        self._status_labels = {
            label for label, status in self.status_read_map.items() if status in LABELLED_STATUSES
        }

    @classmethod
    def config_from_settings(cls, settings: Any) -> dict[str, Any]:
        return {
            "repository": settings.GITHUB_REPOSITORY,
            "token": settings.GITHUB_TOKEN,
            "api_url": settings.GITHUB_API_URL,
            "webhook_secret": settings.GITHUB_WEBHOOK_SECRET,
        }

    @classmethod
    def config_problems(cls, config: Mapping[str, Any]) -> list[str]:
        problems = []
        repository = str(config.get("repository") or "").strip()
        if not repository:
            problems.append("GITHUB_REPOSITORY is not set (owner/name).")
        elif not REPOSITORY.fullmatch(repository):
            problems.append(f"GITHUB_REPOSITORY must be owner/name, not {repository!r}.")
        if not config.get("token"):
            problems.append("GITHUB_TOKEN (or GITHUB_TOKEN_FILE) is not set.")
        api_url = str(config.get("api_url") or "https://api.github.com")
        if not api_url.startswith(("https://", "http://")):
            problems.append("GITHUB_API_URL must start with https:// (or http://).")
        return problems

    @classmethod
    def build(cls, config: Mapping[str, Any], **client_options: Any) -> GitHubBackend:
        client = HttpClient(
            name=cls.name,
            base_url=config.get("api_url") or "https://api.github.com",
            headers={
                "Authorization": f"Bearer {config['token']}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            **client_options,
        )
        return cls(config=config, client=client)

    # --- Push ---------------------------------------------------------------

    def find(self, marker: str) -> RemoteTicket | None:
        hidden = _marker_pattern(marker)
        pages = self._pages(
            f"{self._repo_path}/issues",
            {
                "state": "all",
                "sort": "created",
                "direction": "desc",
                "per_page": PAGE_SIZE,
            },
            max_pages=MAX_FIND_PAGES,
        )
        for issue in pages:
            if hidden.search(issue.get("body") or ""):
                return self._ticket(issue)
        return None

    def create(self, fields: TicketFields) -> RemoteTicket:
        login = self.remote_user_for(fields.owner)
        labels = [self.marker_label, self._priority_label(fields.priority)]
        if fields.status in LABELLED_STATUSES:
            labels.append(self.status_map[fields.status])
        payload = {
            "title": fields.title[:TITLE_MAX_CHARS],
            "body": self._body(fields),
            "labels": labels,
            "assignees": [login] if login else [],
        }
        issue = self._send("POST", f"{self._repo_path}/issues", json=payload).json()
        self._confirm(issue, payload, fields, set(SYNCED_FIELDS))
        if fields.status in ("done", "cancelled"):
            # Issues are created open; a closed item's ticket is closed right away.
            # If this fails, the next attempt finds the issue and closes it.
            close = _state(fields.status, issue)
            issue = self._send("PATCH", self._issue_path(self._key(issue)), json=close).json()
            self._confirm(issue, close, fields, set(SYNCED_FIELDS))
        return self._ticket(issue)

    def update(self, key: str, fields: TicketFields, changed: set[str]) -> RemoteTicket | None:
        path = self._issue_path(key)
        payload: dict[str, Any] = {}
        if "title" in changed:
            payload["title"] = fields.title[:TITLE_MAX_CHARS]
        if changed & {"description", "deadline", "owner"}:
            payload["body"] = self._body(fields)
        if "owner" in changed:
            login = self.remote_user_for(fields.owner)
            payload["assignees"] = [login] if login else []
        if changed & {"priority", "status"}:
            # PATCH replaces the whole label set: keep labels people added on GitHub.
            current = self._send("GET", path).json()
            path = self._issue_path(self._key(current))  # its new address, if it moved
            payload["labels"] = self._labels(fields, changed, _label_names(current))
            if "status" in changed:
                if self._closing_anew(current, fields.status):
                    # GitHub ignores state_reason unless state changes: reopen, then
                    # close with the new reason.
                    self._send("PATCH", path, json={"state": "open", "state_reason": "reopened"})
                    current = {**current, "state": "open"}
                payload.update(_state(fields.status, current))
        if not payload:
            return None
        issue = self._send("PATCH", path, json=payload).json()
        self._confirm(issue, payload, fields, changed)
        return self._ticket(issue)

    # --- Pull ---------------------------------------------------------------

    def fetch(self, key: str) -> RemoteTicket:
        issue = self._send("GET", self._issue_path(key)).json()
        if "pull_request" in issue:
            raise TicketNotFound(f"github: #{key} is a pull request, not an issue")
        return self._ticket(issue)

    def changed_since(self, since: dt.datetime) -> Iterator[RemoteTicket]:
        stamp = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        pages = self._pages(
            f"{self._repo_path}/issues",
            {
                "state": "all",
                "since": stamp,
                "sort": "updated",
                "direction": "asc",
                "per_page": PAGE_SIZE,
            },
        )
        for issue in pages:
            ticket = self._ticket(issue)
            if ticket.marker:
                yield ticket

    def parse_reference(self, reference: str) -> str:
        text = reference.strip()
        match = re.fullmatch(r"#?(\d+)", text)
        if match:
            return match.group(1)
        match = re.fullmatch(r"([\w.-]+/[\w.-]+)#(\d+)", text)
        if match:
            if match.group(1).casefold() != self.repository.casefold():
                raise ValueError(f"not an issue of {self.repository}: {reference!r}")
            return match.group(2)
        url = urlsplit(text)
        match = re.fullmatch(r"/([\w.-]+/[\w.-]+)/issues/(\d+)/?", url.path)
        if url.scheme in ("http", "https") and match:
            if url.netloc.casefold() != self._web_host.casefold():
                raise ValueError(f"not an issue on {self._web_host}: {reference!r}")
            if match.group(1).casefold() != self.repository.casefold():
                raise ValueError(f"not an issue of {self.repository}: {reference!r}")
            return match.group(2)
        raise ValueError(
            f"not a GitHub issue number (123, #123, owner/name#123) or issue URL: {reference!r}"
        )

    # --- Preflight ----------------------------------------------------------------

    def preflight(self, *, owner_emails: Iterable[str] = ()) -> list[PreflightFinding]:
        """The repository readable, with issues; push access (without it GitHub
        silently drops every label and assignee the sync sets); the labels the
        sync uses (made on first use when missing); owners without a login, and
        logins that cannot be assigned."""
        try:
            repository = self._send("GET", self._repo_path).json()
        except TicketError as error:
            return [PreflightFinding("connection", f"cannot read {self.repository}: {error}")]
        findings = []
        if not repository.get("has_issues", True):
            findings.append(
                PreflightFinding("connection", f"{self.repository} has issues turned off")
            )
        push = (repository.get("permissions") or {}).get("push")
        if push is None:
            findings.append(
                PreflightFinding(
                    "permission",
                    "GitHub did not say whether the token may push to "
                    f"{self.repository}; without push access it drops labels and assignees",
                    blocking=False,
                )
            )
        elif not push:
            findings.append(
                PreflightFinding(
                    "permission",
                    f"the token's user has no push access to {self.repository}: GitHub "
                    "silently drops the labels (priority, in progress, blocked) and "
                    "assignees the sync sets, and every push fails saying so",
                )
            )
        wanted = [
            self.marker_label,
            *dict.fromkeys(self._priority_label(p) for p in self.priority_map),
            *(self.status_map[status] for status in LABELLED_STATUSES),
        ]
        existing = {
            str(label.get("name", "")).casefold()
            for label in self._pages(f"{self._repo_path}/labels", {"per_page": PAGE_SIZE})
        }
        missing = [name for name in wanted if name.casefold() not in existing]
        if missing:
            findings.append(
                PreflightFinding(
                    "labels",
                    f"{self.repository} has no label {', '.join(repr(n) for n in missing)}: "
                    "GitHub makes each on first use (with push access)",
                    blocking=False,
                )
            )
        unmapped = []
        for email in sorted({e.strip().lower() for e in owner_emails if e.strip()}):
            login = self.remote_user_for(email)
            if not login:
                unmapped.append(email)
                continue
            try:
                self.client.get(f"{self._repo_path}/assignees/{quote(login, safe='')}")
            except TicketNotFound:
                findings.append(
                    PreflightFinding(
                        "owner",
                        f"{login} ({email}) cannot be assigned issues in {self.repository}: "
                        "GitHub refuses a create or edit that names them",
                    )
                )
        if unmapped:
            findings.append(
                PreflightFinding(
                    "owner",
                    "no GitHub login in TICKETS_USER_MAP for "
                    f"{', '.join(unmapped)}: their issues stay unassigned",
                    blocking=False,
                )
            )
        return findings

    # --- Inbound webhooks -----------------------------------------------------

    def webhook_verify(self, *, headers: Mapping[str, str], body: bytes) -> bool:
        secret = self.config.get("webhook_secret")
        if not secret:
            return False
        match = SIGNATURE.fullmatch(_header(headers, "X-Hub-Signature-256").strip())
        if not match:
            return False
        expected = hmac.new(str(secret).encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, match.group(1).lower())

    def webhook_parse(self, *, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        delivery_id = _header(headers, "X-GitHub-Delivery").strip()
        if not delivery_id:
            raise ValueError("no X-GitHub-Delivery header")
        payload = _payload(body)
        if _header(headers, "X-GitHub-Event").strip() != "issues":
            return WebhookDelivery(delivery_id=delivery_id, keys=[])  # ping, comments...
        try:
            number = int(payload["issue"]["number"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("an issues event without issue.number") from None
        # An organisation webhook also reports other repositories' issues: named
        # "owner/name#number", they match only issues of ours transferred there.
        repository = payload.get("repository")
        if repository is not None and not isinstance(repository, dict):
            raise ValueError("repository is not an object")
        repository = str((repository or {}).get("full_name") or "")
        if repository and repository.casefold() != self.repository.casefold():
            key = f"{repository}#{number}" if REPOSITORY.fullmatch(repository) else None
            return WebhookDelivery(delivery_id=delivery_id, keys=[key] if key else [])
        return WebhookDelivery(delivery_id=delivery_id, keys=[str(number)])

    # --- Building requests ------------------------------------------------------

    @property
    def _repo_path(self) -> str:
        return f"/repos/{self.repository}"

    def _issue_path(self, key: str) -> str:
        match = TICKET_KEY.fullmatch(str(key))
        if not match:
            raise TicketNotFound(f"not a GitHub issue number: {key!r}")
        return f"/repos/{match.group(1) or self.repository}/issues/{match.group(2)}"

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        """The request, sent on to where a redirect points (a transferred issue's
        new address), within the API's origin: the client refuses anywhere else."""
        for _ in range(MAX_REDIRECTS):
            try:
                return self.client.request(method, path, **kwargs)
            except TicketRedirected as redirect:
                if not redirect.location:
                    raise
                path = redirect.location
            except ValueError as error:  # a location off the API's origin
                raise TicketError(
                    f"github: moved off the API's host: {error}", permanent=True
                ) from None
        return self.client.request(method, path, **kwargs)

    @property
    def _web_host(self) -> str:
        host = urlsplit(str(self.config.get("api_url") or "https://api.github.com")).netloc
        return "github.com" if host.casefold() == "api.github.com" else host

    def _priority_label(self, priority: str) -> str:
        return self.priority_map.get(priority, f"priority: {priority}")

    def _body(self, fields: TicketFields) -> str:
        footer = []
        if fields.deadline:
            footer.append(f"Due: {fields.deadline.isoformat()}")
        # The sync's description usually links the item already.
        if fields.item_url and fields.item_url not in fields.description:
            footer.append(f"Tracked in {fields.item_url}")
        hidden = []
        if fields.owner and not self.remote_user_for(fields.owner):
            hidden.append(OWNER_UNMAPPED)
        hidden.append(f"<!-- {fields.marker} -->")
        tail = "\n\n".join(part for part in ["\n".join(footer), "\n".join(hidden)] if part)
        # The marker must survive GitHub's body limit: shorten the description instead.
        room = BODY_MAX_CHARS - len(tail) - 2
        description = fields.description.strip()[:room]
        return f"{description}\n\n{tail}" if description else tail

    def _labels(self, fields: TicketFields, changed: set[str], current: list[str]) -> list[str]:
        labels = list(current)
        if "priority" in changed:
            labels = [name for name in labels if name.casefold() not in self._priority_labels]
            labels.append(self._priority_label(fields.priority))
        if "status" in changed:
            labels = [name for name in labels if name.casefold() not in self._status_labels]
            if fields.status in LABELLED_STATUSES:
                labels.append(self.status_map[fields.status])
        if self.marker_label.casefold() not in {name.casefold() for name in labels}:
            labels.insert(0, self.marker_label)
        return labels

    def _pages(
        self, path: str, params: dict[str, Any], *, max_pages: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The issues of a listing, following `Link: rel="next"`; pull requests
        (which the issues API lists too) left out."""
        response = self._send("GET", path, params=params)
        pages = 1
        while True:
            for issue in response.json():
                if "pull_request" not in issue:
                    yield issue
            following = response.links.get("next", {}).get("url")
            if not following or (max_pages is not None and pages >= max_pages):
                return
            # The next link carries every parameter; it must stay on the API's origin.
            response = self.client.get(following)
            pages += 1

    # --- Reading GitHub's answers ---------------------------------------------

    def _key(self, issue: Mapping[str, Any]) -> str:
        """The issue's number, or "owner/name#number" once it lives elsewhere."""
        parts = urlsplit(str(issue.get("repository_url") or "")).path.rstrip("/").split("/")
        repository = "/".join(parts[-2:]) if len(parts) >= 3 and parts[-3] == "repos" else ""
        if not repository or repository.casefold() == self.repository.casefold():
            return str(issue["number"])
        return f"{repository}#{issue['number']}"

    def _closing_anew(self, current: Mapping[str, Any], status: str) -> bool:
        """Whether a closed issue must close with another reason than it has."""
        return (
            status in ("done", "cancelled")
            and current.get("state") == "closed"
            and self._status(current) != status
        )

    def _confirm(
        self,
        issue: Mapping[str, Any],
        sent: Mapping[str, Any],
        fields: TicketFields,
        changed: set[str],
    ) -> None:
        """Raise TicketChangeRefused if GitHub's answer to a write lacks what was
        sent: labels or assignees dropped (no push access), a state or close
        reason not taken."""
        have_labels = {name.casefold() for name in _label_names(issue)}
        dropped = [n for n in sent.get("labels", []) if n.casefold() not in have_labels]
        have_logins = {(a.get("login") or "").casefold() for a in issue.get("assignees") or []}
        unassigned = [n for n in sent.get("assignees", []) if n.casefold() not in have_logins]
        problems = []
        if dropped or unassigned:
            what = [f"label {name!r}" for name in dropped]
            what += [f"assignee {login!r}" for login in unassigned]
            problems.append(
                f"dropped the {', '.join(what)}: the token's user needs push access to "
                f"{self.repository} to set labels and assignees"
            )
        wanted = self.status_read_back(fields.status)
        read_back = self._status(issue)
        if "state" in sent and not dropped and read_back != wanted:
            problems.append(
                f"kept the issue {issue.get('state')} ({issue.get('state_reason') or 'no reason'}),"
                f" asked to make it {sent['state']} ({sent.get('state_reason') or 'no reason'})"
            )
        if not problems:
            return
        ticket = self._ticket(issue)
        known = {k: v for k, v in fields.as_values().items() if k in changed}
        if "status" in known and read_back != wanted:
            known["status"] = read_back
        if "owner" in known and unassigned:
            known["owner"] = ticket.owner
        if "priority" in known and self._priority_label(fields.priority).casefold() in {
            name.casefold() for name in dropped
        }:
            known["priority"] = None
        raise TicketChangeRefused(
            f"github: #{ticket.key} {'; '.join(problems)}", ticket=ticket, known_values=known
        )

    def _ticket(self, issue: Mapping[str, Any]) -> RemoteTicket:
        body = issue.get("body") or ""
        owner: str | None = None
        owner_known = True
        assignees = issue.get("assignees") or ([issue["assignee"]] if issue.get("assignee") else [])
        if assignees:
            owner = self._email_for_login(assignees[0].get("login"))
            owner_known = owner is not None
        elif OWNER_UNMAPPED in body:
            owner_known = False
        marker = re.search(rf"<!--\s*({re.escape(self.marker_label)}-[\w.-]+)\s*-->", body)
        return RemoteTicket(
            key=self._key(issue),
            url=issue.get("html_url") or "",
            updated_at=_parse_time(issue.get("updated_at")),
            status=self._status(issue),
            deadline=_due_date(body),
            owner=owner,
            owner_known=owner_known,
            marker=marker.group(1) if marker else None,
            raw=issue,
        )

    def _status(self, issue: Mapping[str, Any]) -> str:
        if issue.get("state") == "closed":
            return (
                "cancelled" if issue.get("state_reason") in ("not_planned", "duplicate") else "done"
            )
        for name in _label_names(issue):
            status = self.tracker_status(name)
            if status in OPEN_STATUSES:
                return status
        return "open"

    def _email_for_login(self, login: str | None) -> str | None:
        # GitHub logins are case-insensitive.
        if not login:
            return None
        for email, mapped in self.user_map.items():
            if str(mapped).casefold() == login.casefold():
                return email
        return None


def _state(status: str, current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The PATCH fields that give an issue the tracker `status`."""
    if status == "done":
        return {"state": "closed", "state_reason": "completed"}
    if status == "cancelled":
        return {"state": "closed", "state_reason": "not_planned"}
    if current is not None and current.get("state") == "closed":
        return {"state": "open", "state_reason": "reopened"}
    return {"state": "open"}


def _label_names(issue: Mapping[str, Any]) -> list[str]:
    # Labels are objects in issue responses, but may be plain names elsewhere.
    return [
        label["name"] if isinstance(label, Mapping) else str(label)
        for label in issue.get("labels") or []
    ]


def _marker_pattern(marker: str) -> re.Pattern[str]:
    # The whole comment, so that "followup-12" does not match "followup-123".
    return re.compile(rf"<!--\s*{re.escape(marker)}\s*-->")


def _due_date(body: str) -> dt.date | None:
    for value in reversed(DUE_LINE.findall(body)):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            continue
    return None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        wanted = name.casefold()
        value = next((v for k, v in headers.items() if k.casefold() == wanted), None)
    return value or ""


def _payload(body: bytes) -> dict[str, Any]:
    """The delivery's JSON, sent as application/json or as a form field `payload`."""
    try:
        if body.startswith(b"payload="):
            body = parse_qs(body.decode())["payload"][0].encode()
        payload = read_json(body)
    except (ValueError, KeyError, UnicodeDecodeError) as error:
        raise ValueError(f"not a JSON delivery: {error}") from None
    if not isinstance(payload, dict):
        raise ValueError("not a JSON object")
    return payload


def _parse_time(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))

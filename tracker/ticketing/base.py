"""The interface every ticket system implements, and the values that cross it.

A backend module (redmine.py, jira.py, github.py, webhook_backend.py) only
builds requests and reads responses: it speaks the tracker's vocabulary on one
side (statuses `open`..`cancelled`, priorities `P1`..`P4`, owner emails, dates)
and the remote system's on the other, through mappings with documented defaults.
Everything else (when to push, what changed, conflicts, retries of whole
operations, history) is the sync's job (`tracker.ticketing.outbox`, `.push`,
`.pull`, `.inbound`), and every HTTP request goes through
`tracker.ticketing.http.HttpClient`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

# The fields the tracker pushes and reads back, in its own vocabulary.
SYNCED_FIELDS = ("title", "description", "priority", "status", "deadline", "owner")
# The fields a ticket system may change and the tracker takes back.
PULLED_FIELDS = ("status", "deadline", "owner")


class TicketError(Exception):
    """A ticket operation failed. `permanent` errors are not retried by the sync
    (bad credentials, a rejected field) until something changes; others are."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after


class TicketNotFound(TicketError):
    """The ticket does not exist (deleted remotely, or a wrong key)."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("permanent", True)
        kwargs.setdefault("status", 404)
        super().__init__(message, **kwargs)


class TicketChangeRefused(TicketError):
    """The ticket system answered a write with success but, read back, did not
    make all of it (Redmine ignores a status its workflow does not allow for the
    user and answers 204). Permanent unless said otherwise: the same change
    would be refused again.

    `ticket` is the ticket as read back. `known_values` is what it now says for
    the fields that were sent, as `TicketFields.as_values()` puts them: the
    value pushed where the change was made, the value read back where it was
    refused. The sync records them as what the ticket says, so that the next
    pull does not take a refused field's old value for a change made remotely.
    """

    def __init__(
        self,
        message: str,
        *,
        ticket: RemoteTicket,
        known_values: Mapping[str, Any],
        permanent: bool = True,
    ) -> None:
        super().__init__(message, permanent=permanent)
        self.ticket = ticket
        self.known_values = dict(known_values)


class TicketConfigError(TicketError):
    """The backend is enabled but not configured well enough to run."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class TicketFields:
    """What the tracker wants the ticket to say: the item's current state."""

    marker: str  # the item's stable identity, e.g. "followup-123"
    title: str
    description: str  # plain text; the backend converts (ADF, Markdown)
    priority: str  # P1..P4
    status: str  # tracker status
    deadline: dt.date | None
    owner: str | None  # owner email, or None
    item_url: str

    def as_values(self) -> dict[str, Any]:
        """The synced fields as JSON-ready values, to remember what was pushed."""
        return {
            "title": self.title,
            "description": self.description,
            "priority": self.priority,
            "status": self.status,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "owner": self.owner,
        }


@dataclass(frozen=True)
class RemoteTicket:
    """A ticket as read from the remote system, mapped to tracker values.

    `status` is None when the remote status maps to no tracker status, and
    `owner` is None when unassigned; `owner_known` is False when the remote
    assignee could not be mapped to an email (the sync then leaves the owner alone).
    """

    key: str
    url: str
    updated_at: dt.datetime
    status: str | None = None
    deadline: dt.date | None = None
    owner: str | None = None
    owner_known: bool = True
    marker: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def pulled_values(self) -> dict[str, Any]:
        """The fields the tracker takes back, as JSON-ready values (unknown ones left out)."""
        values: dict[str, Any] = {"deadline": self.deadline.isoformat() if self.deadline else None}
        if self.status is not None:
            values["status"] = self.status
        if self.owner_known:
            values["owner"] = self.owner
        return values


@dataclass(frozen=True)
class WebhookDelivery:
    """An inbound delivery, once its signature checked: its id and the tickets it names."""

    delivery_id: str
    keys: list[str]


@dataclass(frozen=True)
class PreflightFinding:
    """One thing `sync_tickets --check` found, in words a person can act on.

    `blocking` findings mean some sync will fail (missing permission, a status
    the workflow cannot reach); the others are worth knowing (an owner with no
    remote user stays unassigned).
    """

    area: str  # "connection", "permission", "workflow", "status", "priority", "owner"
    message: str
    blocking: bool = True


class TicketBackend:
    """One ticket system. Subclasses set `name` and implement the methods.

    `config` holds the backend's settings (see `config_from_settings`);
    `client` is the HttpClient to send every request through.
    """

    name: ClassVar[str] = ""
    # False for systems that cannot be read back (the outbound webhook).
    can_pull: ClassVar[bool] = True
    # The tracker's defaults for the mappings; TICKETS_*_MAP settings override them.
    default_priority_map: ClassVar[Mapping[str, str]] = {}
    default_status_map: ClassVar[Mapping[str, str]] = {}
    # Remote status name (case-insensitive) -> tracker status.
    default_status_read_map: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *, config: Mapping[str, Any], client: Any) -> None:
        self.config = config
        self.client = client
        self.priority_map = {**self.default_priority_map, **config.get("priority_map", {})}
        self.status_map = {**self.default_status_map, **config.get("status_map", {})}
        self.status_read_map = {
            k.casefold(): v
            for k, v in {
                **self.default_status_read_map,
                **config.get("status_read_map", {}),
            }.items()
        }
        self.user_map: dict[str, str] = {
            k.strip().lower(): v for k, v in config.get("user_map", {}).items()
        }

    @classmethod
    def config_from_settings(cls, settings: Any) -> dict[str, Any]:
        """This backend's configuration, read from Django settings."""
        raise NotImplementedError

    @classmethod
    def build(cls, config: Mapping[str, Any], **client_options: Any) -> TicketBackend:
        """The backend with its HttpClient made from `config` (auth, base URL);
        `client_options` go to HttpClient (tests pass allow_local, sleep)."""
        raise NotImplementedError

    @classmethod
    def config_problems(cls, config: Mapping[str, Any]) -> list[str]:
        """What is missing or wrong in `config`, one sentence each (system checks)."""
        raise NotImplementedError

    # --- Push ---------------------------------------------------------------

    def find(self, marker: str) -> RemoteTicket | None:
        """The ticket carrying `marker`, or None. Asked before every create, so
        a create that timed out after the remote side made the ticket is found
        rather than repeated. It should read the source of truth rather than a
        search index that lags; where the system offers nothing else (Jira's
        JQL), the sync's retry delay (TICKETS_RETRY_BASE_SECONDS, 60 s, and the
        5-minute claim of a worker that died) is what outlasts the lag."""
        raise NotImplementedError

    def create(self, fields: TicketFields) -> RemoteTicket:
        """Create a ticket carrying `fields.marker`."""
        raise NotImplementedError

    def update(self, key: str, fields: TicketFields, changed: set[str]) -> RemoteTicket | None:
        """Bring the ticket to `fields`; `changed` names the fields that differ from
        what was last pushed (a backend may send only those). Status changes
        transition, close or reopen the ticket. Returns the ticket if the
        response carried it, else None."""
        raise NotImplementedError

    # --- Pull ---------------------------------------------------------------

    def fetch(self, key: str) -> RemoteTicket:
        """The ticket as it is now; TicketNotFound if it is gone."""
        raise NotImplementedError

    def changed_since(self, since: dt.datetime) -> Iterator[RemoteTicket]:
        """Every ticket of the tracker's (marked) changed at or after `since`."""
        raise NotImplementedError

    def parse_reference(self, reference: str) -> str:
        """A ticket key from what a person pastes: a key ("PROJ-12", "#12", "12")
        or the ticket's URL. ValueError if it is neither."""
        raise NotImplementedError

    # --- Preflight ----------------------------------------------------------------

    def preflight(self, *, owner_emails: Iterable[str] = ()) -> list[PreflightFinding]:
        """Connect with the configured credentials and report what will not work:
        missing permissions (labels, assignees, transitions), statuses the
        workflow cannot reach from each status, unmapped statuses and priorities,
        and which of `owner_emails` have no remote user. Read-only: it changes
        nothing in the ticket system. An empty list means everything checked works."""
        return []

    # --- Inbound webhooks -----------------------------------------------------

    def webhook_verify(self, *, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the delivery's signature is valid for the raw `body`
        (constant-time comparison). False when no webhook secret is configured."""
        return False

    def webhook_parse(self, *, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """The delivery id and ticket keys of a verified delivery; ValueError if malformed."""
        raise ValueError("this ticket system sends no webhooks")

    # --- Helpers for subclasses -------------------------------------------------

    def remote_user_for(self, email: str | None) -> str | None:
        """The remote user configured for `email` in TICKETS_USER_MAP, if any."""
        if not email:
            return None
        return self.user_map.get(email.strip().lower())

    def email_for_remote_user(self, remote: str | None) -> str | None:
        """The email TICKETS_USER_MAP gives for a remote user, if any."""
        if not remote:
            return None
        for email, value in self.user_map.items():
            if value == remote:
                return email
        return None

    def status_read_back(self, status: str) -> str:
        """The tracker status that `status` comes back as once pushed: systems
        with fewer statuses fold some together (stock Jira has no "blocked"),
        and reading the folded status back is not a change made remotely."""
        return self.tracker_status(self.status_map.get(status, status)) or status

    def owner_read_back(self, email: str | None) -> str | None:
        """The owner that a ticket pushed with owner `email` reads back as: None
        when the system has no user for it and the ticket was left unassigned."""
        return email

    def tracker_status(self, remote_status: str | None) -> str | None:
        """The tracker status for a remote status name, or None if unmapped."""
        if not remote_status:
            return None
        return self.status_read_map.get(remote_status.casefold())

"""Two-way sync of action items with a ticket system.

One module per system (redmine, jira, github, and webhook_backend: an outbound
webhook, for systems without a backend of their own), each a TicketBackend
(base.py) that sends its requests through the one HTTP client (http.py). The
sync itself, by purpose:

- outbox.py: the services say what changed; pending links, and a push enqueued
  once the change commits.
- push.py: bring a ticket up to what its item says (claims, creates that are
  never repeated, retries with backoff), resync and unlink.
- pull.py: take back what changed in the ticket system (polls, named tickets,
  echoes and conflicts), and link an item to an existing ticket.
- inbound.py: a ticket system's webhook, checked and recorded once; the tickets
  it names are pulled by a task.
- common.py: what push and pull share.

The backend in use is named by TICKETS_BACKEND and found through BACKENDS.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .base import TicketBackend

BACKENDS = {
    "redmine": "tracker.ticketing.redmine.RedmineBackend",
    "jira": "tracker.ticketing.jira.JiraBackend",
    "github": "tracker.ticketing.github.GitHubBackend",
    "webhook": "tracker.ticketing.webhook_backend.WebhookBackend",
}


def backend_class(name: str) -> type[TicketBackend]:
    """The backend class called `name`; KeyError if there is none."""
    return import_string(BACKENDS[name])


def backend_name() -> str:
    """The configured backend's name, or "" when ticket sync is off."""
    return settings.TICKETS_BACKEND


def backend_config(name: str) -> dict:
    """The settings of backend `name`, with the shared mappings."""
    config = backend_class(name).config_from_settings(settings)
    config.setdefault("priority_map", settings.TICKETS_PRIORITY_MAP)
    config.setdefault("status_map", settings.TICKETS_STATUS_MAP)
    config.setdefault("status_read_map", settings.TICKETS_STATUS_READ_MAP)
    config.setdefault("user_map", settings.TICKETS_USER_MAP)
    config.setdefault("marker_prefix", settings.TICKETS_MARKER_PREFIX)
    return config


@cache
def _backend(name: str) -> TicketBackend:
    return backend_class(name).build(backend_config(name))


def get_backend() -> TicketBackend | None:
    """The configured backend (one per process: its HTTP client keeps connections), or None."""
    name = backend_name()
    return _backend(name) if name else None


def reset_backend() -> None:
    """Forget the built backend (after settings change, e.g. in tests)."""
    _backend.cache_clear()

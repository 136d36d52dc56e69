"""What the push and the pull share: the backend they work with, and how much
of an error message they keep."""

from __future__ import annotations

from . import get_backend
from .base import TicketBackend

# TicketLink.last_error and TicketPoll.last_error keep this much of a message.
ERROR_MAX_CHARS = 1000


class SyncDisabled(Exception):
    """Ticket sync is off (TICKETS_BACKEND is empty)."""


def sync_backend(backend: TicketBackend | None = None) -> TicketBackend:
    """`backend`, or the configured one; SyncDisabled when ticket sync is off."""
    backend = backend or get_backend()
    if backend is None:
        raise SyncDisabled("ticket sync is off: TICKETS_BACKEND is not set")
    return backend

"""What will not work with the configured ticket system, found before a sync
fails: `sync_tickets --check` and the admin's ticket links page.

The backend's `preflight` connects with the configured credentials and only
reads; this module gives it the owners to check (those of open items) and turns
a failure to connect into a finding like any other.
"""

from __future__ import annotations

import logging

from ..models import OPEN_STATUSES, ActionItem
from .base import PreflightFinding, TicketBackend, TicketError
from .common import sync_backend

logger = logging.getLogger(__name__)


def ticket_owner_emails() -> list[str]:
    """The emails of the people who own open items, lowercased, sorted."""
    emails = (
        ActionItem.objects.filter(status__in=OPEN_STATUSES, owner__isnull=False)
        .values_list("owner__email", flat=True)
        .distinct()
    )
    return sorted({email.strip().lower() for email in emails if email})


def tickets_preflight(*, backend: TicketBackend | None = None) -> list[PreflightFinding]:
    """The configured backend's findings, blocking ones first; SyncDisabled when sync is off."""
    backend = sync_backend(backend)
    try:
        findings = backend.preflight(owner_emails=ticket_owner_emails())
    except TicketError as error:
        findings = [PreflightFinding("connection", error.message)]
    except Exception as error:
        # A backend's bug, or an answer it did not expect: one line, not a traceback.
        logger.exception("ticket preflight crashed", extra={"system": backend.name})
        findings = [PreflightFinding("connection", f"the check crashed: {error!r}")]
    return sorted(findings, key=lambda finding: not finding.blocking)

"""Ticket sync configured to receive signed webhooks, for tests that send them.

No request goes out to the ticket system: the webhook endpoint only checks the
signature and reads the body, so the backends' addresses are a closed local port.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

from tracker.ticketing import reset_backend


def signature(body: bytes, *, secret: str) -> str:
    """The `sha256=<hex>` HMAC GitHub (X-Hub-Signature-256) and Jira (X-Hub-Signature) send."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_webhooks(settings, *, secret: str) -> Iterator[None]:
    """GitHub as the ticket system, its webhooks signed with `secret` (a fixture body)."""
    settings.TICKETS_BACKEND = "github"
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.GITHUB_API_URL = "http://127.0.0.1:9"
    settings.GITHUB_TOKEN = "token"
    settings.GITHUB_REPOSITORY = "acme/ops"
    settings.GITHUB_WEBHOOK_SECRET = secret
    reset_backend()
    yield
    reset_backend()


def jira_webhooks(settings, *, secret: str) -> Iterator[None]:
    """Jira Cloud as the ticket system, its webhooks signed with `secret` (a fixture body)."""
    settings.TICKETS_BACKEND = "jira"
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.JIRA_URL = "http://127.0.0.1:9"
    settings.JIRA_PROJECT = "OPS"
    settings.JIRA_EMAIL = "bot@example.com"
    settings.JIRA_API_TOKEN = "token"
    settings.JIRA_PAT = ""
    settings.JIRA_WEBHOOK_SECRET = secret
    reset_backend()
    yield
    reset_backend()

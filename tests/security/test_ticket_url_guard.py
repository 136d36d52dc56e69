"""A ticket system URL pointing at the cloud metadata service (or any link-local or loopback
address) is refused before anything is sent, and the push fails for good, saying why."""

import socket

import pytest

from tests import factories
from tracker.models import TicketLink, TicketSyncState
from tracker.ticketing import reset_backend
from tracker.ticketing.push import ticket_push

pytestmark = pytest.mark.django_db


@pytest.fixture
def connects(monkeypatch) -> list:
    """Every connection attempted (none is made)."""
    attempts = []

    def record(sock, address):
        attempts.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket.socket, "connect", record)
    return attempts


@pytest.fixture
def metadata_redmine(settings):
    settings.TICKETS_BACKEND = "redmine"
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = False
    settings.REDMINE_URL = "http://169.254.169.254"
    settings.REDMINE_API_KEY = "a-real-looking-key"
    settings.REDMINE_PROJECT = "ops"
    reset_backend()
    yield
    reset_backend()


def test_it_refuses_to_push_to_a_link_local_redmine(metadata_redmine, connects):
    item = factories.ActionItemFactory(title="Rotate the keys")
    link = TicketLink.objects.create(item=item, system="redmine", state=TicketSyncState.PENDING)

    outcome, error = ticket_push(item_id=item.pk)

    assert outcome == "failed"
    assert "169.254.169.254" in error
    assert "link-local" in error
    assert connects == []
    link.refresh_from_db()
    assert link.state == TicketSyncState.FAILING
    assert link.next_attempt_at is None  # permanent: no retry until the configuration changes
    assert link.key == ""
    assert "169.254.169.254" in link.last_error
    assert "a-real-looking-key" not in link.last_error

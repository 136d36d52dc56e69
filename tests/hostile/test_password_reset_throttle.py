"""Password reset is throttled per target address and per client, invisibly.

Before, nine requests in a second sent nine reset emails to one person. Now past
TRACKER_PASSWORD_RESET_RATE (per address) or TRACKER_PASSWORD_RESET_CLIENT_RATE (per
client, as TRACKER_PROXY_COUNT says to read it) nothing is sent, and the answer is the
same as for an address that was sent an email or names no account.
"""

import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client

from config.security import rate_exceeded
from tests import factories

pytestmark = pytest.mark.django_db

RESET = "/accounts/password_reset/"


@pytest.fixture
def alice():
    return factories.UserFactory(username="alice", email="alice@example.com")


def request_reset(email: str, *, address: str = "203.0.113.7", **extra):
    client = Client(raise_request_exception=False, REMOTE_ADDR=address, **extra)
    return client.post(RESET, {"email": email}, follow=True)


def answer(response) -> tuple:
    """What a visitor can tell apart: the redirects, the status and the page (less the
    CSRF token, masked afresh on every page)."""
    page = re.sub(r'"X-CSRFToken": "[^"]+"', "", response.content.decode())
    return tuple(response.redirect_chain), response.status_code, page


def test_it_sends_one_address_three_emails_an_hour_whatever_the_number_of_requests(alice):
    responses = [request_reset("alice@example.com") for _ in range(9)]

    assert len(mail.outbox) == 3
    assert all(message.to == ["alice@example.com"] for message in mail.outbox)
    assert len({answer(r) for r in responses}) == 1


def test_it_counts_the_address_whatever_its_case_and_the_client(alice, settings):
    settings.TRACKER_PASSWORD_RESET_RATE = "2/hour"

    for n, email in enumerate(["alice@example.com", "ALICE@Example.com", " alice@example.com"]):
        request_reset(email, address=f"198.51.100.{n}")

    assert len(mail.outbox) == 2


def test_it_answers_the_same_whether_sent_throttled_or_unknown(alice, settings):
    settings.TRACKER_PASSWORD_RESET_RATE = "1/hour"

    sent = request_reset("alice@example.com")
    throttled = request_reset("alice@example.com")
    unknown = request_reset("nobody@example.com")

    assert len(mail.outbox) == 1
    assert answer(sent) == answer(throttled) == answer(unknown)
    assert sent.redirect_chain == [("/accounts/password_reset/done/", 302)]


def test_it_limits_each_client_across_addresses(settings):
    settings.TRACKER_PASSWORD_RESET_CLIENT_RATE = "4/hour"
    for n in range(6):
        factories.UserFactory(username=f"user{n}", email=f"user{n}@example.com")

    for n in range(6):
        request_reset(f"user{n}@example.com")
    request_reset("user5@example.com", address="203.0.113.8")

    assert [m.to[0] for m in mail.outbox] == [
        "user0@example.com",
        "user1@example.com",
        "user2@example.com",
        "user3@example.com",
        "user5@example.com",
    ]


def test_a_throttled_client_does_not_use_up_the_addresss_own_limit(alice, settings):
    settings.TRACKER_PASSWORD_RESET_CLIENT_RATE = "1/hour"
    settings.TRACKER_PASSWORD_RESET_RATE = "2/hour"
    for _ in range(5):
        request_reset("alice@example.com", address="192.0.2.66")

    request_reset("alice@example.com", address="203.0.113.7")

    assert len(mail.outbox) == 2


def test_it_does_not_believe_x_forwarded_for_without_proxies(settings):
    settings.TRACKER_PASSWORD_RESET_CLIENT_RATE = "2/hour"
    for n in range(4):
        factories.UserFactory(username=f"user{n}", email=f"user{n}@example.com")

    for n in range(4):
        request_reset(f"user{n}@example.com", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")

    assert len(mail.outbox) == 2


def test_it_tells_clients_apart_behind_the_configured_proxies(settings):
    settings.TRACKER_PROXY_COUNT = 1
    settings.TRACKER_PASSWORD_RESET_CLIENT_RATE = "1/hour"
    for n in range(3):
        factories.UserFactory(username=f"user{n}", email=f"user{n}@example.com")

    for n in range(3):
        request_reset(
            f"user{n}@example.com", address="10.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        )
    request_reset("user0@example.com", address="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.0")

    assert [m.to[0] for m in mail.outbox] == [
        "user0@example.com",
        "user1@example.com",
        "user2@example.com",
    ]


def test_it_sends_again_once_the_window_is_over(alice, settings):
    settings.TRACKER_PASSWORD_RESET_RATE = "1/s"
    request_reset("alice@example.com")
    request_reset("alice@example.com")
    assert len(mail.outbox) == 1

    time.sleep(1.1)  # the counters expire in the cache itself (Redis), not on our clock
    request_reset("alice@example.com")

    assert len(mail.outbox) == 2


def test_an_empty_rate_is_no_limit(alice, settings):
    settings.TRACKER_PASSWORD_RESET_RATE = ""
    settings.TRACKER_PASSWORD_RESET_CLIENT_RATE = ""

    for _ in range(6):
        request_reset("alice@example.com")

    assert len(mail.outbox) == 6


def test_it_logs_the_throttle_without_the_address(alice, settings, caplog):
    settings.TRACKER_PASSWORD_RESET_RATE = "1/hour"
    request_reset("alice@example.com")

    with caplog.at_level(logging.WARNING, logger="config.password_reset"):
        request_reset("alice@example.com")

    assert "Password reset throttled" in caplog.text
    assert "alice" not in caplog.text


@pytest.mark.redis
def test_requests_racing_each_get_a_count_of_their_own():
    results = []
    start = threading.Barrier(20)

    def hit():
        start.wait()
        results.append(rate_exceeded(key="race", rate="3/min"))

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 3 + [True] * 17


@pytest.mark.parametrize("rate", ["3/fortnight", "three/hour", "3"])
def test_a_malformed_rate_stops_the_process_at_start(tmp_path, rate):
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "TRACKER_VAR_DIR": str(tmp_path),
        "TRACKER_PASSWORD_RESET_RATE": rate,
    }

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert (
        f"TRACKER_PASSWORD_RESET_RATE={rate!r}: use N/s, N/min, N/hour or N/day." in result.stderr
    )

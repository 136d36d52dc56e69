"""Sign-in lockout (django-axes): after TRACKER_LOGIN_FAILURE_LIMIT wrong passwords for one
username from one address, both sign-in pages refuse that pair until the cool-off ends."""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone

from tests import factories

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]
WRONG = "not the password"
NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def alice(db):
    # Staff, so that the admin's sign-in accepts her too.
    return factories.UserFactory(username="alice", email="alice@example.com", is_staff=True)


def sign_in(
    path: str, password: str, *, username: str = "alice", address: str = "203.0.113.7", **extra
):
    client = Client(REMOTE_ADDR=address, **extra)
    response = client.post(path, {"username": username, "password": password, "next": "/"})
    return response, client.session.get(SESSION_KEY)


def fail(path: str, times: int, **kwargs) -> None:
    """Sign in with a wrong password `times` times; the failure that reaches the limit
    is answered with the lockout page already."""
    for _ in range(times):
        response, user = sign_in(path, WRONG, **kwargs)
        assert response.status_code in (200, 429), response.status_code
        assert user is None


def assert_locked_out(response, user) -> None:
    assert response.status_code == 429
    assert user is None
    body = response.content.decode()
    assert "Too many sign-in attempts" in body
    assert "Try again in 15 minutes" in body
    assert response["Retry-After"] == str(15 * 60)
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_it_locks_a_username_out_at_the_fifth_failure(alice, path):
    for _ in range(4):
        response, _ = sign_in(path, WRONG)
        assert response.status_code == 200  # the form, with its error
        assert "correct username and password" in response.content.decode()

    assert_locked_out(*sign_in(path, WRONG))
    # The right password is refused too: the attacker must not learn it is right.
    assert_locked_out(*sign_in(path, PASSWORD))


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_it_lets_the_user_in_again_after_the_cool_off(alice, path, time_machine):
    fail(path, 5)
    time_machine.move_to(NOW + dt.timedelta(minutes=10), tick=False)
    assert_locked_out(*sign_in(path, PASSWORD))
    # More than 15 minutes after the failures, but an attempt during the lockout
    # started the wait again.
    time_machine.move_to(NOW + dt.timedelta(minutes=20), tick=False)
    assert_locked_out(*sign_in(path, PASSWORD))

    time_machine.move_to(NOW + dt.timedelta(minutes=36), tick=False)
    response, user = sign_in(path, PASSWORD)

    assert response.status_code == 302
    assert user == str(alice.pk)


def test_it_counts_failures_on_both_sign_in_pages_together(alice):
    fail("/accounts/login/", 3)
    fail("/admin/login/", 2)

    assert_locked_out(*sign_in("/accounts/login/", PASSWORD))
    assert_locked_out(*sign_in("/admin/login/", PASSWORD))


def test_it_locks_out_only_the_username_and_address_that_failed(alice):
    factories.UserFactory(username="bob")
    fail("/accounts/login/", 5)

    # Alice from her own address, and Bob from the attacker's, still sign in.
    assert sign_in("/accounts/login/", PASSWORD, address="198.51.100.20")[0].status_code == 302
    assert sign_in("/accounts/login/", PASSWORD, username="bob")[0].status_code == 302


def test_it_forgets_the_failures_after_a_successful_sign_in(alice):
    fail("/accounts/login/", 4)
    assert sign_in("/accounts/login/", PASSWORD)[0].status_code == 302

    fail("/accounts/login/", 4)

    assert sign_in("/accounts/login/", PASSWORD)[0].status_code == 302


def test_it_takes_the_limit_and_cool_off_from_settings(alice, settings, time_machine):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=1)
    fail("/accounts/login/", 1)

    response, _ = sign_in("/accounts/login/", WRONG)
    assert response.status_code == 429
    assert "Try again in 1 minute." in response.content.decode()

    time_machine.move_to(NOW + dt.timedelta(minutes=2), tick=False)
    assert sign_in("/accounts/login/", PASSWORD)[0].status_code == 302


def test_it_ignores_x_forwarded_for_unless_told_there_is_a_proxy(alice):
    # An attacker sending a fresh X-Forwarded-For with every guess gains nothing.
    for n in range(5):
        sign_in("/accounts/login/", WRONG, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    assert_locked_out(*sign_in("/accounts/login/", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99"))


def test_it_counts_by_the_forwarded_address_behind_a_proxy(alice, settings):
    settings.TRACKER_PROXY_COUNT = 1
    proxy = {"address": "10.0.0.2"}
    fail("/accounts/login/", 5, HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.7", **proxy)

    locked = sign_in("/accounts/login/", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)
    other = sign_in("/accounts/login/", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.20", **proxy)

    assert_locked_out(*locked)
    assert other[0].status_code == 302
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


def test_it_records_failures_without_the_password(alice):
    fail("/accounts/login/", 2)

    (attempt,) = AccessAttempt.objects.all()
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == (
        "alice",
        "203.0.113.7",
        2,
    )
    assert attempt.attempt_time == timezone.now()
    assert WRONG not in attempt.post_data
    assert "password=****" in attempt.post_data  # masked

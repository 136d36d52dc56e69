"""Absurd usernames and emails on the sign-in and password-reset pages: the usual
"wrong credentials" answer or a form error, never a server error.

django-axes records each failed sign-in with its username in a 255-character
column: a longer username overflowed it on PostgreSQL, and the sign-in answered 500.
"""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client

from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]
COLUMN = AccessAttempt._meta.get_field("username").max_length


def sign_in(path: str, username: str, password: str = "not the password"):
    client = Client(raise_request_exception=False, REMOTE_ADDR="203.0.113.9")
    response = client.post(path, {"username": username, "password": password, "next": "/"})
    return response, client.session.get(SESSION_KEY)


@pytest.mark.parametrize("length", [COLUMN + 1, 300, 5000])
@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_it_answers_wrong_credentials_to_a_username_longer_than_axes_stores(path, length):
    response, user = sign_in(path, "u" * length)

    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
    assert user is None


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_it_still_counts_the_failures_of_an_overlong_username(path, settings):
    username = "x" * 400
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(path, username)[0].status_code == 200

    response, _ = sign_in(path, username)

    assert response.status_code == 429
    attempt = AccessAttempt.objects.get()
    assert attempt.username == username[:COLUMN]
    assert attempt.failures_since_start == settings.AXES_FAILURE_LIMIT


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_it_answers_a_form_error_to_a_username_carrying_a_nul(path):
    response, user = sign_in(path, "alice\x00")

    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    assert user is None


def test_it_still_signs_in_a_real_user():
    factories.UserFactory(username="alice", email="alice@example.com")

    response, user = sign_in("/accounts/login/", "alice", "correct horse battery staple")

    assert response.status_code == 302
    assert user is not None


@pytest.mark.parametrize(
    "email",
    [
        # Passes Django's email validator (320 characters at most) but not the 254 of the column.
        "a" * 64 + "@" + ("b" * 63 + ".") * 3 + "com",
        "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "c" * 50 + ".com",
        "a" * 300,
    ],
    ids=["260", "300", "not-an-email"],
)
def test_it_answers_a_form_error_to_an_overlong_password_reset_email(email):
    factories.UserFactory(username="alice", email="alice@example.com")
    client = Client(raise_request_exception=False)

    response = client.post("/accounts/password_reset/", {"email": email})

    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert '<p class="notice error">' in response.content.decode()
    assert mail.outbox == []

"""Sign in, sign out and password reset through Django's views and our templates."""

import re
import uuid

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests import factories

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a fresh tangerine umbrella"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings):
    # Password reset requests are counted per address and client in the cache (Redis when
    # REDIS_URL is set): a fresh prefix keeps each test's counts its own, run after run.
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"authtest-{uuid.uuid4().hex}"}
    }


@pytest.fixture
def user():
    return factories.UserFactory(username="alice", email="alice@example.com")


def _signed_in_user_id(client: Client) -> str | None:
    return client.session.get(SESSION_KEY)


def test_it_renders_the_login_page_with_labelled_inputs(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert f'href="{reverse("password_reset")}">Forgot your password?</a>' in html
    assert response.templates[0].name == "registration/login.html"
    assert "base.html" in [t.name for t in response.templates]


def test_it_sends_an_anonymous_visitor_to_the_login_page(client):
    response = client.get(reverse("dashboard"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/"


def test_it_shows_an_error_for_a_wrong_password(client, user):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "Please enter a correct username and password" in response.content.decode()
    assert _signed_in_user_id(client) is None


def test_it_redirects_to_the_dashboard_after_signing_in(client, user):
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert _signed_in_user_id(client) == str(user.pk)


def test_it_follows_next_after_signing_in(client, user):
    response = client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD, "next": "/items/mine/"}
    )

    assert response["Location"] == "/items/mine/"


def test_it_signs_out_with_a_post(client, user):
    client.force_login(user)

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert _signed_in_user_id(client) is None


def test_it_does_not_sign_out_on_a_get(client, user):
    # A link or an <img> on another site must not be able to sign anyone out.
    client.force_login(user)

    response = client.get(reverse("logout"))

    assert response.status_code == 405
    assert _signed_in_user_id(client) == str(user.pk)


def test_it_enforces_csrf_on_login(user):
    client = Client(enforce_csrf_checks=True)

    refused = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 403
    assert _signed_in_user_id(client) is None

    page = client.get(reverse("login"))
    token = page.context["csrf_token"]
    accepted = client.post(
        reverse("login"),
        {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": str(token)},
    )
    assert accepted.status_code == 302
    assert _signed_in_user_id(client) == str(user.pk)


def test_it_resets_a_password_through_the_emailed_link(client, user):
    response = client.post(reverse("password_reset"), {"email": "ALICE@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "Reset your password on the follow-up tracker"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body)
    assert link, message.body

    # The emailed link swaps its token for a session and redirects to a "set-password" URL.
    confirm = client.get(link.group(1), follow=True)
    assert confirm.status_code == 200
    assert confirm.context["validlink"] is True
    assert '<label for="id_new_password1">' in confirm.content.decode()
    done = client.post(
        confirm.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("password_reset_complete")

    old = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert old.status_code == 200
    new = client.post(reverse("login"), {"username": "alice", "password": NEW_PASSWORD})
    assert new.status_code == 302
    assert _signed_in_user_id(client) == str(user.pk)

    # The link works once.
    again = client.get(link.group(1), follow=True)
    assert again.context["validlink"] is False
    assert "This link no longer works" in again.content.decode()


def test_it_sends_no_email_for_an_unknown_address(client, user):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})

    # Same answer as for a known address, so the form does not reveal who has an account.
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_it_shows_why_a_new_password_is_refused(client, user):
    client.post(reverse("password_reset"), {"email": "alice@example.com"})
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    confirm = client.get(link, follow=True)

    response = client.post(
        confirm.redirect_chain[-1][0], {"new_password1": "short", "new_password2": "other"}
    )

    assert response.status_code == 200
    assert "The two password fields didn" in response.content.decode()


def test_it_changes_the_password_of_a_signed_in_user(client, user):
    client.force_login(user)
    assert client.get(reverse("password_change")).status_code == 200

    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response["Location"] == reverse("password_change_done")
    assert client.get(reverse("password_change_done")).status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

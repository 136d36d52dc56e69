"""Security headers on pages and API answers, as production sends them.

The tests run with DEBUG=1; production's values (set in config/settings.py when
DEBUG is off) are put in place with override_settings, before each client loads
the middleware that reads them.
"""

import pytest
from django.test import Client, override_settings

from tests.test_settings import production_env, settings_in
from tracker.tokens import api_token_create

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

PRODUCTION = override_settings(
    DEBUG=False,
    SECURE_SSL_REDIRECT=True,
    SESSION_COOKIE_SECURE=True,
    CSRF_COOKIE_SECURE=True,
    SECURE_HSTS_SECONDS=31536000,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SECURE_HSTS_PRELOAD=False,
)
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def directives(header: str) -> dict[str, str]:
    parts = [part.strip().split(" ", 1) for part in header.split(";") if part.strip()]
    return {name: value for name, value in parts}


def assert_production_headers(response) -> None:
    policy = directives(response["Content-Security-Policy"])
    assert policy == POLICY
    for name in ("script-src", "style-src", "default-src"):
        assert "unsafe" not in policy[name], policy
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@PRODUCTION
def test_it_sends_the_security_headers_on_a_page(world):
    client = world.web("reader")

    response = client.get("/items/", secure=True)

    assert response.status_code == 200
    assert_production_headers(response)


@PRODUCTION
def test_it_sends_the_security_headers_on_an_api_answer(world):
    _, key = api_token_create(user=world.users["reader"], name="ci")
    client = Client(headers={"Authorization": f"Bearer {key}"})

    response = client.get("/api/v1/action-items/", secure=True)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert_production_headers(response)


@PRODUCTION
@pytest.mark.parametrize(
    "path", ["/accounts/login/", "/admin/login/", "/no-such-page/", "/api/v1/docs/"]
)
def test_it_sends_the_policy_on_the_sign_in_docs_and_error_pages(client, path):
    response = client.get(path, secure=True)

    assert response.status_code in (200, 404)
    assert_production_headers(response)


@PRODUCTION
def test_it_redirects_plain_http_to_https(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"


@PRODUCTION
def test_it_sets_secure_http_only_cookies_at_sign_in(world):
    client = Client()
    client.get("/accounts/login/", secure=True)

    response = client.post(
        "/accounts/login/", {"username": "rita", "password": PASSWORD}, secure=True
    )

    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"]
    assert session["samesite"] == "Lax"
    assert session["max-age"] == 12 * 3600
    assert client.cookies["csrftoken"]["secure"]


def test_it_serves_no_inline_script_or_style_in_the_swagger_page(client):
    """The API docs' page loads its script and styles from URLs (the policy runs no inline one)."""
    page = client.get("/api/v1/docs/").content.decode()
    script = client.get("/api/v1/docs/?script=")

    assert "<style" not in page and "style=" not in page
    assert '<script src="/api/v1/docs/?script="></script>' in page
    assert "<script>" not in page
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")


def test_it_reads_the_security_settings_from_the_environment(tmp_path):
    names = (
        "SESSION_COOKIE_AGE",
        "SESSION_EXPIRE_AT_BROWSER_CLOSE",
        "AXES_FAILURE_LIMIT",
        "AXES_COOLOFF_TIME",
        "TRACKER_PROXY_COUNT",
        "TRACKER_API_TOKEN_FAILURE_RATE",
        "SECURE_HSTS_SECONDS",
        "SESSION_COOKIE_SECURE",
    )
    defaults = settings_in(production_env(tmp_path), *names)
    assert defaults == {
        "SESSION_COOKIE_AGE": 12 * 3600,
        "SESSION_EXPIRE_AT_BROWSER_CLOSE": False,
        "AXES_FAILURE_LIMIT": 5,
        "AXES_COOLOFF_TIME": "0:15:00",
        "TRACKER_PROXY_COUNT": 0,
        "TRACKER_API_TOKEN_FAILURE_RATE": "20/min",
        "SECURE_HSTS_SECONDS": 31536000,
        "SESSION_COOKIE_SECURE": True,
    }

    configured = settings_in(
        production_env(
            tmp_path,
            TRACKER_SESSION_HOURS="8",
            TRACKER_LOGIN_FAILURE_LIMIT="3",
            TRACKER_LOGIN_COOLOFF_MINUTES="60",
            TRACKER_PROXY_COUNT="1",
            TRACKER_API_TOKEN_FAILURE_RATE="5/hour",
        ),
        *names[:6],
    )
    assert configured == {
        "SESSION_COOKIE_AGE": 8 * 3600,
        "SESSION_EXPIRE_AT_BROWSER_CLOSE": False,
        "AXES_FAILURE_LIMIT": 3,
        "AXES_COOLOFF_TIME": "1:00:00",
        "TRACKER_PROXY_COUNT": 1,
        "TRACKER_API_TOKEN_FAILURE_RATE": "5/hour",
    }

"""Sessions end TRACKER_SESSION_HOURS after sign-in; API tokens stop at expiry or
revocation; guessing tokens from one address is cut short."""

import datetime as dt

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory

from config.security import client_ip
from tracker.tokens import api_token_create, api_token_revoke

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
ITEMS = "/api/v1/action-items/"


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


# --- Sessions ----------------------------------------------------------------------


def signed_in_client(world) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"username": "rita", "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_it_ends_a_session_twelve_hours_after_sign_in(world, time_machine):
    client = signed_in_client(world)

    time_machine.move_to(NOW + dt.timedelta(hours=11, minutes=59), tick=False)
    assert client.get("/items/").status_code == 200
    time_machine.move_to(NOW + dt.timedelta(hours=12, minutes=1), tick=False)
    response = client.get("/items/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/items/"


def test_it_does_not_extend_a_session_by_browsing(world, time_machine):
    client = signed_in_client(world)
    for hours in (3, 6, 9, 11):
        time_machine.move_to(NOW + dt.timedelta(hours=hours), tick=False)
        assert client.get("/").status_code == 200

    time_machine.move_to(NOW + dt.timedelta(hours=12, seconds=1), tick=False)

    assert client.get("/").status_code == 302


def test_it_takes_the_session_length_from_settings(world, settings, time_machine):
    settings.SESSION_COOKIE_AGE = 3600
    client = signed_in_client(world)
    assert client.cookies["sessionid"]["max-age"] == 3600

    time_machine.move_to(NOW + dt.timedelta(minutes=61), tick=False)

    assert client.get("/").status_code == 302


def test_it_keeps_the_session_when_the_browser_closes(world):
    response = Client().post("/accounts/login/", {"username": "rita", "password": PASSWORD})

    # A persistent cookie (with an expiry), not a browser-session one.
    assert response.cookies["sessionid"]["max-age"] == 12 * 3600
    assert response.cookies["sessionid"]["expires"]


# --- Tokens --------------------------------------------------------------------------


def token_client(key: str, address: str = "203.0.113.7", **extra) -> Client:
    return Client(REMOTE_ADDR=address, headers={"Authorization": f"Bearer {key}"}, **extra)


def test_it_refuses_an_expired_token(world, time_machine):
    _, key = api_token_create(
        user=world.users["reader"], name="ci", expires_at=NOW + dt.timedelta(days=1)
    )
    assert token_client(key).get(ITEMS).status_code == 200

    time_machine.move_to(NOW + dt.timedelta(days=1), tick=False)
    response = token_client(key).get(ITEMS)

    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "Invalid, expired or revoked token."
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_it_refuses_a_revoked_token(world):
    token, key = api_token_create(user=world.users["manager"], name="ci")
    assert token_client(key).get(ITEMS).status_code == 200

    api_token_revoke(token=token)
    response = token_client(key).delete(f"{ITEMS}{world.item.pk}/")

    assert response.status_code == 401
    assert token_client(key).get(ITEMS).status_code == 401
    world.item.refresh_from_db()  # still there


def test_it_refuses_the_token_of_a_deactivated_user(world):
    _, key = api_token_create(user=world.users["manager"], name="ci")
    world.users["manager"].is_active = False
    world.users["manager"].save()

    assert token_client(key).get(ITEMS).status_code == 401


def test_it_refuses_a_deactivated_users_session(world):
    client = world.web("manager")
    world.users["manager"].is_active = False
    world.users["manager"].save()

    assert client.get("/").status_code == 302
    assert client.get(ITEMS).status_code == 401


def test_it_throttles_an_address_that_keeps_sending_bad_tokens(world, settings):
    settings.TRACKER_API_TOKEN_FAILURE_RATE = "3/min"
    _, good = api_token_create(user=world.users["reader"], name="ci")
    for n in range(3):
        assert token_client(f"guess-{n}").get(ITEMS).status_code == 401

    refused = token_client(f"guess-{n + 1}").get(ITEMS)
    # Even a good token, from that address, until the window ends.
    refused_good = token_client(good).get(ITEMS)

    for response in (refused, refused_good):
        assert response.status_code == 429
        assert response.json()["errors"][0]["code"] == "throttled"
        assert response["Retry-After"] == "60"
    # Another address, and sessions, are not affected.
    assert token_client(good, address="198.51.100.20").get(ITEMS).status_code == 200
    assert world.web("reader").get(ITEMS, REMOTE_ADDR="203.0.113.7").status_code == 200


def test_it_lets_the_address_try_again_after_the_window(world, settings, time_machine):
    # The local-memory cache follows the frozen clock; Redis keeps real time.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    settings.TRACKER_API_TOKEN_FAILURE_RATE = "2/min"
    _, good = api_token_create(user=world.users["reader"], name="ci")
    for _ in range(2):
        token_client("guess").get(ITEMS)
    assert token_client(good).get(ITEMS).status_code == 429

    time_machine.move_to(NOW + dt.timedelta(seconds=61), tick=False)

    assert token_client(good).get(ITEMS).status_code == 200


def test_it_does_not_count_good_tokens_or_sessions(world, settings):
    settings.TRACKER_API_TOKEN_FAILURE_RATE = "2/min"
    _, good = api_token_create(user=world.users["reader"], name="ci")

    for _ in range(5):
        assert token_client(good).get(ITEMS).status_code == 200
        assert Client(REMOTE_ADDR="203.0.113.7").get(ITEMS).status_code == 401  # no token

    assert token_client(good).get(ITEMS).status_code == 200


def test_it_throttles_by_the_forwarded_address_only_behind_a_proxy(world, settings):
    settings.TRACKER_API_TOKEN_FAILURE_RATE = "2/min"
    _, good = api_token_create(user=world.users["reader"], name="ci")
    for n in range(2):
        token_client("guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").get(ITEMS)

    # Without a proxy, a rotating X-Forwarded-For does not escape the count.
    assert token_client(good, HTTP_X_FORWARDED_FOR="192.0.2.9").get(ITEMS).status_code == 429

    settings.TRACKER_PROXY_COUNT = 1
    assert token_client(good, HTTP_X_FORWARDED_FOR="192.0.2.9").get(ITEMS).status_code == 200


# --- The client's address --------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "192.0.2.1", "10.0.0.2"),  # no proxy: the header is the client's own word
        (1, "192.0.2.1", "192.0.2.1"),
        (1, "198.51.100.1, 192.0.2.1", "192.0.2.1"),  # the client's own entry is ignored
        (2, "198.51.100.1, 192.0.2.1, 10.0.0.1", "192.0.2.1"),
        (2, "192.0.2.1", "10.0.0.2"),  # fewer hops than proxies: not through them all
        (1, "", "10.0.0.2"),
        (1, "not-an-address", "10.0.0.2"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_it_finds_the_clients_address(settings, proxies, forwarded, expected):
    settings.TRACKER_PROXY_COUNT = proxies
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", **({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})
    )

    assert client_ip(request) == expected

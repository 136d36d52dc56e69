"""Throttling: per token and per signed-in user, at the configured rate."""

import pytest
import time_machine

from config.api import TokenOrUserRateThrottle

from .helpers import ITEMS, assert_error

pytestmark = pytest.mark.django_db

RATE = "3/min"


@pytest.fixture(autouse=True)
def _low_rate(monkeypatch):
    # The rates are read once, when DRF loads; patch the copy the throttle holds.
    monkeypatch.setattr(TokenOrUserRateThrottle, "THROTTLE_RATES", {"user": RATE})


def test_it_refuses_the_fourth_request_in_a_minute(reader, make_token, token_client):
    client = token_client(make_token(reader))

    statuses = [client.get(ITEMS).status_code for _ in range(3)]
    fourth = client.get(ITEMS)

    assert statuses == [200, 200, 200]
    errors = assert_error(fourth, 429)
    assert errors[0]["code"] == "throttled"
    assert 0 < int(fourth["Retry-After"]) <= 60


def test_it_lets_requests_through_again_after_the_window(reader, make_token, token_client):
    client = token_client(make_token(reader))
    with time_machine.travel("2024-03-10 12:00:00Z", tick=False) as traveller:
        for _ in range(3):
            client.get(ITEMS)
        assert client.get(ITEMS).status_code == 429

        traveller.shift(61)

        assert client.get(ITEMS).status_code == 200


def test_it_counts_two_tokens_of_one_user_separately(reader, make_token, token_client):
    first = token_client(make_token(reader, name="first"))
    second = token_client(make_token(reader, name="second"))
    for _ in range(3):
        assert first.get(ITEMS).status_code == 200

    assert first.get(ITEMS).status_code == 429
    assert [second.get(ITEMS).status_code for _ in range(3)] == [200, 200, 200]
    assert second.get(ITEMS).status_code == 429


def test_it_counts_each_signed_in_user_separately(client_for, reader, owner, make_token):
    reader_client = client_for(reader)
    for _ in range(3):
        reader_client.get(ITEMS)

    assert reader_client.get(ITEMS).status_code == 429
    assert client_for(owner).get(ITEMS).status_code == 200


def test_it_counts_a_session_apart_from_the_users_tokens(
    client_for, reader, make_token, token_client
):
    session = client_for(reader)
    for _ in range(3):
        session.get(ITEMS)
    assert session.get(ITEMS).status_code == 429

    assert token_client(make_token(reader)).get(ITEMS).status_code == 200


def test_it_counts_writes_too(manager_client):
    for n in range(3):
        assert manager_client.post(ITEMS, {"title": f"t{n}"}, format="json").status_code == 201

    response = manager_client.post(ITEMS, {"title": "one too many"}, format="json")

    assert_error(response, 429)


def test_it_does_not_throttle_anonymous_callers_into_anything_but_401(api_client):
    statuses = {api_client.get(ITEMS).status_code for _ in range(5)}

    assert statuses == {401}

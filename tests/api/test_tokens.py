"""API tokens: Bearer or Token, hashed at rest, revocable, expiring, and the command."""

import datetime as dt
import hashlib
import io

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tracker.models import ApiToken
from tracker.tokens import api_token_authenticate, api_token_create, api_token_revoke

from .helpers import ITEMS, assert_error, item_url

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 5, 6, 9, 0, tzinfo=dt.UTC)


def test_it_stores_only_a_hash_of_the_key(reader):
    token, key = api_token_create(user=reader, name="ci")

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")
        cells = [str(cell) for row in cursor.fetchall() for cell in row]
    assert len(key) >= 40
    assert not any(key in cell for cell in cells)
    assert hashlib.sha256(key.encode()).hexdigest() in cells
    assert token.prefix == key[:8]


@pytest.mark.parametrize("keyword", ["Bearer", "Token", "bearer", "token"])
def test_it_accepts_both_keywords(keyword, reader, make_token, token_client):
    key = make_token(reader)

    response = token_client(key, keyword).get(ITEMS)

    assert response.status_code == 200, response.content


def test_it_acts_as_the_tokens_user(owner, own_item, make_token, token_client):
    key = make_token(owner)

    response = token_client(key).post(item_url(own_item, "comments"), {"body": "hi"}, format="json")

    assert response.status_code == 201, response.content
    assert own_item.comments.get().author == owner


def test_it_applies_the_tokens_users_role(reader, own_item, make_token, token_client):
    key = make_token(reader)

    response = token_client(key).patch(item_url(own_item), {"status": "done"}, format="json")

    assert_error(response, 403)


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-real-token", "Token ", "Bearer two parts", "Bearer"],
)
def test_it_refuses_a_bad_authorization_header(header, api_client, reader, make_token):
    make_token(reader)
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get(ITEMS)

    assert_error(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_it_refuses_a_revoked_token(reader, token_client):
    token, key = api_token_create(user=reader, name="ci")
    client = token_client(key)
    assert client.get(ITEMS).status_code == 200

    api_token_revoke(token=token)

    assert_error(client.get(ITEMS), 401)


def test_it_refuses_an_expired_token(reader, token_client):
    with time_machine.travel(NOW, tick=False):
        _, key = api_token_create(user=reader, name="ci", expires_at=NOW + dt.timedelta(days=1))
        client = token_client(key)
        assert client.get(ITEMS).status_code == 200

    with time_machine.travel(NOW + dt.timedelta(days=1), tick=False):
        assert_error(client.get(ITEMS), 401)


def test_it_refuses_the_token_of_an_inactive_user(reader, make_token, token_client):
    key = make_token(reader)
    reader.is_active = False
    reader.save()

    assert_error(token_client(key).get(ITEMS), 401)


def test_it_records_when_a_token_was_last_used(reader, token_client):
    token, key = api_token_create(user=reader, name="ci")
    assert token.last_used_at is None
    client = token_client(key)

    with time_machine.travel(NOW, tick=False):
        client.get(ITEMS)
    token.refresh_from_db()
    assert token.last_used_at == NOW

    # Within the minute: not written again (a read must not become a write).
    with time_machine.travel(NOW + dt.timedelta(seconds=30), tick=False):
        client.get(ITEMS)
    token.refresh_from_db()
    assert token.last_used_at == NOW

    with time_machine.travel(NOW + dt.timedelta(minutes=5), tick=False):
        client.get(ITEMS)
    token.refresh_from_db()
    assert token.last_used_at == NOW + dt.timedelta(minutes=5)


def test_it_does_not_authenticate_a_wrong_key_with_a_matching_prefix(reader):
    token, key = api_token_create(user=reader, name="ci")

    assert api_token_authenticate(key=key[:8] + "x" * (len(key) - 8)) is None
    assert api_token_authenticate(key=key) == token


# --- create_api_token -------------------------------------------------------


def _create_token(*args, **options) -> list[str]:
    out = io.StringIO()
    call_command("create_api_token", *args, stdout=out, **options)
    return out.getvalue().splitlines()


def test_it_prints_a_working_token_alone_on_the_last_line(manager, token_client):
    lines = _create_token(manager.username, name="deploy bot")

    key = lines[-1]
    assert key.strip() == key and " " not in key
    assert any("cannot be shown again" in line for line in lines[:-1])
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.expires_at) == (manager, "deploy bot", None)
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert token_client(key).get(ITEMS).status_code == 200


def test_it_sets_the_expiry_from_the_number_of_days(reader):
    with time_machine.travel(NOW, tick=False):
        _create_token(reader.username, "--name", "ci", "--expires-in-days", "30")

    assert ApiToken.objects.get().expires_at == NOW + dt.timedelta(days=30)


def test_it_fails_for_an_unknown_user():
    with pytest.raises(CommandError, match="no user named 'nobody'") as exc_info:
        _create_token("nobody", name="ci")

    assert exc_info.value.returncode == 1
    assert not ApiToken.objects.exists()


def test_it_exits_non_zero_with_one_line_for_an_unknown_user(capsys):
    from django.core.management import ManagementUtility

    with pytest.raises(SystemExit) as exc_info:
        ManagementUtility(["manage.py", "create_api_token", "nobody", "--name", "ci"]).execute()

    assert exc_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == ["CommandError: no user named 'nobody'"]


@pytest.mark.parametrize("days", ["0", "-3"])
def test_it_refuses_a_non_positive_expiry(reader, days):
    with pytest.raises(CommandError, match="at least 1"):
        _create_token(reader.username, "--name", "ci", "--expires-in-days", days)

    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("name", ["   ", "x" * 101])
def test_it_refuses_an_empty_or_overlong_name(reader, name):
    with pytest.raises(CommandError, match="1 to 100 characters"):
        _create_token(reader.username, name=name)

    assert not ApiToken.objects.exists()


def test_it_requires_a_name(reader):
    with pytest.raises(CommandError):
        _create_token(reader.username)

    assert not ApiToken.objects.exists()


def test_it_gives_each_call_a_new_token(reader):
    first = _create_token(reader.username, name="a")[-1]
    second = _create_token(reader.username, name="a")[-1]

    assert first != second
    assert ApiToken.objects.filter(user=reader).count() == 2


def test_it_never_returns_a_token_created_for_someone_else(reader, owner):
    _, reader_key = api_token_create(user=reader, name="r")
    _, owner_key = api_token_create(user=owner, name="o")

    assert api_token_authenticate(key=reader_key).user == reader
    assert api_token_authenticate(key=owner_key).user == owner

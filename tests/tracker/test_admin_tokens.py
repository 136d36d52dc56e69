"""API tokens in the admin: created with the secret shown once, stored hashed, revocable."""

import hashlib

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tests import factories
from tracker.models import ApiToken
from tracker.tokens import api_token_authenticate, api_token_create

pytestmark = pytest.mark.django_db


def test_it_shows_a_new_token_once_and_stores_only_its_hash(client, superuser):
    client.force_login(superuser)
    owner = factories.UserFactory()

    response = client.post(
        reverse("admin:tracker_apitoken_add"), {"user": owner.pk, "name": "jira sync"}
    )

    assert response.status_code == 302
    (message,) = [
        m.message for m in get_messages(response.wsgi_request) if "Token created" in m.message
    ]
    key = message.split("Token created: ")[1].split(" ")[0]
    token = ApiToken.objects.get()
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in token.key_hash and token.prefix == key[:8]
    assert api_token_authenticate(key=key) == token
    change_url = reverse("admin:tracker_apitoken_change", args=[token.pk])
    assert key in client.get(change_url).content.decode()  # the pending message, once
    assert key not in client.get(change_url).content.decode()


def test_it_revokes_tokens_in_bulk(client, superuser):
    client.force_login(superuser)
    token, key = api_token_create(user=superuser, name="script")

    client.post(
        reverse("admin:tracker_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_token_authenticate(key=key) is None


def test_it_keeps_tokens_away_from_managers(client, manager):
    client.force_login(manager)

    assert client.get(reverse("admin:tracker_apitoken_changelist")).status_code == 403

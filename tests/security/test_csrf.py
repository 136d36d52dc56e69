"""Every form and endpoint that changes something refuses a cross-site POST (no CSRF token),
and accepts the same request carrying the token: the refusal is CSRF's, nothing else's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from incidents.models import Incident
from tests.conftest import SAMPLE_PATH
from tracker.links import action_token
from tracker.models import ActionItem, Comment, Person
from tracker.tokens import api_token_create

from .conftest import PASSWORD, World

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Form:
    name: str
    role: str
    path: Callable[[World], str]
    data: Callable[[World], dict]


def _done_link(w: World) -> str:
    token = action_token(
        item_id=w.item.pk, version=w.item.version, recipient=w.item.owner.email, action="done"
    )
    return f"/r/{token}/"


FORMS = [
    Form(
        "item status",
        "owner",
        lambda w: f"/items/{w.item.pk}/status/",
        lambda w: {"status": "blocked"},
    ),
    Form(
        "item comment", "owner", lambda w: f"/items/{w.item.pk}/comments/", lambda w: {"body": "hi"}
    ),
    Form(
        "item edit",
        "manager",
        lambda w: f"/items/{w.item.pk}/edit/",
        lambda w: {
            "title": "Renamed",
            "priority": "P1",
            "owner_email": "",
            "version": w.item.version,
        },
    ),
    Form(
        "item ticket",
        "manager",
        lambda w: f"/items/{w.item.pk}/ticket/",
        lambda w: {"action": "resync"},
    ),
    Form("calendar reset", "reader", lambda w: "/calendar/reset/", lambda w: {}),
    Form(
        "import preview",
        "manager",
        lambda w: "/import/",
        lambda w: {
            "action": "preview",
            "documents": [
                SimpleUploadedFile("d.json", SAMPLE_PATH.read_bytes(), "application/json")
            ],
        },
    ),
    Form("import cancel", "manager", lambda w: "/import/", lambda w: {"action": "cancel"}),
    Form("sign out", "reader", lambda w: "/accounts/logout/", lambda w: {}),
    Form(
        "sign in",
        "anonymous",
        lambda w: "/accounts/login/",
        lambda w: {"username": "rita", "password": PASSWORD},
    ),
    Form(
        "admin sign in",
        "anonymous",
        lambda w: "/admin/login/",
        lambda w: {"username": "maria", "password": PASSWORD, "next": "/admin/"},
    ),
    Form(
        "password reset",
        "anonymous",
        lambda w: "/accounts/password_reset/",
        lambda w: {"email": "rita@example.com"},
    ),
    Form(
        "password change",
        "reader",
        lambda w: "/accounts/password_change/",
        lambda w: {
            "old_password": PASSWORD,
            "new_password1": "a fresh tangerine umbrella",
            "new_password2": "a fresh tangerine umbrella",
        },
    ),
    Form(
        "admin action",
        "manager",
        lambda w: "/admin/tracker/actionitem/",
        lambda w: {"action": "mark_done", "_selected_action": [w.item.pk], "index": 0},
    ),
    Form(
        "admin change",
        "manager",
        lambda w: f"/admin/tracker/actionitem/{w.item.pk}/change/",
        lambda w: {"title": "Renamed in the admin"},
    ),
    Form(
        "admin import",
        "manager",
        lambda w: "/admin/incidents/incident/import/",
        lambda w: {
            "documents": [
                SimpleUploadedFile("d.json", SAMPLE_PATH.read_bytes(), "application/json")
            ]
        },
    ),
    Form("email link confirmation", "anonymous", _done_link, lambda w: {}),
]


def state(world: World) -> tuple:
    """What any of these forms could change, signed-in state and outgoing mail included."""
    return (
        list(ActionItem.objects.order_by("pk").values_list("status", "title", "version")),
        Comment.objects.count(),
        Incident.objects.count(),
        list(Person.objects.order_by("pk").values_list("calendar_token", flat=True)),
        list(User.objects.order_by("pk").values_list("password", flat=True)),
        len(mail.outbox),
    )


def browser_for(world: World, role: str) -> Client:
    """A browser that enforces CSRF, signed in as `role`, having loaded a page (so it holds
    the CSRF cookie, as a browser that visited the site does)."""
    client = world.web(role, enforce_csrf=True)
    client.get("/accounts/login/" if role == "anonymous" else "/")
    assert "csrftoken" in client.cookies
    return client


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_it_refuses_a_post_without_the_csrf_token(world, form):
    client = browser_for(world, form.role)
    session_user = client.session.get(SESSION_KEY)
    before = state(world)

    response = client.post(form.path(world), form.data(world))

    assert response.status_code == 403, response.content[:300]
    assert "This form could not be accepted" in response.content.decode()
    assert state(world) == before
    assert client.session.get(SESSION_KEY) == session_user


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_it_accepts_the_same_post_with_the_token(world, form):
    client = browser_for(world, form.role)

    response = client.post(
        form.path(world),
        {**form.data(world), "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )

    assert response.status_code in (200, 302), response.content[:300]


# --- The API: sessions need the token, API tokens do not ------------------------------


def test_it_refuses_an_api_change_by_session_without_the_csrf_token(world):
    client = browser_for(world, "owner")
    url = f"/api/v1/action-items/{world.item.pk}/"
    before = state(world)

    refused = client.patch(url, {"status": "blocked"}, content_type="application/json")

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["errors"][0]["message"]
    assert state(world) == before
    accepted = client.patch(
        url,
        {"status": "blocked"},
        content_type="application/json",
        headers={"X-CSRFToken": client.cookies["csrftoken"].value},
    )
    assert accepted.status_code == 200, accepted.content


@pytest.mark.parametrize(
    ("method", "suffix", "body", "expected"),
    [
        ("patch", "", {"status": "blocked"}, 200),
        ("post", "comments/", {"body": "From a script."}, 201),
    ],
)
def test_it_needs_no_csrf_token_with_an_api_token(world, method, suffix, body, expected):
    _, key = api_token_create(user=world.users["owner"], name="ci")
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {key}"})

    response = getattr(client, method)(
        f"/api/v1/action-items/{world.item.pk}/{suffix}", body, content_type="application/json"
    )

    assert response.status_code == expected, response.content


def test_it_changes_a_status_with_the_token_in_the_header_as_htmx_sends_it(world):
    client = browser_for(world, "owner")

    response = client.post(
        f"/items/{world.item.pk}/status/",
        {"status": "blocked"},
        headers={"HX-Request": "true", "X-CSRFToken": client.cookies["csrftoken"].value},
    )

    assert response.status_code == 200
    world.item.refresh_from_db()
    assert world.item.status == "blocked"

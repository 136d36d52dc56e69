"""Who may do what, through every surface: the API (with tokens), the pages and the admin.

Each row is a surface, each column a role; the expected status comes from the
README's roles: managers change everything, an item's owner changes its status
and comments on it, anyone else signed in reads, and anonymous requests are
refused (401 from the API, a redirect to the sign-in page from the pages). A
refused request must change nothing; an allowed change must change something.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from incidents.models import Incident
from tests import factories
from tests.conftest import SAMPLE_PATH
from tracker.models import ActionItem, Comment

from .conftest import ROLES, World

pytestmark = pytest.mark.django_db

API_ITEMS = "/api/v1/action-items/"


def api_item(suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"{API_ITEMS}{w.item.pk}/{suffix + '/' if suffix else ''}"


def web_item(suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/items/{w.item.pk}/{suffix + '/' if suffix else ''}"


def admin_item(w: World) -> str:
    return f"/admin/tracker/actionitem/{w.item.pk}/change/"


# Expectations by role, shorthand for the README's rules.
def anyone_signed_in(ok: int, refused: int) -> dict[str, int]:
    return {"anonymous": refused, "reader": ok, "owner": ok, "other_owner": ok, "manager": ok}


def managers_only(ok: int, anonymous: int, others: int = 403) -> dict[str, int]:
    return {
        "anonymous": anonymous,
        "reader": others,
        "owner": others,
        "other_owner": others,
        "manager": ok,
    }


def owner_and_managers(ok: int, anonymous: int) -> dict[str, int]:
    return {"anonymous": anonymous, "reader": 403, "owner": ok, "other_owner": 403, "manager": ok}


@dataclass(frozen=True)
class Surface:
    name: str
    method: str
    path: Callable[[World], str]
    expect: dict[str, int]
    data: Callable[[World], object] | None = None
    kind: str = "web"  # api (token), web (session) or admin (session)
    changes: bool = False  # whether an allowed request changes items, comments or incidents
    content_type: str | None = None


SURFACES = [
    # --- API, with each role's token ---------------------------------------------------
    Surface("api list", "get", lambda w: API_ITEMS, anyone_signed_in(200, 401), kind="api"),
    Surface("api detail", "get", api_item(), anyone_signed_in(200, 401), kind="api"),
    Surface(
        "api create",
        "post",
        lambda w: API_ITEMS,
        managers_only(201, anonymous=401),
        data=lambda w: {"title": "Made through the API", "incident": "INC-SEC-0001"},
        kind="api",
        changes=True,
    ),
    Surface(
        "api patch status",
        "patch",
        api_item(),
        owner_and_managers(200, anonymous=401),
        data=lambda w: {"status": "in_progress"},
        kind="api",
        changes=True,
    ),
    Surface(
        "api patch title",
        "patch",
        api_item(),
        managers_only(200, anonymous=401),
        data=lambda w: {"title": "Renamed"},
        kind="api",
        changes=True,
    ),
    # Items are never deleted: a manager is told so (405), and nothing changes.
    Surface("api delete", "delete", api_item(), managers_only(405, anonymous=401), kind="api"),
    Surface("api comments", "get", api_item("comments"), anyone_signed_in(200, 401), kind="api"),
    Surface(
        "api comment",
        "post",
        api_item("comments"),
        owner_and_managers(201, anonymous=401),
        data=lambda w: {"body": "Looked into it."},
        kind="api",
        changes=True,
    ),
    Surface("api history", "get", api_item("history"), anyone_signed_in(200, 401), kind="api"),
    Surface(
        "api import",
        "post",
        lambda w: "/api/v1/incidents/import/",
        managers_only(201, anonymous=401),
        data=lambda w: SAMPLE_PATH.read_bytes(),
        content_type="application/json",
        kind="api",
        changes=True,
    ),
    Surface(
        "api incidents",
        "get",
        lambda w: "/api/v1/incidents/",
        anyone_signed_in(200, 401),
        kind="api",
    ),
    Surface(
        "api incident",
        "get",
        lambda w: "/api/v1/incidents/INC-SEC-0001/",
        anyone_signed_in(200, 401),
        kind="api",
    ),
    Surface(
        "api people", "get", lambda w: "/api/v1/people/", anyone_signed_in(200, 401), kind="api"
    ),
    # --- Pages, signed in with a session -------------------------------------------------
    Surface("dashboard", "get", lambda w: "/", anyone_signed_in(200, 302)),
    Surface("items", "get", lambda w: "/items/", anyone_signed_in(200, 302)),
    Surface("items csv", "get", lambda w: "/items/?export=csv", anyone_signed_in(200, 302)),
    Surface("my items", "get", lambda w: "/items/mine/", anyone_signed_in(200, 302)),
    Surface("item page", "get", web_item(), anyone_signed_in(200, 302)),
    Surface(
        "item status",
        "post",
        web_item("status"),
        owner_and_managers(302, anonymous=302),
        data=lambda w: {"status": "in_progress"},
        changes=True,
    ),
    Surface(
        "item comment",
        "post",
        web_item("comments"),
        owner_and_managers(302, anonymous=302),
        data=lambda w: {"body": "Looked into it."},
        changes=True,
    ),
    Surface(
        "item edit",
        "post",
        web_item("edit"),
        managers_only(302, anonymous=302),
        data=lambda w: {
            "title": "Renamed",
            "priority": "P1",
            "deadline": "",
            "owner_email": "olivia@example.com",
            "version": w.item.version,
        },
        changes=True,
    ),
    Surface(
        "item ticket",
        "post",
        web_item("ticket"),
        # No ticket system is configured: a manager is told so; nothing changes.
        managers_only(302, anonymous=302),
        data=lambda w: {"action": "resync"},
    ),
    Surface("incidents", "get", lambda w: "/incidents/", anyone_signed_in(200, 302)),
    Surface("incident", "get", lambda w: "/incidents/INC-SEC-0001/", anyone_signed_in(200, 302)),
    Surface("import page", "get", lambda w: "/import/", managers_only(200, anonymous=302)),
    Surface(
        "import preview",
        "post",
        lambda w: "/import/",
        managers_only(200, anonymous=302),
        data=lambda w: {
            "action": "preview",
            "documents": [
                SimpleUploadedFile("doc.json", SAMPLE_PATH.read_bytes(), "application/json")
            ],
        },
    ),
    Surface("calendar", "get", lambda w: "/calendar/", anyone_signed_in(200, 302)),
    Surface("calendar reset", "post", lambda w: "/calendar/reset/", anyone_signed_in(302, 302)),
    # --- Admin: staff only; non-staff are sent to the admin's sign-in -------------------------
    Surface(
        "admin items",
        "get",
        lambda w: "/admin/tracker/actionitem/",
        managers_only(200, anonymous=302, others=302),
        kind="admin",
    ),
    Surface(
        "admin item",
        "get",
        admin_item,
        managers_only(200, anonymous=302, others=302),
        kind="admin",
    ),
    Surface(
        "admin incidents",
        "get",
        lambda w: "/admin/incidents/incident/",
        managers_only(200, anonymous=302, others=302),
        kind="admin",
    ),
    Surface(
        "admin import",
        "get",
        lambda w: "/admin/incidents/incident/import/",
        managers_only(200, anonymous=302, others=302),
        kind="admin",
    ),
    Surface(
        "admin api tokens",
        "get",
        lambda w: "/admin/tracker/apitoken/",
        # Tokens stay with superusers: managers are refused too.
        managers_only(403, anonymous=302, others=302),
        kind="admin",
    ),
    Surface(
        "admin sign-in attempts",
        "get",
        lambda w: "/admin/axes/accessattempt/",
        managers_only(403, anonymous=302, others=302),
        kind="admin",
    ),
]


def snapshot(world: World) -> tuple:
    """Everything the matrix's requests could change."""
    item = ActionItem.objects.filter(pk=world.item.pk).values("status", "title", "version").first()
    return (
        item,
        ActionItem.objects.count(),
        Comment.objects.count(),
        Incident.objects.count(),
    )


def send(world: World, surface: Surface, role: str):
    client = world.api(role) if surface.kind == "api" else world.web(role)
    kwargs = {}
    if surface.data is not None:
        kwargs["data"] = surface.data(world)
        if surface.content_type:
            kwargs["content_type"] = surface.content_type
        elif surface.kind == "api":
            kwargs["format"] = "json"
    return getattr(client, surface.method)(surface.path(world), **kwargs)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("surface", SURFACES, ids=[s.name for s in SURFACES])
def test_it_answers_each_role_as_the_roles_say(world, surface, role):
    before = snapshot(world)

    response = send(world, surface, role)

    expected = surface.expect[role]
    assert response.status_code == expected, (
        f"{surface.name} as {role}: {response.status_code}, expected {expected}: "
        f"{response.content[:300]!r}"
    )
    refused = expected in (401, 403) or (
        expected == 302 and _sent_to_sign_in(response, surface, role)
    )
    if role == "anonymous" or (surface.expect[role] == 302 and surface.kind == "admin"):
        # Sent to the right sign-in page, not somewhere else.
        assert refused, f"{surface.name} as {role} went to {response.get('Location')}"
    if refused or not surface.changes:
        assert snapshot(world) == before, f"{surface.name} as {role} changed something"
    else:
        assert snapshot(world) != before, f"{surface.name} as {role} changed nothing"


def _sent_to_sign_in(response, surface: Surface, role: str) -> bool:
    location = response.get("Location", "")
    login = "/admin/login/" if surface.kind == "admin" else "/accounts/login/"
    return location.startswith(login)


@pytest.mark.parametrize("role", ["reader", "owner", "other_owner", "manager"])
def test_it_gives_a_token_and_a_session_the_same_rights(world, role):
    """The API's answer depends on who is asking, not on how they signed in."""
    session = world.web(role)
    session_answer = session.patch(
        f"{API_ITEMS}{world.item.pk}/", {"status": "blocked"}, content_type="application/json"
    )
    world.item.refresh_from_db()
    token_answer = world.api(role).patch(
        f"{API_ITEMS}{world.item.pk}/", {"status": "in_progress"}, format="json"
    )

    assert session_answer.status_code == token_answer.status_code
    assert token_answer.status_code == owner_and_managers(200, 401)[role]


# Managers are superusers and members of the managers group, on every surface; staff
# status alone opens the admin, where model permissions decide.
def test_it_agrees_on_whether_a_plain_staff_user_is_a_manager(world):
    staff = factories.UserFactory(username="stan", email="stan@example.com", is_staff=True)
    world.users["staff"] = staff
    admin_import = world.web("staff").get("/admin/incidents/incident/import/").status_code
    page_import = world.web("staff").get("/import/").status_code
    api_import = (
        world.api("staff")
        .post(
            "/api/v1/incidents/import/?dry_run=1",
            SAMPLE_PATH.read_bytes(),
            content_type="application/json",
        )
        .status_code
    )

    allowed = {code < 400 for code in (admin_import, page_import, api_import)}
    assert len(allowed) == 1, (admin_import, page_import, api_import)

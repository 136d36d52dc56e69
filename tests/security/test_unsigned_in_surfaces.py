"""The surfaces that need no sign-in, each guarded by a secret of its own: the signed
links in reminder emails, the calendar feed's URL, and the ticket systems' webhooks."""

import datetime as dt
import hashlib
import hmac
import json

import pytest
from django.core import signing
from django.test import Client

from tracker import services
from tracker.calendar import calendar_token_ensure
from tracker.links import SALT, action_token
from tracker.models import ActionItem, ActionItemChange, Status, TicketWebhookDelivery
from tracker.ticketing import reset_backend

pytestmark = pytest.mark.django_db


def link(item_id: int, recipient: str, action: str) -> str:
    return f"/r/{link_token(item_id, recipient, action)}/"


def link_token(item_id: int, recipient: str, action: str) -> str:
    """The token of a link written now: bound to the item's current version."""
    version = ActionItem.objects.values_list("version", flat=True).get(pk=item_id)
    return action_token(item_id=item_id, version=version, recipient=recipient, action=action)


def unchanged(world, before: tuple) -> bool:
    world.item.refresh_from_db()
    world.other_item.refresh_from_db()
    return (world.item.version, world.other_item.version) == before


def versions(world) -> tuple:
    return world.item.version, world.other_item.version


# --- Signed email links -------------------------------------------------------------------


@pytest.mark.parametrize("action", ["done", "snooze"])
def test_it_acts_on_a_link_sent_to_the_items_owner(world, action):
    response = Client().post(link(world.item.pk, "olivia@example.com", action))

    assert response.status_code == 200
    world.item.refresh_from_db()
    assert world.item.status == Status.DONE or world.item.snoozed_until is not None


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("action", ["done", "snooze"])
def test_it_refuses_owner_a_link_acting_on_another_owners_item(world, method, action):
    # Signed by us, but for Olivia about Oscar's item: never sent, so never honoured.
    before = versions(world)

    response = getattr(Client(), method)(link(world.other_item.pk, "olivia@example.com", action))

    assert response.status_code == 403
    assert unchanged(world, before)


@pytest.mark.parametrize("method", ["get", "post"])
def test_it_refuses_a_tampered_link(world, method):
    token = link_token(world.item.pk, "olivia@example.com", "done")
    # The same signature over another item's id.
    _, _, rest = token.partition(":")
    forged = signing.TimestampSigner(salt=SALT).sign_object(
        {"i": world.other_item.pk, "r": "oscar@example.com", "a": "done"}, compress=True
    )
    tampered = [
        forged.partition(":")[0] + ":" + rest,
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        signing.TimestampSigner(key="not-our-secret", salt=SALT).sign_object(
            {"i": world.other_item.pk, "r": "oscar@example.com", "a": "done"}, compress=True
        ),
    ]
    before = versions(world)

    for token in tampered:
        response = getattr(Client(), method)(f"/r/{token}/")
        assert response.status_code == 400, token
        assert "This link is not valid." in response.content.decode()
    assert unchanged(world, before)


def test_it_refuses_an_expired_link(world, time_machine):
    now = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
    time_machine.move_to(now, tick=False)
    path = link(world.item.pk, "olivia@example.com", "done")
    before = versions(world)

    time_machine.move_to(now + dt.timedelta(days=14, seconds=1), tick=False)
    response = Client().post(path)

    assert response.status_code == 400
    assert "This link has expired" in response.content.decode()
    assert unchanged(world, before)


def test_it_refuses_the_previous_owners_link_after_a_reassignment(world):
    path = link(world.item.pk, "olivia@example.com", "done")
    services.action_item_update(
        item=world.item, actor=services.Actor.system(), owner=world.other_item.owner
    )
    before = versions(world)

    response = Client().post(path)

    assert response.status_code == 403
    assert unchanged(world, before)


def test_it_records_who_acted_through_a_link(world):
    Client().post(link(world.item.pk, "olivia@example.com", "done"))

    change = ActionItemChange.objects.get(item=world.item, field="status")
    assert change.actor_label == "olivia@example.com (email link)"
    assert change.source == "reminder"


# --- Calendar feed --------------------------------------------------------------------------


def test_it_answers_404_to_a_wrong_calendar_token(world):
    olivia = world.item.owner
    token = calendar_token_ensure(person=olivia)

    for wrong in [token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 43, token[:20], ""]:
        response = Client().get(f"/calendar/{wrong}.ics")
        assert response.status_code == 404, wrong
    assert Client().get(f"/calendar/{token}.ics").status_code == 200


def test_it_shows_only_the_token_owners_items(world):
    response = Client().get(f"/calendar/{calendar_token_ensure(person=world.item.owner)}.ics")

    body = response.content.decode()
    assert "Olivia's item" in body
    assert "Oscar's" not in body


def test_it_invalidates_the_old_calendar_url_on_reset(world):
    owner = world.web("owner")
    old = calendar_token_ensure(person=world.item.owner)
    assert Client().get(f"/calendar/{old}.ics").status_code == 200

    owner.post("/calendar/reset/")

    world.item.owner.refresh_from_db()
    new = world.item.owner.calendar_token
    assert new != old
    assert Client().get(f"/calendar/{old}.ics").status_code == 404
    assert Client().get(f"/calendar/{new}.ics").status_code == 200


def test_it_resets_only_the_signed_in_users_own_calendar(world):
    oscar = calendar_token_ensure(person=world.other_item.owner)

    world.web("owner").post("/calendar/reset/")

    assert Client().get(f"/calendar/{oscar}.ics").status_code == 200


# --- Inbound webhooks -------------------------------------------------------------------------

SECRET = "webhook secret"


@pytest.fixture
def webhooks(settings):
    """GitHub and Jira configured (one backend at a time: the test picks one)."""
    settings.GITHUB_REPOSITORY = "acme/ops"
    settings.GITHUB_TOKEN = "t"
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    settings.JIRA_URL = "https://acme.atlassian.net"
    settings.JIRA_PROJECT = "OPS"
    settings.JIRA_EMAIL = "bot@example.com"
    settings.JIRA_API_TOKEN = "t"
    settings.JIRA_WEBHOOK_SECRET = SECRET

    def use(system: str) -> None:
        settings.TICKETS_BACKEND = system
        reset_backend()

    yield use
    reset_backend()


GITHUB_BODY = json.dumps({"action": "edited", "issue": {"number": 7}}).encode()
JIRA_BODY = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "OPS-7"}}).encode()
HEADERS = {
    "github": {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1"},
    "jira": {"X-Atlassian-Webhook-Identifier": "d-1"},
}
SIGNATURE_HEADER = {"github": "X-Hub-Signature-256", "jira": "X-Hub-Signature"}


def post(system: str, body: bytes, signature: str | None):
    headers = dict(HEADERS.get(system, {}))
    if signature is not None:
        headers[SIGNATURE_HEADER.get(system, "X-Hub-Signature")] = signature
    return Client(enforce_csrf_checks=True).post(
        f"/api/v1/webhooks/{system}/", body, content_type="application/json", headers=headers
    )


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(("system", "body"), [("github", GITHUB_BODY), ("jira", JIRA_BODY)])
@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=",
        "sha256=" + "0" * 64,
        "sha1=0123",
        "signed-with-another-secret",
        "signature-of-another-body",
    ],
)
def test_it_refuses_an_unsigned_or_badly_signed_delivery(webhooks, system, body, signature):
    webhooks(system)
    if signature == "signed-with-another-secret":
        signature = sign(body, "guess")
    elif signature == "signature-of-another-body":
        signature = sign(body + b" ")

    response = post(system, body, signature)

    assert response.status_code == 401
    assert not TicketWebhookDelivery.objects.exists()


@pytest.mark.parametrize(("system", "body"), [("github", GITHUB_BODY), ("jira", JIRA_BODY)])
def test_it_accepts_a_delivery_signed_with_the_secret(webhooks, system, body):
    webhooks(system)

    response = post(system, body, sign(body))

    assert response.status_code == 202
    assert TicketWebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(("system", "body"), [("github", GITHUB_BODY), ("jira", JIRA_BODY)])
def test_it_refuses_every_delivery_when_no_secret_is_configured(webhooks, settings, system, body):
    settings.GITHUB_WEBHOOK_SECRET = settings.JIRA_WEBHOOK_SECRET = ""
    webhooks(system)

    # Not even one "signed" with the empty secret.
    response = post(system, body, sign(body, ""))

    assert response.status_code == 401


def test_it_answers_404_for_a_system_that_is_not_configured(webhooks):
    webhooks("github")

    assert post("jira", JIRA_BODY, sign(JIRA_BODY)).status_code == 404
    assert post("redmine", b"{}", None).status_code == 404

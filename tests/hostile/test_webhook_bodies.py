"""Correctly signed inbound webhooks whose JSON Python's json cannot take (100,000 levels
deep: RecursionError) or that carry 1e999 (int(inf): OverflowError) were 500s; they are
unreadable deliveries (400) naming the JSON path, and nothing is recorded or enqueued."""

import json

import pytest
from django.test import Client

from tests import webhooks
from tracker.models import TicketWebhookDelivery

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SECRET = "hook-secret"
DEEP = b'{"issue": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.fixture
def github(settings):
    yield from webhooks.github_webhooks(settings, secret=SECRET)


@pytest.fixture
def jira(settings):
    yield from webhooks.jira_webhooks(settings, secret=SECRET)


def post_github(body: bytes):
    headers = {
        "X-Hub-Signature-256": webhooks.signature(body, secret=SECRET),
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "d-1",
    }
    client = Client(raise_request_exception=False)
    return client.post(
        "/api/v1/webhooks/github/", body, content_type="application/json", headers=headers
    )


def post_jira(body: bytes):
    headers = {
        "X-Hub-Signature": webhooks.signature(body, secret=SECRET),
        "X-Atlassian-Webhook-Identifier": "d-1",
    }
    client = Client(raise_request_exception=False)
    return client.post(
        "/api/v1/webhooks/jira/", body, content_type="application/json", headers=headers
    )


def refused(response) -> str:
    assert response.status_code == 400, response.content[:300]
    assert TicketWebhookDelivery.objects.count() == 0
    return json.loads(response.content)["detail"]


GITHUB = {
    "deep": (DEEP, "nested 100,001 levels deep"),
    "infinite number": (b'{"issue": {"number": 1e999}}', "issue.number"),
    "long integer": (b'{"issue": {"number": ' + b"1" * 5000 + b"}}", "issue.number"),
    "duplicate key": (b'{"issue": {"number": 1, "number": 2}}', "issue.number"),
    "nul": (b'{"issue": {"number": 1, "title": "a\\u0000"}}', "issue.title"),
}
JIRA = {
    "deep": (DEEP, "nested 100,001 levels deep"),
    "infinite number": (b'{"issue": {"key": "OPS-1", "id": 1e999}}', "issue.id"),
    "duplicate key": (b'{"issue": {"key": "OPS-1", "key": "OPS-2"}}', "issue.key"),
    "nul": (b'{"issue": {"key": "OPS-1\\u0000"}}', "issue.key"),
}


@pytest.mark.parametrize(("body", "named"), GITHUB.values(), ids=GITHUB.keys())
def test_a_signed_github_delivery_that_json_cannot_take_is_refused(github, body, named):
    assert named in refused(post_github(body))


@pytest.mark.parametrize(("body", "named"), JIRA.values(), ids=JIRA.keys())
def test_a_signed_jira_delivery_that_json_cannot_take_is_refused(jira, body, named):
    assert named in refused(post_jira(body))


def test_a_signed_github_delivery_still_works(github, django_capture_on_commit_callbacks):
    body = json.dumps({"issue": {"number": 7}, "repository": {"full_name": "acme/ops"}}).encode()

    with django_capture_on_commit_callbacks():
        response = post_github(body)

    assert response.status_code == 202
    assert list(TicketWebhookDelivery.objects.values_list("keys", flat=True)) == [["7"]]

"""The sync engine against a stand-in for GitHub Issues over real loopback HTTP
(tests/ticketing/fakes.py): push, lost answers, outages, read-back, inbound
webhooks through the real endpoint, and linking an existing issue."""

import datetime as dt
import hashlib
import hmac
import json

import pytest
from django.utils import timezone

from tracker import services
from tracker.models import ActionItemChange, ChangeSource, TicketLink, TicketSyncState
from tracker.models import TicketWebhookDelivery as Delivery
from tracker.ticketing import backend_config, pull, push, reset_backend
from tracker.ticketing.base import TicketError
from tracker.ticketing.github import GitHubBackend

from . import fakes
from .fakes import FakeGitHub, change, make_item, reload

pytestmark = pytest.mark.django_db

SECRET = "github-hook-secret"
WEBHOOK_URL = "/api/v1/webhooks/github/"


@pytest.fixture(scope="module")
def make_httpserver():
    yield from fakes.threaded_server()


@pytest.fixture
def github(httpserver, settings):
    """Ticket sync on, to the fake GitHub; alice and bob have GitHub logins, carol none."""
    settings.TICKETS_BACKEND = "github"
    settings.TICKETS_AUTO_CREATE = True
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.TICKETS_MARKER_PREFIX = "followup"
    settings.TICKETS_RATE_LIMIT = 0
    settings.TICKETS_MAX_RETRIES = 1
    settings.TICKETS_TIMEOUT_SECONDS = 5
    settings.TICKETS_USER_MAP = {"alice@example.com": "alice-gh", "bob@example.com": "bob-gh"}
    settings.GITHUB_API_URL = httpserver.url_for("")
    settings.GITHUB_TOKEN = FakeGitHub.TOKEN
    settings.GITHUB_REPOSITORY = FakeGitHub.REPOSITORY
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    reset_backend()
    fake = FakeGitHub(httpserver)
    yield fake
    fake.release()
    reset_backend()
    fake.assert_kept_contract()


def build_backend(**options) -> GitHubBackend:
    options = {"timeout": 5, "max_retries": 1, "rate_per_second": 0, **options}
    return GitHubBackend.build(backend_config("github"), sleep=lambda _: None, **options)


@pytest.fixture
def backend(github) -> GitHubBackend:
    return build_backend()


def pushed(item, backend) -> str:
    """Push the item's ticket; its key."""
    assert push.ticket_push(item_id=item.pk, backend=backend)[1] == ""
    return reload(item).ticket_link.key


def ticket_changes(item) -> list[ActionItemChange]:
    return list(ActionItemChange.objects.filter(item=item, source=ChangeSource.TICKET))


# --- Push -------------------------------------------------------------------------


def test_it_creates_an_issue_with_the_items_fields(github, backend):
    item = make_item()

    report = push.tickets_push(item_ids=[item.pk], backend=backend)

    assert (report.created, report.failed) == (1, 0)
    link = reload(item).ticket_link
    assert (link.state, link.key) == (TicketSyncState.SYNCED, "1")
    assert link.url == f"{github.base}/acme/ops/issues/1"
    issue = github.issues[1]
    assert issue["title"] == "Add circuit breaker to payment client"
    assert issue["body"].startswith("Trip after 5 failures in 10 s.")
    assert "INC-2024-0142" in issue["body"]
    assert f"/items/{item.pk}/" in issue["body"]
    assert "\nDue: 2030-03-01" in issue["body"]
    assert issue["body"].endswith(f"<!-- {push.ticket_marker(item.pk)} -->")
    assert github.labels(1) == ["followup", "priority: P2"]
    assert [a["login"] for a in issue["assignees"]] == ["alice-gh"]
    assert issue["state"] == "open"


def test_it_closes_reopens_and_labels_the_issue_as_the_status_changes(github, backend):
    item = make_item()
    pushed(item, backend)
    steps = [
        ("in_progress", "open", None, ["status: in progress"]),
        ("blocked", "open", None, ["status: blocked"]),
        ("done", "closed", "completed", []),
        ("open", "open", "reopened", []),
        ("cancelled", "closed", "not_planned", []),
        ("open", "open", "reopened", []),
    ]

    for status, state, reason, status_labels in steps:
        change(item, status=status)
        outcome, error = push.ticket_push(item_id=item.pk, backend=backend)

        assert (outcome, error) == ("updated", ""), status
        issue = github.issues[1]
        assert (issue["state"], issue["state_reason"]) == (state, reason), status
        assert github.labels(1) == ["followup", "priority: P2", *status_labels], status
        assert reload(item).ticket_link.state == TicketSyncState.SYNCED
    assert len(github.issues) == 1


def test_it_makes_one_issue_when_the_answer_to_the_create_is_lost(github):
    backend = build_backend(timeout=1.0)
    item = make_item()
    marker = push.ticket_marker(item.pk)

    github.lose_next_create()
    outcome, error = push.ticket_push(item_id=item.pk, backend=backend)
    github.release()

    assert outcome == "failed"
    assert "outcome unknown" in error
    link = reload(item).ticket_link
    assert (link.state, link.key, link.attempts) == (TicketSyncState.FAILING, "", 1)
    assert link.next_attempt_at > timezone.now()
    assert len(github.marked(marker)) == 1  # GitHub made it: only the answer was lost

    change(item, title="Circuit breaker for the payment client", priority="P1")
    outcome, error = push.ticket_push(item_id=item.pk, backend=backend)

    assert (outcome, error) == ("updated", "")
    assert len(github.issues) == 1
    link = reload(item).ticket_link
    assert (link.state, link.key) == (TicketSyncState.SYNCED, "1")
    assert github.issues[1]["title"] == "Circuit breaker for the payment client"
    assert github.labels(1) == ["followup", "priority: P1"]


def test_it_converges_after_an_outage_during_a_burst_of_changes(github, backend):
    items = [make_item(title=f"Follow-up {n}") for n in range(6)]
    ids = [item.pk for item in items]
    push.tickets_push(item_ids=ids[:3], backend=backend)

    github.down = True
    for n, item in enumerate(items):
        change(item, title=f"Follow-up {n} (revised)", status="in_progress")
        change(item, priority="P3")
    report = push.tickets_push(item_ids=ids, backend=backend)
    assert (report.failed, report.created, report.updated) == (6, 0, 0)
    links = TicketLink.objects.filter(item_id__in=ids)
    assert {link.state for link in links} == {TicketSyncState.FAILING}
    assert all(link.next_attempt_at > timezone.now() for link in links)
    for item in items[:2]:
        change(item, status="done")
    change(items[5], deadline=None)
    github.down = False

    report = push.tickets_push(item_ids=ids, backend=backend)

    assert (report.created, report.updated, report.failed) == (3, 3, 0)
    assert len(github.issues) == 6
    for n, item in enumerate(items):
        item = reload(item)
        assert item.ticket_link.state == TicketSyncState.SYNCED
        (issue,) = github.marked(push.ticket_marker(item.pk))
        assert str(issue["number"]) == item.ticket_link.key
        assert issue["title"] == f"Follow-up {n} (revised)"
        status_labels = [] if n < 2 else ["status: in progress"]
        assert github.labels(issue["number"]) == ["followup", "priority: P3", *status_labels]
        assert (issue["state"], issue["state_reason"]) == (
            ("closed", "completed") if n < 2 else ("open", None)
        )
        assert ("Due: 2030-03-01" in issue["body"]) == (n != 5)


def test_it_moves_a_closed_issue_between_done_and_cancelled(github, backend):
    item = make_item()
    pushed(item, backend)

    for status, reason in [
        ("done", "completed"),
        ("cancelled", "not_planned"),
        ("done", "completed"),
    ]:
        if reload(item).status != "open":
            change(item, status="open")  # reopened and closed again before the next push
        change(item, status=status)
        assert push.ticket_push(item_id=item.pk, backend=backend) == ("updated", ""), status

        issue = github.issues[1]
        assert (issue["state"], issue["state_reason"]) == ("closed", reason), status
        # The next poll reads what was pushed: no revert.
        assert pull.tickets_poll(backend=backend).changed == 0, status
        assert reload(item).status == status
    assert ticket_changes(item) == []


def test_it_reports_what_github_drops_without_push_access_and_makes_one_issue(github, backend):
    github.push_access = False
    item = make_item(status="in_progress")

    outcome, error = push.ticket_push(item_id=item.pk, backend=backend)

    assert outcome == "failed"
    assert "dropped the label 'followup'" in error and "assignee 'alice-gh'" in error
    assert "needs push access to acme/ops" in error
    link = reload(item).ticket_link
    assert (link.state, link.key, link.last_error) == (TicketSyncState.FAILING, "1", error)
    (issue,) = github.marked(push.ticket_marker(item.pk))
    assert (issue["labels"], issue["assignees"]) == ([], [])

    # Polls see the issue by its body's marker, and read "open, unassigned" as
    # what GitHub kept of the push, not as changes made there.
    github.edit(1, title="Renamed on GitHub")
    assert pull.tickets_poll(backend=backend).seen == 1
    item = reload(item)
    assert (item.status, item.owner.email) == ("in_progress", "alice@example.com")

    change(item, title="Retitled")
    outcome, error = push.ticket_push(item_id=item.pk, backend=backend)
    assert outcome == "failed" and "push access" in error
    assert len(github.issues) == 1
    assert github.issues[1]["title"] == "Retitled"


def test_it_finds_an_issue_whose_label_was_dropped_after_a_lost_answer(github):
    github.push_access = False
    backend = build_backend(timeout=1.0)
    item = make_item()

    github.lose_next_create()
    assert push.ticket_push(item_id=item.pk, backend=backend)[0] == "failed"
    github.release()
    assert reload(item).ticket_link.key == ""

    github.push_access = True
    assert push.ticket_push(item_id=item.pk, backend=backend) == ("updated", "")

    assert len(github.issues) == 1
    assert reload(item).ticket_link.key == "1"
    assert github.labels(1) == ["followup", "priority: P2"]


def test_it_waits_out_a_secondary_rate_limit(github):
    waits = []
    backend = GitHubBackend.build(
        backend_config("github"), sleep=waits.append, timeout=5, max_retries=1, rate_per_second=0
    )
    item = make_item()
    github.secondary_rate_limit(1)

    assert push.ticket_push(item_id=item.pk, backend=backend) == ("created", "")

    assert waits == [60.0]
    assert len(github.issues) == 1


def test_it_follows_a_transferred_issue_and_takes_its_new_address(github, backend):
    item = make_item()
    pushed(item, backend)
    number = github.transfer(1)

    change(item, title="Moved along", status="in_progress")
    assert push.ticket_push(item_id=item.pk, backend=backend) == ("updated", "")

    link = reload(item).ticket_link
    assert (link.key, link.url) == (
        f"acme/platform#{number}",
        f"{github.base}/acme/platform/issues/{number}",
    )
    moved = github.repositories["acme/platform"][number]
    assert moved["title"] == "Moved along"
    assert github.labels(number, repository="acme/platform") == [
        "followup",
        "priority: P2",
        "status: in progress",
    ]

    github.edit(number, repository="acme/platform", state="closed", state_reason="completed")
    report = pull.tickets_pull(keys=[link.key], backend=backend)
    assert (report.error, report.changed) == ("", 1)
    assert reload(item).status == "done"


def test_it_takes_the_new_address_of_a_transferred_issue_when_pulled(github, backend):
    item = make_item()
    key = pushed(item, backend)
    number = github.transfer(1)
    github.edit(number, repository="acme/platform", state="closed", state_reason="not_planned")

    report = pull.tickets_pull(keys=[key], backend=backend)

    assert (report.error, report.changed) == ("", 1)
    item = reload(item)
    assert item.status == "cancelled"
    assert item.ticket_link.key == f"acme/platform#{number}"


# --- Preflight ----------------------------------------------------------------------


def test_preflight_passes_with_push_access_and_mapped_owners(github, backend):
    for label in ["followup", "priority: P0", "priority: P1", "priority: P2", "priority: P3"]:
        github.repository_labels["acme/ops"].append(label)
    github.repository_labels["acme/ops"] += [
        "priority: P4",
        "status: in progress",
        "status: blocked",
    ]

    assert backend.preflight(owner_emails=["alice@example.com", "Bob@example.com "]) == []


def test_preflight_names_missing_push_access_labels_and_owners(github, backend, settings):
    github.push_access = False
    backend.user_map["dave@example.com"] = "dave-gh"  # no such collaborator

    findings = backend.preflight(
        owner_emails=["alice@example.com", "carol@example.com", "dave@example.com"]
    )

    by_area = {finding.area: finding for finding in findings}
    assert set(by_area) == {"permission", "labels", "owner"} and len(findings) == 4
    assert by_area["permission"].blocking
    assert "no push access to acme/ops" in by_area["permission"].message
    assert not by_area["labels"].blocking and "'followup'" in by_area["labels"].message
    owners = [f for f in findings if f.area == "owner"]
    assert [(f.blocking, f.message.split(" ")[0]) for f in owners] == [
        (True, "dave-gh"),
        (False, "no"),
    ]
    assert "carol@example.com" in owners[1].message


def test_preflight_reports_a_repository_it_cannot_read(github, settings):
    settings.GITHUB_REPOSITORY = "acme/missing"
    backend = build_backend()

    (finding,) = backend.preflight()

    assert (finding.area, finding.blocking) == ("connection", True)
    assert "cannot read acme/missing" in finding.message


# --- Pull -------------------------------------------------------------------------


def test_it_applies_changes_made_on_github(github, backend):
    item = make_item()
    key = pushed(item, backend)
    body = github.issues[1]["body"]

    assert pull.tickets_poll(backend=backend).changed == 0  # the next poll reads from here

    github.edit(
        1,
        state="closed",
        state_reason="completed",
        assignees=["bob-gh"],
        body=body.replace("Due: 2030-03-01", "Due: 2030-05-15"),
    )
    report = pull.tickets_poll(backend=backend)

    assert (report.error, report.seen, report.changed) == ("", 1, 1)
    item = reload(item)
    assert (item.status, item.deadline) == ("done", dt.date(2030, 5, 15))
    assert item.owner.email == "bob@example.com"
    assert item.completed_at is not None
    changes = ticket_changes(item)
    assert {c.field for c in changes} == {"status", "completed_at", "deadline", "owner"}
    assert {c.actor_label for c in changes} == {f"github {key}"}
    # Taken back, not pushed back: the issue says so already.
    assert item.ticket_link.state == TicketSyncState.SYNCED
    assert pull.tickets_poll(backend=backend).changed == 0


def test_it_takes_back_an_issue_closed_as_not_planned_and_reopened(github, backend):
    item = make_item()
    key = pushed(item, backend)

    github.edit(1, state="closed", state_reason="not_planned")
    pull.tickets_pull(keys=[key], backend=backend)
    assert reload(item).status == "cancelled"

    github.edit(1, state="open", state_reason="reopened")
    report = pull.tickets_pull(keys=[key], backend=backend)

    assert (report.error, report.changed) == ("", 1)
    assert reload(item).status == "open"
    assert [(c.old_value, c.new_value) for c in ticket_changes(item) if c.field == "status"] == [
        ("open", "cancelled"),
        ("cancelled", "open"),
    ]


def test_it_does_not_take_its_own_pushes_back(github, backend):
    blocked = make_item(status="blocked")
    pushed(blocked, backend)
    change(
        blocked,
        deadline=dt.date(2030, 6, 1),
        owner=services.person_get_or_create(email="bob@example.com"),
    )
    pushed(blocked, backend)
    # Carol has no GitHub login: her issue is unassigned, which must not read as "nobody".
    carols = make_item(owner=services.person_get_or_create(email="carol@example.com"))
    pushed(carols, backend)
    github.edit(2, title="Renamed on GitHub")

    report = pull.tickets_poll(backend=backend)
    again = pull.tickets_poll(backend=backend)

    assert (report.error, report.seen, report.changed, again.changed) == ("", 2, 0, 0)
    assert ticket_changes(blocked) == ticket_changes(carols) == []
    assert (reload(blocked).status, reload(blocked).owner.email) == ("blocked", "bob@example.com")
    assert reload(carols).owner.email == "carol@example.com"


# --- Inbound webhooks ---------------------------------------------------------------


def delivery(number: int, *, delivery_id: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958"):
    body = json.dumps(
        {
            "action": "closed",
            "issue": {"number": number, "state": "closed"},
            "repository": {"full_name": "acme/ops"},
        }
    ).encode()
    return body, signed_headers(body, delivery_id=delivery_id)


def signed_headers(body: bytes, *, delivery_id: str, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": delivery_id,
    }


def post(client, body: bytes, headers: dict[str, str], url: str = WEBHOOK_URL):
    return client.post(url, body, content_type="application/json", headers=headers)


def test_it_applies_a_signed_delivery_once_it_commits(
    github, client, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    item = make_item()
    push.tickets_push(item_ids=[item.pk])
    github.edit(1, state="closed", state_reason="completed")
    body, headers = delivery(1)

    with fakes.celery_eager(), django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, body, headers)
        assert reload(item).status == "open"  # read after the answer, not before

    assert response.status_code == 202
    assert len(callbacks) == 1
    assert reload(item).status == "done"
    assert {c.actor_label for c in ticket_changes(item)} == {"github 1"}
    assert list(Delivery.objects.values_list("system", "keys")) == [("github", ["1"])]


def test_it_acknowledges_a_redelivery_and_enqueues_nothing(
    github, client, django_capture_on_commit_callbacks
):
    body, headers = delivery(1)
    with django_capture_on_commit_callbacks() as first:
        assert post(client, body, headers).status_code == 202

    with django_capture_on_commit_callbacks() as second:
        response = post(client, body, headers)

    assert response.status_code == 200
    assert (len(first), second) == (1, [])
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize(
    "headers",
    [
        signed_headers(b"{}", delivery_id="d-1", secret="not-the-secret"),
        {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1"},
    ],
    ids=["bad", "missing"],
)
def test_it_refuses_a_delivery_without_a_valid_signature(
    github, client, django_capture_on_commit_callbacks, headers
):
    body, _ = delivery(1)
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body, headers)

    assert response.status_code == 401
    assert (callbacks, Delivery.objects.count()) == ([], 0)


def test_it_answers_404_for_a_ticket_system_not_configured(github, client):
    body, headers = delivery(1)

    for system in ("jira", "redmine", "gitlab"):
        response = post(client, body, headers, url=f"/api/v1/webhooks/{system}/")
        assert response.status_code == 404, system
    assert Delivery.objects.count() == 0


def test_it_refuses_a_delivery_larger_than_the_upload_limit(github, client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    body = json.dumps(
        {"issue": {"number": 1, "body": "x" * 5000}, "repository": {"full_name": "acme/ops"}}
    ).encode()

    response = post(client, body, signed_headers(body, delivery_id="d-big"))

    assert response.status_code == 413
    assert Delivery.objects.count() == 0


def test_it_answers_405_to_a_get(github, client):
    assert client.get(WEBHOOK_URL).status_code == 405


# --- Linking an existing issue -----------------------------------------------------


def test_it_links_an_existing_issue_by_its_url_and_takes_its_status(github, backend):
    number = github.file(
        "Filed by hand",
        labels=["status: in progress"],
        assignees=["bob-gh"],
        body="Seen in the postmortem.\n\nDue: 2030-06-01",
    )
    item = make_item()

    link = pull.ticket_link_existing(
        item=reload(item), reference=f"{github.base}/acme/ops/issues/{number}", backend=backend
    )

    assert (link.key, link.url) == (str(number), f"{github.base}/acme/ops/issues/{number}")
    item = reload(item)
    assert (item.status, item.deadline) == ("in_progress", dt.date(2030, 6, 1))
    assert item.owner.email == "bob@example.com"
    assert {c.actor_label for c in ticket_changes(item)} == {f"github {number}"}

    # The item's other fields go to the issue, with the marker that makes it the item's.
    assert push.ticket_push(item_id=item.pk, backend=backend) == ("updated", "")
    issue = github.issues[number]
    assert issue["title"] == "Add circuit breaker to payment client"
    assert github.marked(push.ticket_marker(item.pk)) == [issue]
    assert github.labels(number) == ["followup", "status: in progress", "priority: P2"]
    assert len(github.issues) == 1


# --- The fake held to GitHub's own description ----------------------------------


def test_the_contract_names_an_endpoint_a_parameter_and_a_field_github_does_not_have(
    github, backend
):
    number = github.file("Filed by hand")

    backend.client.get("/repos/acme/ops/issues", params={"lables": "followup"})
    with pytest.raises(TicketError):
        backend.client.get("/repos/acme/ops/tickets/1")
    backend.client.patch(f"/repos/acme/ops/issues/{number}", json={"due_on": "2030-01-01"})
    with pytest.raises(TicketError):
        backend.client.patch(f"/repos/acme/ops/issues/{number}", json={"state": "shut"})
    problems, github.violations = github.violations, []

    assert len(problems) == 4, problems
    assert "query parameters not described: ['lables']" in problems[0]
    assert "GitHub describes no GET /repos/acme/ops/tickets/1" in problems[1]
    assert "body fields not described: ['due_on']" in problems[2]
    assert "at state: 'shut' is not one of ['open', 'closed']" in problems[3]


def test_the_contract_names_what_an_answer_of_the_fake_lacks(github, backend):
    number = github.file("Filed by hand")
    del github.issues[number]["node_id"]
    github.issues[number]["due_on"] = "2030-01-01"

    backend.fetch(str(number))
    problems, github.violations = github.violations, []

    assert len(problems) == 2, problems
    assert "'node_id' is a required property" in problems[0]
    assert "fields not described: ['due_on']" in problems[1]

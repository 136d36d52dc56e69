"""The sync engine against a stand-in for Jira Cloud over real loopback HTTP
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
from tracker.ticketing import jira as jira_backend
from tracker.ticketing.base import TicketError
from tracker.ticketing.jira import JiraBackend

from . import fakes
from .fakes import FakeJira, change, make_item, reload

pytestmark = pytest.mark.django_db

SECRET = "jira-hook-secret"
WEBHOOK_URL = "/api/v1/webhooks/jira/"


@pytest.fixture(scope="module")
def make_httpserver():
    yield from fakes.threaded_server()


@pytest.fixture
def jira(httpserver, settings):
    """Ticket sync on, to the fake Jira Cloud; alice and bob are mapped to accounts,
    carol is not (and Jira's user search, which hides emails, cannot find her)."""
    settings.TICKETS_BACKEND = "jira"
    settings.TICKETS_AUTO_CREATE = True
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    settings.TICKETS_MARKER_PREFIX = "followup"
    settings.TICKETS_RATE_LIMIT = 0
    settings.TICKETS_MAX_RETRIES = 1
    settings.TICKETS_TIMEOUT_SECONDS = 5
    settings.TICKETS_PRIORITY_MAP = {}
    settings.TICKETS_STATUS_MAP = {}
    settings.TICKETS_STATUS_READ_MAP = {}
    settings.TICKETS_USER_MAP = {"alice@example.com": "acc-alice", "bob@example.com": "acc-bob"}
    settings.JIRA_URL = httpserver.url_for("").rstrip("/")
    settings.JIRA_PROJECT = FakeJira.PROJECT
    settings.JIRA_EMAIL = FakeJira.EMAIL
    settings.JIRA_API_TOKEN = FakeJira.API_TOKEN
    settings.JIRA_PAT = ""
    settings.JIRA_WEBHOOK_SECRET = SECRET
    reset_backend()
    fake = FakeJira(httpserver)
    yield fake
    fake.release()
    reset_backend()
    fake.assert_kept_contract()


def build_backend(**options) -> JiraBackend:
    options = {"timeout": 5, "max_retries": 1, "rate_per_second": 0, **options}
    return JiraBackend.build(backend_config("jira"), sleep=lambda _: None, **options)


@pytest.fixture
def backend(jira) -> JiraBackend:
    return build_backend()


def pushed(item, backend) -> str:
    """Push the item's ticket; its key."""
    assert push.ticket_push(item_id=item.pk, backend=backend)[1] == ""
    return reload(item).ticket_link.key


def ticket_changes(item) -> list[ActionItemChange]:
    return list(ActionItemChange.objects.filter(item=item, source=ChangeSource.TICKET))


def adf_text(document: dict) -> str:
    """The text of an Atlassian Document, paragraphs on lines of their own."""
    return "\n".join(
        "".join(node.get("text", "\n") for node in paragraph["content"])
        for paragraph in document["content"]
    )


# --- Push -------------------------------------------------------------------------


def test_it_creates_an_issue_with_the_items_fields(jira, backend):
    item = make_item()

    report = push.tickets_push(item_ids=[item.pk], backend=backend)

    assert (report.created, report.failed) == (1, 0)
    link = reload(item).ticket_link
    assert (link.state, link.key) == (TicketSyncState.SYNCED, "OPS-1")
    assert link.url == f"{jira.base}/browse/OPS-1"
    fields = jira.issues["OPS-1"]["fields"]
    assert fields["summary"] == "Add circuit breaker to payment client"
    description = adf_text(fields["description"])
    assert description.startswith("Trip after 5 failures in 10 s.")
    assert "INC-2024-0142" in description
    assert f"/items/{item.pk}/" in description
    assert fields["priority"]["name"] == "Medium"
    assert fields["duedate"] == "2030-03-01"
    assert fields["assignee"]["accountId"] == "acc-alice"
    assert fields["labels"] == [push.ticket_marker(item.pk), "followup"]
    assert fields["status"]["name"] == "To Do"


def test_it_moves_the_issue_through_the_workflow_by_target_status_name(jira, backend):
    item = make_item()
    pushed(item, backend)
    steps = [
        ("in_progress", "In Progress"),
        ("blocked", "In Progress"),  # stock Jira has no Blocked
        ("done", "Done"),
        ("open", "To Do"),
        ("cancelled", "Done"),  # nor a cancelled status
    ]

    for status, remote in steps:
        change(item, status=status)
        outcome, error = push.ticket_push(item_id=item.pk, backend=backend)

        assert (outcome, error) == ("updated", ""), status
        assert jira.status("OPS-1") == remote, status
        assert reload(item).ticket_link.state == TicketSyncState.SYNCED

    # An item that is already done gets an issue moved out of the initial status.
    finished = make_item(status="done")
    assert jira.status(pushed(finished, backend)) == "Done"
    assert len(jira.issues) == 2


def test_it_makes_one_issue_when_the_answer_to_the_create_is_lost(jira):
    backend = build_backend(timeout=1.0)
    item = make_item(status="in_progress")
    marker = push.ticket_marker(item.pk)

    jira.lose_next_create()
    outcome, error = push.ticket_push(item_id=item.pk, backend=backend)
    jira.release()

    assert outcome == "failed"
    assert "outcome unknown" in error
    link = reload(item).ticket_link
    assert (link.state, link.key, link.attempts) == (TicketSyncState.FAILING, "", 1)
    assert link.next_attempt_at > timezone.now()
    # Jira made it (still To Do: the transition never came); only the answer was lost.
    assert [i["key"] for i in jira.marked(marker)] == ["OPS-1"]
    assert jira.status("OPS-1") == "To Do"

    change(item, title="Circuit breaker for the payment client", priority="P1")
    outcome, error = push.ticket_push(item_id=item.pk, backend=backend)

    assert (outcome, error) == ("updated", "")
    assert list(jira.issues) == ["OPS-1"]
    link = reload(item).ticket_link
    assert (link.state, link.key) == (TicketSyncState.SYNCED, "OPS-1")
    fields = jira.issues["OPS-1"]["fields"]
    assert (fields["summary"], fields["priority"]["name"]) == (
        "Circuit breaker for the payment client",
        "High",
    )
    assert jira.status("OPS-1") == "In Progress"


def test_it_converges_after_an_outage_during_a_burst_of_changes(jira, backend):
    items = [make_item(title=f"Follow-up {n}") for n in range(6)]
    ids = [item.pk for item in items]
    push.tickets_push(item_ids=ids[:3], backend=backend)

    jira.down = True
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
    jira.down = False

    report = push.tickets_push(item_ids=ids, backend=backend)

    assert (report.created, report.updated, report.failed) == (3, 3, 0)
    assert len(jira.issues) == 6
    for n, item in enumerate(items):
        item = reload(item)
        assert item.ticket_link.state == TicketSyncState.SYNCED
        (issue,) = jira.marked(push.ticket_marker(item.pk))
        assert issue["key"] == item.ticket_link.key
        fields = issue["fields"]
        assert (fields["summary"], fields["priority"]["name"]) == (
            f"Follow-up {n} (revised)",
            "Low",
        )
        assert fields["status"]["name"] == ("Done" if n < 2 else "In Progress")
        assert fields["duedate"] == (None if n == 5 else "2030-03-01")


def test_it_finds_owners_whose_emails_jira_hides(jira, settings):
    # No map: Cloud's user search finds alice by her hidden email, and her
    # issue comes back as hers.
    settings.TICKETS_USER_MAP = {}
    backend = build_backend()
    item = make_item()

    key = pushed(item, backend)

    assignee = jira.issues[key]["fields"]["assignee"]
    assert assignee["accountId"] == "acc-alice" and "emailAddress" not in assignee
    jira.edit(key, duedate="2030-07-01")
    assert pull.tickets_poll(backend=backend).changed == 1
    item = reload(item)
    assert (item.owner.email, item.deadline) == ("alice@example.com", dt.date(2030, 7, 1))
    assert ticket_changes(item)[0].field == "deadline"


def test_it_pushes_through_conflicting_updates(jira, backend):
    item = make_item()
    key = pushed(item, backend)

    jira.conflict(1)  # the edit, refused once
    change(item, title="Retitled")
    assert push.ticket_push(item_id=item.pk, backend=backend) == ("updated", "")

    jira.conflict(1)  # the transition, refused once
    change(item, status="in_progress")
    assert push.ticket_push(item_id=item.pk, backend=backend) == ("updated", "")

    assert (jira.issues[key]["fields"]["summary"], jira.status(key)) == ("Retitled", "In Progress")
    assert jira.conflicts == 0


def test_it_keeps_the_key_of_an_issue_it_could_not_move_and_moves_it_later(jira, backend):
    item = make_item(status="in_progress")
    jira.conflict(5)  # more than the client's retries: the transition fails for now

    outcome, error = push.ticket_push(item_id=item.pk, backend=backend)

    assert outcome == "failed" and "could not move it to 'In Progress'" in error
    link = reload(item).ticket_link
    assert (link.key, link.state) == ("OPS-1", TicketSyncState.FAILING)
    assert link.next_attempt_at is not None  # retried: a conflict passes
    assert pull.tickets_poll(backend=backend).changed == 0  # "To Do" is no news
    jira.conflicts = 0

    assert push.ticket_push(item_id=item.pk, backend=backend) == ("updated", "")
    assert list(jira.issues) == ["OPS-1"] and jira.status("OPS-1") == "In Progress"


def test_it_waits_out_the_search_lag_after_a_lost_create(jira, settings):
    # JQL lags creates and Jira offers no lookup that does not: what keeps a
    # lost create from being repeated is the retry delay, longer than the lag.
    backend = build_backend(timeout=1.0)
    jira.index_lag = True
    item = make_item()

    jira.lose_next_create()
    assert push.ticket_push(item_id=item.pk, backend=backend)[0] == "failed"
    jira.release()

    link = reload(item).ticket_link
    delay = (link.next_attempt_at - timezone.now()).total_seconds()
    assert delay > settings.TICKETS_RETRY_BASE_SECONDS - 5
    marker = push.ticket_marker(item.pk)
    assert backend.find(marker) is None  # inside the lag: a retry now would duplicate

    jira.catch_up()  # seconds later, long before the retry is due
    assert push.ticket_push(item_id=item.pk, backend=backend) == ("updated", "")
    assert list(jira.issues) == ["OPS-1"]


def test_it_reads_every_change_when_a_page_token_expires(jira, backend, monkeypatch):
    monkeypatch.setattr(jira_backend, "PAGE_SIZE", 2)
    items = [make_item(title=f"Follow-up {n}") for n in range(5)]
    keys = [pushed(item, backend) for item in items]
    assert pull.tickets_poll(backend=backend).changed == 0
    for key in keys:
        jira.edit(key, duedate="2030-08-01")

    polled = []
    original = jira.search

    def search_expiring_after_the_first_page(self, request):
        answer = original(request)
        if len(polled) == 0:
            self.expire_page_tokens()
        polled.append(request.get_json().get("nextPageToken"))
        return answer

    monkeypatch.setattr(
        FakeJira,
        "routes",
        [
            (
                method,
                pattern,
                search_expiring_after_the_first_page if handler is FakeJira.search else handler,
            )
            for method, pattern, handler in FakeJira.routes
        ],
    )
    report = pull.tickets_poll(backend=backend)

    assert (report.error, report.seen, report.changed) == ("", 5, 5)
    assert polled[0] is None and polled[2] is None  # the query started again
    assert {reload(item).deadline for item in items} == {dt.date(2030, 8, 1)}


# --- Preflight ----------------------------------------------------------------------


def test_preflight_passes_with_permissions_statuses_and_known_owners(jira, backend):
    pushed(make_item(), backend)

    assert backend.preflight(owner_emails=["alice@example.com", "bob@example.com"]) == []


def test_preflight_names_missing_permissions_statuses_transitions_and_owners(jira, settings):
    settings.TICKETS_STATUS_MAP = {"blocked": "Blocked"}
    settings.TICKETS_USER_MAP = {}
    backend = build_backend()
    jira.file("Ours", labels=["followup"], status="Done")
    jira.missing_permissions = {"TRANSITION_ISSUES", "ASSIGN_ISSUES"}

    findings = backend.preflight(owner_emails=["alice@example.com", "carol@example.com"])

    by_area = {finding.area: finding for finding in findings}
    assert set(by_area) == {"permission", "status", "workflow", "owner"}
    assert "lacks TRANSITION_ISSUES, ASSIGN_ISSUES in project OPS" in by_area["permission"].message
    assert "no status 'Blocked'" in by_area["status"].message
    assert "from 'Done' (as OPS-1 is) the workflow offers no transition to 'Blocked'" in (
        by_area["workflow"].message
    )
    assert not by_area["owner"].blocking
    assert "carol@example.com" in by_area["owner"].message
    assert "alice" not in by_area["owner"].message  # found by her hidden email
    assert [f.blocking for f in findings] == [True, True, True, False]


def test_preflight_reports_a_project_it_cannot_read(jira, settings):
    settings.JIRA_PROJECT = "NOPE"
    (finding,) = build_backend().preflight()

    assert (finding.area, finding.blocking) == ("connection", True)
    assert "cannot read project NOPE" in finding.message


# --- Pull -------------------------------------------------------------------------


def test_it_applies_changes_made_in_jira(jira, backend):
    item = make_item()
    key = pushed(item, backend)

    assert pull.tickets_poll(backend=backend).changed == 0  # the next poll reads from here

    jira.edit(key, status={"name": "Done"}, assignee="acc-bob", duedate="2030-05-15")
    report = pull.tickets_poll(backend=backend)

    assert (report.error, report.seen, report.changed) == ("", 1, 1)
    item = reload(item)
    assert (item.status, item.deadline) == ("done", dt.date(2030, 5, 15))
    assert item.owner.email == "bob@example.com"
    assert item.completed_at is not None
    changes = ticket_changes(item)
    assert {c.field for c in changes} == {"status", "completed_at", "deadline", "owner"}
    assert {c.actor_label for c in changes} == {f"jira {key}"}
    # Taken back, not pushed back: the issue says so already.
    assert item.ticket_link.state == TicketSyncState.SYNCED
    assert pull.tickets_poll(backend=backend).changed == 0


def test_it_does_not_take_its_own_pushes_back(jira, backend):
    item = make_item()
    key = pushed(item, backend)
    bob = services.person_get_or_create(email="bob@example.com")
    change(item, status="in_progress", deadline=dt.date(2030, 6, 1), owner=bob)
    pushed(item, backend)

    polled = pull.tickets_poll(backend=backend)
    pulled = pull.tickets_pull(keys=[key], backend=backend)

    assert (polled.error, polled.changed, pulled.error, pulled.seen, pulled.changed) == (
        "",
        0,
        "",
        1,
        0,
    )
    assert ticket_changes(item) == []
    assert reload(item).ticket_link.state == TicketSyncState.SYNCED


def test_it_keeps_a_blocked_item_blocked_though_jira_says_in_progress(jira, backend):
    item = make_item(status="blocked")
    key = pushed(item, backend)
    assert jira.status(key) == "In Progress"

    jira.edit(key, duedate="2030-07-01")  # someone touches the issue: the poll reads it
    report = pull.tickets_poll(backend=backend)

    assert (report.error, report.seen, report.changed) == ("", 1, 1)
    item = reload(item)
    assert (item.status, item.deadline) == ("blocked", dt.date(2030, 7, 1))
    assert [c.field for c in ticket_changes(item)] == ["deadline"]


def test_it_keeps_an_owner_jira_cannot_resolve(jira, backend):
    # Jira cannot find carol: her issue is left unassigned by the tracker's own
    # push, which is no news about who owns the item.
    item = make_item(owner=services.person_get_or_create(email="carol@example.com"))
    key = pushed(item, backend)
    assert jira.issues[key]["fields"]["assignee"] is None

    jira.edit(key, duedate="2030-07-01")
    pull.tickets_pull(keys=[key], backend=backend)

    item = reload(item)
    assert item.deadline == dt.date(2030, 7, 1)
    assert item.owner is not None
    assert item.owner.email == "carol@example.com"


# --- Inbound webhooks ---------------------------------------------------------------


def delivery(key: str, *, delivery_id: str = "9f3a8e2c-5b1d-4c7e-a0f4-2d6b8c1e7a90"):
    body = json.dumps(
        {
            "timestamp": 1767225600000,
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "issue": {"id": "10001", "key": key, "fields": {"status": {"name": "Done"}}},
        }
    ).encode()
    return body, signed_headers(body, delivery_id=delivery_id)


def signed_headers(body: bytes, *, delivery_id: str, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={digest}", "X-Atlassian-Webhook-Identifier": delivery_id}


def post(client, body: bytes, headers: dict[str, str], url: str = WEBHOOK_URL):
    return client.post(url, body, content_type="application/json", headers=headers)


def test_it_applies_a_signed_delivery_once_it_commits(
    jira, client, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    item = make_item()
    push.tickets_push(item_ids=[item.pk])
    jira.edit("OPS-1", status={"name": "Done"})
    body, headers = delivery("OPS-1")

    with fakes.celery_eager(), django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, body, headers)
        assert reload(item).status == "open"  # read after the answer, not before

    assert response.status_code == 202
    assert len(callbacks) == 1
    assert reload(item).status == "done"
    assert {c.actor_label for c in ticket_changes(item)} == {"jira OPS-1"}
    assert list(Delivery.objects.values_list("system", "keys")) == [("jira", ["OPS-1"])]


def test_it_acknowledges_a_redelivery_and_enqueues_nothing(
    jira, client, django_capture_on_commit_callbacks
):
    body, headers = delivery("OPS-1")
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
        {"X-Hub-Signature": "sha1=0123456789abcdef", "X-Atlassian-Webhook-Identifier": "d-1"},
        {"X-Atlassian-Webhook-Identifier": "d-1"},
    ],
    ids=["bad", "other-algorithm", "missing"],
)
def test_it_refuses_a_delivery_without_a_valid_signature(
    jira, client, django_capture_on_commit_callbacks, headers
):
    body, _ = delivery("OPS-1")
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body, headers)

    assert response.status_code == 401
    assert (callbacks, Delivery.objects.count()) == ([], 0)


def test_it_answers_404_for_a_ticket_system_not_configured(jira, client):
    body, headers = delivery("OPS-1")

    for system in ("github", "redmine", "gitlab"):
        response = post(client, body, headers, url=f"/api/v1/webhooks/{system}/")
        assert response.status_code == 404, system
    assert Delivery.objects.count() == 0


def test_it_refuses_a_delivery_larger_than_the_upload_limit(jira, client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    body = json.dumps({"issue": {"key": "OPS-1", "fields": {"summary": "x" * 5000}}}).encode()

    response = post(client, body, signed_headers(body, delivery_id="d-big"))

    assert response.status_code == 413
    assert Delivery.objects.count() == 0


def test_it_answers_405_to_a_get(jira, client):
    assert client.get(WEBHOOK_URL).status_code == 405


# --- Linking an existing issue -----------------------------------------------------


def test_it_links_an_existing_issue_by_its_browse_url_and_takes_its_status(jira, backend):
    key = jira.file(
        "Filed by hand",
        status={"name": "In Progress"},
        assignee={"accountId": "acc-bob", "displayName": "Bob"},
        duedate="2030-06-01",
    )
    item = make_item()

    link = pull.ticket_link_existing(
        item=reload(item), reference=f"{jira.base}/browse/{key}", backend=backend
    )

    assert (link.key, link.url) == (key, f"{jira.base}/browse/{key}")
    item = reload(item)
    assert (item.status, item.deadline) == ("in_progress", dt.date(2030, 6, 1))
    assert item.owner.email == "bob@example.com"
    assert {c.actor_label for c in ticket_changes(item)} == {f"jira {key}"}

    # The item's other fields go to the issue, with the labels that make it the item's.
    assert push.ticket_push(item_id=item.pk, backend=backend) == ("updated", "")
    fields = jira.issues[key]["fields"]
    assert fields["summary"] == "Add circuit breaker to payment client"
    assert sorted(fields["labels"]) == sorted(["followup", push.ticket_marker(item.pk)])
    assert len(jira.issues) == 1


def test_it_reads_back_changes_to_an_issue_it_linked(jira, backend):
    key = jira.file("Filed by hand", status={"name": "In Progress"})
    item = make_item()
    pull.ticket_link_existing(item=reload(item), reference=key, backend=backend)
    push.ticket_push(item_id=item.pk, backend=backend)

    jira.edit(key, status={"name": "Done"})
    report = pull.tickets_poll(backend=backend)

    assert (report.error, report.changed) == ("", 1)
    assert reload(item).status == "done"


# --- The fake held to Jira's own description ----------------------------------------


def test_the_contract_names_an_endpoint_a_parameter_and_a_field_jira_does_not_have(jira, backend):
    key = jira.file("Filed by hand")

    backend.client.get(f"/rest/api/3/issue/{key}", params={"field": "summary"})
    with pytest.raises(TicketError):
        backend.client.get(f"/rest/api/3/issue/{key}/labels")
    backend.client.put(f"/rest/api/3/issue/{key}", json={"fields": {}, "labels": ["x"]})
    with pytest.raises(TicketError):
        backend.client.post(
            "/rest/api/3/search/jql",
            json={
                "jql": 'project = "OPS" AND labels = "x" ORDER BY created ASC',
                "maxResults": "9",
            },
        )
    problems, jira.violations = jira.violations, []

    assert len(problems) == 4, problems
    assert "query parameters not described: ['field']" in problems[0]
    assert f"Jira describes no GET /rest/api/3/issue/{key}/labels" in problems[1]
    assert "body fields not described: ['labels']" in problems[2]
    assert "at maxResults: '9' is not of type 'integer'" in problems[3]


def test_the_contract_names_what_an_answer_of_the_fake_lacks(jira, backend):
    key = jira.file("Filed by hand")
    jira.issues[key]["id"] = 10001  # Jira's ids are strings
    jira.issues[key]["summary"] = "misplaced"

    backend.fetch(key)
    problems, jira.violations = jira.violations, []

    assert len(problems) == 2, problems
    assert "at id: 10001 is not of type 'string'" in problems[0]
    assert "fields not described: ['summary']" in problems[1]

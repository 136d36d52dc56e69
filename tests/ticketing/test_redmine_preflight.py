"""`sync_tickets --check` and the admin's check page against a real Redmine: what
will not work, found with the configured key before a sync fails."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests import factories
from tracker import services
from tracker.ticketing import get_backend, reset_backend
from tracker.ticketing.base import PreflightFinding

from .fakes import make_item

pytestmark = [pytest.mark.django_db, pytest.mark.redmine]

STATUSES = ["New", "In Progress", "Feedback", "Closed", "Rejected"]


@pytest.fixture
def an_issue_in_each_status(redmine_admin):
    """Redmine shows a user's allowed moves only on an issue: one of each status."""
    for name in STATUSES:
        issue = redmine_admin.create(subject=f"Preflight sample ({name})", tracker_id=1)
        if name != "New":
            redmine_admin.update(issue["id"], status_id=redmine_admin.id_of("issue_statuses", name))


def blocking(findings: list[PreflightFinding]) -> list[str]:
    return [f"{f.area}: {f.message}" for f in findings if f.blocking]


def warnings(findings: list[PreflightFinding]) -> list[str]:
    return [f"{f.area}: {f.message}" for f in findings if not f.blocking]


def test_it_names_the_moves_the_workflow_of_a_least_privileged_user_forbids(
    redmine_syncbot, an_issue_in_each_status
):
    findings = redmine_syncbot.preflight(owner_emails=["alice@example.com"])

    role = "the workflow of role Follow-up sync (tracker Bug)"
    assert blocking(findings) == [
        f"workflow: From New, {role} allows no move to Closed or Rejected: an item made "
        "done or cancelled while its ticket is New cannot be pushed (Administration → Workflow).",
        f"workflow: From In Progress, {role} allows no move to Rejected: an item made "
        "cancelled while its ticket is In Progress cannot be pushed (Administration → Workflow).",
        f"workflow: From Feedback, {role} allows no move to Rejected: an item made "
        "cancelled while its ticket is Feedback cannot be pushed (Administration → Workflow).",
        f"workflow: From Closed, {role} allows no move to Rejected: an item made "
        "cancelled while its ticket is Closed cannot be pushed (Administration → Workflow).",
        f"workflow: From Rejected, {role} allows no move to New, In Progress, Feedback or "
        "Closed: an item made open, in_progress, blocked or done while its ticket is Rejected "
        "cannot be pushed (Administration → Workflow).",
    ]
    # alice is mapped to her Redmine id (TICKETS_USER_MAP) and may be assigned issues.
    assert warnings(findings) == []


def test_it_says_a_user_who_is_no_administrator_cannot_find_owners_by_email(
    redmine_syncbot, redmine_admin, an_issue_in_each_status
):
    findings = redmine_syncbot.preflight(
        owner_emails=["alice@example.com", "Bob@Example.com", "carol@example.com"]
    )

    alice = redmine_admin.id_of("users", "alice")
    assert warnings(findings) == [
        "owner: Redmine user syncbot is not an administrator, so it cannot look users up by "
        "email: bob@example.com, carol@example.com are not in TICKETS_USER_MAP, so their "
        "tickets stay unassigned and an assignee set in Redmine is not read back. Map each to "
        f"a Redmine user id (assignable members: Alice Example = {alice})."
    ]


def test_an_administrators_key_passes_and_owners_are_looked_up(
    redmine_backend, an_issue_in_each_status
):
    findings = redmine_backend.preflight(owner_emails=["alice@example.com", "nobody@example.com"])

    assert findings == [
        PreflightFinding(
            "owner",
            "nobody@example.com has no Redmine user: their tickets stay unassigned "
            "(or map them in TICKETS_USER_MAP).",
            blocking=False,
        )
    ]


def test_it_reports_a_key_redmine_refuses(redmine_settings, settings):
    settings.REDMINE_API_KEY = "not-a-key"
    reset_backend()

    findings = get_backend().preflight()

    assert [(f.area, f.blocking) for f in findings] == [("connection", True)]
    assert "refused the API key (401): check REDMINE_API_KEY" in findings[0].message
    assert "not-a-key" not in findings[0].message


def test_it_reports_a_project_the_user_cannot_see(redmine_settings, settings):
    settings.REDMINE_PROJECT = "no-such-project"
    reset_backend()

    findings = get_backend().preflight()

    assert blocking(findings) == [
        "project: Redmine user admin cannot see project 'no-such-project': it does not exist "
        "or the user is not a member (REDMINE_PROJECT is the project's identifier)."
    ]


def test_it_reports_mapped_names_redmine_does_not_have(
    redmine_settings, settings, an_issue_in_each_status
):
    settings.TICKETS_PRIORITY_MAP = {"P0": "Critical"}
    settings.TICKETS_STATUS_MAP = {"blocked": "Waiting"}
    settings.REDMINE_TRACKER = "Incident"
    reset_backend()

    found = blocking(get_backend().preflight())

    assert (
        "priority: Redmine has no active priority 'Critical' for P0: set TICKETS_PRIORITY_MAP."
        in found
    )
    assert any(f.startswith("status: Redmine has no status 'Waiting' for blocked") for f in found)
    assert (
        "tracker: Project Follow-ups has no tracker 'Incident' (it has Bug, Feature, Support): "
        "set REDMINE_TRACKER." in found
    )


def test_the_command_prints_a_line_per_finding_and_exits_1_when_one_blocks(
    redmine_syncbot, an_issue_in_each_status, capsys
):
    make_item()
    make_item(owner=services.person_get_or_create(email="dave@example.com"))
    # Done items' owners are not checked: nothing will be assigned to them.
    make_item(status="done", owner=services.person_get_or_create(email="erin@example.com"))

    with pytest.raises(SystemExit) as exited:
        call_command("sync_tickets", "--check")

    assert exited.value.code == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        *["blocking workflow"] * 5,
        "warning owner",
    ]
    assert "dave@example.com are not in TICKETS_USER_MAP" in lines[-2]
    assert lines[-1] == "redmine: 5 blocking, 1 warnings"


def test_the_command_exits_0_when_nothing_blocks(redmine_backend, an_issue_in_each_status, capsys):
    make_item()

    call_command("sync_tickets", "--check")

    assert capsys.readouterr().out == "redmine: every check passed\n"


def test_the_admin_shows_the_findings_on_the_ticket_links_page(
    redmine_syncbot, an_issue_in_each_status, client
):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))

    listing = client.get(reverse("admin:tracker_ticketlink_changelist"))
    page = client.get(reverse("admin:tracker_ticketlink_check"))

    assert reverse("admin:tracker_ticketlink_check") in listing.content.decode()
    assert page.status_code == 200
    text = page.content.decode()
    assert "redmine: 5 findings, 5 blocking a sync" in text
    assert "From New, the workflow of role Follow-up sync (tracker Bug)" in text


def test_the_admins_check_page_is_refused_to_staff_who_may_not_see_items(redmine_syncbot, client):
    client.force_login(factories.UserFactory(is_staff=True))

    assert client.get(reverse("admin:tracker_ticketlink_check")).status_code == 403

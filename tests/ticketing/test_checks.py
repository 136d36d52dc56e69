"""The system check that reports, at start, a ticket backend enabled but unable to work."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

SECRETS = {
    "REDMINE_API_KEY": "redmine-s3cr3t",
    "JIRA_API_TOKEN": "jira-s3cr3t",
    "JIRA_PAT": "jira-pat-s3cr3t",
    "JIRA_WEBHOOK_SECRET": "jira-hook-s3cr3t",
    "GITHUB_TOKEN": "github-s3cr3t",
    "GITHUB_WEBHOOK_SECRET": "github-hook-s3cr3t",
    "TICKETS_WEBHOOK_SECRET": "webhook-s3cr3t",
}
EMPTY = {
    "REDMINE_URL": "",
    "REDMINE_API_KEY": "",
    "REDMINE_PROJECT": "",
    "JIRA_URL": "",
    "JIRA_PROJECT": "",
    "JIRA_EMAIL": "",
    "JIRA_API_TOKEN": "",
    "JIRA_PAT": "",
    "GITHUB_REPOSITORY": "",
    "GITHUB_TOKEN": "",
    "TICKETS_WEBHOOK_URL": "",
    "TICKETS_WEBHOOK_SECRET": "",
}


@pytest.fixture(autouse=True)
def _nothing_configured(settings):
    for name, value in EMPTY.items():
        setattr(settings, name, value)


def ticket_errors() -> list:
    return run_checks(tags=["tickets"])


def texts(errors) -> str:
    return "\n".join(f"{e.msg}\n{e.hint or ''}" for e in errors)


def test_it_reports_nothing_when_sync_is_off(settings):
    settings.TICKETS_BACKEND = ""

    assert ticket_errors() == []


def test_it_reports_an_unknown_backend(settings):
    settings.TICKETS_BACKEND = "bugzilla"

    (error,) = ticket_errors()

    assert error.id == "tracker.E001"
    assert "bugzilla" in error.msg
    assert "github, jira, redmine, webhook" in error.hint


@pytest.mark.parametrize(
    ("backend", "settings_named"),
    [
        ("redmine", ["REDMINE_URL", "REDMINE_API_KEY", "REDMINE_PROJECT"]),
        ("jira", ["JIRA_URL", "JIRA_PROJECT", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PAT"]),
        ("github", ["GITHUB_REPOSITORY", "GITHUB_TOKEN"]),
        ("webhook", ["TICKETS_WEBHOOK_URL", "TICKETS_WEBHOOK_SECRET"]),
    ],
)
def test_it_names_the_missing_settings_of_a_backend(settings, backend, settings_named):
    settings.TICKETS_BACKEND = backend

    errors = ticket_errors()

    assert errors
    assert {error.id for error in errors} == {"tracker.E002"}
    for name in settings_named:
        assert name in texts(errors), name


@pytest.mark.parametrize(
    ("backend", "incomplete"),
    [
        ("redmine", {"REDMINE_API_KEY": SECRETS["REDMINE_API_KEY"]}),
        (
            "jira",
            {
                "JIRA_API_TOKEN": SECRETS["JIRA_API_TOKEN"],
                "JIRA_WEBHOOK_SECRET": SECRETS["JIRA_WEBHOOK_SECRET"],
                "JIRA_PROJECT": "OPS",
            },
        ),
        ("jira", {"JIRA_PAT": SECRETS["JIRA_PAT"], "JIRA_EMAIL": "ops@example.com"}),
        (
            "github",
            {
                "GITHUB_TOKEN": SECRETS["GITHUB_TOKEN"],
                "GITHUB_WEBHOOK_SECRET": SECRETS["GITHUB_WEBHOOK_SECRET"],
                "GITHUB_REPOSITORY": "not a repository",
            },
        ),
        (
            "webhook",
            {
                "TICKETS_WEBHOOK_SECRET": SECRETS["TICKETS_WEBHOOK_SECRET"],
                "TICKETS_WEBHOOK_URL": "ftp://receiver.example.com/hook",
            },
        ),
    ],
    ids=["redmine", "jira-token", "jira-pat-and-email", "github", "webhook"],
)
def test_it_never_repeats_a_secret(settings, backend, incomplete):
    settings.TICKETS_BACKEND = backend
    for name, value in incomplete.items():
        setattr(settings, name, value)

    errors = ticket_errors()

    assert errors
    assert {error.id for error in errors} == {"tracker.E002"}
    for secret in SECRETS.values():
        assert secret not in texts(errors)
        assert "s3cr3t" not in repr(errors)


def test_it_says_which_jira_setting_is_missing(settings):
    settings.TICKETS_BACKEND = "jira"
    settings.JIRA_API_TOKEN = "s3cr3t"
    settings.JIRA_PROJECT = "OPS"
    settings.JIRA_EMAIL = "ops@example.com"

    (error,) = ticket_errors()

    assert error.id == "tracker.E002"
    assert "JIRA_URL" in error.msg
    assert "s3cr3t" not in error.msg + error.hint


@pytest.mark.parametrize(
    ("backend", "complete"),
    [
        (
            "redmine",
            {
                "REDMINE_URL": "https://redmine.example.com",
                "REDMINE_API_KEY": "key",
                "REDMINE_PROJECT": "ops",
            },
        ),
        (
            "jira",
            {
                "JIRA_URL": "https://example.atlassian.net",
                "JIRA_PROJECT": "OPS",
                "JIRA_EMAIL": "ops@example.com",
                "JIRA_API_TOKEN": "token",
            },
        ),
        (
            "jira",
            {"JIRA_URL": "https://jira.example.com", "JIRA_PROJECT": "OPS", "JIRA_PAT": "pat"},
        ),
        ("github", {"GITHUB_REPOSITORY": "example/ops", "GITHUB_TOKEN": "token"}),
        (
            "webhook",
            {
                "TICKETS_WEBHOOK_URL": "https://receiver.example.com/hook",
                "TICKETS_WEBHOOK_SECRET": "secret",
            },
        ),
    ],
    ids=["redmine", "jira-cloud", "jira-server", "github", "webhook"],
)
def test_it_reports_nothing_for_a_complete_configuration(settings, backend, complete):
    settings.TICKETS_BACKEND = backend
    for name, value in complete.items():
        setattr(settings, name, value)

    assert ticket_errors() == []


def test_it_reports_a_bad_allowed_network(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.TICKETS_BACKEND = "redmine"
    settings.TICKETS_ALLOWED_NETWORKS = ["10.0.0.0/33"]

    with pytest.raises(SystemCheckError, match="TICKETS_ALLOWED_NETWORKS"):
        call_command("check", tags=["tickets"])

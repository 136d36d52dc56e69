"""/metrics: who may scrape it, django-prometheus's metrics and the tracker's gauges."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests import factories
from tracker import reminders
from tracker.models import Notification, TicketLink, TicketPoll

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-0123456789"
NOW = dt.datetime(2024, 6, 12, 10, 0, tzinfo=dt.UTC)  # a Wednesday
TODAY = NOW.date()
OUTSIDE = "203.0.113.9"


@pytest.fixture
def token(settings):
    settings.TRACKER_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def values(scraped: dict, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for (n, labels), value in scraped.items() if n == name}


# --- Who may scrape -------------------------------------------------------------------


def test_it_refuses_an_address_outside_the_allow_list(client, token):
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE)

    assert response.status_code == 403
    assert b"django_http" not in response.content


def test_it_refuses_a_wrong_token_with_the_same_answer(client, token):
    wrong = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer nope")
    missing = client.get("/metrics", REMOTE_ADDR=OUTSIDE)

    assert (wrong.status_code, wrong.content) == (missing.status_code, missing.content)
    assert wrong.status_code == 403


def test_it_refuses_every_address_when_no_token_is_set_and_none_is_allowed(client, settings):
    settings.TRACKER_METRICS_ALLOW = []

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_it_serves_loopback_by_default(client):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_it_refuses_loopback_through_a_proxy(client):
    # Behind a proxy on the same host every client would look like loopback.
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=OUTSIDE)

    assert response.status_code == 403


def test_it_serves_an_allowed_network(client, settings):
    settings.TRACKER_METRICS_ALLOW = ["10.0.0.0/8"]

    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_it_serves_the_token_from_anywhere_by_ip_and_plain_http(client, token, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["tracker.example.com"]

    response = client.get(
        "/metrics",
        REMOTE_ADDR=OUTSIDE,
        HTTP_HOST="10.1.2.3:8000",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


# --- What it shows ----------------------------------------------------------------------


def make_items(make_action_item) -> list:
    def item(priority: str, status: str, days: int | None):
        deadline = TODAY + dt.timedelta(days=days) if days is not None else None
        return make_action_item(priority=priority, status=status, deadline=deadline)

    return [
        item("P0", "open", -1),  # overdue
        item("P0", "in_progress", 0),  # due today: this week, not overdue
        item("P1", "blocked", 6),  # the last day of "this week"
        item("P1", "open", 7),  # next week
        item("P2", "open", None),  # no deadline
        item("P2", "done", -10),  # closed: counts nowhere
        item("P3", "cancelled", -10),
    ]


def test_it_reports_the_tracker_gauges(client, token, make_action_item):
    with time_machine.travel(NOW - dt.timedelta(hours=1), tick=False):
        reminders.sweep(now=timezone.now())  # an empty table: it only records the run
    with time_machine.travel(NOW, tick=False):
        items = make_items(make_action_item)
        for n, state in enumerate(["pending", "pending", "sending", "failed", "sent"]):
            Notification.objects.create(
                item=items[0], recipient="a@example.com", kind="overdue",
                stage=f"overdue+{n}", deadline=items[0].deadline, state=state,
            )  # fmt: skip
        for item, state in zip(items[:4], ["pending", "failing", "failing", "synced"], strict=True):
            TicketLink.objects.create(item=item, system="redmine", state=state)
        TicketPoll.objects.create(system="redmine", last_success_at=NOW - dt.timedelta(minutes=5))
        TicketPoll.objects.create(system="jira", last_success_at=None)

        scraped = scrape(client, REMOTE_ADDR=OUTSIDE)

    zeros = {"P0": 0, "P1": 0, "P2": 0, "P3": 0, "P4": 0}
    assert values(scraped, "tracker_action_items_open", "priority") == {
        **zeros, "P0": 2, "P1": 2, "P2": 1,
    }  # fmt: skip
    assert values(scraped, "tracker_action_items_overdue", "priority") == {**zeros, "P0": 1}
    assert values(scraped, "tracker_action_items_due_this_week", "priority") == {
        **zeros, "P0": 1, "P1": 1,
    }  # fmt: skip
    assert values(scraped, "tracker_notifications", "state") == {
        "pending": 2, "sending": 1, "failed": 1,
    }  # fmt: skip
    assert values(scraped, "tracker_ticket_links", "state") == {"pending": 1, "failing": 2}
    assert values(scraped, "tracker_ticket_poll_last_success_age_seconds", "system") == {
        "redmine": 300
    }
    assert scraped[("tracker_reminder_sweep_last_success_age_seconds", ())] == 3600
    assert scraped[("tracker_collector_up", ())] == 1


def test_it_leaves_out_the_sweep_age_before_the_first_sweep(client, token):
    scraped = scrape(client)

    assert not [name for name, _ in scraped if name.startswith("tracker_reminder_sweep")]
    assert scraped[("tracker_collector_up", ())] == 1


def test_it_shows_django_prometheus_request_metrics(client, token):
    client.get("/healthz")
    client.get("/accounts/login/")

    names = {name for name, _ in scrape(client)}

    assert "django_http_requests_total_by_method_total" in names
    assert "django_http_responses_total_by_status_view_method_total" in names
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in names
    assert "process_resident_memory_bytes" in names


@pytest.mark.postgres
def test_it_shows_postgresql_query_metrics(client, token):
    # Only PostgreSQL's backend is wrapped (config/settings.py says why).
    factories.ActionItemFactory()
    client.get("/accounts/login/")

    scraped = scrape(client)

    vendors = {
        dict(labels).get("vendor") for name, labels in scraped if name == "django_db_execute_total"
    }
    assert "postgresql" in vendors


def test_it_reads_the_gauges_in_five_queries_whatever_the_number_of_items(
    client, token, make_action_item
):
    def count_scrape_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            scrape(client)
        return len(queries)

    make_items(make_action_item)
    few = count_scrape_queries()
    for _ in range(5):
        make_items(make_action_item)
    many = count_scrape_queries()

    assert few == many == 5


# --- Several processes ----------------------------------------------------------------

MULTIPROCESS_SCRIPT = """
import sys
import django
django.setup()
from django.test import Client
if sys.argv[1] == "serve":
    assert Client().get("/healthz").status_code == 200
else:
    from prometheus_client import generate_latest
    from config.metrics import registry
    sys.stdout.write(generate_latest(registry()).decode())
"""


def test_it_adds_up_every_worker_with_a_multiprocess_directory(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "TRACKER_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    (tmp_path / "prometheus").mkdir()

    def run(mode: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", MULTIPROCESS_SCRIPT, mode],
            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    run("serve")
    run("serve")
    scraped = samples(run("scrape"))

    # Counted by the first middleware (the probes are answered before the last one).
    assert scraped[("django_http_responses_before_middlewares_total", ())] == 2
    # No tables in that database: the tracker's gauges say so, the scrape still answers.
    assert scraped[("tracker_collector_up", ())] == 0

"""Structured logs: JSON lines, request and task ids, and no credentials."""

import contextlib
import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from celery import shared_task
from celery.contrib.testing.worker import start_worker

from config import celery_app, logs

BASE_DIR = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def json_lines():
    """Every line the root logger writes meanwhile, as the configured console handler
    formats it in production (JSON, with the context and redaction filters)."""
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    for log_filter in console.filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    root.addHandler(handler)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    try:
        yield lines
    finally:
        root.removeHandler(handler)


@pytest.fixture
def log_lines():
    with json_lines() as lines:
        yield lines


def test_the_console_handler_adds_the_context_and_redacts():
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")

    assert [type(f) for f in console.filters] == [logs.ContextFilter, logs.RedactFilter]
    assert isinstance(console.formatter, logs.JsonFormatter | logs.TextFormatter)


@pytest.mark.django_db
def test_it_logs_each_request_with_the_request_id_it_was_given(client, log_lines):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="req-0123456789abcdef")

    assert response["X-Request-ID"] == "req-0123456789abcdef"
    access = [line for line in log_lines() if line["logger"] == "tracker.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == "req-0123456789abcdef"
    assert access[0]["message"] == "GET /accounts/login/ 200"
    assert access[0] | {"duration_ms": 0} == access[0] | {
        "level": "INFO", "method": "GET", "path": "/accounts/login/", "status": 200, "duration_ms": 0,
    }  # fmt: skip


@pytest.mark.django_db
def test_it_puts_the_request_id_on_djangos_own_lines_too(client, log_lines):
    client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-not-found")

    [line] = [line for line in log_lines() if line["logger"] == "django.request"]
    assert line["message"] == "Not Found: /no-such-page/"
    assert line["request_id"] == "req-not-found"


@pytest.mark.django_db
def test_it_keeps_secrets_in_urls_out_of_the_logs(client, log_lines):
    calendar_token = "c" * 43
    link_token = "eyJpIjoxLCJyIjoiYUBleGFtcGxlLmNvbSJ9:1sZ9aB:signaturesignature"

    client.get(f"/calendar/{calendar_token}.ics")
    client.get(f"/r/{link_token}/")

    text = json.dumps(log_lines())
    assert calendar_token not in text
    assert link_token not in text
    paths = [line["path"] for line in log_lines() if line["logger"] == "tracker.access"]
    assert paths == ["/calendar/[REDACTED].ics", "/r/[REDACTED]/"]


@pytest.mark.parametrize(
    "given",
    ["", "x" * 129, "abc def", "evil\\nforged line", '"quoted"', "ü-unicode", "a;b"],
)
def test_it_replaces_an_insane_request_id(client, given):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)

    request_id = response["X-Request-ID"]
    assert request_id != given
    assert len(request_id) == 32 and int(request_id, 16) >= 0


def test_it_makes_a_request_id_when_none_is_given(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]

    assert first != second
    assert len(first) == 32


def test_it_logs_probes_only_at_debug_level(client, log_lines):
    client.get("/healthz")

    assert [line for line in log_lines() if line["logger"] == "tracker.access"] == []


@pytest.mark.parametrize(
    "message",
    [
        "sending Authorization: Bearer abc123secret",
        "GET https://redmine.example.com/issues.json?key=abc123secret&limit=5",
        "GET /search?api_key=abc123secret",
        "headers {'X-Redmine-API-Key': 'abc123secret', 'Accept': 'application/json'}",
        "broker at redis://:abc123secret@127.0.0.1:6379/0",
        "then token=abc123secret was used",
    ],
)
def test_it_redacts_credentials(log_lines, message):
    logging.getLogger("tracker.test").warning(message)

    [line] = log_lines()
    assert "abc123secret" not in json.dumps(line)
    assert "[REDACTED]" in line["message"]


def test_it_keeps_the_rest_of_the_line(log_lines):
    logging.getLogger("tracker.test").warning("GET %s", "/issues.json?key=abc123&limit=5")

    assert log_lines()[0]["message"] == "GET /issues.json?key=[REDACTED]&limit=5"


def test_it_redacts_the_values_of_secret_settings(log_lines, settings):
    settings.REDMINE_API_KEY = "redmine-key-from-settings"
    settings.TRACKER_METRICS_TOKEN = "metrics-token-from-settings"

    logger = logging.getLogger("tracker.test")
    logger.warning("key %s and %s", "redmine-key-from-settings", "metrics-token-from-settings")
    try:
        raise ValueError("rejected redmine-key-from-settings")
    except ValueError:
        logger.exception("failed", extra={"detail": {"key": "redmine-key-from-settings"}})

    text = json.dumps(log_lines())
    assert "redmine-key-from-settings" not in text
    assert "metrics-token-from-settings" not in text
    assert "ValueError: rejected [REDACTED]" in text


@shared_task(name="tests.ops.log_in_a_task")
def log_in_a_task() -> None:
    logging.getLogger("tracker.test").warning("inside the task")


def test_it_logs_a_task_with_its_id_and_name(log_lines):
    result = log_in_a_task.apply()

    [line] = [line for line in log_lines() if line["message"] == "inside the task"]
    assert line["task_id"] == result.id
    assert line["task_name"] == "tests.ops.log_in_a_task"
    # The task is over: later lines carry no task.
    logging.getLogger("tracker.test").warning("after the task")
    assert log_lines()[-1]["task_id"] is None


def test_it_carries_the_enqueuing_request_id_into_the_task(log_lines):
    log_in_a_task.apply(headers={"request_id": "req-from-the-web"})

    [line] = [line for line in log_lines() if line["message"] == "inside the task"]
    assert line["request_id"] == "req-from-the-web"


@pytest.fixture
def worker_app(redis_url):
    """The project's app on REDIS_URL, with a queue of this test's own."""
    queue = f"test-ops-{uuid.uuid4().hex}"
    changes = {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "task_always_eager": False,
        "task_default_queue": queue,
    }
    saved = {key: celery_app.conf[key] for key in changes}
    celery_app.conf.update(changes)
    vars(celery_app._local).pop("backend", None)  # built afresh from result_backend
    yield celery_app, queue
    celery_app.conf.update(saved)
    vars(celery_app._local).pop("backend", None)
    client = redis.Redis.from_url(redis_url)
    if keys := client.keys(f"_kombu.binding*{queue}"):
        client.delete(*keys)


@pytest.mark.redis
def test_a_worker_logs_the_id_of_the_request_that_enqueued_the_task(worker_app):
    app, queue = worker_app
    # The capture starts once the worker has started, which configures logging afresh.
    with (
        start_worker(app, pool="solo", queues=[queue], perform_ping_check=False),
        json_lines() as lines,
    ):
        token = logs.request_id_var.set("req-enqueued-it")  # as while serving a request
        try:
            result = log_in_a_task.apply_async(queue=queue, ignore_result=False)
        finally:
            logs.request_id_var.reset(token)
        result.get(timeout=20)

    [line] = [line for line in lines() if line["message"] == "inside the task"]
    assert line["request_id"] == "req-enqueued-it"
    assert line["task_id"] == result.id
    assert line["task_name"] == "tests.ops.log_in_a_task"


def test_it_puts_the_request_id_in_the_headers_of_tasks_it_enqueues():
    headers: dict = {}
    token = logs.request_id_var.set("req-enqueuing")
    try:
        logs.before_task_publish(headers=headers)
    finally:
        logs.request_id_var.reset(token)

    assert headers == {"request_id": "req-enqueuing"}


# --- The configuration, in a fresh process -------------------------------------------

LOG_SCRIPT = """
import logging, sys
import django
django.setup()
if "celery" in sys.argv:
    from config.celery import app
    app.log.setup(loglevel="INFO")  # what a worker does at start
logging.getLogger("tracker.test").warning("hello from %s", "a process")
"""


def log_from_a_process(tmp_path, *args: str, **env_vars: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "TRACKER_VAR_DIR": str(tmp_path / "var"),
        **env_vars,
    }
    result = subprocess.run(
        [sys.executable, "-c", LOG_SCRIPT, *args],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if "hello from" in line][-1]


def test_it_writes_json_when_stderr_is_not_a_terminal(tmp_path):
    line = json.loads(log_from_a_process(tmp_path))

    assert line["message"] == "hello from a process"
    assert line["level"] == "WARNING"
    assert line["logger"] == "tracker.test"
    assert "request_id" in line
    assert dt.datetime.fromisoformat(line["time"]).tzinfo is not None
    assert "T" in line["time"]


def test_it_writes_text_when_asked(tmp_path):
    line = log_from_a_process(tmp_path, LOG_FORMAT="text")

    assert line.endswith(" WARNING tracker.test hello from a process")


def test_the_celery_worker_keeps_the_django_logging_configuration(tmp_path):
    line = json.loads(log_from_a_process(tmp_path, "celery"))

    assert line["message"] == "hello from a process"

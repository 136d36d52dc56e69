"""gunicorn's access log keeps no secret from a URL: the calendar feed's token, the token of
a signed email link, or a token, key or secret in a query string, in the request line,
the path, the query string or the Referer. The app's own access log already left them out;
gunicorn's wrote them in full.
"""

import datetime as dt
import os
import runpy
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from config.gunicorn_logging import RedactingLogger
from tracker.links import action_token

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "gunicorn.conf.py"
CALENDAR_TOKEN = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"  # 44 characters, like ours
QUERY_SECRET = "hunter2-query-secret-value"


@pytest.fixture
def link_token(settings) -> str:
    return action_token(item_id=42, version=3, recipient="owner@example.com", action="done")


def secrets_in(text: str, *secrets: str) -> list[str]:
    return [secret for secret in secrets if secret in text]


def test_the_deployed_configuration_uses_the_redacting_logger():
    conf = runpy.run_path(str(CONF))
    cfg = Config()
    cfg.set("logger_class", conf["logger_class"])

    assert cfg.logger_class is RedactingLogger


def write_access_line(tmp_path, access_log_format: str, *, raw_uri: str, referer: str) -> str:
    """One access line, written by the real logger class to a real file."""
    path, _, query = raw_uri.partition("?")
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", access_log_format)
    logger = RedactingLogger(cfg)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": raw_uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_REFERER": referer,
        "HTTP_USER_AGENT": "calendar-app/1.0",
    }
    request = SimpleNamespace(headers=[("REFERER", referer), ("USER-AGENT", "calendar-app/1.0")])
    response = SimpleNamespace(status="200 OK", sent=123, headers=[("Content-Type", "text/plain")])
    logger.access(response, request, environ, dt.timedelta(milliseconds=12))
    for handler in logger.access_log.handlers:
        handler.flush()
    return (tmp_path / "access.log").read_text()


@pytest.mark.parametrize(
    "access_log_format",
    [
        Config().access_log_format,  # gunicorn's default, the deployed one
        '%(h)s "%(r)s" %(U)s ?%(q)s %(s)s "%({referer}i)s" %({referer}e)s %(f)s',
    ],
    ids=["default-format", "every-url-atom"],
)
def test_the_logger_redacts_the_calendar_token_and_link_tokens(
    tmp_path, link_token, access_log_format
):
    line = write_access_line(
        tmp_path,
        access_log_format,
        raw_uri=f"/calendar/{CALENDAR_TOKEN}.ics?token={QUERY_SECRET}",
        referer=f"https://tracker.example.com/r/{link_token}/",
    )

    assert secrets_in(line, CALENDAR_TOKEN, link_token, QUERY_SECRET) == []
    assert "/calendar/[REDACTED].ics" in line
    assert "/r/[REDACTED]" in line
    # Still useful: who, what, how it went.
    assert "203.0.113.7" in line
    assert "GET /calendar/" in line
    assert " 200 " in line


def test_the_logger_redacts_a_link_in_the_request_line(tmp_path, link_token):
    line = write_access_line(
        tmp_path, Config().access_log_format, raw_uri=f"/r/{link_token}/", referer="-"
    )

    assert link_token not in line
    assert '"GET /r/[REDACTED]/ HTTP/1.1" 200 123' in line


def test_the_logger_redacts_secrets_in_a_webhook_query_string(tmp_path):
    line = write_access_line(
        tmp_path,
        Config().access_log_format,
        raw_uri=f"/api/v1/webhooks/jira/?secret={QUERY_SECRET}&user_id=7",
        referer="-",
    )

    assert QUERY_SECRET not in line
    assert "/api/v1/webhooks/jira/?secret=[REDACTED]&user_id=7" in line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_real_gunicorn_writes_no_token_in_its_access_log(tmp_path, link_token):
    port = _free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),  # gunicorn may put a control socket there
        "PYTHONUNBUFFERED": "1",
        "WEB_CONCURRENCY": "1",
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--config",
        str(CONF),
        "--bind",
        f"127.0.0.1:{port}",
        "tests.hostile.access_log_app:app",
    ]
    paths = [
        f"/calendar/{CALENDAR_TOKEN}.ics",
        f"/r/{link_token}/",
        f"/api/v1/webhooks/github/?token={QUERY_SECRET}",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                urllib.request.urlopen(f"{base}/ready", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        for path in paths:
            request = urllib.request.Request(
                base + path, headers={"Referer": f"{base}/r/{link_token}/"}
            )
            assert urllib.request.urlopen(request, timeout=5).status == 200
    finally:
        process.terminate()
        process.wait(timeout=30)

    log = log_path.read_text()
    assert secrets_in(log, CALENDAR_TOKEN, link_token, QUERY_SECRET) == []
    assert '"GET /calendar/[REDACTED].ics HTTP/1.1" 200' in log
    assert '"GET /r/[REDACTED]/ HTTP/1.1" 200' in log
    assert '"GET /api/v1/webhooks/github/?token=[REDACTED] HTTP/1.1" 200' in log

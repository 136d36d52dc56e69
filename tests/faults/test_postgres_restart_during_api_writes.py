"""PostgreSQL restarts under a burst of API writes: nothing acknowledged is lost.

gunicorn serves the API as in production (deploy/gunicorn.conf.py, DEBUG off, 2
sync workers) on the private cluster. Six clients, each with an item of its own
and the manager's token, alternate for 10 s between
`PATCH /api/v1/action-items/{id}/` (the next status and a unique description)
and `POST .../comments/` (a unique body); 4 s in, PostgreSQL restarts once
(`pg_ctl stop -m fast`: sessions ended, a clean shutdown; or `-m immediate`: a
crash, recovered from the WAL; then `pg_ctl start`). Every answer is recorded.

Afterwards, each acknowledged write (2xx) is in the database: the PATCH's
description and status in the item's history (the status in force at that
change is the one the client asked for), the comment once. No request took
longer than 10 s. Answers of 500 and above are allowed while the database is
away, but must be the API's one error shape, `{"status": ..., "errors": [...]}`
as JSON, without a traceback.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import pytest
import requests

from .helpers import seed
from .services import BIN, django_env, free_port, query, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.faults]

CLIENTS = 6
BURST_SECONDS = 10.0
RESTART_AFTER = 4.0
HANG_BOUND = 10.0  # no answer may take longer (the client gives up at 15 s)
STATUSES = ("in_progress", "blocked", "open")  # each reachable from the others


@dataclass
class Answer:
    kind: str  # "patch" or "comment"
    item: int
    token: str
    status_sent: str | None
    started: float
    seconds: float
    code: int  # 0: no answer (connection refused, reset, timeout)
    content_type: str = ""
    body: str = ""
    error: str = ""

    @property
    def acknowledged(self) -> bool:
        return 200 <= self.code < 300


def client(base: str, api_key: str, item: int, number: int, until: float, out: list) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    step = 0
    while time.monotonic() < until:
        token = f"c{number}-w{step}"
        if step % 2 == 0:
            status = STATUSES[(step // 2) % len(STATUSES)]
            kind, method, url = "patch", "PATCH", f"{base}/api/v1/action-items/{item}/"
            payload = {"status": status, "description": token}
        else:
            status = None
            kind, method, url = "comment", "POST", f"{base}/api/v1/action-items/{item}/comments/"
            payload = {"body": token}
        started = time.monotonic()
        try:
            response = session.request(method, url, json=payload, timeout=(3, 15))
            answer = Answer(
                kind, item, token, status, started, time.monotonic() - started,
                response.status_code, response.headers.get("Content-Type", ""), response.text,
            )  # fmt: skip
        except requests.RequestException as exc:
            answer = Answer(
                kind, item, token, status, started, time.monotonic() - started, 0,
                error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
        out.append(answer)
        step += 1
        if not answer.code:
            time.sleep(0.05)  # refused at once: do not spin


def one_error_shape(answer: Answer) -> str:
    """Why a 5xx answer is not the API's error format, or ""."""
    if "Traceback" in answer.body or 'File "' in answer.body:
        return "traceback in the body"
    if not answer.content_type.startswith("application/json"):
        return f"Content-Type {answer.content_type!r}, body {answer.body[:120]!r}"
    try:
        data = json.loads(answer.body)
    except ValueError:
        return f"not JSON: {answer.body[:120]!r}"
    if not (isinstance(data, dict) and data.get("status") == answer.code and data.get("errors")):
        return f"not the error shape: {answer.body[:120]!r}"
    return ""


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_it_keeps_every_acknowledged_write_when_postgres_restarts(
    mode, private_postgres, scratch_db, processes, workdir
):
    env = django_env(
        workdir,
        database_url=scratch_db,
        API_THROTTLE_RATE="1000000/min",
        WEB_CONCURRENCY="2",
        GUNICORN_ACCESS_LOG="",
    )
    seeded = seed(processes, env, "api", "--items", str(CLIENTS))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The production settings (deploy/gunicorn.conf.py), bound to loopback only.
    gunicorn = processes.start(
        "gunicorn",
        [BIN / "gunicorn", "-c", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "config.wsgi"],
        env,
    )  # fmt: skip

    def ready() -> bool:
        assert gunicorn.poll() is None, processes.log(gunicorn)
        try:
            return requests.get(f"{base}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    assert wait_until(ready, timeout=60, interval=0.2), processes.log(gunicorn)

    answers: list[Answer] = []
    began = time.monotonic()
    threads = [
        threading.Thread(
            target=client,
            args=(base, seeded["token"], item, n, began + BURST_SECONDS, answers),
            daemon=True,
        )
        for n, item in enumerate(seeded["items"])
    ]
    for thread in threads:
        thread.start()
    time.sleep(RESTART_AFTER)
    restarted_at = time.monotonic()
    away = private_postgres.restart(mode)
    for thread in threads:
        thread.join(timeout=BURST_SECONDS + 30)
    assert not any(thread.is_alive() for thread in threads), "a client is still waiting"

    # What the database says, read once the burst is over.
    history = defaultdict(list)
    for item, change_id, at, field, value in query(
        scratch_db,
        "SELECT item_id, id, at, field, new_value FROM tracker_actionitemchange "
        "WHERE field IN ('status', 'description') ORDER BY item_id, at, id",
    ):
        history[item].append((at, change_id, field, value))
    comments = Counter(query(scratch_db, "SELECT item_id, body FROM tracker_comment"))
    items = dict(query(scratch_db, "SELECT id, status FROM tracker_actionitem"))

    lost = []
    for answer in (a for a in answers if a.acknowledged):
        if answer.kind == "comment":
            if comments[(answer.item, answer.token)] != 1:
                lost.append((answer.token, f"{comments[(answer.item, answer.token)]} comments"))
            continue
        rows = history[answer.item]
        change = [r for r in rows if r[2] == "description" and r[3] == answer.token]
        if len(change) != 1:
            lost.append((answer.token, f"{len(change)} description changes"))
            continue
        # The status in force at that change: the latest status change at or before it.
        in_force = "open"
        for at, _, field, value in rows:
            if field == "status" and at <= change[0][0]:
                in_force = value
        if in_force != answer.status_sent:
            lost.append((answer.token, f"status {in_force}, acknowledged {answer.status_sent}"))
    # The item rows agree with their history.
    disagree = {
        item: status
        for item, status in items.items()
        if [v for _, _, f, v in history[item] if f == "status"][-1:] not in ([status], [])
    }

    server_errors = [a for a in answers if a.code >= 500]
    malformed = Counter(reason for a in server_errors if (reason := one_error_shape(a)))
    slowest = max(answers, key=lambda a: a.seconds)
    codes = Counter(a.code for a in answers)
    report = {
        "test": f"postgres_restart_during_api_writes[{mode}]",
        "requests": len(answers),
        "acknowledged": sum(a.acknowledged for a in answers),
        "acknowledged_after_restart": sum(
            a.acknowledged for a in answers if a.started > restarted_at + away
        ),
        "codes": {str(code): n for code, n in sorted(codes.items())},
        "postgres_away_seconds": round(away, 2),
        "acknowledged_writes_lost": len(lost),
        "items_disagreeing_with_history": len(disagree),
        "slowest_seconds": round(slowest.seconds, 2),
        "server_errors_not_in_the_error_shape": dict(malformed),
        "no_answer": Counter(a.error.split(":")[0] for a in answers if not a.code),
    }
    print(json.dumps(report))
    log = processes.log(gunicorn, tail=100_000)

    assert report["acknowledged"] > 0 and report["acknowledged_after_restart"] > 0, report
    assert lost == [], (lost[:20], report)
    assert disagree == {}, (disagree, report)
    assert slowest.seconds < HANG_BOUND, (slowest, report)
    assert "WORKER TIMEOUT" not in log, log[-3000:]
    example = next((a for a in server_errors if one_error_shape(a)), None)
    assert not malformed, (
        "5xx answers during the outage are not the API's JSON error shape "
        "(config/urls.py sets handler404 but no handler500, and config.api.exception_handler "
        "returns None for database errors, so Django's HTML 'Server Error (500)' page goes "
        f"out): {dict(malformed)}; e.g. {example.kind} -> {example.code} "
        f"{example.content_type} {example.body[:200]!r}",
        report,
    )

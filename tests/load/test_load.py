"""Load: 50 clients for 60 seconds against gunicorn and PostgreSQL, and nothing fails.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker .venv/bin/pytest tests/load -s

TRACKER_LOAD_SECONDS (default 60) and TRACKER_LOAD_USERS (default 50) change
the run; TRACKER_LOAD_REPORT names the JSON report (default: a new temporary
file, whose path is printed).

Steps, all on this machine and in a scratch database on the server that
DATABASE_URL names (`tracker_load_<random>`, dropped at the end whatever happens):

1. `manage.py migrate`, and at the same time `collectstatic` into a temporary
   STATIC_ROOT (DEBUG=0 serves files through the manifest);
2. tests/load/seed.py fills it: 200 incidents imported as documents, 5,000
   action items, 100 people, a manager and five owners with passwords and API
   tokens;
3. gunicorn serves `config.wsgi` with 4 workers of 2 threads on a free loopback
   port, DEBUG=0, a random SECRET_KEY, the API throttle out of the way
   (1000000/min), no Redis (throttle counts in each worker's memory), plain http;
4. locust, in its own process (importing it here would monkey-patch this process
   with gevent), runs tests/load/locustfile.py headless: API clients with tokens
   and browsers with a session, TRACKER_LOAD_USERS of them, started 10 a second,
   for TRACKER_LOAD_SECONDS. Each request is recorded with its status and time;
5. gunicorn is stopped (always), then the figures are computed, printed (a table,
   then the report as one JSON line) and written to TRACKER_LOAD_REPORT.

It passes when no response is a 5xx, no request failed to connect or timed out,
every request got the answer it expects (a 412 to a PATCH whose If-Match went
stale under a concurrent change is one), gunicorn logged no error, and enough
requests were made to show that load was applied: at least one per client every
6 seconds (500 for 50 clients in 60 s; on a quiet machine they make several
times more, but the floor must hold on a 2-core machine shared with the rest of
the suite or other work, where 20 sign-ins at once can stall it for seconds).

Besides the whole run, the report gives the figures of the requests started
once every browser had signed in (`after_sign_in`): the sign-ins (password
hashing) hold every gunicorn thread for a while, and everything else waits.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.load]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCUSTFILE = Path(__file__).with_name("locustfile.py")

USERS = int(os.environ.get("TRACKER_LOAD_USERS", "50"))
SECONDS = int(os.environ.get("TRACKER_LOAD_SECONDS", "60"))
# Clients arrive over the first seconds, not all at once: each browser's sign-in
# hashes its password (PBKDF2, a quarter of a second of CPU), and 20 of them in the
# same second hold every gunicorn thread for several seconds.
SPAWN_RATE = 10
WORKERS, THREADS = 4, 2
# The sanity floor: each client completes a request at least every 6 seconds.
MIN_REQUESTS = USERS * SECONDS // 6
# What the subprocesses inherit from this one; everything else is set here, so that
# a developer's TICKETS_BACKEND, REDIS_URL or SECRET_KEY_FILE cannot change the run.
INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
# A log record starts with its time: Django's "2026-11-27 04:24:28,870 ERROR ..." or
# gunicorn's "[2026-11-27 04:24:28 +0000] [pid] [ERROR] ..."; the lines after it that
# do not (a traceback) belong to it.
LOG_RECORD_START = re.compile(r"^\[?\d{4}-\d\d-\d\d ")
LOG_ERROR = re.compile(r"\b(ERROR|CRITICAL)\b")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _libpq(url: str) -> str:
    # django-environ also accepts postgres://, pgsql:// and psql://; libpq knows the first two.
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def _run(command: list[str], *, env: dict, timeout: float, what: str) -> str:
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        pytest.fail(
            f"{what} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def _log_errors(text: str) -> list[str]:
    """The records at level ERROR or CRITICAL in a log, each with its traceback."""
    records: list[list[str]] = []
    for line in text.splitlines():
        if LOG_RECORD_START.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return ["\n".join(r) for r in records if LOG_ERROR.search(r[0]) or "Traceback" in r[0]]


def _percentile(sorted_ms: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    if not sorted_ms:
        return 0.0
    return round(sorted_ms[max(0, math.ceil(p / 100 * len(sorted_ms)) - 1)], 1)


def _figures(samples: list[dict], seconds: float) -> dict:
    ms = sorted(s["ms"] for s in samples)
    return {
        "requests": len(samples),
        "rps": round(len(samples) / seconds, 1) if seconds else 0.0,
        "p50_ms": _percentile(ms, 50),
        "p95_ms": _percentile(ms, 95),
        "p99_ms": _percentile(ms, 99),
        "max_ms": round(ms[-1], 1) if ms else 0.0,
        "failures": sum(1 for s in samples if s["error"]),
    }


@pytest.fixture
def workdir(tmp_path) -> Path:
    (tmp_path / "static").mkdir()
    (tmp_path / "var").mkdir()
    return tmp_path


@pytest.fixture
def scratch_database():
    """A new database beside the test database (same server and credentials), dropped after."""
    import psycopg

    parts = urlsplit(os.environ["DATABASE_URL"])
    name = f"tracker_load_{secrets.token_hex(4)}"
    admin = _libpq(urlunsplit(parts._replace(path="/postgres")))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        version = conn.execute("SHOW server_version").fetchone()[0]
    try:
        yield {"url": urlunsplit(parts._replace(path=f"/{name}")), "server_version": version}
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def server_env(workdir, scratch_database) -> dict:
    env = {key: os.environ[key] for key in INHERITED if key in os.environ}
    return env | {
        # gunicorn puts its control socket under HOME: one per run, none shared.
        "HOME": str(workdir),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": scratch_database["url"],
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "STATIC_ROOT": str(workdir / "static"),
        "TRACKER_VAR_DIR": str(workdir / "var"),
        "API_THROTTLE_RATE": "1000000/min",
        "LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def seeded(workdir, server_env) -> dict:
    """Migrate and collect static files side by side, then load the data set."""
    timings = {}
    started = time.perf_counter()
    manage = [sys.executable, "manage.py"]
    # The load does not open the API docs: their Swagger and Redoc files (28 MB)
    # would take most of collectstatic's time to compress.
    collect = subprocess.Popen(
        [*manage, "collectstatic", "--noinput", "-v0", "--ignore", "drf_spectacular_sidecar"],
        cwd=ROOT,
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _run([*manage, "migrate", "-v0"], env=server_env, timeout=300, what="migrate")
        timings["migrate"] = round(time.perf_counter() - started, 1)
        output, _ = collect.communicate(timeout=300)
    finally:
        if collect.poll() is None:
            collect.kill()
            collect.wait()
    if collect.returncode != 0:
        pytest.fail(f"collectstatic failed ({collect.returncode}):\n{output[-4000:]}")
    timings["migrate_and_collectstatic"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    seed_path = workdir / "seed.json"
    _run(
        [sys.executable, "-m", "tests.load.seed", str(seed_path)],
        env=server_env,
        timeout=600,
        what="tests/load/seed.py",
    )
    timings["seed"] = round(time.perf_counter() - started, 1)
    return {"path": seed_path, "data": json.loads(seed_path.read_text()), "timings": timings}


@pytest.fixture
def server(workdir, server_env, seeded):
    """gunicorn on a free loopback port, stopped whatever happens; yields its URL and log."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = workdir / "gunicorn.log"
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "config.wsgi",
                "--workers",
                str(WORKERS),
                "--threads",
                str(THREADS),
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"gunicorn exited ({process.returncode}):\n{log_path.read_text()[-4000:]}"
                )
            try:
                with urllib.request.urlopen(f"{base_url}/accounts/login/", timeout=5) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = None  # not listening yet
            if status == 200:
                break
            if status is not None:
                pytest.fail(f"/accounts/login/ answered {status}:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer in 120 s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        seeded["timings"]["gunicorn_start"] = round(time.perf_counter() - started, 1)
        yield {"url": base_url, "log": log_path}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # graceful: finish the requests in flight
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: the workers too
                process.wait()


def test_it_answers_every_request_under_load(workdir, scratch_database, seeded, server):
    samples_path = workdir / "samples.json"
    env = {key: os.environ[key] for key in INHERITED if key in os.environ}
    # HOME and the working directory out of the checkout: locust reads ~/.locust.conf,
    # ./locust.conf and ./pyproject.toml for options.
    env |= {
        "HOME": str(workdir),
        "TRACKER_LOAD_SEED": str(seeded["path"]),
        "TRACKER_LOAD_SAMPLES": str(samples_path),
    }
    command = [
        str(BIN / "locust"),
        "--locustfile",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(USERS),
        "--spawn-rate",
        str(SPAWN_RATE),
        "--run-time",
        f"{SECONDS}s",
        # At the end, let each client finish what it is doing rather than cut it off.
        "--stop-timeout",
        "30",
        "--host",
        server["url"],
        "--json-file",
        str(workdir / "locust"),
        "--only-summary",
        "--logfile",
        str(workdir / "locust.log"),
    ]
    loadavg_before = os.getloadavg()
    started = time.perf_counter()
    locust = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=SECONDS + 180
    )
    wall = time.perf_counter() - started
    loadavg_after = os.getloadavg()
    if not samples_path.exists():
        pytest.fail(
            f"locust wrote no samples (exit {locust.returncode}):\n"
            f"{locust.stdout[-2000:]}\n{locust.stderr[-4000:]}"
        )
    samples = json.loads(samples_path.read_text())["samples"]
    locust_stats = json.loads((workdir / "locust.json").read_text())

    # Over the time requests were in flight: from the first start to the last answer.
    duration = (
        max(s["start"] + s["ms"] / 1000 for s in samples) - min(s["start"] for s in samples)
        if samples
        else 0.0
    )
    groups: dict[str, list[dict]] = defaultdict(list)
    for sample in samples:
        groups[sample["name"]].append(sample)
    server_errors = [s for s in samples if s["status"] >= 500]
    connection_errors = [s for s in samples if s["status"] == 0]
    failures = [s for s in samples if s["error"]]
    stale = [s for s in samples if s["status"] == 412 and not s["error"]]
    signed_in = max(
        (s["start"] + s["ms"] / 1000 for s in samples if s["name"] == "web POST login"),
        default=min((s["start"] for s in samples), default=0.0),
    )
    after_sign_in = [s for s in samples if s["start"] >= signed_in]
    steady_seconds = (
        max(s["start"] + s["ms"] / 1000 for s in after_sign_in) - signed_in
        if after_sign_in
        else 0.0
    )
    log_text = server["log"].read_text(errors="replace")
    log_errors = _log_errors(log_text)

    overall = _figures(samples, duration)
    report = {
        "test": "load",
        "config": {
            "users": USERS,
            "seconds": SECONDS,
            "spawn_rate": SPAWN_RATE,
            "gunicorn": {"workers": WORKERS, "threads": THREADS},
            "server_debug": False,
            "min_requests": MIN_REQUESTS,
        },
        "data": seeded["data"]["counts"],
        "setup_seconds": seeded["timings"] | {"seed_inside": seeded["data"]["seconds"]},
        "duration_s": round(duration, 1),
        "locust_wall_s": round(wall, 1),
        **overall,
        "server_errors_5xx": len(server_errors),
        "connection_errors": len(connection_errors),
        "stale_if_match_412": len(stale),
        "gunicorn_log_errors": len(log_errors),
        "gunicorn_log_error_lines": [e.splitlines()[0] for e in log_errors[:20]],
        "after_sign_in": {
            "from_s": round(signed_in - min(s["start"] for s in samples), 1) if samples else 0.0,
            "seconds": round(steady_seconds, 1),
            **_figures(after_sign_in, steady_seconds),
        },
        "kinds": {
            kind: _figures([s for s in samples if s["name"].startswith(kind)], duration)
            for kind in ("api", "web")
        },
        "groups": {name: _figures(group, duration) for name, group in sorted(groups.items())},
        "locust": {
            "exit_code": locust.returncode,
            "requests": sum(e["num_requests"] for e in locust_stats),
            "failures": sum(e["num_failures"] for e in locust_stats),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": scratch_database["server_version"],
            "loadavg_before": [round(x, 2) for x in loadavg_before],
            "loadavg_after": [round(x, 2) for x in loadavg_after],
        },
    }
    if os.environ.get("TRACKER_LOAD_REPORT"):
        report_path = Path(os.environ["TRACKER_LOAD_REPORT"])
    else:
        handle, name = tempfile.mkstemp(prefix="tracker-load-", suffix=".json")
        os.close(handle)
        report_path = Path(name)
    report_path.write_text(json.dumps(report, indent=2) + "\n")

    print(
        f"\nload: {USERS} clients, {duration:.1f} s, {report['requests']} requests, "
        f"{report['rps']} req/s, p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms, "
        f"p99 {report['p99_ms']} ms; failures {report['failures']}, 5xx {len(server_errors)}, "
        f"connection errors {len(connection_errors)}, stale If-Match {len(stale)}"
    )
    print(f"{'group':28} {'requests':>8} {'req/s':>7} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    rows = {"all": overall, "after sign-in": report["after_sign_in"], **report["kinds"]}
    for name, figures in [*rows.items(), *report["groups"].items()]:
        print(
            f"{name:28} {figures['requests']:8} {figures['rps']:7} {figures['p50_ms']:8} "
            f"{figures['p95_ms']:8} {figures['p99_ms']:8} {figures['max_ms']:8}"
        )
    print(f"report: {report_path}")
    print(json.dumps(report))

    def show(found: list[dict]) -> str:
        """The first requests, every error line of the log, and the first error's traceback."""
        lines = [f"{s['method']} {s['url']} -> {s['status']}: {s['error']}" for s in found[:10]]
        lines += [f"gunicorn log, {len(log_errors)} errors:"]
        lines += [e.splitlines()[0] for e in log_errors[:20]]
        if log_errors:
            lines += ["the first, whole:", *log_errors[0].splitlines()[-60:]]
        return "\n".join(lines)

    assert not server_errors, f"{len(server_errors)} responses were 5xx:\n{show(server_errors)}"
    assert not connection_errors, (
        f"{len(connection_errors)} requests got no answer:\n{show(connection_errors)}"
    )
    assert not failures, f"{len(failures)} requests got an unexpected answer:\n{show(failures)}"
    assert not log_errors, f"gunicorn logged errors:\n{show([])}"
    assert report["locust"]["failures"] == 0
    # Non-zero also when a client's own code raised (not a request's failure).
    locust_log = (workdir / "locust.log").read_text(errors="replace")
    assert locust.returncode == 0, (
        f"locust exited {locust.returncode}:\n{locust_log[-4000:]}\n{locust.stderr[-2000:]}"
    )
    assert report["locust"]["requests"] == len(samples), "every request recorded"
    assert len(samples) >= MIN_REQUESTS, f"only {len(samples)} requests, expected {MIN_REQUESTS}"

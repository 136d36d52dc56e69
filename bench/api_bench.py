"""API benchmark: the action item list, served by gunicorn, against a psycopg floor.

    .venv/bin/python bench/api_bench.py

Steps:

1. drop and create the PostgreSQL database named in --postgres-url (through
   the `postgres` database) and migrate it (`manage.py migrate`, DEBUG=1);
2. in a child process with DATABASE_URL pointing at it, load --incidents
   incidents with --items-per-incident action items each (100,000 by default)
   owned by --people people, with varied status, priority and deadline
   (`bulk_create` in batches), create a manager with an API token, and record
   how many SQL queries one page costs and the plan of its list query;
3. start gunicorn (`config.wsgi`, --workers sync workers, DEBUG=0) on a free
   loopback port and wait until it answers;
4. from a separate load process (a thread pool, one `requests.Session` per
   thread): warm up, then
   `GET /api/v1/action-items/?status=open&ordering=deadline&limit=100` with the
   token, --concurrency at a time, for --duration seconds in all (at most
   --max-requests requests);
5. the floor, from a load process of the same shape (one psycopg connection
   per thread): the same page with plain SQL (items joined with incident and
   owner, status 'open', ordered by deadline and id, LIMIT 100, plus the count
   query), serialised with `json`, as many times as the API was requested.
   Steps 4 and 5 alternate in --rounds rounds, so that other work on the
   machine weighs on both alike;
6. stop gunicorn (always) and drop the database (unless --keep).

Human-readable lines go first; the last line on stdout is one JSON object with
every figure and the machine they were measured on.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common

ROOT = common.ROOT
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/tracker_apibench"
API_PATH = "/api/v1/action-items/?status=open&ordering=deadline&limit=100"

STATUSES = [
    ("open", 30),
    ("in_progress", 20),
    ("blocked", 10),
    ("done", 30),
    ("cancelled", 10),
]
PRIORITIES = [("P0", 5), ("P1", 15), ("P2", 40), ("P3", 25), ("P4", 15)]
TYPES = ["prevention", "detection", "mitigation", "process", "documentation"]
TIME_ZONES = ["", "", "", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"]
WORDS = [
    "add",
    "alert",
    "autoscaling",
    "backfill",
    "budget",
    "cap",
    "checkout",
    "connection",
    "credentials",
    "deploy",
    "depth",
    "document",
    "failover",
    "for",
    "gateway",
    "in",
    "metrics",
    "missing",
    "on",
    "payment",
    "pipeline",
    "pool",
    "queue",
    "retry",
    "review",
    "rotate",
    "runbook",
    "settings",
    "size",
    "split",
    "the",
    "thresholds",
    "timeout",
    "tune",
]

# The floor: the page the API returns, with the same columns, in plain SQL.
FLOOR_PAGE_SQL = """
SELECT a.id, i.external_id, a.title, a.description, p.email, p.name, p.time_zone,
       a.priority, a.type, a.status, a.deadline, a.deadline_derived, a.completed_at,
       a.created_at, a.updated_at, a.removed_from_source, a.version
FROM tracker_actionitem a
LEFT JOIN incidents_incident i ON i.id = a.incident_id
LEFT JOIN tracker_person p ON p.id = a.owner_id
WHERE a.status = 'open'
ORDER BY a.deadline, a.id
LIMIT 100
"""
FLOOR_COUNT_SQL = "SELECT count(*) FROM tracker_actionitem WHERE status = 'open'"
OPEN_STATUSES = ("open", "in_progress", "blocked")


# --- Data ----------------------------------------------------------------------


def weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def setup_worker(args: argparse.Namespace) -> None:
    """Child process (Django configured for the bench database): load, token, inspect."""
    common.django_setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from incidents.models import Incident
    from tracker.models import ActionItem, Person
    from tracker.tokens import api_token_create

    rng = random.Random(args.seed)
    now = timezone.now()
    today = timezone.localdate()
    started = time.perf_counter()

    with transaction.atomic():
        people = Person.objects.bulk_create(
            [
                Person(
                    email=f"person{n:04d}@example.com",
                    name=f"Person {n:04d}",
                    time_zone=rng.choice(TIME_ZONES),
                    manager_email=f"manager{n % 25:02d}@example.com" if n % 3 else "",
                )
                for n in range(args.people)
            ],
            batch_size=1000,
        )
        incidents = Incident.objects.bulk_create(
            [
                Incident(
                    external_id=f"INC-BENCH-{n:05d}",
                    title=f"Incident {n}: " + " ".join(rng.sample(WORDS, 5)),
                    severity=f"SEV{rng.randint(1, 4)}",
                    status="resolved",
                    declared_at=now - dt.timedelta(days=rng.randint(1, 720)),
                    service=rng.choice(["checkout", "payments", "search", "auth", "ledger"]),
                )
                for n in range(args.incidents)
            ],
            batch_size=1000,
        )
        batch: list[ActionItem] = []
        for incident in incidents:
            for position in range(args.items_per_incident):
                status = weighted(rng, STATUSES)
                deadline = (
                    None
                    if rng.random() < 0.05
                    else today + dt.timedelta(days=rng.randint(-180, 180))
                )
                batch.append(
                    ActionItem(
                        incident=incident,
                        title=" ".join(rng.sample(WORDS, rng.randint(4, 10))).capitalize(),
                        description=" ".join(rng.choices(WORDS, k=rng.randint(10, 40))),
                        owner=None if rng.random() < 0.05 else rng.choice(people),
                        priority=weighted(rng, PRIORITIES),
                        type=rng.choice(TYPES),
                        status=status,
                        deadline=deadline,
                        deadline_derived=rng.random() < 0.3,
                        completed_at=now - dt.timedelta(days=rng.randint(0, 90))
                        if status == "done"
                        else None,
                        source_key=f"id:AI-{position:03d}",
                    )
                )
                if len(batch) >= 5000:
                    ActionItem.objects.bulk_create(batch)
                    batch = []
        ActionItem.objects.bulk_create(batch)

        manager = get_user_model().objects.create_user(
            username="bench-manager", email="bench-manager@example.com", is_staff=True
        )
        manager.groups.add(Group.objects.get_or_create(name="managers")[0])
        _, key = api_token_create(user=manager, name="api-bench")
    load_seconds = time.perf_counter() - started

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT count(*) FROM tracker_actionitem")
        total = cursor.fetchone()[0]
        cursor.execute(FLOOR_COUNT_SQL)
        open_items = cursor.fetchone()[0]

    # What one page costs in SQL, and how PostgreSQL runs its list query.
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get(API_PATH)  # token last_used_at, content types: not part of every request
    with CaptureQueriesContext(connection) as queries:
        response = client.get(API_PATH)
    assert response.status_code == 200, response.content[:500]
    page = response.json()
    list_sql = max((q["sql"] for q in queries.captured_queries), key=len)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + list_sql)
        plan = [row[0] for row in cursor.fetchall()]

    print(
        json.dumps(
            {
                "token": key,
                "load_seconds": round(load_seconds, 2),
                "items": total,
                "open_items": open_items,
                "people": args.people,
                "incidents": args.incidents,
                "page_count": page["count"],
                "page_items": len(page["results"]),
                "queries_per_request": [q["sql"] for q in queries.captured_queries],
                "list_query_plan": plan,
            }
        )
    )


# --- Load ----------------------------------------------------------------------


def run_load(
    request, *, concurrency: int, duration: float, max_requests: int
) -> tuple[list[float], int, float]:
    """Call `request(state)` from `concurrency` threads, one state per thread.

    Returns every latency (seconds), the number of failed requests and the wall time.
    """
    lock = threading.Lock()
    issued = 0
    deadline = time.perf_counter() + duration

    def take_ticket() -> bool:
        nonlocal issued
        with lock:
            if issued >= max_requests or time.perf_counter() >= deadline:
                return False
            issued += 1
            return True

    def loop() -> tuple[list[float], int]:
        state: dict = {}
        latencies, errors = [], 0
        while take_ticket():
            start = time.perf_counter()
            ok = request(state)
            latencies.append(time.perf_counter() - start)
            errors += 0 if ok else 1
        if "close" in state:
            state["close"]()
        return latencies, errors

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = [f.result() for f in [pool.submit(loop) for _ in range(concurrency)]]
    wall = time.perf_counter() - started
    return [x for lat, _ in results for x in lat], sum(e for _, e in results), wall


def summarise(latencies: list[float], errors: int, wall: float) -> dict:
    latencies = sorted(latencies)

    def pct(p: float) -> float:
        index = min(len(latencies) - 1, max(0, round(p / 100 * len(latencies)) - 1))
        return round(latencies[index] * 1000, 2)

    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(wall, 2),
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2),
    }


def api_request_fn(base_url: str, token: str):
    import requests

    url = base_url + API_PATH

    def request(state: dict) -> bool:
        session = state.get("session")
        if session is None:
            session = state["session"] = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            state["close"] = session.close
        response = session.get(url, timeout=30)
        return response.status_code == 200 and response.content.startswith(b'{"count":')

    return request


def floor_request_fn(dsn: str):
    import zoneinfo

    import psycopg

    def today_for(tz_name: str | None, utc_today: dt.date) -> dt.date:
        if not tz_name:
            return utc_today
        try:
            return dt.datetime.now(zoneinfo.ZoneInfo(tz_name)).date()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return utc_today

    def iso(value: dt.datetime | None) -> str | None:
        return None if value is None else value.isoformat().replace("+00:00", "Z")

    def request(state: dict) -> bool:
        conn = state.get("conn")
        if conn is None:
            conn = state["conn"] = psycopg.connect(dsn, autocommit=True)
            conn.execute("SET TIME ZONE 'UTC'")
            state["close"] = conn.close
        with conn.cursor() as cursor:
            cursor.execute(FLOOR_COUNT_SQL)
            count = cursor.fetchone()[0]
            cursor.execute(FLOOR_PAGE_SQL)
            rows = cursor.fetchall()
        utc_today = dt.datetime.now(dt.UTC).date()
        results = []
        for (
            pk,
            incident,
            title,
            description,
            email,
            name,
            tz_name,
            priority,
            type_,
            status,
            deadline,
            derived,
            completed_at,
            created_at,
            updated_at,
            removed,
            version,
        ) in rows:
            owner_today = today_for(tz_name, utc_today)
            results.append(
                {
                    "id": pk,
                    "incident": incident,
                    "title": title,
                    "description": description,
                    "owner": email,
                    "owner_name": name or "",
                    "priority": priority,
                    "type": type_,
                    "status": status,
                    "deadline": deadline.isoformat() if deadline else None,
                    "deadline_derived": derived,
                    "completed_at": iso(completed_at),
                    "created_at": iso(created_at),
                    "updated_at": iso(updated_at),
                    "is_overdue": bool(
                        status in OPEN_STATUSES and deadline and deadline < owner_today
                    ),
                    "days_until_due": (deadline - owner_today).days if deadline else None,
                    "removed_from_source": removed,
                    "version": version,
                    "ticket": {"system": None, "key": None, "url": None, "sync_state": None},
                }
            )
        body = json.dumps(
            {"count": count, "next": "?limit=100&offset=100", "previous": None, "results": results}
        ).encode()
        return len(results) > 0 and body.startswith(b'{"count":')

    return request


def load_worker(args: argparse.Namespace) -> None:
    """Child process: warm up, then measure; print one JSON line."""
    if args.load == "api":
        request = api_request_fn(args.base_url, os.environ["BENCH_API_TOKEN"])
    else:
        request = floor_request_fn(common.psycopg_url(args.postgres_url))
    if args.warmup:
        run_load(request, concurrency=args.concurrency, duration=60, max_requests=args.warmup)
    latencies, errors, wall = run_load(
        request,
        concurrency=args.concurrency,
        duration=args.duration,
        max_requests=args.max_requests,
    )
    print(json.dumps({"latencies": latencies, "errors": errors, "seconds": wall}))


# --- Parent ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(base_url: str, token: str, process: subprocess.Popen) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}")
        try:
            response = requests.get(
                base_url + "/api/v1/action-items/?limit=1",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            if response.status_code == 200:
                return
            raise RuntimeError(f"gunicorn answered {response.status_code}: {response.text[:300]}")
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the gunicorn master; it stops its workers
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def machine_info(postgres_url: str) -> dict[str, Any]:
    """common.machine_info, with the versions of what serves and requests the page."""
    import gunicorn
    import requests
    import rest_framework

    return {
        **common.machine_info(),
        "djangorestframework": rest_framework.VERSION,
        "gunicorn": gunicorn.__version__,
        "requests": requests.__version__,
        "postgresql": common.postgres_version(postgres_url),
    }


def child(env: dict, *extra: str, timeout: float = 600) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), *extra]
    result = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise RuntimeError(f"{' '.join(extra[:2])} failed with status {result.returncode}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="api_bench_"))
    base_env = common.child_env(args.postgres_url, workdir, debug=True)
    base_env.pop("REDIS_URL", None)
    base_env.pop("CELERY_BROKER_URL", None)
    setup_env = {**base_env, "ALLOWED_HOSTS": "127.0.0.1"}
    load_args = [
        "--postgres-url",
        args.postgres_url,
        "--concurrency",
        str(args.concurrency),
    ]

    print(f"database: {args.postgres_url} (dropped and created again)", flush=True)
    common.postgres_recreate(args.postgres_url)
    gunicorn = None
    try:
        migrate_seconds = common.manage(setup_env, "migrate")
        setup = child(
            setup_env,
            "--setup",
            "--postgres-url",
            args.postgres_url,
            "--incidents",
            str(args.incidents),
            "--items-per-incident",
            str(args.items_per_incident),
            "--people",
            str(args.people),
            "--seed",
            str(args.seed),
        )
        plan_text = "\n".join(setup["list_query_plan"])
        uses_index = "action_item_status_deadline" in plan_text
        print(
            f"loaded {setup['items']:,} items ({setup['open_items']:,} open), "
            f"{args.incidents:,} incidents, {args.people:,} people in "
            f"{setup['load_seconds']} s (migrate {migrate_seconds:.1f} s)"
        )
        print(f"queries per request: {len(setup['queries_per_request'])}")
        for sql in setup["queries_per_request"]:
            print(f"  {sql[:160]}")
        print(f"list query uses action_item_status_deadline: {uses_index}")
        print("  " + "\n  ".join(setup["list_query_plan"][:8]))

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server_env = {
            **base_env,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "API_THROTTLE_RATE": "1000000/min",
            "CONN_MAX_AGE": "60",
        }
        log = (workdir / "gunicorn.log").open("w")
        gunicorn = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi",
                "--workers",
                str(args.workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            env=server_env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_answering(base_url, setup["token"], gunicorn)
        except RuntimeError:
            log.flush()
            sys.stderr.write((workdir / "gunicorn.log").read_text()[-3000:])
            raise
        print(f"gunicorn: {args.workers} workers on {base_url}", flush=True)

        # Rounds of API then floor, so that whatever else runs on the machine weighs on
        # both alike; the first round of each warms up.
        loadavg_before = common.load_average()
        runs: dict[str, list[dict]] = {"api": [], "floor": []}
        for round_ in range(args.rounds):
            warmup = ["--warmup", str(args.warmup if round_ == 0 else 0)]
            api_run = child(
                {**base_env, "BENCH_API_TOKEN": setup["token"]},
                "--load",
                "api",
                "--base-url",
                base_url,
                "--duration",
                str(args.duration / args.rounds),
                "--max-requests",
                str(max(1, args.max_requests // args.rounds)),
                *load_args,
                *warmup,
            )
            floor_run = child(
                base_env,
                "--load",
                "floor",
                "--duration",
                "600",
                "--max-requests",
                str(len(api_run["latencies"])),
                *load_args,
                *warmup,
            )
            runs["api"].append(api_run)
            runs["floor"].append(floor_run)
            print(
                f"round {round_ + 1}/{args.rounds}: {len(api_run['latencies'])} requests each",
                flush=True,
            )
        loadavg_after = common.load_average()
    finally:
        stop(gunicorn)
        if not args.keep:
            common.postgres_drop(args.postgres_url)

    api, floor = (
        summarise(
            [x for run in runs[kind] for x in run["latencies"]],
            sum(run["errors"] for run in runs[kind]),
            sum(run["seconds"] for run in runs[kind]),
        )
        for kind in ("api", "floor")
    )
    for label, figures in (("api", api), ("floor (psycopg + json)", floor)):
        print(
            f"{label:24} {figures['requests']:6} requests in {figures['seconds']:6.2f} s  "
            f"{figures['rps']:7.1f} req/s  p50 {figures['p50_ms']:7.2f} ms  "
            f"p95 {figures['p95_ms']:7.2f} ms  errors {figures['errors']}"
        )
    ratio_p50 = round(api["p50_ms"] / floor["p50_ms"], 2)
    ratio_p95 = round(api["p95_ms"] / floor["p95_ms"], 2)
    print(f"p50_api / p50_floor = {ratio_p50}  (p95: {ratio_p95})")

    print(
        json.dumps(
            {
                "benchmark": "api_action_item_list",
                "endpoint": API_PATH,
                "data": {
                    "items": setup["items"],
                    "open_items": setup["open_items"],
                    "incidents": args.incidents,
                    "people": args.people,
                    "load_seconds": setup["load_seconds"],
                    "migrate_seconds": round(migrate_seconds, 2),
                },
                "config": {
                    "gunicorn_workers": args.workers,
                    "concurrency": args.concurrency,
                    "duration_s": args.duration,
                    "max_requests": args.max_requests,
                    "warmup_requests": args.warmup,
                    "rounds": args.rounds,
                    "server_debug": False,
                    "conn_max_age": 60,
                },
                "api": api,
                "floor": floor,
                "ratio_p50_api_over_floor": ratio_p50,
                "ratio_p95_api_over_floor": ratio_p95,
                "rps_ratio_floor_over_api": round(floor["rps"] / api["rps"], 2),
                "queries_per_request": len(setup["queries_per_request"]),
                "list_query_uses_status_deadline_index": uses_index,
                "machine": {
                    **machine_info(args.postgres_url),
                    "loadavg_before": loadavg_before,
                    "loadavg_after": loadavg_after,
                },
            }
        )
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--items-per-incident", type=int, default=100)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--duration", type=float, default=20, help="seconds of measurement")
    parser.add_argument("--max-requests", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=100, help="requests before measuring")
    parser.add_argument("--rounds", type=int, default=4, help="API/floor alternations")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    # Child process modes.
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", choices=["api", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.setup:
        setup_worker(arguments)
    elif arguments.load:
        load_worker(arguments)
    else:
        main(arguments)

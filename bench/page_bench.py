"""Page benchmark: the dashboard and the filtered item list over 100,000 items on PostgreSQL.

    .venv/bin/python bench/page_bench.py

Steps:

1. drop and create the PostgreSQL database named in --postgres-url (through the
   `postgres` database) and migrate it (`manage.py migrate`, DEBUG=1); with
   --no-debug, also `collectstatic` into a temporary STATIC_ROOT (the manifest
   storage needs it to render `{% static %}`);
2. load --people people, --incidents incidents (8 services, SEV1 to SEV4) and
   --items action items (100,000) with psycopg COPY: created over the last 180
   days, deadlines from the priority's usual delay, about half done (completed
   after creation, some late), a tenth cancelled, the rest open, in progress or
   blocked; then VACUUM ANALYZE;
3. in a child process (Django, DATABASE_URL pointing at it, DEBUG as chosen):
   a manager signs in with the test Client (`force_login`), and for each page
   (`/` and `/items/?status=open&ordering=deadline`) one request counts its SQL
   queries (CaptureQueriesContext, with each query's time), --warmup requests
   are thrown away, then --runs requests are timed one after the other. The item
   list is measured only if it answers 200;
4. drop the database (unless --keep).

Human-readable lines go first; the last line on stdout is one JSON object with
every figure and the machine they were measured on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

ROOT = common.ROOT
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/tracker_pagebench"
PAGES = {"dashboard": "/", "item_list": "/items/?status=open&ordering=deadline"}

PRIORITY_DAYS = {"P0": 7, "P1": 14, "P2": 30, "P3": 60, "P4": 90}
PRIORITIES = ["P0", "P1", "P1", "P2", "P2", "P2", "P3", "P3", "P4"]
SERVICES = ["checkout", "payments", "search", "auth", "ledger", "catalog", "shipping", "email"]
SEVERITIES = ["SEV1", "SEV2", "SEV2", "SEV3", "SEV3", "SEV3", "SEV4"]
TYPES = ["prevention", "detection", "mitigation", "process", "documentation"]
OPEN = ["open", "open", "open", "in_progress", "blocked"]
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
    "gateway",
    "metrics",
    "missing",
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
    "thresholds",
    "timeout",
    "tune",
]


# --- Driver: database, data ----------------------------------------------------


def child_env(url: str, workdir: Path, *, debug: bool) -> dict[str, str]:
    """common.child_env, with a STATIC_ROOT of its own (collectstatic writes there)."""
    env = {**common.child_env(url, workdir, debug=debug), "STATIC_ROOT": str(workdir / "static")}
    env.pop("REDIS_URL", None)  # no throttle or cache on the page path; keep it local
    return env


def item_rows(rng: random.Random, *, items: int, people: int, incidents: int, now: dt.datetime):
    """Rows for COPY (by column): items created over 180 days, about half of them done by now."""
    for item_id in range(1, items + 1):
        priority = rng.choice(PRIORITIES)
        created = now - dt.timedelta(seconds=rng.randint(0, 180 * 86400))
        deadline = (created + dt.timedelta(days=PRIORITY_DAYS[priority])).date()
        deadline += dt.timedelta(days=rng.randint(-3, 10))
        age_days = (now - created).total_seconds() / 86400
        completed_at = None
        updated = created
        roll = rng.random()
        if roll < 0.1:
            status = "cancelled"
            updated = created + (now - created) * rng.random()
        elif roll < 0.1 + 0.8 * min(age_days / 120, 1):
            status = "done"
            # Most items are done before their deadline, some well after it.
            delay = rng.expovariate(1 / (PRIORITY_DAYS[priority] * 0.8))
            completed_at = min(created + dt.timedelta(days=delay), now)
            updated = completed_at
        else:
            status = rng.choice(OPEN)
        yield {
            **common.ITEM_DEFAULTS,
            "id": item_id,
            "incident_id": 1 + rng.randrange(incidents),
            "title": " ".join(rng.sample(WORDS, rng.randint(4, 9))).capitalize(),
            "owner_id": None if rng.random() < 0.03 else 1 + rng.randrange(people),
            "priority": priority,
            "type": rng.choice(TYPES),
            "status": status,
            "deadline": None if rng.random() < 0.02 else deadline,
            "completed_at": completed_at,
            "created_at": created,
            "updated_at": updated,
            "source_key": f"id:AI-{item_id}",
        }


def load(
    url: str,
    *,
    items: int,
    people: int,
    incidents: int,
    now: dt.datetime,
    seed: int,
    columns: tuple[str, ...],
):
    """People, incidents and items with COPY, then VACUUM ANALYZE; what was loaded."""
    import psycopg

    rng = random.Random(seed)
    started = time.perf_counter()
    created = now - dt.timedelta(days=200)
    with psycopg.connect(common.psycopg_url(url)) as conn:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY tracker_person (id, email, name, time_zone, manager_email, created_at) FROM STDIN"
            ) as copy:
                for n in range(1, people + 1):
                    copy.write_row((n, f"person{n}@example.com", f"Person {n}", "", "", created))
            with cur.copy(
                "COPY incidents_incident (id, external_id, title, severity, status, declared_at, "
                "resolved_at, commander, service, affected_services, impact, signals, context, "
                "resolution, root_cause, escalation_manager_email, extra, created_at, updated_at) "
                "FROM STDIN"
            ) as copy:
                for n in range(1, incidents + 1):
                    declared = now - dt.timedelta(days=rng.randint(1, 200))
                    copy.write_row(
                        (
                            n,
                            f"INC-PAGE-{n:05d}",
                            f"Incident {n}: " + " ".join(rng.sample(WORDS, 4)),
                            rng.choice(SEVERITIES),
                            "resolved",
                            declared,
                            declared + dt.timedelta(hours=3),
                            "Jane Smith",
                            rng.choice(SERVICES),
                            "[]",
                            "{}",
                            "{}",
                            "{}",
                            "{}",
                            "",
                            "",
                            "{}",
                            declared,
                            declared,
                        )
                    )
            common.copy_items(
                cur,
                item_rows(rng, items=items, people=people, incidents=incidents, now=now),
                columns=columns,
            )
            for table in ("tracker_person", "incidents_incident", "tracker_actionitem"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        counts = dict(
            conn.execute(
                "SELECT status, count(*) FROM tracker_actionitem GROUP BY status ORDER BY status"
            ).fetchall()
        )
    return {"seconds": round(time.perf_counter() - started, 2), "items_by_status": counts}


# --- Worker: Django, pages ------------------------------------------------------------


def worker(*, runs: int, warmup: int) -> None:
    """Child process: sign a manager in and time each page; one JSON line on stdout."""
    common.django_setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    manager = get_user_model().objects.create_user(
        username="bench-manager", email="bench-manager@example.com", is_staff=True
    )
    manager.groups.add(Group.objects.get_or_create(name=settings.TRACKER_MANAGERS_GROUP)[0])
    # "localhost" is in the default ALLOWED_HOSTS; secure=True passes the HTTPS redirect
    # that DEBUG=0 turns on.
    client = Client(HTTP_HOST="localhost")
    client.force_login(manager)

    results: dict[str, Any] = {}
    for name, path in PAGES.items():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path, secure=True)
        if response.status_code != 200:
            results[name] = {"path": path, "status": response.status_code, "measured": False}
            continue
        queries = [
            {"ms": round(float(q["time"]) * 1000, 2), "sql": q["sql"][:160]}
            for q in captured.captured_queries
        ]
        for _ in range(warmup):
            client.get(path, secure=True)
        timings = []
        counts = set()
        for _ in range(runs):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(path, secure=True)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
            counts.add(len(captured))
        timings.sort()
        results[name] = {
            "path": path,
            "status": 200,
            "measured": True,
            "bytes": len(response.content),
            "queries": len(queries),
            "queries_every_run": sorted(counts),
            "sql_ms": round(sum(q["ms"] for q in queries), 1),
            "runs": runs,
            "median_ms": round(statistics.median(timings), 1),
            "p90_ms": round(timings[max(0, round(0.9 * len(timings)) - 1)], 1),
            "min_ms": round(timings[0], 1),
            "max_ms": round(timings[-1], 1),
            "query_list": queries,
        }
        # The item list is written alongside; its placeholder answers 200 too.
        results[name]["placeholder"] = b"Coming soon" in response.content
    print(json.dumps({"debug": settings.DEBUG, "pages": results}))


# --- Driver ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--incidents", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=20, help="timed requests per page (20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests first (3)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--debug",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="render with DEBUG=1, or DEBUG=0 (default) after collectstatic",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker(runs=args.runs, warmup=args.warmup)
        return

    url = args.postgres_url
    now = dt.datetime.now(dt.UTC)
    workdir = Path(tempfile.mkdtemp(prefix="tracker_pagebench_"))
    common.postgres_recreate(url)
    try:
        migrate_s = common.manage(child_env(url, workdir, debug=True), "migrate")
        if not args.debug:
            common.manage(child_env(url, workdir, debug=False), "collectstatic", "--noinput")
        loaded = load(
            url,
            items=args.items,
            people=args.people,
            incidents=args.incidents,
            now=now,
            seed=args.seed,
            columns=common.item_columns(),
        )
        print(f"loaded {args.items} items in {loaded['seconds']} s: {loaded['items_by_status']}")
        completed = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                "--runs",
                str(args.runs),
                "--warmup",
                str(args.warmup),
            ],
            cwd=ROOT,
            env=child_env(url, workdir, debug=args.debug),
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        server_version = common.postgres_version(url)
    finally:
        if not args.keep:
            common.postgres_drop(url)
        shutil.rmtree(workdir, ignore_errors=True)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"the benchmark worker failed (exit {completed.returncode})")
    measured = json.loads(lines[-1])
    for name, page in measured["pages"].items():
        if not page["measured"]:
            print(f"{name}: {page['path']} answered {page['status']}, not measured")
            continue
        print(
            f"{name}: {page['path']} {page['queries']} queries ({page['sql_ms']} ms of SQL), "
            f"median {page['median_ms']} ms, p90 {page['p90_ms']} ms over {page['runs']} renders"
            + (" [placeholder page]" if page["placeholder"] else "")
        )
        for query in page.pop("query_list"):
            print(f"    {query['ms']:>8} ms  {query['sql']}")
    print(
        json.dumps(
            {
                "benchmark": "pages",
                "command": " ".join(["bench/page_bench.py", *sys.argv[1:]]),
                "items": args.items,
                "people": args.people,
                "incidents": args.incidents,
                "seed": args.seed,
                "debug": measured["debug"],
                "migrate_s": round(migrate_s, 2),
                "load": loaded,
                "at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "machine": {
                    **common.machine_info(),
                    "load_average": common.load_average(),
                    "postgresql": server_version,
                },
                "dashboard_median_ms": measured["pages"]["dashboard"].get("median_ms"),
                "dashboard_queries": measured["pages"]["dashboard"].get("queries"),
                "pages": measured["pages"],
            }
        )
    )


if __name__ == "__main__":
    main()

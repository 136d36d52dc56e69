"""Scale benchmark: how each cost grows from 100,000 to 1,000,000 action items on PostgreSQL.

    .venv/bin/python bench/scale_bench.py

Every size in --sizes (action items; incidents = items / 10) gets its own
scratch database, and every measurement runs on each size in turn, so that
whatever else runs on the machine weighs on all sizes alike:

1. for each size, drop and create `<name>_<size>` (the name from
   --postgres-url: tracker_scale_100k, tracker_scale_1m) and migrate it, then
   load --people people (time zones and managers as reminder_bench.py), the
   incidents (services and severities as page_bench.py) and the items with
   psycopg COPY. The items are page_bench.py's (created over 180 days, about
   half done, a tenth cancelled, the rest open, in progress or blocked), of
   which exactly --due reach a reminder stage on the sweep day as in
   reminder_bench.py (open, due tomorrow, today or yesterday,
   `next_reminder_on` that day); every other open item's next reminder falls
   after the sweep's horizon. Then VACUUM ANALYZE (and a CHECKPOINT, so that
   the load's writes do not land in the measurements);
2. for each size, a child process (Django, DATABASE_URL pointing at it,
   DEBUG=0) creates a manager with an API token, counts the statements of one
   API list request and one dashboard render, and runs each of their item
   queries under EXPLAIN (ANALYZE, BUFFERS);
3. API: one gunicorn per size serves `config.wsgi` as in api_bench.py, and
   api_bench.py's load process sends `GET /api/v1/action-items/?status=open
   &ordering=deadline&limit=100` with the token, --concurrency at a time,
   --api-requests in all per size, split over --rounds rounds in the order
   small, large, large, small...;
4. dashboard: page_bench.py's worker renders `/` (and the item list)
   --dashboard-runs times after --dashboard-warmup, on each size;
5. sweep: `tracker.reminders.sweep` at 15:00 UTC on the sweep day, first as a
   dry run whose item queries are explained, then for real, measured with
   the statement counter of bench/common.py, on each size;
6. import: --import-docs documents shaped like samples/INC-2024-0142.json
   (import_bench.py's generator) through `incidents.importing.import_document`
   on top of the loaded table, measured with import_bench.py's `run_phase`, in
   rounds as the API;
7. stop gunicorn and drop the databases (unless --keep), whatever happens.

Progress goes to stderr; the only line on stdout is one JSON object with every
size's figures, the growth of each from the smallest size to the largest, and
the machine (with its load average) they were measured on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import api_bench  # noqa: E402
import common  # noqa: E402
import import_bench  # noqa: E402
import page_bench  # noqa: E402
import reminder_bench  # noqa: E402

ROOT = BENCH.parent
SCRIPT = Path(__file__).resolve()
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/tracker_scale"
DEFAULT_SIZES = "100000,1000000"
QUICK_SIZES = "10000,100000"
OPEN_STATUSES = ("open", "in_progress", "blocked")
# The figures every size reports, and whose growth is computed.
FIGURES = (
    "import_docs_per_s",
    "import_queries_per_doc",
    "api_p50_ms",
    "api_p95_ms",
    "dashboard_median_ms",
    "dashboard_queries",
    "sweep_s",
    "sweep_queries",
    "load_s",
)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def size_label(items: int) -> str:
    if items % 1_000_000 == 0:
        return f"{items // 1_000_000}m"
    if items % 1_000 == 0:
        return f"{items // 1_000}k"
    return str(items)


def size_url(url: str, items: int) -> str:
    """The scratch database of one size: the name in `url`, then `_100k`, `_1m`..."""
    parts = urlsplit(url)
    base = common.database_name(url)
    return urlunsplit(parts._replace(path=f"/{base}_{size_label(items)}"))


# --- Data ------------------------------------------------------------------------


def item_rows(
    rng: random.Random,
    due_ids: set[int],
    *,
    items: int,
    people: int,
    incidents: int,
    now: dt.datetime,
    sweep_day: dt.date,
):
    """page_bench.py's items, with reminder dates: only `due_ids` are due on `sweep_day`.

    A due item is open, due tomorrow, today or yesterday (reminder_bench.py's
    stages), with an owner. Every other open item with an owner and a deadline
    gets its next reminder after the sweep's horizon (the sweep day + 1): a week
    before its deadline if that is later, else within the week after it.
    """
    horizon = sweep_day + dt.timedelta(days=1)
    offsets = reminder_bench.DUE_OFFSETS
    for row in page_bench.item_rows(rng, items=items, people=people, incidents=incidents, now=now):
        item_id = row["id"]
        if item_id in due_ids:
            row["status"] = reminder_bench.OPEN[item_id % len(reminder_bench.OPEN)]
            row["deadline"] = sweep_day + dt.timedelta(days=offsets[item_id % len(offsets)])
            row["completed_at"] = None
            row["owner_id"] = row["owner_id"] or 1 + item_id % people
            row["next_reminder_on"] = sweep_day
        elif row["status"] in OPEN_STATUSES and row["owner_id"] and row["deadline"]:
            week_before = row["deadline"] - dt.timedelta(days=7)
            row["next_reminder_on"] = (
                week_before
                if week_before > horizon
                else horizon + dt.timedelta(days=1 + item_id % 7)
            )
        yield row


def server_writes(conn) -> dict[str, float]:
    checkpoints, by_backend = conn.execute(
        "SELECT checkpoints_timed + checkpoints_req, buffers_backend FROM pg_stat_bgwriter"
    ).fetchone()
    wal_bytes = conn.execute("SELECT wal_bytes FROM pg_stat_wal").fetchone()[0]
    return {
        "wal_mb": float(wal_bytes) / 2**20,
        "checkpoints": checkpoints,
        "buffers_written_by_backends": by_backend,
    }


def load(
    url: str,
    *,
    items: int,
    people: int,
    incidents: int,
    due: int,
    now: dt.datetime,
    sweep_day: dt.date,
    seed: int,
    columns: tuple[str, ...],
) -> dict[str, Any]:
    """People, incidents and items with COPY, then VACUUM ANALYZE and CHECKPOINT."""
    import psycopg

    rng = random.Random(seed)
    due_ids = set(random.Random(f"{seed}-due").sample(range(1, items + 1), due))
    timings: dict[str, float] = {}
    created = now - dt.timedelta(days=200)
    time_zones = reminder_bench.TIME_ZONES
    with psycopg.connect(common.psycopg_url(url)) as conn:
        server_before = server_writes(conn)
        started = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(
                "COPY tracker_person (id, email, name, time_zone, manager_email, created_at) "
                "FROM STDIN"
            ) as copy:
                for n in range(1, people + 1):
                    manager = f"manager{n % 50}@example.com" if n % 10 == 0 else ""
                    copy.write_row(
                        (
                            n,
                            f"person{n}@example.com",
                            f"Person {n}",
                            time_zones[n % len(time_zones)],
                            manager,
                            created,
                        )
                    )
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
                            f"INC-SCALE-{n:06d}",
                            f"Incident {n}: " + " ".join(rng.sample(page_bench.WORDS, 4)),
                            rng.choice(page_bench.SEVERITIES),
                            "resolved",
                            declared,
                            declared + dt.timedelta(hours=3),
                            "Jane Smith",
                            rng.choice(page_bench.SERVICES),
                            "[]",
                            "{}",
                            "{}",
                            "{}",
                            "{}",
                            "",
                            "director-eng@example.com",
                            "{}",
                            declared,
                            declared,
                        )
                    )
            common.copy_items(
                cur,
                item_rows(
                    rng,
                    due_ids,
                    items=items,
                    people=people,
                    incidents=incidents,
                    now=now,
                    sweep_day=sweep_day,
                ),
                columns=columns,
            )
            for table in ("tracker_person", "incidents_incident", "tracker_actionitem"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        conn.commit()
        timings["copy_s"] = time.perf_counter() - started
        conn.autocommit = True
        if conn.info.server_version >= 150000:
            # This backend's statistics reach the shared views at most once a second.
            conn.execute("SELECT pg_stat_force_next_flush()")
        server_after = server_writes(conn)

        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("CHECKPOINT")
        timings["checkpoint_s"] = time.perf_counter() - started

        by_status = dict(
            conn.execute(
                "SELECT status, count(*) FROM tracker_actionitem GROUP BY status ORDER BY status"
            ).fetchall()
        )
        due_found = conn.execute(
            "SELECT count(*) FROM tracker_actionitem WHERE next_reminder_on <= %s",
            (sweep_day + dt.timedelta(days=1),),
        ).fetchone()[0]
        heap, indexes = conn.execute(
            "SELECT pg_relation_size('tracker_actionitem'), pg_indexes_size('tracker_actionitem')"
        ).fetchone()
        index_sizes = dict(
            conn.execute(
                "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) "
                "FROM pg_index WHERE indrelid = 'tracker_actionitem'::regclass ORDER BY 1"
            ).fetchall()
        )
    if due_found != due:
        raise SystemExit(f"expected {due} items due at the sweep, found {due_found}")
    return {
        **{key: round(value, 2) for key, value in timings.items()},
        "load_s": round(timings["copy_s"] + timings["vacuum_analyze_s"], 2),
        # Server-wide (whatever else runs on it counts too): what the COPY cost in WAL,
        # checkpoints, and buffers a backend had to write out itself to make room.
        "copy_server": {
            key: round(server_after[key] - server_before[key], 1) for key in server_after
        },
        "items_by_status": by_status,
        "due": due_found,
        "table_mb": round(heap / 2**20, 1),
        "indexes_mb": round(indexes / 2**20, 1),
        "index_mb": {name: round(size / 2**20, 1) for name, size in index_sizes.items()},
    }


# --- Workers: Django, inside their own process -------------------------------------


def plan_summary(sql: str, params) -> dict[str, Any]:
    """reminder_bench.py's EXPLAIN (ANALYZE, BUFFERS), keeping what tells plans apart."""
    plan = reminder_bench.explain(sql, params)
    return {
        "sql": " ".join(sql.split())[:140],
        "execution_ms": plan["execution_ms"],
        "nodes": plan["nodes"],
        "shared_buffers_hit_read": plan["shared_buffers_hit_read"],
        "text": plan["text"],
    }


def setup_worker() -> None:
    """A manager with an API token; the statements and plans of one API page and one dashboard."""
    common.django_setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from tracker.tokens import api_token_create

    user = get_user_model().objects.create_user(
        username="scale-bench", email="scale-bench@example.com", is_staff=True
    )
    user.groups.add(Group.objects.get_or_create(name=settings.TRACKER_MANAGERS_GROUP)[0])
    _, key = api_token_create(user=user, name="scale-bench")

    # "localhost" is in the default ALLOWED_HOSTS; secure=True passes DEBUG=0's HTTPS redirect.
    api = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {key}")
    api.get(api_bench.API_PATH, secure=True)  # the token's last_used_at: not every request's
    response, api_figures, api_counter = common.measured(
        api.get, path=api_bench.API_PATH, secure=True
    )
    if response.status_code != 200:
        raise SystemExit(f"{api_bench.API_PATH} answered {response.status_code}")
    page = response.json()

    web = Client(HTTP_HOST="localhost")
    web.force_login(user)
    web.get("/", secure=True)
    response, dashboard_figures, dashboard_counter = common.measured(web.get, path="/", secure=True)
    if response.status_code != 200:
        raise SystemExit(f"the dashboard answered {response.status_code}")

    print(
        json.dumps(
            {
                "token": key,
                "api_page_count": page["count"],
                "api_page_items": len(page["results"]),
                "api_queries": api_figures["queries"],
                "api_plans": {
                    name: plan_summary(*query)
                    for name, query in zip(
                        ("count", "page"), api_counter.item_selects, strict=False
                    )
                },
                "dashboard_queries": dashboard_figures["queries"],
                "dashboard_plans": [
                    plan_summary(*query) for query in dashboard_counter.item_selects
                ],
            }
        )
    )


def sweep_worker(now: dt.datetime) -> None:
    """reminder_bench.py's sweep measurement: a dry run explained, then the real sweep."""
    common.django_setup()
    from tracker.reminders import sweep

    dry, dry_figures, dry_counter = common.measured(sweep, now=now, dry_run=True)
    plans = {
        name: plan_summary(*query)
        for name, query in zip(
            ("first_chunk", "next_chunk"), dry_counter.item_selects, strict=False
        )
    }
    report, figures, _ = common.measured(sweep, now=now)
    print(
        json.dumps(
            {
                "sweep": {
                    **figures,
                    "items_seen": report.items_seen,
                    "notifications": len(report.notifications),
                    "by_stage": report.by_stage(),
                },
                "sweep_dry_run": {
                    "seconds": dry_figures["seconds"],
                    "queries": dry_figures["queries"],
                    "items_seen": dry.items_seen,
                },
                "plans": plans,
            }
        )
    )


def import_worker(*, docs: int, seed: int, round_: int) -> None:
    """import_bench.py's documents, created through `import_document` on the loaded table.

    Each round imports its own incidents (a prefix per round), after ten
    unmeasured documents that warm the fresh process up.
    """
    common.django_setup()
    from django.db import connection

    rng = random.Random(f"{seed}-import-{round_}")
    warmup = [
        import_bench.encode(import_bench.make_document(rng, n, prefix=f"WARM{round_}"))
        for n in range(10)
    ]
    # Ten documents draw their owners from import_bench.py's 16 people: all of them are
    # created before the measured ones.
    import_bench.run_phase("warmup", warmup, "created")
    raws = [
        import_bench.encode(import_bench.make_document(rng, n, prefix=f"SCALE{round_}"))
        for n in range(docs)
    ]
    # A second counter around import_bench.py's: the time of each kind of statement.
    timer = common.QueryCounter()
    with connection.execute_wrapper(timer):
        figures, _ = import_bench.run_phase("create", raws, "created")
    print(json.dumps({**figures, **timer.figures(figures["seconds"])}))


# --- Driver ------------------------------------------------------------------------


def worker_env(url: str, workdir: Path) -> dict[str, str]:
    """page_bench.py's child environment (DEBUG=0, its STATIC_ROOT), with nothing queued."""
    env = page_bench.child_env(url, workdir, debug=False)
    env.pop("CELERY_BROKER_URL", None)
    env.pop("TICKETS_BACKEND", None)
    return env


def run_child(env: dict[str, str], script: Path, *args: str) -> dict[str, Any]:
    """Run a bench script's worker; its stderr passes through, its last stdout line is JSON."""
    completed = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"{script.name} {' '.join(args[:2])} failed (exit {completed.returncode})")
    for line in lines[:-1]:
        progress(f"    {line}")
    return json.loads(lines[-1])


def wait_until_answering(base_url: str, token: str, process: subprocess.Popen) -> None:
    """api_bench.py's wait, tolerating first answers slower than its 5 s read timeout.

    On a busy machine a fresh gunicorn worker can take longer than that to import
    Django and answer its first request.
    """
    import requests

    deadline = time.monotonic() + 120
    while True:
        try:
            return api_bench.wait_until_answering(base_url, token, process)
        except requests.Timeout:
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer within 120 s") from None


def start_gunicorn(
    env: dict[str, str], token: str, args: argparse.Namespace, log_path: Path
) -> tuple[subprocess.Popen, str]:
    """gunicorn serving `config.wsgi` as api_bench.py runs it; the process and its URL."""
    port = api_bench.free_port()
    base_url = f"http://127.0.0.1:{port}"
    server_env = {
        **env,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "false",
        "API_THROTTLE_RATE": "1000000/min",
        "CONN_MAX_AGE": "60",
    }
    server_env.pop("REDIS_URL", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(
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
        wait_until_answering(base_url, token, process)
    except RuntimeError:
        api_bench.stop(process)
        sys.stderr.write(log_path.read_text()[-3000:])
        raise
    return process, base_url


def without_text(plan: dict[str, Any]) -> dict[str, Any]:
    """A plan without its text, which goes to stderr and not into the JSON."""
    return {key: value for key, value in plan.items() if key != "text"}


def print_plan(label: str, plan: dict[str, Any]) -> None:
    progress(f"    EXPLAIN {label} ({plan['execution_ms']} ms): {plan['sql']}")
    for line in plan["text"][:12]:
        progress(f"        {line[:150]}")


def print_statements(label: str, statements: dict[str, dict[str, float]]) -> None:
    slowest = sorted(statements.items(), key=lambda kv: -kv[1]["seconds"])[:6]
    progress(
        f"    {label}: "
        + ", ".join(f"{key} {v['count']}x {v['seconds'] * 1000:.0f} ms" for key, v in slowest)
    )


class Size:
    """One table size: its scratch database and what was measured on it."""

    def __init__(self, items: int, args: argparse.Namespace, workdir: Path) -> None:
        self.items = items
        self.label = size_label(items)
        self.url = size_url(args.postgres_url, items)
        self.database = common.database_name(self.url)
        self.incidents = max(1, items // 10)
        self.workdir = workdir
        self.env = worker_env(self.url, workdir)
        self.log_path = workdir / f"gunicorn_{self.label}.log"
        self.created = False
        self.gunicorn: subprocess.Popen | None = None
        self.base_url = ""
        self.loadavg: dict[str, list[float]] = {}
        self.api_runs: list[dict] = []
        self.import_runs: list[dict] = []

    def mark(self, phase: str) -> None:
        self.loadavg[phase] = common.load_average()
        progress(f"[{self.label}] {phase} (load average {self.loadavg[phase]})")


def prepare(size: Size, args: argparse.Namespace, *, now: dt.datetime, sweep_at: dt.datetime):
    progress(f"[{size.label}] database {size.database}: dropped and created again")
    common.postgres_recreate(size.url)
    size.created = True
    size.mark("migrate")
    size.migrate_s = common.manage(
        page_bench.child_env(size.url, size.workdir, debug=True), "migrate"
    )
    size.mark("load")
    size.loaded = load(
        size.url,
        items=size.items,
        people=args.people,
        incidents=size.incidents,
        due=args.due,
        now=now,
        sweep_day=sweep_at.date(),
        seed=args.seed,
        columns=common.item_columns(),
    )
    loaded = size.loaded
    progress(
        f"[{size.label}] loaded {size.items:,} items over {size.incidents:,} incidents in "
        f"{loaded['load_s']} s (COPY {loaded['copy_s']} s, VACUUM ANALYZE "
        f"{loaded['vacuum_analyze_s']} s): {loaded['items_by_status']}, "
        f"table {loaded['table_mb']} MB + indexes {loaded['indexes_mb']} MB"
    )


def run_setup(size: Size) -> None:
    size.mark("setup")
    size.setup = run_child(size.env, SCRIPT, "--worker", "setup")
    progress(
        f"[{size.label}] API request: {size.setup['api_queries']} statements, "
        f"{size.setup['api_page_count']:,} open items; dashboard: "
        f"{size.setup['dashboard_queries']} statements"
    )
    for name, plan in size.setup["api_plans"].items():
        print_plan(f"API {name}", plan)
    for index, plan in enumerate(size.setup["dashboard_plans"]):
        print_plan(f"dashboard {index + 1}", plan)


def api_round(size: Size, args: argparse.Namespace, round_: int) -> None:
    size.mark(f"api round {round_ + 1}")
    run = api_bench.child(
        {**size.env, "BENCH_API_TOKEN": size.setup["token"]},
        "--load",
        "api",
        "--base-url",
        size.base_url,
        "--concurrency",
        str(args.concurrency),
        "--duration",
        str(args.api_duration / args.rounds),
        "--max-requests",
        str(max(1, args.api_requests // args.rounds)),
        "--warmup",
        str(args.api_warmup if round_ == 0 else 0),
    )
    size.api_runs.append(run)
    figures = api_bench.summarise(run["latencies"], run["errors"], run["seconds"])
    progress(
        f"[{size.label}] API round {round_ + 1}: {figures['requests']} requests, "
        f"p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms"
    )


def measure_dashboard(size: Size, args: argparse.Namespace) -> None:
    size.mark("dashboard")
    pages = run_child(
        size.env,
        BENCH / "page_bench.py",
        "--worker",
        "--runs",
        str(args.dashboard_runs),
        "--warmup",
        str(args.dashboard_warmup),
    )["pages"]
    size.pages = pages
    if not pages["dashboard"]["measured"]:
        raise SystemExit(f"[{size.label}] the dashboard answered {pages['dashboard']['status']}")
    figures = pages["dashboard"]
    progress(
        f"[{size.label}] dashboard: {figures['queries']} queries, median {figures['median_ms']} ms "
        f"(p90 {figures['p90_ms']}) over {figures['runs']} renders"
    )


def measure_sweep(size: Size, sweep_at: dt.datetime) -> None:
    size.mark("sweep")
    size.swept = run_child(
        size.env, SCRIPT, "--worker", "sweep", "--sweep-at", sweep_at.isoformat()
    )
    figures = size.swept["sweep"]
    progress(
        f"[{size.label}] sweep: {figures['seconds']} s, {figures['queries']} queries, "
        f"{figures['items_seen']} items seen, {figures['notifications']} notifications"
    )
    print_statements("sweep", figures["statements"])
    for name, plan in size.swept["plans"].items():
        print_plan(f"sweep {name}", plan)


def import_round(size: Size, args: argparse.Namespace, round_: int) -> None:
    size.mark(f"import round {round_ + 1}")
    docs = max(1, args.import_docs // args.rounds)
    run = run_child(
        size.env,
        SCRIPT,
        "--worker",
        "import",
        "--import-docs",
        str(docs),
        "--seed",
        str(args.seed),
        "--round",
        str(round_),
    )
    size.import_runs.append(run)
    progress(
        f"[{size.label}] import round {round_ + 1}: {run['docs']} documents, "
        f"{run['docs_per_s']} docs/s, {run['queries_per_doc']} queries/doc, "
        f"{run['sql_seconds']} s of SQL"
    )
    print_statements("import", run["statements"])


def import_figures(runs: list[dict]) -> dict[str, Any]:
    """The import rounds of one size taken together."""
    docs = sum(run["docs"] for run in runs)
    seconds = sum(run["seconds"] for run in runs)
    statements: dict[str, dict[str, float]] = {}
    for run in runs:
        for key, entry in run["statements"].items():
            total = statements.setdefault(key, {"count": 0, "seconds": 0.0})
            total["count"] += entry["count"]
            total["seconds"] += entry["seconds"]
    return {
        "docs": docs,
        "rounds": len(runs),
        "seconds": round(seconds, 3),
        "docs_per_s": round(docs / seconds, 1),
        "docs_per_s_by_round": [run["docs_per_s"] for run in runs],
        "queries_per_doc": round(sum(run["queries"] for run in runs) / docs, 2),
        "queries_per_doc_min": min(run["queries_per_doc_min"] for run in runs),
        "queries_per_doc_max": max(run["queries_per_doc_max"] for run in runs),
        "sql_seconds": round(sum(run["sql_seconds"] for run in runs), 3),
        "python_seconds": round(sum(run["python_seconds"] for run in runs), 3),
        "statements_per_doc": {
            key: {
                "count": round(entry["count"] / docs, 2),
                "ms": round(entry["seconds"] * 1000 / docs, 2),
            }
            for key, entry in sorted(statements.items())
        },
    }


def report(size: Size, args: argparse.Namespace) -> dict[str, Any]:
    """The figures of one size: the headline ones, then the detail."""
    api = api_bench.summarise(
        [x for run in size.api_runs for x in run["latencies"]],
        sum(run["errors"] for run in size.api_runs),
        sum(run["seconds"] for run in size.api_runs),
    )
    api["p50_ms_by_round"] = [
        api_bench.summarise(run["latencies"], run["errors"], run["seconds"])["p50_ms"]
        for run in size.api_runs
    ]
    imported = import_figures(size.import_runs)
    board, item_list = size.pages["dashboard"], size.pages["item_list"]
    swept = size.swept["sweep"]
    setup_ = size.setup
    return {
        "import_docs_per_s": imported["docs_per_s"],
        "import_queries_per_doc": imported["queries_per_doc"],
        "api_p50_ms": api["p50_ms"],
        "api_p95_ms": api["p95_ms"],
        "dashboard_median_ms": board["median_ms"],
        "dashboard_queries": board["queries"],
        "sweep_s": swept["seconds"],
        "sweep_queries": swept["queries"],
        "load_s": size.loaded["load_s"],
        "detail": {
            "database": size.database,
            "items": size.items,
            "incidents": size.incidents,
            "people": args.people,
            "migrate_s": round(size.migrate_s, 2),
            "load": size.loaded,
            "api": {
                **api,
                "open_items": setup_["api_page_count"],
                "queries_per_request": setup_["api_queries"],
                "plans": {k: without_text(p) for k, p in setup_["api_plans"].items()},
            },
            "dashboard": {
                key: board[key] for key in ("median_ms", "p90_ms", "min_ms", "max_ms", "runs")
            }
            | {
                "sql_ms_one_render": board["sql_ms"],
                "queries_every_run": board["queries_every_run"],
                "query_ms": [q["ms"] for q in board["query_list"]],
                "plans": [without_text(p) for p in setup_["dashboard_plans"]],
            },
            "item_list": {
                key: item_list.get(key) for key in ("median_ms", "p90_ms", "queries", "sql_ms")
            },
            "sweep": {
                key: swept[key]
                for key in (
                    "seconds",
                    "queries",
                    "sql_seconds",
                    "python_seconds",
                    "items_seen",
                    "notifications",
                    "by_stage",
                    "statements",
                )
            }
            | {
                "dry_run": size.swept["sweep_dry_run"],
                "plans": {k: without_text(p) for k, p in size.swept["plans"].items()},
            },
            "import": imported,
            "load_average": size.loadavg,
        },
    }


def plan_changes(smallest: dict[str, Any], largest: dict[str, Any]) -> list[str]:
    """The explained queries whose plan (its node types) differs between two sizes."""

    def plans(size: dict[str, Any]) -> dict[str, list[str]]:
        detail = size["detail"]
        found = {f"api {k}": p["nodes"] for k, p in detail["api"]["plans"].items()}
        found |= {f"sweep {k}": p["nodes"] for k, p in detail["sweep"]["plans"].items()}
        found |= {
            f"dashboard {i + 1}": p["nodes"] for i, p in enumerate(detail["dashboard"]["plans"])
        }
        return found

    small, large = plans(smallest), plans(largest)
    return [
        f"{name}: {' > '.join(small[name])} -> {' > '.join(large[name])}"
        for name in sorted(small.keys() & large.keys())
        if small[name] != large[name]
    ]


def postgres_settings(url: str) -> dict[str, str]:
    import psycopg

    names = (
        "server_version",
        "shared_buffers",
        "work_mem",
        "effective_cache_size",
        "max_parallel_workers_per_gather",
        "jit",
    )
    with psycopg.connect(common.admin_url(url)) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", help=f"comma-separated item counts ({DEFAULT_SIZES}); incidents = items / 10"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: sizes {QUICK_SIZES}, --due 1000"
    )
    parser.add_argument("--due", type=int, help="items due at the sweep (10000; 1000 with --quick)")
    parser.add_argument(
        "--people", type=int, default=1_000, help="owners, whatever the size (1000)"
    )
    parser.add_argument(
        "--import-docs", type=int, default=200, help="documents imported per size (200)"
    )
    parser.add_argument(
        "--api-requests", type=int, default=1_000, help="API requests per size (1000)"
    )
    parser.add_argument(
        "--api-duration", type=float, default=40, help="API seconds per size, at most (40)"
    )
    parser.add_argument(
        "--api-warmup", type=int, default=50, help="untimed API requests first (50)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="API client threads (8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--dashboard-runs", type=int, default=10, help="timed renders (10)")
    parser.add_argument("--dashboard-warmup", type=int, default=2, help="untimed renders (2)")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="server and base name: each size's database is <name>_100k, <name>_1m...",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="API and import rounds, sizes alternating (2)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--worker", choices=("setup", "sweep", "import"), help=argparse.SUPPRESS)
    parser.add_argument("--sweep-at", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return args
    if args.sizes is None:
        args.sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.due is None:
        args.due = 1_000 if args.quick else 10_000
    try:
        args.size_list = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes: not a list of numbers: {args.sizes}")
    if args.rounds < 1:
        parser.error("--rounds: at least 1")
    if not args.size_list:
        parser.error("--sizes: give at least one size")
    if any(size <= args.due for size in args.size_list):
        parser.error(f"every size must be larger than --due ({args.due})")
    common.database_name(args.postgres_url)
    return args


def main(args: argparse.Namespace) -> None:
    now = dt.datetime.now(dt.UTC)
    sweep_at = reminder_bench.sweep_moment(now.date())
    loadavg_start = common.load_average()
    progress(
        f"sizes {args.size_list}, sweep at {sweep_at.isoformat()}, load average {loadavg_start}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="tracker_scalebench_"))
    sizes = [Size(items, args, workdir) for items in args.size_list]

    def rounds():
        # Small, large, then large, small...: whatever else runs on the machine, and
        # any drift in it, weighs on every size alike.
        for round_ in range(args.rounds):
            for size in sizes if round_ % 2 == 0 else reversed(sizes):
                yield round_, size

    try:
        # The pages render with DEBUG=0, whose manifest storage needs collected files.
        common.manage(
            page_bench.child_env(sizes[0].url, workdir, debug=False), "collectstatic", "--noinput"
        )
        for size in sizes:
            prepare(size, args, now=now, sweep_at=sweep_at)
        for size in sizes:
            run_setup(size)
        for size in sizes:
            size.gunicorn, size.base_url = start_gunicorn(
                size.env, size.setup["token"], args, size.log_path
            )
        for round_, size in rounds():
            api_round(size, args, round_)
        for size in sizes:
            api_bench.stop(size.gunicorn)
        for size in sizes:
            measure_dashboard(size, args)
        for size in sizes:
            measure_sweep(size, sweep_at)
        for round_, size in rounds():
            import_round(size, args, round_)
    finally:
        for size in sizes:
            api_bench.stop(size.gunicorn)
            if size.created and not args.keep:
                common.postgres_drop(size.url)
        shutil.rmtree(workdir, ignore_errors=True)

    results = {str(size.items): report(size, args) for size in sizes}
    smallest, largest = results[str(sizes[0].items)], results[str(sizes[-1].items)]
    growth = {
        name: round(largest[name] / smallest[name], 2) if smallest[name] else None
        for name in FIGURES
    }
    samples = [avg for size in sizes for avg in size.loadavg.values()]
    changes = plan_changes(smallest, largest)
    progress(f"growth {sizes[-1].items:,} / {sizes[0].items:,} items: {growth}")
    for change in changes:
        progress(f"plan change: {change}")
    print(
        json.dumps(
            {
                "benchmark": "scale",
                "command": " ".join(["bench/scale_bench.py", *sys.argv[1:]]),
                "seed": args.seed,
                "due": args.due,
                "people": args.people,
                "rounds": args.rounds,
                "import_docs": args.import_docs,
                "api": {
                    "path": api_bench.API_PATH,
                    "requests": args.api_requests,
                    "warmup": args.api_warmup,
                    "concurrency": args.concurrency,
                    "gunicorn_workers": args.workers,
                },
                "dashboard_runs": args.dashboard_runs,
                "sweep_at": sweep_at.isoformat(),
                "at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "sizes": results,
                "growth_of": f"{sizes[-1].items}/{sizes[0].items}",
                "growth": growth,
                "plan_changes": changes,
                "machine": {
                    **common.machine_info(),
                    "load_average": common.load_average(),
                    "load_average_start": loadavg_start,
                    "load_average_1min_range": [
                        min(s[0] for s in samples),
                        max(s[0] for s in samples),
                    ],
                    "postgresql": postgres_settings(args.postgres_url),
                },
            }
        )
    )


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.worker == "setup":
        setup_worker()
    elif arguments.worker == "sweep":
        sweep_worker(dt.datetime.fromisoformat(arguments.sweep_at))
    elif arguments.worker == "import":
        import_worker(docs=arguments.import_docs, seed=arguments.seed, round_=arguments.round)
    else:
        main(arguments)

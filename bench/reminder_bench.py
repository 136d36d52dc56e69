"""Reminder benchmark: does the sweep cost follow the due items, not the table size?

    .venv/bin/python bench/reminder_bench.py

For each table size (1,000,000 and 100,000 action items by default) it
recreates a PostgreSQL database, migrates it (`manage.py migrate` in a child
process), then loads ~1,000 people, a handful of incidents and N items with
COPY, of which exactly `--due` (10,000) reach a reminder stage at the sweep
moment: due tomorrow (due_soon-1), due today, or overdue by one day, with
`next_reminder_on` on the sweep day. The others are done (`next_reminder_on`
NULL), or open with a deadline 30 to 300 days ahead and `next_reminder_on`
seven days before it. After ANALYZE it runs itself in a child process with
DATABASE_URL pointing at that database (Django reads its settings once per
process), which measures, with statements counted by
`connection.execute_wrapper`:

- sweep_dry_run: `tracker.reminders.sweep(now=..., dry_run=True)`, which reads
  exactly what the real sweep reads; its item queries are then run again under
  EXPLAIN (ANALYZE, BUFFERS) on the unchanged data;
- sweep: the real sweep (Notification rows inserted, items moved on);
- sweep_again: a second sweep at the same moment (nothing is due any more);
- deliver: `deliver_pending(now=...)` with the locmem email backend.

Human-readable lines go first; the last line on stdout is one JSON object with
every size's figures and the machine they were measured on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

ROOT = common.ROOT
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/tracker_remindbench"
NEXT_REMINDER_INDEX = "action_item_next_reminder"

PRIORITIES = ["P0", "P1", "P1", "P2", "P2", "P2", "P3", "P4"]
TYPES = ["prevention", "detection", "mitigation", "process", "documentation", "repair"]
OPEN = ["open", "open", "open", "in_progress", "blocked"]
# Every one of these is on the sweep day, 15:00 UTC, at or after the remind hour (9).
TIME_ZONES = ["", "", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
# Due tomorrow, due today, overdue by one day: each a stage reached on the sweep day.
DUE_OFFSETS = (1, 0, -1)


# --- Driver: database, data ----------------------------------------------------


def sweep_moment(today: dt.date) -> dt.datetime:
    """15:00 UTC on today, or on the next weekday (reminders go out on weekdays only)."""
    while today.weekday() >= 5:
        today += dt.timedelta(days=1)
    return dt.datetime.combine(today, dt.time(15, 0), tzinfo=dt.UTC)


def item_rows(
    rng: random.Random, *, items: int, due: int, people: int, incidents: int, now: dt.datetime
):
    """Rows for COPY (by column): `due` items reach a stage on the sweep day, the rest do not."""
    today = now.date()
    due_ids = set(rng.sample(range(1, items + 1), due))
    created = now - dt.timedelta(days=60)
    for item_id in range(1, items + 1):
        priority = rng.choice(PRIORITIES)
        completed_at = None
        if item_id in due_ids:
            status = rng.choice(OPEN)
            deadline = today + dt.timedelta(days=DUE_OFFSETS[item_id % len(DUE_OFFSETS)])
            next_on = today
        elif item_id % 2:
            status = "done"
            deadline = today + dt.timedelta(days=rng.randint(-300, 300))
            completed_at = now - dt.timedelta(days=rng.randint(1, 50), minutes=item_id % 1440)
            next_on = None
        else:
            status = rng.choice(OPEN)
            deadline = today + dt.timedelta(days=rng.randint(30, 300))
            next_on = deadline - dt.timedelta(days=7)
        yield {
            **common.ITEM_DEFAULTS,
            "id": item_id,
            "incident_id": 1 + item_id % incidents,
            "title": f"Follow-up {item_id}: add alerting on pool exhaustion",
            "owner_id": 1 + rng.randrange(people),
            "priority": priority,
            "type": rng.choice(TYPES),
            "status": status,
            "deadline": deadline,
            "completed_at": completed_at,
            "created_at": created,
            "updated_at": created,
            "next_reminder_on": next_on,
        }


def load(
    url: str,
    *,
    items: int,
    due: int,
    people: int,
    incidents: int,
    now: dt.datetime,
    seed,
    columns: tuple[str, ...],
):
    """People, incidents and items with COPY, then ANALYZE; the time each step took."""
    import psycopg

    rng = random.Random(seed)
    timings: dict[str, float] = {}
    created = now - dt.timedelta(days=90)
    with psycopg.connect(common.psycopg_url(url)) as conn:
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
                            TIME_ZONES[n % len(TIME_ZONES)],
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
                    copy.write_row(
                        (
                            n,
                            f"INC-REMIND-{n:04d}",
                            f"Incident {n}",
                            "SEV2",
                            "resolved",
                            created,
                            created + dt.timedelta(hours=2),
                            "Jane Smith",
                            "payments",
                            "[]",
                            "{}",
                            "{}",
                            "{}",
                            "{}",
                            "",
                            "director-eng@example.com",
                            "{}",
                            created,
                            created,
                        )
                    )
        conn.commit()
        timings["people_incidents_s"] = time.perf_counter() - started

        started = time.perf_counter()
        with conn.cursor() as cur:
            common.copy_items(
                cur,
                item_rows(rng, items=items, due=due, people=people, incidents=incidents, now=now),
                columns=columns,
            )
        conn.commit()
        timings["items_copy_s"] = time.perf_counter() - started

        for table in ("tracker_person", "incidents_incident", "tracker_actionitem"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()

        started = time.perf_counter()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE tracker_person, incidents_incident, tracker_actionitem")
        timings["vacuum_analyze_s"] = time.perf_counter() - started

        counts = dict(
            conn.execute(
                "SELECT 'items', count(*) FROM tracker_actionitem UNION ALL "
                "SELECT 'due', count(*) FROM tracker_actionitem WHERE next_reminder_on <= %s "
                "UNION ALL SELECT 'done', count(*) FROM tracker_actionitem WHERE status = 'done' "
                "UNION ALL SELECT 'scheduled_later', count(*) FROM tracker_actionitem "
                "WHERE next_reminder_on > %s",
                (now.date(), now.date()),
            ).fetchall()
        )
        sizes = conn.execute(
            "SELECT pg_total_relation_size('tracker_actionitem'), "
            f"pg_relation_size('{NEXT_REMINDER_INDEX}')"
        ).fetchone()
    return {
        **{k: round(v, 2) for k, v in timings.items()},
        "rows": counts,
        "table_mb": round(sizes[0] / 2**20, 1),
        "next_reminder_index_mb": round(sizes[1] / 2**20, 2),
    }


# --- Worker: Django, inside its own process -------------------------------------


def explain(sql: str, params) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement: the plan, its indexes, its time."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    nodes: list[str] = []
    indexes: list[str] = []

    def walk(node: dict) -> None:
        name = node["Node Type"]
        if "Index Name" in node:
            indexes.append(node["Index Name"])
            name += f" using {node['Index Name']}"
        if "Relation Name" in node:
            name += f" on {node['Relation Name']}"
        nodes.append(name)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        text = [row[0] for row in cursor.fetchall()]
    return {
        "nodes": nodes,
        "uses_next_reminder_index": NEXT_REMINDER_INDEX in indexes,
        "rows": plan["Plan"].get("Actual Rows"),
        "execution_ms": round(plan["Execution Time"], 2),
        "shared_buffers_hit_read": [
            plan["Plan"].get("Shared Hit Blocks"),
            plan["Plan"].get("Shared Read Blocks"),
        ],
        "text": text,
    }


def worker(now: dt.datetime) -> None:
    common.django_setup()
    from django.conf import settings
    from django.core import mail
    from django.db import connection
    from django.test.utils import override_settings

    from tracker.models import Notification
    from tracker.reminders import deliver_pending, sweep
    from tracker.reminders.sweeping import SWEEP_CHUNK

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]

    dry, dry_figures, dry_counter = common.measured(sweep, now=now, dry_run=True)
    plans = {
        "first_chunk": explain(*dry_counter.item_selects[0]),
        "next_chunk": explain(*dry_counter.item_selects[1])
        if len(dry_counter.item_selects) > 1
        else None,
    }
    report, sweep_figures, _ = common.measured(sweep, now=now)
    again, again_figures, _ = common.measured(sweep, now=now)
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        mail.outbox = []
        delivered, deliver_figures, _ = common.measured(deliver_pending, now=now)
        emails = len(mail.outbox)

    sweep_figures.update(
        items_seen=report.items_seen,
        notifications=len(report.notifications),
        notification_rows=Notification.objects.count(),
        recipients=len(report.recipients),
        by_stage=report.by_stage(),
    )
    dry_figures.update(items_seen=dry.items_seen, notifications=len(dry.notifications))
    again_figures.update(items_seen=again.items_seen, notifications=len(again.notifications))
    deliver_figures.update(
        emails=emails,
        sent=delivered.sent,
        failed=delivered.failed,
        emails_per_s=round(emails / deliver_figures["seconds"], 1),
    )
    for name, phase in (
        ("sweep_dry_run", dry_figures),
        ("sweep", sweep_figures),
        ("sweep_again", again_figures),
        ("deliver", deliver_figures),
    ):
        print(f"{name}: {phase['seconds']} s, {phase['queries']} queries {phase['statements']}")
    for name, plan in plans.items():
        if plan:
            print(f"EXPLAIN {name} ({plan['execution_ms']} ms):")
            print("\n".join("    " + line for line in plan["text"]))
            del plan["text"]
    print(
        json.dumps(
            {
                "postgres": version,
                "debug": settings.DEBUG,
                "sweep_chunk": SWEEP_CHUNK,
                "sweep_dry_run": dry_figures,
                "sweep": sweep_figures,
                "sweep_again": again_figures,
                "deliver": deliver_figures,
                "explain": plans,
            }
        )
    )


# --- Driver ------------------------------------------------------------------------


def run_size(items: int, args: argparse.Namespace, now: dt.datetime, workdir: Path) -> dict:
    url = args.postgres_url
    common.postgres_recreate(url)
    try:
        migrate_s = common.manage(common.child_env(url, workdir, debug=True), "migrate")
        columns = common.item_columns()  # a child process: not part of the load's time
        started = time.perf_counter()
        loaded = load(
            url,
            items=items,
            due=args.due,
            people=args.people,
            incidents=args.incidents,
            now=now,
            seed=args.seed,
            columns=columns,
        )
        loaded["total_s"] = round(time.perf_counter() - started, 2)
        print(
            f"[{items}] loaded in {loaded['total_s']} s "
            f"(items COPY {loaded['items_copy_s']} s): {loaded['rows']}"
        )
        if loaded["rows"]["due"] != args.due:
            raise SystemExit(f"expected {args.due} due items, found {loaded['rows']['due']}")
        completed = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", now.isoformat()],
            cwd=ROOT,
            env=common.child_env(url, workdir, debug=args.debug),
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        if not args.keep:
            common.postgres_drop(url)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"[{items}] the benchmark worker failed (exit {completed.returncode})")
    for line in lines[:-1]:
        print(f"[{items}] {line}")
    return {
        "items": items,
        "migrate_s": round(migrate_s, 2),
        "load": loaded,
        **json.loads(lines[-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1000000,100000", help="comma-separated item counts (1000000,100000)"
    )
    parser.add_argument("--due", type=int, default=10_000, help="items due at the sweep (10000)")
    parser.add_argument("--people", type=int, default=1_000)
    parser.add_argument("--incidents", type=int, default=20)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--debug",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the measuring worker with DEBUG=1 (default) or DEBUG=0 (migrate always DEBUG=1)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the last database afterwards")
    parser.add_argument("--worker", metavar="NOW", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker(dt.datetime.fromisoformat(args.worker))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(size < args.due for size in sizes):
        parser.error("every size must be at least --due")
    now = sweep_moment(dt.datetime.now(dt.UTC).date())
    workdir = Path(tempfile.mkdtemp(prefix="tracker_remindbench_"))
    try:
        results = [run_size(size, args, now, workdir) for size in sizes]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {
        "sweep_seconds": {r["items"]: r["sweep"]["seconds"] for r in results},
        "sweep_queries": {r["items"]: r["sweep"]["queries"] for r in results},
        "uses_next_reminder_index": all(
            plan["uses_next_reminder_index"]
            for r in results
            for plan in r["explain"].values()
            if plan
        ),
    }
    print(
        json.dumps(
            {
                "benchmark": "reminders",
                "command": " ".join(["bench/reminder_bench.py", *sys.argv[1:]]),
                "due": args.due,
                "people": args.people,
                "incidents": args.incidents,
                "seed": args.seed,
                "sweep_at": now.isoformat(),
                "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "machine": common.machine_info(),
                "summary": summary,
                "sizes": results,
            }
        )
    )


if __name__ == "__main__":
    main()

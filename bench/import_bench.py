"""Import benchmark: documents per second and SQL queries per document.

    .venv/bin/python bench/import_bench.py --docs 500

For each database it creates a fresh one (a temporary SQLite file; the
PostgreSQL database named in --postgres-url dropped and created again), then
runs itself in a child process with DATABASE_URL pointing at it, because
Django reads its settings once per process. The child migrates, generates
documents shaped like samples/INC-2024-0142.json (deterministic for a seed),
imports them through `incidents.importing.import_document` and reports each
phase:

- create: N new documents;
- reimport_unchanged: the same bytes again (the "unchanged" path);
- reimport_changed: each document with one item's deadline moved and one more
  event (the "updated" path);
- scaling: documents with 5 items / 20 events against 50 items / 200 events,
  created then re-imported with every item's deadline changed, to show whether
  queries per document grow with the size of a document;
- largest: in a process of its own (so that its peak memory is its own), the
  largest document the import accepts, at every TRACKER_IMPORT_MAX_* limit and
  padded to just under TRACKER_IMPORT_MAX_BYTES, created, re-imported with every
  item changed, and one past the items limit refused: seconds, statements, peak
  resident memory (getrusage) and peak Python allocations (tracemalloc, in a
  second run, since tracing slows Python down).

Human-readable lines go first; the last line on stdout is one JSON object with
every database's figures and the machine they were measured on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import common

ROOT = common.ROOT
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/tracker_bench"
DATABASES = ("sqlite", "postgres")

# --- Documents -----------------------------------------------------------------

SERVICES = [
    "payment-gateway",
    "checkout",
    "user-api",
    "search",
    "notifications",
    "inventory",
    "auth",
    "ledger",
    "media-cdn",
    "order-service",
    "subscription-billing",
    "reporting",
]
PEOPLE = [
    ("Jane Smith", "jane"),
    ("Alice Chen", "alice"),
    ("Bob Kim", "bob"),
    ("Carol Davis", "carol"),
    ("Dmitri Volkov", "dmitri"),
    ("Erin O'Neill", "erin"),
    ("Farah Haddad", "farah"),
    ("Gustavo Reyes", "gustavo"),
    ("Hana Sato", "hana"),
    ("Ivan Petrov", "ivan"),
    ("Jonas Berg", "jonas"),
    ("Kemi Adeyemi", "kemi"),
    ("Lena Fischer", "lena"),
    ("Marco Rossi", "marco"),
    ("Nadia Karim", "nadia"),
    ("Omar Said", "omar"),
]
ROLES = ["Incident Commander", "Operations Lead", "Communications Lead", "Subject Matter Expert"]
CAUSES = [
    ("database connection pool exhaustion", "db_pool_utilization"),
    ("a certificate that expired on the load balancer", "tls_handshake_errors"),
    ("a cache stampede after a cold restart", "cache_miss_ratio"),
    ("a bad feature flag rollout", "error_rate"),
    ("disk pressure on the primary", "disk_used_percent"),
    ("a retry storm from a downstream timeout", "request_rate"),
    ("a schema migration holding a table lock", "lock_wait_seconds"),
    ("DNS resolution failures in one region", "dns_failures"),
]
EVENT_TYPES = [
    "detection",
    "investigation",
    "communication",
    "escalation",
    "mitigation",
    "investigation",
    "mitigation",
    "communication",
]
ITEM_VERBS = [
    "Add alerting on",
    "Load test",
    "Document the runbook for",
    "Add a canary stage for",
    "Write an integration test for",
    "Set capacity limits on",
    "Automate the rollback of",
    "Review dashboards for",
    "Add rate limiting to",
    "Remove the single point of failure in",
]
ITEM_TYPES = ["prevention", "detection", "mitigation", "process", "documentation", "repair"]
PRIORITIES = ["P0", "P1", "P1", "P2", "P2", "P2", "P3", "P4"]
CHANNELS = [("status_page", "external"), ("slack_exec", "internal"), ("email", "customers")]


def make_document(
    rng: random.Random,
    number: int,
    *,
    items: int = 5,
    events: int = 20,
    communications: int = 5,
    participants: int = 4,
    prefix: str = "BENCH",
) -> dict[str, Any]:
    """A postmortem document like the sample, with values drawn from `rng`."""
    service = rng.choice(SERVICES)
    cause, metric = rng.choice(CAUSES)
    severity = rng.choice(["SEV1", "SEV2", "SEV2", "SEV3", "SEV3", "SEV4"])
    declared = dt.datetime(2023, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        minutes=rng.randrange(0, 2 * 365 * 24 * 60)
    )
    crew = rng.sample(PEOPLE, k=min(len(PEOPLE), max(participants, 4)))
    commander = crew[0][0]

    timeline = []
    at = declared - dt.timedelta(minutes=rng.randint(3, 15))
    timeline.append(
        {
            "timestamp": _ts(at),
            "type": "trigger",
            "actor": "system",
            "description": f"{metric} crosses its threshold on {service}",
            "metadata": {"metric": metric, "value": rng.randint(80, 100), "threshold": 80},
        }
    )
    for i in range(1, events):
        at += dt.timedelta(minutes=rng.randint(1, 12))
        kind = "declaration" if i == 1 else EVENT_TYPES[(i + number) % len(EVENT_TYPES)]
        actor = commander if kind == "declaration" else rng.choice(crew)[0]
        timeline.append(
            {
                "timestamp": _ts(at),
                "type": kind,
                "actor": actor,
                "description": f"{kind.title()} step {i} on {service}: {cause}",
                "metadata": {"step": i, metric: round(rng.uniform(0, 100), 1)},
            }
        )
    resolved = at + dt.timedelta(minutes=rng.randint(5, 30))

    messages = []
    for i in range(communications):
        channel, audience = CHANNELS[i % len(CHANNELS)]
        messages.append(
            {
                "timestamp": _ts(declared + dt.timedelta(minutes=10 + 15 * i)),
                "channel": channel,
                "audience": audience,
                "message": f"Update {i + 1}: we are working on {cause} affecting {service}.",
            }
        )

    action_items = []
    for i in range(items):
        verb = ITEM_VERBS[(i + number) % len(ITEM_VERBS)]
        target = SERVICES[(i * 7 + number) % len(SERVICES)]
        item: dict[str, Any] = {
            # Item n is unique within its document by construction.
            "title": f"{verb} {target} ({metric}, follow-up {i + 1})",
            "owner": f"{rng.choice(PEOPLE)[1]}@company.com",
            "priority": rng.choice(PRIORITIES),
            "deadline": (resolved.date() + dt.timedelta(days=rng.randint(5, 60))).isoformat(),
            "type": rng.choice(ITEM_TYPES),
            "status": rng.choice(["open", "open", "open", "in_progress", "blocked"]),
        }
        if number % 2:
            # Half of the documents give items ids, as some templates do.
            item = {"id": f"AI-{i + 1}", **item}
        action_items.append(item)

    return {
        "incident": {
            "id": f"INC-{prefix}-{number:05d}",
            "title": f"{service} degraded: {cause}",
            "severity": severity,
            "status": "resolved",
            "declared_at": _ts(declared),
            "resolved_at": _ts(resolved),
            "commander": commander,
            "service": service,
            "affected_services": rng.sample(SERVICES, k=rng.randint(1, 3)),
        },
        "events": timeline,
        "communications": messages,
        "impact": {
            "revenue_impact": rng.choice(["low", "medium", "high"]),
            "affected_users_percentage": rng.randint(1, 80),
            "customer_facing": rng.random() < 0.7,
        },
        "signals": {
            "error_rate_percentage": round(rng.uniform(0.5, 40), 1),
            "latency_p99_ms": rng.randint(300, 12000),
            "alert_count": rng.randint(1, 30),
        },
        "context": {
            "recent_deployments": [
                {
                    "service": rng.choice(SERVICES),
                    "deployed_at": _ts(declared - dt.timedelta(minutes=rng.randint(20, 300))),
                    "version": f"{rng.randint(1, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
                }
            ],
            "ongoing_incidents": [],
            "maintenance_windows": [],
            "on_call": {
                "primary": f"{crew[1][1]}@company.com",
                "secondary": f"{crew[2][1]}@company.com",
                "escalation_manager": "director-eng@company.com",
            },
        },
        "resolution": {
            "root_cause": f"{cause.capitalize()} on {service}",
            "contributing_factors": [f"No alert before {metric} reached its limit"],
            "mitigation_steps": ["Rolled back the last deployment"],
        },
        "action_items": action_items,
        "participants": [
            {"name": name, "role": ROLES[i % len(ROLES)]}
            for i, (name, _) in enumerate(crew[:participants])
        ],
    }


def change_document(rng: random.Random, doc: dict[str, Any], *, every_item: bool = False) -> dict:
    """The next revision: a deadline moved (one item's, or every item's) and one more event."""
    items = [dict(item) for item in doc["action_items"]]
    moved = range(len(items)) if every_item else [rng.randrange(len(items))]
    for index in moved:
        deadline = dt.date.fromisoformat(items[index]["deadline"])
        items[index]["deadline"] = (deadline + dt.timedelta(days=7)).isoformat()
    last = dt.datetime.fromisoformat(doc["events"][-1]["timestamp"])
    event = {
        "timestamp": _ts(last + dt.timedelta(minutes=30)),
        "type": "postmortem",
        "actor": doc["incident"]["commander"],
        "description": "Postmortem reviewed; deadlines agreed with owners.",
    }
    return {**doc, "action_items": items, "events": [*doc["events"], event]}


def _ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2).encode()


# --- Worker: one database, inside its own process -------------------------------


def run_phase(name: str, raws: list[bytes], expected: str) -> tuple[dict[str, Any], dict]:
    """Import `raws` in order; the figures, and the statements issued per document."""
    from django.db import connection

    from incidents.importing import import_document

    results: Counter[str] = Counter()
    counter = common.QueryCounter()
    per_doc: list[int] = []
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        for index, raw in enumerate(raws):
            before = counter.total
            summary = import_document(raw=raw, source="bench", path=f"{name}/{index}.json")
            per_doc.append(counter.total - before)
            results[str(summary.result)] += 1
    seconds = time.perf_counter() - started
    if results != Counter({expected: len(raws)}):
        raise SystemExit(f"{name}: expected {len(raws)} {expected}, got {dict(results)}")
    docs = len(raws)
    figures = {
        "docs": docs,
        "seconds": round(seconds, 3),
        "docs_per_s": round(docs / seconds, 1),
        "queries_per_doc": round(counter.total / docs, 2),
        "queries_per_doc_min": min(per_doc),
        "queries_per_doc_max": max(per_doc),
    }
    statements = {key: count / docs for key, count in counter.by_statement.items()}
    return figures, statements


def scaling_phase(seed: int, docs: int) -> dict[str, Any]:
    sizes = {"small": {"items": 5, "events": 20}, "large": {"items": 50, "events": 200}}
    report: dict[str, Any] = {}
    statements: dict[tuple[str, str], dict] = {}
    for label, size in sizes.items():
        rng = random.Random(f"{seed}-scaling-{label}")
        originals = [
            make_document(rng, n, prefix=f"SCALE{label.upper()}", **size) for n in range(docs)
        ]
        changed = [change_document(rng, doc, every_item=True) for doc in originals]
        report[label] = dict(size)
        for phase, docs_of_phase, expected in (
            ("create", originals, "created"),
            ("reimport_changed_every_item", changed, "updated"),
        ):
            report[label][phase], statements[label, phase] = run_phase(
                f"scaling-{label}-{phase}", [encode(d) for d in docs_of_phase], expected
            )
    for phase in ("create", "reimport_changed_every_item"):
        # Which statements a large document issues more often than a small one.
        small, large = statements["small", phase], statements["large", phase]
        report[f"{phase}_growth"] = {
            "queries_per_doc": round(
                report["large"][phase]["queries_per_doc"]
                - report["small"][phase]["queries_per_doc"],
                2,
            ),
            "statements": {
                key: round(large.get(key, 0) - small.get(key, 0), 2)
                for key in sorted(small.keys() | large.keys())
                if large.get(key, 0) != small.get(key, 0)
            },
        }
    return report


def database_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
        else:
            cursor.execute("SELECT sqlite_version()")
        return cursor.fetchone()[0]


def worker(database: str, docs: int, seed: int, scaling_docs: int) -> None:
    common.django_setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)

    rng = random.Random(seed)
    originals = [make_document(rng, n) for n in range(docs)]
    changed = [change_document(rng, doc) for doc in originals]
    raws = [encode(d) for d in originals]

    phases = {
        "create": run_phase("create", raws, "created")[0],
        "reimport_unchanged": run_phase("unchanged", raws, "unchanged")[0],
        "reimport_changed": run_phase("changed", [encode(d) for d in changed], "updated")[0],
    }
    for name, phase in phases.items():
        print(
            f"[{database}] {name}: {phase['docs_per_s']} docs/s, "
            f"{phase['queries_per_doc']} queries/doc"
        )
    scaling = scaling_phase(seed, scaling_docs)
    for label in ("small", "large"):
        entry = scaling[label]
        print(
            f"[{database}] scaling {entry['items']} items/{entry['events']} events: "
            f"create {entry['create']['queries_per_doc']} queries/doc, "
            f"changed {entry['reimport_changed_every_item']['queries_per_doc']} queries/doc"
        )
    for phase in ("create", "reimport_changed_every_item"):
        growth = scaling[f"{phase}_growth"]
        print(
            f"[{database}] scaling {phase}: large - small = {growth['queries_per_doc']} "
            f"queries/doc {growth['statements'] or ''}".rstrip()
        )
    result = {
        "vendor": connection.vendor,
        "version": database_version(),
        "debug": settings.DEBUG,
        "phases": phases,
        "scaling": scaling,
    }
    print(json.dumps(result))


# --- Worker: the largest document the import accepts ----------------------------


def largest_document(rng: random.Random, number: int, *, limits: dict[str, int]) -> dict:
    """A document at every section limit, with as many distinct owners as items and
    descriptions padded so that its bytes come just under the byte limit."""
    doc = make_document(
        rng,
        number,
        prefix="LARGEST",
        items=limits["items"],
        events=limits["events"],
        communications=limits["communications"],
        participants=4,
    )
    for index, item in enumerate(doc["action_items"]):
        item["owner"] = f"owner{index:04d}@company.com"
    doc["participants"] = [
        {"name": f"Participant {i}", "role": ROLES[i % len(ROLES)], "email": f"p{i}@company.com"}
        for i in range(limits["participants"])
    ]
    spare = limits["bytes"] - len(encode(doc)) - 4096
    pad = max(0, spare // len(doc["events"]))
    for event in doc["events"]:
        event["description"] += " " + "x" * max(0, pad - 1)
    return doc


def _max_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux: the process's peak resident memory so far.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def largest_worker(database: str, seed: int) -> None:
    common.django_setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from incidents.importing import import_document

    call_command("migrate", interactive=False, verbosity=0)
    limits = {
        "items": settings.TRACKER_IMPORT_MAX_ITEMS,
        "events": settings.TRACKER_IMPORT_MAX_EVENTS,
        "communications": settings.TRACKER_IMPORT_MAX_COMMUNICATIONS,
        "participants": settings.TRACKER_IMPORT_MAX_PARTICIPANTS,
        "bytes": settings.TRACKER_IMPORT_MAX_BYTES,
    }
    rng = random.Random(f"{seed}-largest")
    doc = largest_document(rng, 0, limits=limits)
    changed = change_document(rng, doc, every_item=True)
    changed["events"] = changed["events"][1:]  # one more event would pass the limit
    # 100 times the items, in 3.5 MB: refused by their number, before validation.
    too_many = make_document(rng, 2, prefix="LARGEST")
    too_many["action_items"] = [
        {"title": f"Item {i}", "priority": "P2"} for i in range(100 * limits["items"])
    ]
    raws = {
        "create": encode(doc),
        "reimport_changed_every_item": encode(changed),
        "traced_create": encode(largest_document(rng, 1, limits=limits)),
        "refused_100x_items": json.dumps(too_many, separators=(",", ":")).encode(),
    }
    expected = {
        "create": "created",
        "reimport_changed_every_item": "updated",
        "traced_create": "created",
        "refused_100x_items": "rejected",
    }

    # After building the documents: what each import adds to the peak is its own.
    report: dict[str, Any] = {"limits": limits, "max_rss_mb_before": _max_rss_mb()}
    for phase, raw in raws.items():
        traced = phase == "traced_create"
        if traced:
            tracemalloc.start()
        counter = common.QueryCounter()
        started = time.perf_counter()
        with connection.execute_wrapper(counter):
            summary = import_document(raw=raw, source="bench", path=f"largest/{phase}.json")
        seconds = time.perf_counter() - started
        if str(summary.result) != expected[phase]:
            raise SystemExit(f"largest {phase}: expected {expected[phase]}, got {summary.result}")
        figures = {
            "bytes": len(raw),
            "result": str(summary.result),
            "seconds": round(seconds, 3),
            "queries": counter.total,
            "sql_seconds": round(counter.sql_seconds, 3),
        }
        if traced:
            figures["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
            tracemalloc.stop()
        else:
            figures["max_rss_mb_after"] = _max_rss_mb()
        report[phase] = figures
        print(
            f"[{database}] largest {phase}: {len(raw):,} bytes, {seconds:.2f} s, "
            f"{counter.total} queries, "
            + (
                f"tracemalloc peak {figures['tracemalloc_peak_mb']} MB"
                if traced
                else f"max RSS {figures['max_rss_mb_after']} MB"
            )
        )
    report.update(vendor=connection.vendor, version=database_version(), debug=settings.DEBUG)
    print(json.dumps(report))


# --- Driver: fresh databases, one child process each ---------------------------


def run_database(database: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results = {} if args.only_largest else run_child(database, args, workdir, "--worker")
    if args.largest:
        results["largest"] = run_child(database, args, workdir, "--worker-largest")
    return results


def run_child(database: str, args: argparse.Namespace, workdir: Path, mode: str) -> dict:
    """Run a worker (`mode`) on a fresh database; its last line, as JSON."""
    if database == "sqlite":
        url = f"sqlite:///{workdir / f'bench{mode}.sqlite3'}"
    else:
        url = args.postgres_url
        common.postgres_recreate(url)
    env = common.child_env(url, workdir, debug=args.debug)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        mode,
        database,
        "--docs",
        str(args.docs),
        "--seed",
        str(args.seed),
        "--scaling-docs",
        str(args.scaling_docs),
    ]
    try:
        completed = subprocess.run(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False
        )
    finally:
        if database == "postgres" and not args.keep:
            common.postgres_drop(url)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"{database}: the benchmark worker failed (exit {completed.returncode})")
    for line in lines[:-1]:
        print(line)
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=500, help="documents per phase (500)")
    parser.add_argument(
        "--databases", default="sqlite,postgres", help="comma-separated: sqlite,postgres"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--scaling-docs", type=int, default=50, help="documents per size in the scaling phase"
    )
    parser.add_argument(
        "--debug",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the workers with DEBUG=1 (default) or DEBUG=0",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the databases (and temp dir) afterwards"
    )
    parser.add_argument(
        "--largest",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also import the largest document the limits allow, in its own process (default)",
    )
    parser.add_argument(
        "--only-largest", action="store_true", help="only the largest document's phase"
    )
    parser.add_argument("--worker", choices=DATABASES, help=argparse.SUPPRESS)
    parser.add_argument("--worker-largest", choices=DATABASES, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker(args.worker, args.docs, args.seed, args.scaling_docs)
        return
    if args.worker_largest:
        largest_worker(args.worker_largest, args.seed)
        return
    if args.only_largest:
        args.largest = True

    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(databases) - set(DATABASES)
    if unknown:
        parser.error(f"unknown databases: {', '.join(sorted(unknown))}")

    load_before = common.load_average()
    workdir = Path(tempfile.mkdtemp(prefix="tracker_bench_"))
    try:
        results = {database: run_database(database, args, workdir) for database in databases}
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "benchmark": "import",
        "command": " ".join(["bench/import_bench.py", *sys.argv[1:]]),
        "docs": args.docs,
        "seed": args.seed,
        "document_shape": {"items": 5, "events": 20, "communications": 5, "participants": 4},
        "scaling_docs": args.scaling_docs,
        "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": common.machine_info(),
        "load_average_before": load_before,
        "load_average_after": common.load_average(),
        "databases": results,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

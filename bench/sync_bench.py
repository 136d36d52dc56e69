"""Ticket sync benchmark: pushing action items to a real Redmine, and polling it back.

    .venv/bin/python bench/sync_bench.py

Steps:

1. start a scratch Redmine (`scripts/redmine start DIR`, DIR in a temporary
   directory, on a free port or --redmine-port), unless --redmine-url names one;
2. drop and create the PostgreSQL database named in --postgres-url and migrate
   it (`manage.py migrate`);
3. in a child process (Django, DATABASE_URL pointing at it; TICKETS_BACKEND=
   redmine, TICKETS_RATE_LIMIT=0 so that Redmine is measured and not our rate
   limit, a marker prefix of its own, CELERY_BROKER_URL=memory:// so that the
   services' on-commit enqueue goes nowhere):
   - create: --items action items (10 incidents, owner alice@example.com, P1 to
     P4, deadlines) in one `action_items_create` call, which gives each a
     pending TicketLink; then `tickets_push(item_ids=all)`, timed;
   - status_change: every item open -> in_progress in one
     `action_items_update` call; `tickets_push` again, timed;
   - find_probe, before create and after status_change: the median time of 20
     marker lookups (`backend.find`, after 5 untimed) of a marker no ticket
     carries, with the project empty and then holding the run's tickets;
   - poll_first and poll: one `tickets_poll` (the first reads back every
     ticket), then --remote-changes tickets get a due date a week later through
     Redmine's API directly, as a person would, and `tickets_poll` again, timed;
   - convergence: the issues carrying the run's marker prefix are counted in
     Redmine (as many as items: no duplicate), and 20 of them, drawn at random,
     must be "In Progress" and carry their item's marker.
   Each timed phase counts the backend client's requests (`requests_sent`), the
   time of each HTTP round trip by method and path (and Redmine's own time for
   it, its `X-Runtime` header), the SQL statements and their time, and, for a
   Redmine started here, what its production.log says it did meanwhile
   (requests completed, notification emails rendered);
4. stop the Redmine it started and drop the database (unless --keep).

Human-readable progress goes to stderr; the only line on stdout is one JSON
object with every figure and the machine they were measured on.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import common

ROOT = common.ROOT
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/tracker_syncbench"
OWNER = "alice@example.com"  # a Redmine user of the project in scripts/redmine's instance
PRIORITIES = ["P1", "P2", "P3", "P4"]
PRIORITY_DAYS = {"P1": 14, "P2": 30, "P3": 60, "P4": 90}
SEVERITIES = ["SEV1", "SEV2", "SEV3", "SEV4"]
SERVICES = ["checkout", "payments", "search", "auth", "ledger"]
TYPES = ["prevention", "detection", "mitigation", "process", "documentation"]
WORDS = [
    "add",
    "alert",
    "backfill",
    "budget",
    "connection",
    "credentials",
    "deploy",
    "failover",
    "gateway",
    "metrics",
    "pipeline",
    "pool",
    "queue",
    "retry",
    "runbook",
    "rotate",
    "timeout",
    "thresholds",
]
INCIDENTS = 10
SAMPLE = 20
FIND_PROBES = 20
FIND_PROBE_WARMUP = 5
PROGRESS_EVERY = 100


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- Driver: Redmine, environment -------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redmine_start(directory: Path, port: int) -> dict[str, str]:
    """`scripts/redmine start DIR` on `port`; its REDMINE_* lines, as a dict."""
    started = time.perf_counter()
    completed = subprocess.run(
        [str(ROOT / "scripts" / "redmine"), "start", str(directory)],
        cwd=ROOT,
        env={**os.environ, "REDMINE_PORT": str(port)},
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    values = dict(
        line.split("=", 1) for line in completed.stdout.splitlines() if line.startswith("REDMINE_")
    )
    if completed.returncode != 0 or not {"REDMINE_URL", "REDMINE_API_KEY"} <= values.keys():
        raise SystemExit(
            f"scripts/redmine start failed (exit {completed.returncode}); "
            f"see {directory}/log/server.log"
        )
    values["start_s"] = f"{time.perf_counter() - started:.1f}"
    return values


def redmine_stop(directory: Path) -> None:
    subprocess.run(
        [str(ROOT / "scripts" / "redmine"), "stop", str(directory)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        check=False,
    )


def redmine_package_version() -> str | None:
    completed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "redmine"],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        return None
    return completed.stdout.strip() or None


def child_env(url: str, workdir: Path, *, debug: bool, redmine: dict[str, str] | None = None):
    env = {
        key: value
        for key, value in common.child_env(url, workdir, debug=debug).items()
        # Whatever ticket sync the calling shell configures must not reach the bench.
        if not key.startswith(("TICKETS_", "REDMINE_", "CELERY_")) and key != "REDIS_URL"
    }
    env.update(
        # The services enqueue a push on commit; the bench pushes itself, so the
        # message goes to an in-process broker that nobody reads.
        CELERY_BROKER_URL="memory://localhost/",
        CELERY_TASK_ALWAYS_EAGER="0",
    )
    if redmine:
        env.update(
            TICKETS_BACKEND="redmine",
            TICKETS_AUTO_CREATE="1",
            TICKETS_ALLOW_LOCAL_ADDRESSES="1",
            TICKETS_RATE_LIMIT="0",
            TICKETS_MARKER_PREFIX=redmine["marker_prefix"],
            REDMINE_URL=redmine["url"],
            REDMINE_API_KEY=redmine["api_key"],
            REDMINE_PROJECT=redmine["project"],
        )
    return env


# --- Worker: Django, inside its own process -------------------------------------


def request_kind(method: str, url: str) -> str:
    """The request with ids folded, e.g. "PUT /issues/{id}.json", to group round trips."""
    path = re.sub(r"/\d+(?=[./]|$)", "/{id}", urlsplit(url).path)
    return f"{method.upper()} {path}"


class RoundTrips:
    """Wraps a requests.Session's `request`: the time of each round trip, by kind, and
    the time Redmine says it spent on it (Rack's `X-Runtime` header)."""

    def __init__(self, session) -> None:
        self._send = session.request
        session.request = self
        self.reset()

    def __call__(self, method, url, *args, **kwargs):
        started = time.perf_counter()
        response = None
        try:
            response = self._send(method, url, *args, **kwargs)
            return response
        finally:
            kind = request_kind(method, url)
            self.times[kind].append(time.perf_counter() - started)
            runtime = response.headers.get("X-Runtime") if response is not None else None
            self.runtimes[kind].append(float(runtime) if runtime else 0.0)

    def reset(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.runtimes: dict[str, list[float]] = defaultdict(list)

    def seconds(self) -> float:
        return sum(sum(times) for times in self.times.values())

    def redmine_seconds(self) -> float:
        return sum(sum(times) for times in self.runtimes.values())

    def figures(self) -> dict[str, Any]:
        def ms(seconds: float) -> float:
            return round(1000 * seconds, 1)

        kinds = {}
        for kind, times in sorted(self.times.items()):
            ordered = sorted(times)
            runtimes = self.runtimes[kind]
            figures = {
                "count": len(times),
                "seconds": round(sum(times), 3),
                "mean_ms": ms(statistics.fmean(times)),
                "p50_ms": ms(statistics.median(ordered)),
                "p90_ms": ms(ordered[max(0, round(0.9 * len(ordered)) - 1)]),
                "max_ms": ms(ordered[-1]),
                "redmine_runtime_mean_ms": ms(statistics.fmean(runtimes)),
            }
            if len(times) >= 20:
                # In the order sent: does the request slow down as Redmine fills up?
                tenth = len(times) // 10
                figures["first_tenth_mean_ms"] = ms(statistics.fmean(times[:tenth]))
                figures["last_tenth_mean_ms"] = ms(statistics.fmean(times[-tenth:]))
                figures["first_tenth_runtime_mean_ms"] = ms(statistics.fmean(runtimes[:tenth]))
                figures["last_tenth_runtime_mean_ms"] = ms(statistics.fmean(runtimes[-tenth:]))
            kinds[kind] = figures
        return kinds


MAIL_JOB = re.compile(r"Performed ActionMailer::MailDeliveryJob .* in ([\d.]+)ms")
COMPLETED = re.compile(r"\] Completed \d+ .* in (\d+)ms")


class RedmineLog:
    """What Redmine's production.log says happened from `mark()` on: requests completed,
    and the notification emails it rendered for them in the same Ruby process."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        if self.path:
            self.offset = self.path.stat().st_size

    def figures(self) -> dict[str, Any] | None:
        if not self.path:
            return None
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode("utf-8", "replace")
        completed = [int(m.group(1)) for m in COMPLETED.finditer(text)]
        mails = [float(m.group(1)) for m in MAIL_JOB.finditer(text)]
        return {
            "requests_completed": len(completed),
            "controller_seconds": round(sum(completed) / 1000, 2),
            "mail_jobs": len(mails),
            "mail_job_seconds": round(sum(mails) / 1000, 2),
        }


class QueryTimer(common.QueryCounter):
    """common.QueryCounter and, through `commits_of`, the COMMITs that Django sends
    outside any cursor (and so outside `execute_wrapper`)."""

    def __init__(self) -> None:
        super().__init__()
        self.commits = 0
        self.commit_seconds = 0.0

    @contextlib.contextmanager
    def commits_of(self, connection):
        commit = connection.commit

        def timed() -> None:
            started = time.perf_counter()
            try:
                commit()
            finally:
                self.commits += 1
                self.commit_seconds += time.perf_counter() - started

        connection.commit = timed  # what transaction.atomic calls on leaving the block
        try:
            yield
        finally:
            del connection.commit


class Progress:
    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.started = time.perf_counter()

    def __call__(self) -> None:
        self.done += 1
        if self.done % PROGRESS_EVERY == 0 or self.done == self.total:
            elapsed = time.perf_counter() - self.started
            say(f"{self.label}: {self.done}/{self.total} items, {self.done / elapsed:.1f} items/s")


def measured(
    function, *, backend, trips: RoundTrips, redmine_log: RedmineLog, items: int, **kwargs
):
    """Run `function(**kwargs)`; its result and figures: time, requests, HTTP and SQL time."""
    from django.db import connection

    queries = QueryTimer()
    trips.reset()
    redmine_log.mark()
    load_before = common.load_average()
    sent_before = backend.client.requests_sent
    started = time.perf_counter()
    with connection.execute_wrapper(queries), queries.commits_of(connection):
        result = function(**kwargs)
    seconds = time.perf_counter() - started
    requests = backend.client.requests_sent - sent_before
    http_seconds = trips.seconds()
    figures = {
        "seconds": round(seconds, 2),
        "items_per_s": round(items / seconds, 1) if items else None,
        "requests": requests,
        "requests_per_item": round(requests / items, 3) if items else None,
        "http_seconds": round(http_seconds, 2),
        "http_share": round(http_seconds / seconds, 3),
        "sql_seconds": round(queries.sql_seconds, 2),
        "queries": queries.total,
        "queries_per_item": round(queries.total / items, 2) if items else None,
        "statements": dict(sorted(queries.by_statement.items())),
        "commits": queries.commits,
        "commit_seconds": round(queries.commit_seconds, 2),
        "python_seconds": round(
            seconds - http_seconds - queries.sql_seconds - queries.commit_seconds, 2
        ),
        # Rack's X-Runtime: from Redmine's middleware in to its response out.
        "redmine_runtime_seconds": round(trips.redmine_seconds(), 2),
        "http": trips.figures(),
        "redmine_log": redmine_log.figures(),
        # The machine is shared: how busy it was around this phase.
        "load_average": [load_before, common.load_average()],
    }
    return result, figures


def push_figures(report, figures: dict[str, Any]) -> dict[str, Any]:
    errors = dict(list(report.errors.items())[:5])
    return {
        **figures,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "skipped": report.skipped,
        "failed": report.failed,
        **({"errors": {str(k): v for k, v in errors.items()}} if errors else {}),
    }


def links_by_state() -> dict[str, int]:
    from django.db.models import Count

    from tracker.models import TicketLink

    rows = TicketLink.objects.values("state").annotate(n=Count("id")).order_by("state")
    return {row["state"]: row["n"] for row in rows}


def make_items(count: int, rng: random.Random) -> list:
    """Unsaved items over INCIDENTS incidents, owned by OWNER, P1 to P4, with deadlines."""
    from django.utils import timezone

    from incidents.models import Incident
    from tracker import services
    from tracker.models import ActionItem

    now = timezone.now()
    incidents = [
        Incident.objects.create(
            external_id=f"INC-SYNC-{n:03d}",
            title=f"Incident {n}: " + " ".join(rng.sample(WORDS, 4)),
            severity=SEVERITIES[n % len(SEVERITIES)],
            status="resolved",
            declared_at=now - dt.timedelta(days=n + 1),
            resolved_at=now - dt.timedelta(days=n + 1) + dt.timedelta(hours=3),
            service=SERVICES[n % len(SERVICES)],
        )
        for n in range(1, INCIDENTS + 1)
    ]
    owner = services.person_get_or_create(email=OWNER)
    today = now.date()
    items = []
    for n in range(count):
        priority = PRIORITIES[n % len(PRIORITIES)]
        items.append(
            ActionItem(
                incident=incidents[n % len(incidents)],
                title=f"Follow-up {n + 1}: " + " ".join(rng.sample(WORDS, rng.randint(3, 7))),
                description="" if n % 3 else "Found in the review; see the timeline.",
                owner=owner,
                priority=priority,
                type=rng.choice(TYPES),
                deadline=today + dt.timedelta(days=PRIORITY_DAYS[priority] + n % 7),
            )
        )
    return items


def find_probe(backend, redmine, base: str) -> dict[str, Any]:
    """How long the marker lookup before each create takes with the project as it is
    now: the median of FIND_PROBES lookups (after a few untimed ones) of a marker no
    ticket carries."""
    from django.conf import settings

    issues = redmine.get(
        f"{base}/issues.json",
        params={"project_id": settings.REDMINE_PROJECT, "status_id": "*", "limit": 1},
        timeout=60,
    )
    issues.raise_for_status()
    times = []
    for n in range(FIND_PROBE_WARMUP + FIND_PROBES):
        started = time.perf_counter()
        backend.find(f"{settings.TICKETS_MARKER_PREFIX}-0")
        if n >= FIND_PROBE_WARMUP:  # a fresh Redmine answers its first requests slowly
            times.append(time.perf_counter() - started)
    figures = {
        "issues_in_project": issues.json()["total_count"],
        "median_ms": round(1000 * statistics.median(times), 1),
        "load_average": common.load_average(),
    }
    say(f"marker lookup with {figures['issues_in_project']} issues: {figures['median_ms']} ms")
    return figures


def worker(*, items: int, remote_changes: int, seed: int, log: Path | None) -> None:
    """Child process: create, change and poll items against Redmine; one JSON line on stdout."""
    common.django_setup()
    import requests
    from django.conf import settings

    from tracker import services
    from tracker.models import ActionItem, ChangeSource, TicketLink
    from tracker.ticketing import get_backend
    from tracker.ticketing.pull import tickets_poll
    from tracker.ticketing.push import tickets_push

    rng = random.Random(seed)
    backend = get_backend()
    trips = RoundTrips(backend.client.session)
    redmine_log = RedmineLog(log)
    actor = services.Actor(source=ChangeSource.API, label="sync bench")
    results: dict[str, Any] = {}
    redmine = requests.Session()
    redmine.headers["X-Redmine-API-Key"] = settings.REDMINE_API_KEY
    base = settings.REDMINE_URL
    results["find_probe"] = [find_probe(backend, redmine, base)]

    started = time.perf_counter()
    created = services.action_items_create(items=make_items(items, rng), actor=actor)
    ids = sorted(item.pk for item in created)
    results["items_create_s"] = round(time.perf_counter() - started, 2)
    say(f"created {len(ids)} items in {results['items_create_s']} s; links {links_by_state()}")

    report, figures = measured(
        tickets_push,
        backend=backend,
        trips=trips,
        redmine_log=redmine_log,
        items=len(ids),
        item_ids=ids,
        progress=Progress("create", len(ids)),
    )
    results["create"] = {**push_figures(report, figures), "links": links_by_state()}

    started = time.perf_counter()
    services.action_items_update(
        updates=[
            services.ItemUpdate(item, {"status": "in_progress"})
            for item in ActionItem.objects.order_by("pk")
        ],
        actor=actor,
    )
    results["status_update_s"] = round(time.perf_counter() - started, 2)
    say(f"moved {len(ids)} items to in_progress in {results['status_update_s']} s")

    report, figures = measured(
        tickets_push,
        backend=backend,
        trips=trips,
        redmine_log=redmine_log,
        items=len(ids),
        item_ids=ids,
        progress=Progress("status_change", len(ids)),
    )
    results["status_change"] = {**push_figures(report, figures), "links": links_by_state()}

    results["find_probe"].append(find_probe(backend, redmine, base))

    if remote_changes:
        poll_report, figures = measured(
            tickets_poll, backend=backend, trips=trips, redmine_log=redmine_log, items=0
        )
        results["poll_first"] = {
            **figures,
            "seen": poll_report.seen,
            "changed": poll_report.changed,
            "error": poll_report.error,
        }
        say(f"first poll: {poll_report.seen} tickets read in {figures['seconds']} s")

        links = list(
            TicketLink.objects.filter(item_id__in=rng.sample(ids, min(remote_changes, len(ids))))
            .select_related("item")
            .order_by("item_id")
        )
        started = time.perf_counter()
        for link in links:
            due = link.item.deadline + dt.timedelta(days=7)
            response = redmine.put(
                f"{base}/issues/{link.key}.json",
                json={"issue": {"due_date": due.isoformat()}},
                timeout=30,
            )
            response.raise_for_status()
        put_seconds = time.perf_counter() - started
        say(f"changed {len(links)} due dates in Redmine in {put_seconds:.1f} s")

        poll_report, figures = measured(
            tickets_poll, backend=backend, trips=trips, redmine_log=redmine_log, items=0
        )
        expected = {link.item_id: link.item.deadline + dt.timedelta(days=7) for link in links}
        applied = sum(
            deadline == expected[pk]
            for pk, deadline in ActionItem.objects.filter(pk__in=expected).values_list(
                "pk", "deadline"
            )
        )
        results["poll"] = {
            **figures,
            "changed_remotely": len(links),
            "remote_put_seconds": round(put_seconds, 2),
            "seen": poll_report.seen,
            "changed": poll_report.changed,
            "deadlines_applied": applied,
            "error": poll_report.error,
            "overlap_seconds": settings.TICKETS_POLL_OVERLAP_SECONDS,
        }
        say(
            f"poll after {len(links)} remote changes: {poll_report.seen} tickets read, "
            f"{poll_report.changed} items changed, {figures['requests']} requests "
            f"in {figures['seconds']} s"
        )

    # Convergence, read from Redmine directly.
    prefix = settings.TICKETS_MARKER_PREFIX
    listing = redmine.get(
        f"{base}/issues.json",
        params={
            "project_id": settings.REDMINE_PROJECT,
            "status_id": "*",
            "description": f"~[{prefix}-",
            "limit": 1,
        },
        timeout=60,
    )
    listing.raise_for_status()
    in_redmine = listing.json()["total_count"]
    keys = dict(TicketLink.objects.exclude(key="").values_list("item_id", "key"))
    sample = rng.sample(sorted(keys), min(SAMPLE, len(keys)))
    statuses: dict[str, int] = defaultdict(int)
    markers_ok = 0
    for item_id in sample:
        issue = redmine.get(f"{base}/issues/{keys[item_id]}.json", timeout=30).json()["issue"]
        statuses[issue["status"]["name"]] += 1
        markers_ok += (issue.get("description") or "").rstrip().endswith(f"[{prefix}-{item_id}]")
    results["verify"] = {
        "tickets_in_redmine": in_redmine,
        "links_with_key": len(keys),
        "distinct_keys": len(set(keys.values())),
        "sample": len(sample),
        "sample_statuses": dict(statuses),
        "sample_markers_ok": markers_ok,
        "converged": in_redmine == len(ids) == len(set(keys.values()))
        and statuses.get("In Progress", 0) == len(sample)
        and markers_ok == len(sample),
    }
    results["debug"] = settings.DEBUG
    results["settings"] = {
        name: getattr(settings, name)
        for name in (
            "TICKETS_RATE_LIMIT",
            "TICKETS_TIMEOUT_SECONDS",
            "TICKETS_MAX_RETRIES",
            "TICKETS_POLL_OVERLAP_SECONDS",
            "TICKETS_MARKER_PREFIX",
            "CELERY_BROKER_URL",
            "CELERY_TASK_ALWAYS_EAGER",
        )
    }
    print(json.dumps(results))


# --- Driver ------------------------------------------------------------------------


def phase_line(name: str, phase: dict[str, Any]) -> str:
    line = (
        f"{name}: {phase['seconds']} s, {phase['items_per_s']} items/s, "
        f"{phase['requests_per_item']} requests/item, failed {phase['failed']}; "
        f"HTTP {phase['http_seconds']} s ({100 * phase['http_share']:.0f} %, of which "
        f"Redmine's X-Runtime {phase['redmine_runtime_seconds']} s), "
        f"SQL {phase['sql_seconds']} s, COMMIT {phase['commit_seconds']} s, "
        f"Python {phase['python_seconds']} s"
    )
    log = phase.get("redmine_log")
    if log:
        line += f"; Redmine rendered {log['mail_jobs']} emails in {log['mail_job_seconds']} s"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000, help="action items (1000)")
    parser.add_argument(
        "--remote-changes",
        type=int,
        default=100,
        help="tickets changed in Redmine before the timed poll; 0 skips the polls (100)",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--redmine-url", help="use this Redmine instead of starting one")
    parser.add_argument("--redmine-key", help="its API key (an administrator's)")
    parser.add_argument("--redmine-project", default="followups", help="its project (followups)")
    parser.add_argument("--redmine-port", type=int, help="port of the Redmine started (free one)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--debug",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run the worker with DEBUG=1, or DEBUG=0 (default)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and the Redmine directory"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redmine-log", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker(
            items=args.items,
            remote_changes=args.remote_changes,
            seed=args.seed,
            log=Path(args.redmine_log) if args.redmine_log else None,
        )
        return
    if args.redmine_url and not args.redmine_key:
        parser.error("--redmine-url needs --redmine-key")

    url = args.postgres_url
    at = dt.datetime.now(dt.UTC)
    machine = {**common.machine_info(), "load_average": common.load_average()}
    workdir = Path(tempfile.mkdtemp(prefix="tracker_syncbench_"))
    redmine_dir = workdir / "redmine"
    started_redmine = not args.redmine_url
    redmine: dict[str, Any] = {
        "marker_prefix": f"sb{uuid.uuid4().hex[:8]}",
        "started_by_bench": started_redmine,
    }
    common.postgres_recreate(url)
    try:
        if started_redmine:
            port = args.redmine_port or free_port()
            say(f"starting Redmine on port {port} in {redmine_dir}")
            values = redmine_start(redmine_dir, port)
            redmine.update(
                url=values["REDMINE_URL"],
                api_key=values["REDMINE_API_KEY"],
                project=values.get("REDMINE_PROJECT", "followups"),
                start_s=float(values["start_s"]),
                version=redmine_package_version(),
                server="thin, SQLite (scripts/redmine)",
            )
            say(f"Redmine up at {redmine['url']} in {redmine['start_s']} s")
        else:
            redmine.update(
                url=args.redmine_url.rstrip("/"),
                api_key=args.redmine_key,
                project=args.redmine_project,
                version=None,  # Redmine's API does not say
            )
        migrate_s = common.manage(child_env(url, workdir, debug=True), "migrate")
        say(f"migrated {common.database_name(url)} in {migrate_s:.1f} s")
        completed = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                "--items",
                str(args.items),
                "--remote-changes",
                str(args.remote_changes),
                "--seed",
                str(args.seed),
                # Only the Redmine started here has a log we can read.
                *(
                    ["--redmine-log", str(redmine_dir / "log" / "production.log")]
                    if started_redmine
                    else []
                ),
            ],
            cwd=ROOT,
            env=child_env(url, workdir, debug=args.debug, redmine=redmine),
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        server_version = common.postgres_version(url)
    finally:
        if started_redmine:
            redmine_stop(redmine_dir)
        if not args.keep:
            common.postgres_drop(url)
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"kept {common.database_name(url)} and {workdir}")
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"the benchmark worker failed (exit {completed.returncode})")
    measured = json.loads(lines[-1])
    for name in ("create", "status_change"):
        say(phase_line(name, measured[name]))
    verify = measured["verify"]
    say(
        f"Redmine holds {verify['tickets_in_redmine']} tickets with the run's marker "
        f"for {args.items} items; sample of {verify['sample']}: {verify['sample_statuses']}"
        f" -> {'converged' if verify['converged'] else 'NOT CONVERGED'}"
    )
    del redmine["api_key"]
    print(
        json.dumps(
            {
                "benchmark": "ticket_sync",
                "command": " ".join(["bench/sync_bench.py", *sys.argv[1:]]),
                "items": args.items,
                "seed": args.seed,
                "debug": measured["debug"],
                "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "settings": measured["settings"],
                "setup": {
                    "migrate_s": round(migrate_s, 2),
                    "items_create_s": measured["items_create_s"],
                    "status_update_s": measured["status_update_s"],
                },
                "create": measured["create"],
                "status_change": measured["status_change"],
                "find_probe": measured["find_probe"],
                "poll_first": measured.get("poll_first"),
                "poll": measured.get("poll"),
                "tickets_in_redmine": verify["tickets_in_redmine"],
                "converged": verify["converged"],
                "verify": verify,
                "machine": {**machine, "postgresql": server_version},
                "load_average_after": common.load_average(),
                "redmine": redmine,
            }
        )
    )
    failed = measured["create"]["failed"] + measured["status_change"]["failed"]
    if failed or not verify["converged"]:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""What every benchmark sets up the same way: its scratch database, the machine it
ran on, the SQL it counted, and the columns of the action item table.

A benchmark's driver process does not configure Django (Django reads its settings
once per process, and the driver points its workers at a database it has just
created); its workers do, through `django_setup`. So nothing here imports Django
or psycopg until a function needs it.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


# --- Scratch database --------------------------------------------------------------


def psycopg_url(url: str) -> str:
    """The bench database's URL with libpq's scheme (DATABASE_URL may spell it otherwise)."""
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql"))


def admin_url(url: str) -> str:
    """The `postgres` database of the server in `url`: where a database is dropped from."""
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql", path="/postgres"))


def database_name(url: str) -> str:
    """The database named in `url`, refusing none and `postgres`: the benchmarks drop it."""
    name = urlsplit(url).path.lstrip("/")
    if not name or name == "postgres":
        raise SystemExit(f"refusing to drop the database of {url}: name a bench database")
    return name


def _on_server(url: str, *statements: str) -> None:
    """Run `statements` ({} is the database named in `url`) from the server's `postgres`."""
    import psycopg
    from psycopg import sql

    name = sql.Identifier(database_name(url))
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(sql.SQL(statement).format(name))


def postgres_drop(url: str) -> None:
    """Drop the database named in `url`, and its connections with it."""
    _on_server(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)")


def postgres_recreate(url: str) -> None:
    """An empty database named as in `url`, whatever was there before.

    Each run starts from an empty database so that its figures do not depend on
    what an earlier run left behind.
    """
    _on_server(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", "CREATE DATABASE {}")


def postgres_version(url: str) -> str:
    """The server's version, asked through `postgres` (the bench database may be gone)."""
    import psycopg

    with psycopg.connect(admin_url(url)) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def child_env(url: str, workdir: Path, *, debug: bool) -> dict[str, str]:
    """The environment of a Django process working on the database in `url`.

    Settings come from the environment only, so a worker is pointed at the scratch
    database (and a scratch var directory) here; with DEBUG=0 Django wants a
    SECRET_KEY, and a throwaway one is enough for a benchmark.
    """
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "1" if debug else "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "TRACKER_VAR_DIR": str(workdir / "var"),
        "LOG_LEVEL": "WARNING",
    }
    if not debug:
        env["SECRET_KEY"] = "bench-only-" + os.urandom(16).hex()
    return env


def manage(env: dict[str, str], *args: str) -> float:
    """`manage.py ARGS` quietly in a child process with `env`; the seconds it took."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args, "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return time.perf_counter() - started


def django_setup() -> None:
    """Configure Django in a worker, from the environment its driver gave it."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


# --- Machine -------------------------------------------------------------------------


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: the machine is shared, and a figure
    measured while something else ran is not comparable with one measured alone."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info() -> dict[str, Any]:
    """The CPU, memory, platform and versions, to quote with the figures.

    Figures mean something only next to the machine they were measured on.
    """
    import django
    import psycopg

    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():  # its first line: "MemTotal: N kB"
        memory_gb = round(int(meminfo.read_text().split()[1]) / 1024 / 1024, 1)
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "psycopg": psycopg.__version__,
    }


# --- Query counting ------------------------------------------------------------------

ITEM_SELECT = "SELECT tracker_actionitem"


class QueryCounter:
    """A `connection.execute_wrapper`: statements and their time by kind and table.

    The key ("SELECT tracker_actionitem", "INSERT incidents_timelineevent") says
    which statements a cost comes from without reading every one. The item
    SELECTs are kept (SQL and parameters) so that their plans can be explained
    afterwards, on the same data.
    """

    TABLE_RE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)

    def __init__(self) -> None:
        self.total = 0
        self.by_statement: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self.item_selects: list[tuple[str, Any]] = []

    def __call__(self, execute, sql, params, many, context):
        kind = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
        match = self.TABLE_RE.search(sql)
        key = f"{kind} {match.group(1)}" if match else kind
        if key == ITEM_SELECT:
            self.item_selects.append((sql, params))
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.total += 1
            self.by_statement[key] += 1
            self.seconds[key] += time.perf_counter() - started

    @property
    def sql_seconds(self) -> float:
        return sum(self.seconds.values())

    def figures(self, seconds: float) -> dict[str, Any]:
        """The counts and times, and what of `seconds` (the whole call) was not SQL."""
        sql_seconds = self.sql_seconds
        return {
            "seconds": round(seconds, 3),
            "queries": self.total,
            "sql_seconds": round(sql_seconds, 3),
            "python_seconds": round(seconds - sql_seconds, 3),
            "statements": {
                key: {"count": count, "seconds": round(self.seconds[key], 3)}
                for key, count in sorted(self.by_statement.items())
            },
        }


def measured(function, **kwargs) -> tuple[Any, dict[str, Any], QueryCounter]:
    """`function(**kwargs)` with its statements counted: its result, figures and counter."""
    from django.db import connection

    counter = QueryCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        result = function(**kwargs)
    return result, counter.figures(time.perf_counter() - started), counter


# --- Action item rows ----------------------------------------------------------------

# What an item row holds unless a benchmark says otherwise: an item nobody has
# snoozed, linked to a document or edited yet. COPY takes JSON as text.
ITEM_DEFAULTS: dict[str, Any] = {
    "description": "",
    "deadline_derived": False,
    "version": 1,
    "snoozed_until": None,
    "next_reminder_on": None,
    "source_key": "",
    "source_document_id": None,
    "source_values": "{}",
    "removed_from_source": False,
    "extra": "{}",
}

ITEM_COLUMNS_CODE = """
import json
import django
django.setup()
from tracker.models import ActionItem
print(json.dumps([field.column for field in ActionItem._meta.concrete_fields]))
"""


@functools.cache
def item_columns() -> tuple[str, ...]:
    """The columns of tracker_actionitem, in the model's order, from `ActionItem._meta`.

    Read from the model rather than listed by hand, so that a field added to the
    model is a column the benchmarks' COPY must fill (and says so), not one it
    silently leaves out. Asked of a child process because the driver does not
    configure Django (see the module's docstring).
    """
    with tempfile.TemporaryDirectory(prefix="bench_columns_") as workdir:
        completed = subprocess.run(
            [sys.executable, "-c", ITEM_COLUMNS_CODE],
            cwd=ROOT,
            env=child_env("sqlite://:memory:", Path(workdir), debug=True),
            capture_output=True,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"reading ActionItem's columns failed (exit {completed.returncode})")
    return tuple(json.loads(completed.stdout.strip().splitlines()[-1]))


def copy_items(cursor, rows: Iterable[dict[str, Any]], *, columns: tuple[str, ...]) -> None:
    """COPY `rows` (one dict per item, by column name, over ITEM_DEFAULTS) into tracker_actionitem.

    `columns` is `item_columns()`, read by the caller before its timer starts (it
    costs a child process). The first row must name exactly those columns: a
    benchmark whose rows fall behind the model stops with the columns to add,
    before anything is committed.
    """
    with cursor.copy(f"COPY tracker_actionitem ({', '.join(columns)}) FROM STDIN") as copy:
        checked = False
        for row in rows:
            if not checked:
                missing, unknown = set(columns) - row.keys(), row.keys() - set(columns)
                if missing or unknown:
                    raise SystemExit(
                        "the bench's item rows do not match tracker_actionitem: "
                        f"missing {sorted(missing)}, unknown {sorted(unknown)}"
                    )
                checked = True
            copy.write_row([row[column] for column in columns])

"""Private service instances for the fault tests, and the subprocesses that use them.

Nothing here touches the PostgreSQL and Redis other people's tests use: each
instance lives in a temporary folder, listens on a free loopback port, and is
stopped and removed by its owner (a fixture's finalizer), whatever happens.

- PrivatePostgres: a cluster made by initdb, run as the `postgres` OS user
  (PostgreSQL refuses to run as root), trust authentication, loopback only.
  fsync is off: these tests crash processes, never the machine, and a commit's
  WAL reaches the kernel before the commit is acknowledged either way.
- PrivateRedis: `redis-server` on a free port; no RDB snapshots, and the
  append-only file off (the usual setting of a Redis used as broker and cache)
  or on with `appendfsync always` for a test about Redis durability.
- SmtpSink: an aiosmtpd server in this process that records every message,
  optionally slow to answer (a delay after recording: the server has the
  message, the client does not know it yet).
- Processes: the Django subprocesses of one test (commands, Celery workers,
  gunicorn), each in its own session, so that a whole worker (main process and
  pool children) is killed at once, and only what a test started.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("TRACKER_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_OS_USER = "postgres"
# What the subprocesses inherit from this one; everything else is set by django_env,
# so that a developer's TICKETS_BACKEND, REDIS_URL or SECRET_KEY_FILE cannot change a run.
INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], *, timeout: float, interval: float = 0.05):
    """condition()'s first true value, or None once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --- PostgreSQL ----------------------------------------------------------------------


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = 0

    @classmethod
    def create(cls) -> PrivatePostgres:
        if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
            raise RuntimeError(f"PostgreSQL binaries (initdb in {PG_BIN}) or runuser are missing")
        # Straight under /tmp: pytest's own temporary folders are root's, mode 0700,
        # and the postgres user could not reach a folder inside them.
        cluster = cls(Path(tempfile.mkdtemp(prefix="tracker-faults-pg-")))
        try:
            shutil.chown(cluster.root, user=PG_OS_USER, group=PG_OS_USER)
            cluster._as_postgres(
                PG_BIN / "initdb",
                "-D",
                cluster.data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            cluster.port = free_port()
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _as_postgres(self, *command, timeout: float = 60) -> str:
        result = subprocess.run(
            ["runuser", "-u", PG_OS_USER, "--", *map(str, command)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{log}"
            )
        return result.stdout

    def _pg_ctl(self, action: str, *args, timeout: float = 60) -> None:
        self._as_postgres(
            PG_BIN / "pg_ctl", action, "-D", self.data, "-w", "-t", "30", *args, timeout=timeout
        )

    def start(self) -> None:
        # Every start names the port and the rest: a bare `pg_ctl start` would take
        # postgresql.conf's defaults (port 5432, the shared server's).
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=100"
        )
        self._pg_ctl("start", "-l", self.log, "-o", options)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def restart(self, mode: str = "fast") -> float:
        """Stop (`fast`: sessions are ended and the server shuts down cleanly;
        `immediate`: a crash, recovered from the WAL at the next start) and start
        again; returns the seconds it was away."""
        started = time.monotonic()
        self._pg_ctl("stop", "-m", mode)
        self.start()
        return time.monotonic() - started

    def _postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            # Only ever this cluster's postmaster, never another process that reused the id.
            if str(self.data) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return pid
        return None

    def destroy(self) -> None:
        if self._postmaster_pid() is not None:
            with contextlib.suppress(Exception):
                self._pg_ctl("stop", "-m", "immediate", timeout=30)
            if (pid := self._postmaster_pid()) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_until(lambda: self._postmaster_pid() is None, timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def query(url: str, sql: str, params: tuple | dict = ()) -> list[tuple]:
    """Rows of one statement, on a connection of its own (the server may have restarted)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


# --- Redis -----------------------------------------------------------------------------


class PrivateRedis:
    def __init__(self, *, appendonly: bool = False) -> None:
        self.appendonly = appendonly
        self.root = Path(tempfile.mkdtemp(prefix="tracker-faults-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self):
        import redis

        return redis.Redis.from_url(self.url(), socket_timeout=5, socket_connect_timeout=5)

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed")
        command = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.root),
            "--logfile", str(self.root / "redis.log"),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
        ]  # fmt: skip
        if self.appendonly:
            command += ["--appendfsync", "always"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

        def answers() -> bool:
            if self.process.poll() is not None:
                log = (self.root / "redis.log").read_text()[-2000:]
                raise RuntimeError(f"redis-server exited ({self.process.returncode}):\n{log}")
            with contextlib.suppress(Exception):
                return self.client().ping()
            return False

        if not wait_until(answers, timeout=20):
            raise RuntimeError(f"redis-server on port {self.port} did not answer in 20 s")

    def stop(self, *, crash: bool = False) -> None:
        """SIGTERM (a clean shutdown) or SIGKILL (a crash)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, *, crash: bool = False) -> float:
        started = time.monotonic()
        self.stop(crash=crash)
        self.start()
        return time.monotonic() - started

    def destroy(self) -> None:
        self.stop(crash=True)
        shutil.rmtree(self.root, ignore_errors=True)


# --- SMTP ----------------------------------------------------------------------------------


@dataclass
class Received:
    recipients: tuple[str, ...]
    content: bytes
    at: float


class SmtpSink:
    """Records every message; answers each `delay` seconds after recording it."""

    def __init__(self, *, delay: float = 0.0) -> None:
        from aiosmtpd.controller import Controller

        # aiosmtpd logs every command at INFO: hundreds of lines per test.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.delay = delay
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.messages.append(
                Received(tuple(r.lower() for r in envelope.rcpt_tos), envelope.content, time.time())
            )
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"

    def close(self) -> None:
        self.controller.stop()

    def reminders(self) -> list[tuple[str, frozenset[tuple[str, str, str]]]]:
        """Each message as (recipient, {(recipient, item title, stage kind)})."""
        with self._lock:
            messages = list(self.messages)
        return [
            (recipient, frozenset((recipient, title, kind) for title, kind in reminder_entries(m)))
            for m in messages
            for recipient in m.recipients
        ]


STAGE_KINDS = {
    "Overdue past their grace period (you are the escalation contact)": "escalation",
    "Overdue": "overdue",
    "Due today": "due_today",
    "Due soon": "due_soon",
}
_GROUP = re.compile(r"^== (.+) ==$")
_ENTRY = re.compile(r"^\* \[P\d\] (.+)$")


def reminder_entries(message: Received) -> list[tuple[str, str]]:
    """(item title, stage kind) of each entry of a reminder digest (templates/emails/reminder-body.txt)."""
    parsed = email.message_from_bytes(message.content, policy=email.policy.default)
    text = parsed.get_body(("plain",)).get_content()
    entries, kind = [], None
    for line in text.splitlines():
        if match := _GROUP.match(line.strip()):
            kind = STAGE_KINDS.get(match[1], match[1])
        elif (match := _ENTRY.match(line)) and kind:
            entries.append((match[1].strip(), kind))
    return entries


@dataclass
class Deliveries:
    """What the SMTP server received, against what should have been sent once each."""

    expected: set[tuple[str, str, str]]
    per_key: Counter = field(default_factory=Counter)
    messages: Counter = field(default_factory=Counter)

    @classmethod
    def count(cls, sink: SmtpSink, expected: set[tuple[str, str, str]]) -> Deliveries:
        result = cls(expected=expected)
        for recipient, keys in sink.reminders():
            result.messages[(recipient, keys)] += 1
            result.per_key.update(keys)
        return result

    @property
    def missing(self) -> list:
        return sorted(self.expected - set(self.per_key))

    @property
    def unexpected(self) -> list:
        return sorted(set(self.per_key) - self.expected)

    @property
    def duplicated_keys(self) -> dict:
        return {key: n for key, n in sorted(self.per_key.items()) if n > 1}

    @property
    def duplicated_messages(self) -> list:
        """Messages received more than once: (recipient, entries, times)."""
        return [
            (recipient, sorted(keys), n)
            for (recipient, keys), n in sorted(self.messages.items(), key=str)
            if n > 1
        ]

    def figures(self) -> dict:
        return {
            "expected": len(self.expected),
            "delivered_distinct": len(set(self.per_key) & self.expected),
            "delivered_total": sum(self.per_key.values()),
            "messages": sum(self.messages.values()),
            "missing": len(self.missing),
            "unexpected": len(self.unexpected),
            "duplicated_notifications": sum(n - 1 for n in self.duplicated_keys.values()),
            "duplicated_messages": sum(n - 1 for *_, n in self.duplicated_messages),
        }


# --- Django subprocesses ----------------------------------------------------------------


def django_env(workdir: Path, *, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production-like process (DEBUG off) on the private services."""
    (workdir / "var").mkdir(exist_ok=True)
    (workdir / "static").mkdir(exist_ok=True)
    env = {key: os.environ[key] for key in INHERITED if key in os.environ}
    env |= {
        "HOME": str(workdir),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "TRACKER_VAR_DIR": str(workdir / "var"),
        "STATIC_ROOT": str(workdir / "static"),
        "TRACKER_BASE_URL": "https://tracker.example.org",
        "DEFAULT_FROM_EMAIL": "tracker@example.org",
        "EMAIL_URL": "consolemail://",
        "LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
    }
    return env | {key: str(value) for key, value in extra.items()}


class Processes:
    """The subprocesses of one test. Each runs in a session of its own, its output
    in `<name>.log` in the test's folder; `close()` ends every one still running,
    with its whole process group (a Celery worker's pool children too)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[subprocess.Popen] = []
        self.logs: dict[int, Path] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [str(c) for c in command],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        self.logs[process.pid] = log_path
        return process

    def log(self, process: subprocess.Popen, tail: int = 3000) -> str:
        return self.logs[process.pid].read_text(errors="replace")[-tail:]

    def wait(self, process: subprocess.Popen, *, timeout: float) -> int:
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(process)
            raise AssertionError(
                f"{process.args[:4]} still running after {timeout} s:\n{self.log(process)}"
            ) from None

    def run(self, name: str, command: list[str], env: dict[str, str], *, timeout: float) -> str:
        """Run to the end; its output, or the test fails with it."""
        process = self.start(name, command, env)
        code = self.wait(process, timeout=timeout)
        if code != 0:
            raise AssertionError(f"{name} failed ({code}):\n{self.log(process)}")
        return self.logs[process.pid].read_text(errors="replace")

    def manage(self, name: str, *args: str, env: dict[str, str], timeout: float = 120) -> str:
        return self.run(name, [sys.executable, "manage.py", *args], env, timeout=timeout)

    def celery_worker(self, name: str, env: dict[str, str]) -> subprocess.Popen:
        return self.start(
            name,
            [
                BIN / "celery", "-A", "config", "worker",
                "-P", "prefork", "-c", "2",
                "--without-heartbeat", "--without-mingle", "--without-gossip",
                "--hostname", f"{name}@faults",
            ],
            env,
        )  # fmt: skip

    @staticmethod
    def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        """Signal every process of the session we started it in, then reap the leader."""
        for pid in session_members(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if sig == signal.SIGKILL:
            process.wait(timeout=30)

    def close(self) -> None:
        """At the end of the test: nothing is learnt from a graceful stop any more."""
        for process in reversed(self.started):
            self.kill(process, signal.SIGKILL)


def session_members(session_id: int) -> list[int]:
    """The processes of a session we created (start_new_session: its id is the leader's
    pid), read from /proc, so that only they are signalled, each by its id."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            # After the command: state, ppid, pgrp, session.
            if int(fields[3]) == session_id and int(fields[2]) == session_id:
                members.append(int(stat.parent.name))
    return members


def send_task(broker_url: str, name: str, *args) -> None:
    """Publish a task by name, as beat does, without importing the project here."""
    from celery import Celery

    app = Celery("faults-client", broker=broker_url, set_as_current=False)
    try:
        app.send_task(name, args=list(args))
    finally:
        app.close()

"""What the fault tests share besides fixtures: seeding, the fake GitHub, beat in short."""

from __future__ import annotations

import json
import re
import sys
import threading
import time

from tests.ticketing.fakes import FakeGitHub

from .services import Processes


def github_env(github) -> dict[str, str]:
    """Ticket sync to a fake GitHub on loopback, with no per-process rate limit in the way."""
    return {
        "TICKETS_BACKEND": "github",
        "GITHUB_API_URL": github.base,
        "GITHUB_REPOSITORY": github.REPOSITORY,
        "GITHUB_TOKEN": github.TOKEN,
        "TICKETS_ALLOW_LOCAL_ADDRESSES": "1",
        "TICKETS_RATE_LIMIT": "1000",
        "TICKETS_TIMEOUT_SECONDS": "5",
    }


def seed(processes: Processes, env: dict[str, str], *args: str) -> dict:
    """Run tests/faults/seed.py in its own process; its JSON description."""
    output = processes.run(
        f"seed-{args[0]}", [sys.executable, "-m", "tests.faults.seed", *args], env, timeout=120
    )
    return json.loads(output.strip().splitlines()[-1])


def log_lines(text: str, pattern: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(pattern, line)]


class Ticker:
    """Calls `action` every `interval` seconds in a thread until stopped (beat, in short)."""

    def __init__(self, action, interval: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(action, interval), daemon=True)
        self._thread.start()

    def _run(self, action, interval: float) -> None:
        while not self._stop.wait(interval):
            action()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class SlowFakeGitHub(FakeGitHub):
    """Makes each issue, then answers `create_delay` seconds later: a worker killed
    in between leaves an issue whose key the tracker never saw."""

    create_delay = 0.05

    def slow_create(self, request):
        response = FakeGitHub.create(self, request)
        time.sleep(self.create_delay)
        return response


SlowFakeGitHub.routes = [
    (method, pattern, SlowFakeGitHub.slow_create if handler is FakeGitHub.create else handler)
    for method, pattern, handler in FakeGitHub.routes
]

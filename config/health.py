"""Liveness (`/healthz`), readiness (`/readyz`) and the way in for `/metrics`.

`/healthz` touches nothing: the process answers, so it is alive. `/readyz` asks
the database and the Celery broker, each with a short timeout, and names the
part that failed. Neither answer is ever cached.

`OpsEndpointsMiddleware` answers these paths before host validation and the
https redirect: load balancers and Prometheus reach a process by its IP address,
over plain http, with a Host header that is not in ALLOWED_HOSTS.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from .logs import redact
from .metrics import metrics

logger = logging.getLogger(__name__)


def _timeout() -> float:
    return settings.TRACKER_READYZ_TIMEOUT_SECONDS


def _describe(exc: BaseException) -> str:
    """One short line a person can act on: no traceback, no credentials."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else type(exc).__name__
    return redact(text)[:200]


def check_database(settings_dict: dict | None = None) -> None:
    """Open a new connection to the default database (or the one `settings_dict`
    describes) and run `SELECT 1`, within the timeout.

    A connection of its own, with its own timeouts: the request's connection has
    none, and a hung database must fail the probe, not hold it.
    """
    alias = DEFAULT_DB_ALIAS
    settings_dict = copy.deepcopy(settings_dict or connections.settings[alias])
    timeout = _timeout()
    options = settings_dict.setdefault("OPTIONS", {})
    options.pop("pool", None)  # one connection, closed after: a pool here would be left open
    if settings_dict["ENGINE"].endswith("postgresql"):
        options["connect_timeout"] = max(1, math.ceil(timeout))
        statement_timeout = f"-c statement_timeout={int(timeout * 1000)}"
        options["options"] = f"{options.get('options', '')} {statement_timeout}".strip()
    elif settings_dict["ENGINE"].endswith("sqlite3"):
        options["timeout"] = timeout
    connection = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()
        if connection.connection is not None:
            # Django keeps in-memory SQLite connections open; this one is ours to close.
            connection.connection.close()


def check_broker() -> None:
    """Ping Redis, or check the filesystem broker's folders exist and are writable."""
    url = settings.CELERY_BROKER_URL
    scheme = urlsplit(url).scheme
    timeout = _timeout()
    if scheme in ("redis", "rediss"):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    elif scheme == "filesystem":
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        keys = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")
        for folder in sorted({options[key] for key in keys if options.get(key)}):
            if not os.path.isdir(folder):
                raise OSError(f"broker folder {folder} is missing")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise OSError(f"broker folder {folder} is not writable")
    else:
        from kombu import Connection

        with Connection(url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)


# The parts of readiness, in the order they are reported.
CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "broker": check_broker}


def readiness() -> dict[str, str]:
    """Each part's state: "ok" or "error: <what went wrong>"."""
    states = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure means "not ready", whatever raised it
            logger.warning("readiness check %s failed: %s", name, _describe(exc))
            states[name] = f"error: {_describe(exc)}"
        else:
            states[name] = "ok"
    return states


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Checks nothing else, so a database outage
    makes the instances unready, not restarted."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when the database and the broker answer, else 503 naming the failed parts."""
    states = readiness()
    ready = all(state == "ok" for state in states.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": states},
        status=200 if ready else 503,
    )


OPS_ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics,
}


class OpsEndpointsMiddleware:
    """Answers /healthz, /readyz and /metrics before host validation and the https
    redirect (place it before SecurityMiddleware and CommonMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = OPS_ENDPOINTS.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405)
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)

"""Structured logs: one JSON object a line (text on a terminal), a request id or a
Celery task on every line, and no credential in any of them.

- `RequestIdMiddleware` takes a sane `X-Request-ID` or makes one, keeps it in a
  context variable for the request's lifetime, answers it in the response
  header and logs one access line per request.
- Celery's task_prerun/task_postrun signals put the task id and name in the same
  context; a task enqueued during a request carries that request's id along.
- `ContextFilter` copies the context onto every record; `RedactFilter` and the
  formatters remove credentials (see `redact`).

Configured in settings.LOGGING; the Celery worker uses the same configuration
(config.celery connects `setup_logging`).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
# Long enough for the ids proxies and tracing systems make, short and plain enough
# that a client cannot forge log lines or flood them through it.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)
task_name_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "task_name", default=None
)

access_logger = logging.getLogger("tracker.access")

# Paths probed every few seconds: their access lines are DEBUG, not INFO.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def sane_request_id(value: str | None) -> str:
    """The client's request id if it is short and plain, else a new one."""
    if value and SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


SECRET_URL_ARGUMENT = re.compile(r"token|secret|key|signature", re.IGNORECASE)


def loggable_path(request: HttpRequest) -> str:
    """The path without its query string (query strings carry tokens), and without
    URL arguments that are secrets (the calendar feed's token, signed email links)."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    for name, value in (match.kwargs if match else {}).items():
        if SECRET_URL_ARGUMENT.search(name) and isinstance(value, str) and value:
            path = path.replace(value, REDACTED)
    return path


class RequestIdMiddleware:
    """Gives every request an id, in the logs and in the `X-Request-ID` response header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            level = logging.DEBUG if request.path_info in QUIET_PATHS else logging.INFO
            path = loggable_path(request)
            access_logger.log(
                level,
                "%s %s %s",
                request.method,
                path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


# --- Celery ------------------------------------------------------------------------

_task_tokens: dict[str, tuple[contextvars.Token, ...]] = {}


def task_prerun(task_id: str | None = None, task=None, **kwargs) -> None:
    """Task id and name into the log context; the enqueuing request's id, if it sent one."""
    headers = getattr(task.request, "headers", None) or {}
    request_id = headers.get("request_id")
    tokens = (
        task_id_var.set(task_id),
        task_name_var.set(getattr(task, "name", None)),
        # An eager task runs inside its caller: it keeps the caller's request id.
        request_id_var.set(sane_request_id(request_id) if request_id else request_id_var.get()),
    )
    if task_id:
        _task_tokens[task_id] = tokens


def task_postrun(task_id: str | None = None, **kwargs) -> None:
    """Back to the context from before the task (nothing, in a worker)."""
    tokens = _task_tokens.pop(task_id, None) if task_id else None
    if tokens is None:
        return
    for var, token in zip((task_id_var, task_name_var, request_id_var), tokens, strict=True):
        try:
            var.reset(token)
        except ValueError:  # set in another context (thread): just clear it
            var.set(None)


def before_task_publish(headers: dict | None = None, **kwargs) -> None:
    """A task enqueued while serving a request carries the request's id to the worker."""
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault("request_id", request_id)


# --- Filters -------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Puts request_id, task_id and task_name (None when absent) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs a 4xx answer after the middleware is done: its record
        # carries the request instead.
        request = getattr(record, "request", None)
        record.request_id = request_id_var.get() or getattr(request, "request_id", None)
        record.task_id = task_id_var.get()
        record.task_name = task_name_var.get()
        return True


REDACTED = "[REDACTED]"
_HEADER_NAMES = r"(?:proxy-)?authorization|x-redmine-api-key|x-api-key|private-token"
_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    # Headers, as "Name: value", "name=value" or in a dict's repr; the scheme is kept.
    (
        re.compile(
            rf"""(?i)\b({_HEADER_NAMES})(['"]?\s*[:=]\s*['"]?)(?:(bearer|token|basic)\s+)?[^\s'",;}}]+"""
        ),
        lambda m: f"{m[1]}{m[2]}{m[3] + ' ' if m[3] else ''}{REDACTED}",
    ),
    (re.compile(r"""(?i)\b((?:set-)?cookie['"]?\s*:\s*['"]?)[^'"\r\n]+"""), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    # Query strings and key=value pairs.
    (
        re.compile(
            r"(?i)((?:^|[?&;\s])(?:api[_-]?key|key|token|access_token|password|secret)=)[^&#\s'\"]+"
        ),
        rf"\1{REDACTED}",
    ),
    # URLs whose path is the secret: the calendar feed and signed email links.
    (re.compile(r"(/calendar/)[A-Za-z0-9_-]{20,}(\.ics)"), rf"\1{REDACTED}\2"),
    (re.compile(r"(/r/)[^/\s?#'\"]{20,}"), rf"\1{REDACTED}"),
    # The password in a URL: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
]

# SECRET_KEY, SECRET_KEY_FALLBACKS, REDMINE_API_KEY, GITHUB_TOKEN, EMAIL_HOST_PASSWORD,
# JIRA_PAT...; not PASSWORD_HASHERS, whose values are class names.
SECRET_SETTING = re.compile(r"SECRET|(?:^|_)(?:TOKEN|KEY|PASSWORD|PAT)$")
# Shorter values would blank out ordinary words.
MIN_SECRET_LENGTH = 8
_secret_values: list[str] | None = None


def _setting_secrets() -> list[str]:
    """The values of settings named like secrets, longest first (read once, again after a change)."""
    global _secret_values
    if _secret_values is None:
        if not settings.configured:
            return []
        values: set[str] = set()
        for name in dir(settings):
            if not name.isupper() or not SECRET_SETTING.search(name):
                continue
            value = getattr(settings, name, None)
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, str) and len(item) >= MIN_SECRET_LENGTH:
                    values.add(item)
        for database in getattr(settings, "DATABASES", {}).values():
            password = database.get("PASSWORD") or ""
            if len(password) >= MIN_SECRET_LENGTH:
                values.add(password)
        _secret_values = sorted(values, key=len, reverse=True)
    return _secret_values


def _forget_secrets(**kwargs) -> None:
    global _secret_values
    _secret_values = None


setting_changed.connect(_forget_secrets)


def redact(text: str) -> str:
    """`text` without credentials: auth headers, tokens in query strings, URL
    passwords, and the values of settings named *SECRET*, *TOKEN*, *KEY* or *PASSWORD*."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    for secret in _setting_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


# Attributes every LogRecord has; anything else came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactFilter(logging.Filter):
    """Removes credentials from the message and the text extra fields of every record.

    Other extras (a request, a dict of headers) are left as they are for other
    handlers; the formatters redact them as they write them out.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


def _redact_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return redact(value if isinstance(value, str) else str(value))


# --- Formatters ------------------------------------------------------------------------


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time, level, logger, message, context, extras, exception."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        super().__init__("{levelname}{name}{message}", *args, style="{", **kwargs)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # Every field, extras included, as it will be written: objects become their text.
        return {key: _redact_value(value) for key, value in log_data.items()}

    def formatException(self, ei) -> str:
        return redact(super().formatException(ei))

    def formatStack(self, stack_info) -> str:
        return redact(super().formatStack(stack_info))


class TextFormatter(logging.Formatter):
    """For people at a terminal: time, level, logger, [request or task], message."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if getattr(record, "request_id", None):
            parts.append(f"request_id={record.request_id}")
        if getattr(record, "task_id", None):
            parts.append(f"task={record.task_name}[{record.task_id}]")
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)

    def formatException(self, ei) -> str:
        return redact(super().formatException(ei))

    def formatStack(self, stack_info) -> str:
        return redact(super().formatStack(stack_info))

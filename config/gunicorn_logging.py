"""gunicorn's access log without the secrets that travel in URLs.

The calendar feed's URL and the signed links in reminder emails are secrets
(whoever holds one reads a feed or acts on an item), and gunicorn's access log
writes every request line, path, query string and Referer as it came. The
app's own log lines go through config.logs.redact; `RedactingLogger` puts
every value gunicorn's access log format names through the same function, so
both logs keep the method, the route, the status, the timing and the client,
and neither keeps a token. Set in deploy/gunicorn.conf.py (`logger_class`).
"""

from __future__ import annotations

from gunicorn.glogging import Logger, SafeAtoms

from .logs import redact


class RedactedAtoms(SafeAtoms):
    """The values of an access line, each redacted as the format reads it (most
    atoms, every header and environ variable among them, are never read)."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        return redact(value) if isinstance(value, str) else value


class RedactingLogger(Logger):
    """gunicorn's logger, with access lines redacted like the app's own logs."""

    atoms_wrapper_class = RedactedAtoms

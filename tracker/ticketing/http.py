"""The one HTTP client every ticket backend sends its requests through.

Backends only build requests and read responses; what can go wrong on the wire
is decided here, once: timeouts, bounded retries with jittered backoff, the
remote's `Retry-After` and rate-limit headers, a per-backend rate limit, a guard
that lets a ticket URL reach only globally routable addresses (and connects to
the address it checked), and errors a person can act on
(`TicketError`, `TicketNotFound`).

Two promises the sync relies on:

- A POST or PATCH whose outcome is unknown (a read timeout, a connection lost
  after sending, a 500/502/504) is never sent again from here: the remote may
  have acted. The sync gets a non-permanent TicketError and, on its next
  attempt, looks the ticket up before creating it again.
- Nothing secret reaches the logs or an error message: they carry the method
  and the URL without its query string (API keys travel there) and without
  user info, never headers or bodies. Transport exceptions, whose text repeats
  the full URL, are described rather than chained.

A client is meant to be built once per backend and process (its session keeps
connections open) and used from one thread at a time; the rate limit is shared
by every client of the same name and thread-safe.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import math
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import requests
import requests.adapters
import requests.auth
import urllib3
import urllib3.connection
from django.conf import settings
from urllib3.exceptions import NewConnectionError

from .base import TicketError, TicketNotFound

logger = logging.getLogger("tracker.ticketing.http")

# Methods that may change the remote each time they are sent.
NON_IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})
# The remote did not act on these (timed out reading our request, too early,
# throttled, unavailable): sending again is safe whatever the method.
RETRY_ANY_METHOD = frozenset({408, 425, 429, 503})
# The server failed, possibly after acting (a proxy's 502/504 says nothing about
# the upstream): sent again only when sending twice does no harm.
RETRY_IDEMPOTENT = frozenset({500, 502, 504})
NOT_FOUND = frozenset({404, 410})
# GitHub's secondary rate limit is a 403 (or 429) naming no wait: its documentation
# says to wait at least a minute when neither Retry-After nor an exhausted quota
# says how long.
SECONDARY_RATE_LIMIT = "secondary rate limit"
SECONDARY_RATE_LIMIT_WAIT = 60.0
ERROR_TEXT_MAX_CHARS = 300
DEFAULT_PORTS = {"http": 80, "https": 443}


class TicketRedirected(TicketError):
    """A redirect, not followed: `location` is where it points (made absolute).
    A backend whose API documents a redirect worth following (GitHub's
    transferred issues) may send the request there itself: `HttpClient` refuses
    a location off `base_url`'s origin, and checks its address as any other."""

    def __init__(self, message: str, *, status: int, location: str | None) -> None:
        super().__init__(message, permanent=True, status=status)
        self.location = location


@dataclass(frozen=True)
class _Retryable:
    """A failed attempt that may be sent again."""

    outcome: str  # for the log: a status code or an exception's class name
    detail: str  # for the error message once retries run out
    elapsed_ms: int
    status: int | None = None
    wait: float | None = None  # what the remote asked us to wait, if it did


class HttpClient:
    """Sends a backend's requests to `base_url`; see the module docstring.

    `path` is joined to `base_url` (`base_url` + "/" + path, so a base URL with
    a path prefix keeps it), unless it is an absolute URL, which must then have
    `base_url`'s scheme, host and port (ValueError otherwise): a link found in a
    response, such as a pagination link, must not steer our credentials elsewhere.

    `rate_per_second` spaces the requests of all clients with the same `name`
    in this process (not across processes or hosts: each Celery worker process
    has its own budget, so set TICKETS_RATE_LIMIT with the worker count in mind).
    Every wait (rate limit, backoff, `Retry-After`) goes through `sleep`.
    """

    # Per backend name: when its next request may start (time.monotonic()).
    _rate_lock: ClassVar[threading.Lock] = threading.Lock()
    _next_send_at: ClassVar[dict[str, float]] = {}

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        auth: requests.auth.AuthBase | tuple[str, str] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        rate_per_second: float | None = None,
        allow_local: bool | None = None,
        allowed: Iterable[str] | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        retry_statuses: frozenset[int] = frozenset(),
    ) -> None:
        base = urlsplit(base_url.strip())
        if base.scheme not in DEFAULT_PORTS or not base.hostname:
            raise ValueError(f"{name}: base URL must be http(s)://host/..., not {base_url!r}")
        self.name = name
        self.base_url = urlunsplit((base.scheme, base.netloc, base.path.rstrip("/"), "", ""))
        self._origin = _origin(base)
        self.timeout = float(settings.TICKETS_TIMEOUT_SECONDS if timeout is None else timeout)
        self.max_retries = int(settings.TICKETS_MAX_RETRIES if max_retries is None else max_retries)
        self.rate_per_second = float(
            settings.TICKETS_RATE_LIMIT if rate_per_second is None else rate_per_second
        )
        self.allow_local = bool(
            settings.TICKETS_ALLOW_LOCAL_ADDRESSES if allow_local is None else allow_local
        )
        self.allowed_networks = allowed_networks(
            settings.TICKETS_ALLOWED_NETWORKS if allowed is None else allowed
        )
        if self.timeout <= 0 or self.max_retries < 0 or self.rate_per_second < 0:
            raise ValueError(f"{name}: timeout must be > 0, max_retries and rate >= 0")
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_wait = max_wait
        self.sleep = sleep
        # Statuses this remote answers for "not done, try again", whatever the
        # method (Jira's 409 for a conflicting update).
        self.retry_statuses = frozenset(retry_statuses)
        self.requests_sent = 0
        self._count_lock = threading.Lock()
        self.session = requests.Session()
        adapter = _PinnedAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if headers:
            self.session.headers.update(headers)
        if auth is not None:
            self.session.auth = auth

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET `path`; see `request`."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST to `path`; not sent twice when the outcome is unknown, unless `idempotent=True`."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        """PUT to `path`; see `request`."""
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        """PATCH `path`; never sent twice when the outcome is unknown."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        """DELETE `path`; see `request`."""
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send a request and return its 2xx response.

        `idempotent` says whether sending the request twice is harmless; by
        default, every method but POST and PATCH. A POST that only reads (Jira's
        search) or that the receiver de-duplicates (a webhook with an
        Idempotency-Key) passes True and is retried like a GET.

        Raises TicketNotFound on 404/410; TicketError(permanent=True) on other
        4xx (except 408, 425, 429), a redirect or a refused address;
        TicketError(permanent=False) when retries run out, the remote asks for
        a longer wait than `max_wait` (`retry_after` says how long), or a POST
        or PATCH had an unknown outcome. ValueError if `path` is an absolute
        URL outside `base_url`'s origin.
        """
        if json is not None and data is not None:
            raise ValueError("give json or data, not both")
        method = method.upper()
        url = self._url(path)
        shown = _loggable(url)
        send = {"params": params, "json": json, "data": data, "headers": headers}
        unsafe = method in NON_IDEMPOTENT_METHODS if idempotent is None else not idempotent
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            result = self._attempt(method, url, shown, send, unsafe)
            if isinstance(result, requests.Response):
                return result
            if result.wait is not None and result.wait > self.max_wait:
                # Hours, for an exhausted API quota: let the sync come back then
                # rather than hold a worker.
                raise TicketError(
                    f"{self.name}: {method} {shown}: {result.detail}; asked to wait "
                    f"{result.wait:.0f} s, longer than {self.max_wait:.0f} s",
                    permanent=False,
                    status=result.status,
                    retry_after=result.wait,
                )
            if attempt + 1 == attempts:
                break
            delay = result.wait if result.wait is not None else self._backoff(attempt)
            logger.warning(
                "%s %s %s -> %s in %d ms; retry %d of %d in %.2f s",
                self.name,
                method,
                shown,
                result.outcome,
                result.elapsed_ms,
                attempt + 1,
                self.max_retries,
                delay,
            )
            self.sleep(delay)
        raise TicketError(
            f"{self.name}: {method} {shown} failed after {attempts} attempt"
            f"{'s' if attempts > 1 else ''}: {result.detail}",
            permanent=False,
            status=result.status,
            retry_after=result.wait,
        )

    # --- One attempt ----------------------------------------------------------

    def _attempt(
        self, method: str, url: str, shown: str, send: Mapping[str, Any], unsafe: bool
    ) -> requests.Response | _Retryable:
        """Send once: the 2xx response, what to retry, or raise what is final."""
        host = urlsplit(url).hostname or ""
        try:
            self._check_address(url)
        except socket.gaierror as exc:
            # Nothing was sent: safe to try again whatever the method.
            return _Retryable("unresolved", f"cannot resolve {host}: {exc.strerror}", 0)
        self._wait_for_rate_limit()
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                timeout=(self.timeout, self.timeout),
                allow_redirects=False,
                **send,
            )
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            elapsed_ms = _ms_since(started)
            maybe_sent = not _nothing_sent(exc)
            if maybe_sent:
                self._count_sent()
            logger.debug(
                "%s %s %s -> %s in %d ms", self.name, method, shown, type(exc).__name__, elapsed_ms
            )
            problem = self._describe(exc)
            # `from None`: the exception's text repeats the URL with its query.
            if _certificate_rejected(exc):
                raise TicketError(
                    f"{self.name}: {method} {shown}: {problem}", permanent=True
                ) from None
            if maybe_sent and unsafe:
                raise TicketError(
                    f"{self.name}: {method} {shown}: {problem}; outcome unknown (the remote "
                    "may have acted), so it was not sent again",
                    permanent=False,
                ) from None
            return _Retryable(type(exc).__name__, problem, elapsed_ms)
        elapsed_ms = _ms_since(started)
        self._count_sent()
        logger.debug(
            "%s %s %s -> %s in %d ms", self.name, method, shown, response.status_code, elapsed_ms
        )
        return self._judge(response, method, shown, elapsed_ms, unsafe)

    def _judge(
        self, response: requests.Response, method: str, shown: str, elapsed_ms: int, unsafe: bool
    ) -> requests.Response | _Retryable:
        """The response if it is a success, what to retry, or raise what is final."""
        status = response.status_code
        if 200 <= status < 300:
            return response
        answered = f"answered {_status_line(response)}"
        where = f"{self.name}: {method} {shown}"
        if 300 <= status < 400:
            # Not followed: our credentials must not travel to wherever it points.
            # The query is left out: an http->https redirect repeats our API key.
            location = response.headers.get("Location")
            target = f", redirecting to {_loggable(location)}" if location else ""
            raise TicketRedirected(
                f"{where} {answered}{target}; redirects are not followed, fix the URL",
                status=status,
                location=urljoin(response.url, location) if location else None,
            )
        text = remote_error_text(response)
        detail = f"{answered}: {text}" if text else answered
        wait = _requested_wait(response)
        if wait is None and status in (403, 429) and SECONDARY_RATE_LIMIT in text.casefold():
            wait = SECONDARY_RATE_LIMIT_WAIT
        rate_limited = status == 403 and wait is not None
        if status in RETRY_ANY_METHOD or status in self.retry_statuses or rate_limited:
            return _Retryable(str(status), detail, elapsed_ms, status=status, wait=wait)
        if status in RETRY_IDEMPOTENT:
            if unsafe:
                raise TicketError(
                    f"{where} {detail}; outcome unknown (the remote may have acted), "
                    "so it was not sent again",
                    permanent=False,
                    status=status,
                )
            return _Retryable(str(status), detail, elapsed_ms, status=status)
        if status in NOT_FOUND:
            raise TicketNotFound(f"{where} {detail}", status=status)
        # Other 4xx: our request is wrong (credentials, a rejected field) and
        # will stay wrong until someone changes something. Other 5xx: the sync
        # tries again later.
        raise TicketError(f"{where} {detail}", permanent=400 <= status < 500, status=status)

    # --- Helpers ---------------------------------------------------------------

    def _url(self, path: str) -> str:
        target = urlsplit(path)
        if not (target.scheme or target.netloc):
            return f"{self.base_url}/{path.lstrip('/')}"
        try:
            same = _origin(target) == self._origin
        except ValueError:  # an invalid port
            same = False
        if not same:
            raise ValueError(
                f"{self.name}: {_loggable(path)} is not on {_loggable(self.base_url)}; "
                "refusing to send our credentials there"
            )
        return path

    def _check_address(self, url: str) -> None:
        """Resolve the host once, refuse it unless every address is globally
        routable (or in TICKETS_ALLOWED_NETWORKS), and pin the connection to the
        checked address, so a resolver that answers differently a moment later
        (DNS rebinding) cannot steer the request elsewhere.

        Resolved again before every request, cached nowhere, so a DNS answer that
        changes is seen; a connection kept open from an earlier request was made
        to an address checked then.
        """
        if self.allow_local:
            _pinned.__dict__.pop("address", None)
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        checked = None
        for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            kind = refused_address_kind(address, allowed=self.allowed_networks)
            if kind:
                raise TicketError(
                    f"{self.name}: refusing to connect to {host}: it resolves to "
                    f"{_shown_address(address)}, a {kind} address (TICKETS_ALLOWED_NETWORKS "
                    "allows chosen networks, TICKETS_ALLOW_LOCAL_ADDRESSES every address)",
                    permanent=True,
                )
            checked = checked or str(address)
        _pinned.address = (host.lower(), port, checked)

    def _wait_for_rate_limit(self) -> None:
        if self.rate_per_second <= 0:
            return
        interval = 1.0 / self.rate_per_second
        # Reserve a slot under the lock, wait outside it: threads queue in order
        # without holding the lock while they sleep.
        with HttpClient._rate_lock:
            now = time.monotonic()
            slot = max(now, HttpClient._next_send_at.get(self.name, now))
            HttpClient._next_send_at[self.name] = slot + interval
        if slot > now:
            self.sleep(slot - now)

    def _backoff(self, attempt: int) -> float:
        """Full jitter: clients that failed together do not come back together."""
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))

    def _count_sent(self) -> None:
        with self._count_lock:
            self.requests_sent += 1

    def _describe(self, exc: Exception) -> str:
        """What went wrong, in words that repeat neither the URL nor its query."""
        if isinstance(exc, requests.ConnectTimeout):
            return f"connection timed out after {self.timeout:g} s"
        if isinstance(exc, requests.ReadTimeout):
            return f"no answer within {self.timeout:g} s"
        verify = next(
            (e for e in _causes(exc) if isinstance(e, ssl.SSLCertVerificationError)), None
        )
        if verify is not None:
            return f"TLS certificate rejected: {verify.verify_message or verify.reason}"
        errno_error = next((e for e in _causes(exc) if isinstance(e, OSError) and e.strerror), None)
        reason = errno_error.strerror if errno_error else type(exc).__name__
        if _nothing_sent(exc):
            return f"cannot connect: {reason}"
        return f"connection failed: {reason}"


# --- Module helpers -------------------------------------------------------------


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[bool, list[ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address reaches or carries, and whether it only
    wraps them. Wrappers: mapped (::ffff:a.b.c.d), translated (::ffff:0:a.b.c.d),
    compatible (::a.b.c.d) and NAT64 (64:ff9b::/96, 64:ff9b:1::/48), judged by the
    IPv4 address alone; tunnels (6to4, Teredo) are judged by both."""
    value = int(address)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        return True, [address.ipv4_mapped]
    if value >> 32 == 0xFFFF0000 or (value >> 32 == 0 and value > 1):  # translated, compatible
        return True, [low32]
    if address in _NAT64_WELL_KNOWN or address in _NAT64_LOCAL:
        return True, [low32]
    tunnelled = []
    if address.sixtofour is not None:
        tunnelled.append(address.sixtofour)
    if address.teredo is not None:
        tunnelled.extend(address.teredo)
    return False, tunnelled


def refused_address_kind(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    *,
    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (),
) -> str | None:
    """Why a ticket URL may not reach `address` ("loopback", "link-local",
    "unspecified", "private", "multicast", "reserved", "not globally routable"),
    or None. Cloud metadata lives at 169.254.169.254 and fd00:ec2::254; an
    address in an `allowed` network (TICKETS_ALLOWED_NETWORKS) is let through."""
    candidates: list = [address]
    if isinstance(address, ipaddress.IPv6Address):
        wraps, carried = embedded_ipv4(address)
        candidates = carried if wraps else [*carried, address]
    for candidate in candidates:
        if any(candidate in network for network in allowed if network.version == candidate.version):
            continue
        kind = _address_kind(candidate)
        if kind:
            return kind
    return None


def _address_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    # 0.0.0.0/8 ("this network"): Linux connects 0.0.0.0 to the local host.
    if address.is_unspecified or (address.version == 4 and int(address) >> 24 == 0):
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not globally routable"
    return None


def _shown_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    mapped = getattr(address, "ipv4_mapped", None)
    return f"::ffff:{mapped}" if mapped else str(address)  # not "::ffff:7f00:1"


def allowed_networks(
    values: Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """TICKETS_ALLOWED_NETWORKS as networks; ValueError names a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"TICKETS_ALLOWED_NETWORKS: {exc}") from None
    return tuple(networks)


_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


# --- Connections to the checked address --------------------------------------------

# The address _check_address approved for the request this thread is sending:
# (host, port, address). The client is used from one thread at a time.
_pinned = threading.local()


class _PinnedConnectionMixin:
    """Connects to the address the guard checked instead of resolving the host
    again; TLS still verifies the certificate against the host name."""

    def _new_conn(self):
        pin = getattr(_pinned, "address", None)
        host = self._dns_host
        if pin is not None:
            if (pin[0].rstrip("."), pin[1]) != (host.lower().strip("[]").rstrip("."), self.port):
                raise NewConnectionError(self, f"{host} was not the host the guard checked")
            self._dns_host = pin[2]
        try:
            return super()._new_conn()
        finally:
            self._dns_host = host


class _PinnedHTTPConnection(_PinnedConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class _PinnedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PinnedHTTPPool,
            "https": _PinnedHTTPSPool,
        }


def remote_error_text(response: requests.Response) -> str:
    """The remote's own words about an error, on one line, at most ~300 characters.

    Understands Redmine (`{"errors": [...]}`), Jira (`{"errorMessages": [...],
    "errors": {field: message}}`) and GitHub (`{"message": ..., "errors": [...]}`);
    otherwise the body's text, HTML tags removed.
    """
    parts: list[str] = []
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            parts.append(body["message"])
        for key in ("errorMessages", "errors", "error"):
            parts.extend(_error_strings(body.get(key)))
    text = "; ".join(p for p in parts if p.strip())
    if not text:
        text = response.text or ""
        if "html" in response.headers.get("Content-Type", "").lower():
            text = re.sub(r"(?s)<(script|style).*?</\1>|<[^>]+>", " ", text)
    text = " ".join(text.split())
    if len(text) > ERROR_TEXT_MAX_CHARS:
        text = text[: ERROR_TEXT_MAX_CHARS - 1].rstrip() + "…"
    return text


def _error_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _error_strings(item)]
    if isinstance(value, dict):
        if isinstance(value.get("message"), str):  # a GitHub error object
            return [value["message"]]
        if "code" in value and ("field" in value or "resource" in value):
            where = ".".join(str(value[k]) for k in ("resource", "field") if value.get(k))
            return [f"{where} {value['code']}".strip()]
        return [f"{k}: {v}" for k, v in value.items() if isinstance(v, str | int | float)]
    return []


def _requested_wait(response: requests.Response) -> float | None:
    """Seconds the remote asked us to wait: `Retry-After` first, then GitHub's
    exhausted quota (`x-ratelimit-remaining: 0` until `x-ratelimit-reset`)."""
    retry_after = _parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    if response.headers.get("x-ratelimit-remaining", "").strip() == "0":
        try:
            reset = float(response.headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return None
        if math.isfinite(reset):
            return max(0.0, reset - time.time())
    return None


def _parse_retry_after(value: str | None) -> float | None:
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()  # a naive date is taken as UTC
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _nothing_sent(exc: Exception) -> bool:
    """Whether the connection failed before any byte of the request left."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(
        exc, requests.exceptions.SSLError
    ):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError)  # refused, unreachable, unresolved
    return False


def _certificate_rejected(exc: Exception) -> bool:
    # A person must fix the certificate or the URL; retrying will not.
    return any(isinstance(e, ssl.SSLCertVerificationError) for e in _causes(exc))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps (requests and urllib3 nest errors in args and `reason`)."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([*current.args, getattr(current, "reason", None)])
        todo.extend([current.__cause__, current.__context__])


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


def _loggable(url: str) -> str:
    """`url` without user info, query or fragment: what may be logged or shown."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _status_line(response: requests.Response) -> str:
    return f"{response.status_code} {response.reason or ''}".strip()


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)

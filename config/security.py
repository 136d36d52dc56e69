"""Sign-in protection: the client's address, as the sign-in lockout (django-axes)
and the API's token failure throttle count it, and the lockout page.

By default the address is the connection's (`REMOTE_ADDR`): `X-Forwarded-For`
is written by whoever sends the request, so trusting it would let an attacker
pick a fresh address for every guess. Behind reverse proxies, each appending
the address it received the request from, `TRACKER_PROXY_COUNT` says how many
there are; the client is then the entry that many places from the right.
"""

from __future__ import annotations

import ipaddress
import math

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address (AXES_CLIENT_IP_CALLABLE, and the API's failure throttle)."""
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRACKER_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [a for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if len(forwarded) < proxies:
        # Fewer hops than proxies: the request did not come through all of them.
        return remote
    return _valid(forwarded[-proxies]) or remote


# "N/s", "N/min", "N/hour", "N/day": the first letter of the period counts.
RATE_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """A rate ("20/min") as (count, seconds); empty or "0/...": (0, 0), no limit."""
    if not rate or not rate.strip():
        return 0, 0
    count, period = rate.split("/")
    count = int(count)
    return (count, RATE_PERIODS[period.strip()[0]]) if count else (0, 0)


def rate_exceeded(*, key: str, rate: str) -> bool:
    """Count one more event under `key`; True once the count is past `rate`.

    A fixed window, counted with the cache's atomic increment (Redis in
    production), so requests racing each get a count of their own.
    """
    limit, window = parse_rate(rate)
    if not limit:
        return False
    if cache.add(key, 1, timeout=window):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout=window)
            count = 1
    return count > limit


def client_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username the sign-in lockout records and counts (AXES_USERNAME_CALLABLE).

    What was typed, as django-axes reads it, cut to the length of the column it is
    stored in: typed whole, a longer one overflowed that column and turned a wrong
    sign-in into a server error. No account has a name that long (Django's are 150
    characters at most), so the cut names no one and still counts the attempts.
    """
    from axes.models import AccessAttempt  # the app registry is ready by now

    field = getattr(settings, "AXES_USERNAME_FORM_FIELD", "username")
    source = credentials or getattr(request, "data", None) or getattr(request, "POST", {})
    username = source.get(field)
    if not isinstance(username, str):
        return username
    return username[: AccessAttempt._meta.get_field("username").max_length]


def lockout_response(
    request: HttpRequest, original_response=None, credentials=None
) -> HttpResponse:
    """The page a locked-out sign-in gets (AXES_LOCKOUT_CALLABLE), on both login pages."""
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    response = render(
        request,
        "registration/locked_out.html",
        {"failure_limit": settings.AXES_FAILURE_LIMIT, "cooloff_minutes": minutes},
        status=429,
    )
    response["Retry-After"] = str(math.ceil(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response

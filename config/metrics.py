"""`/metrics`: Prometheus text format, for the allowed addresses or the bearer token.

What it shows: django-prometheus's request, response, latency and database
metrics (its middleware and database backends), this process's own metrics
(CPU, memory, file descriptors), and the tracker's gauges (tracker.metrics),
read from the database at each scrape.

Request metrics are counted per process. With PROMETHEUS_MULTIPROC_DIR set (an
empty folder shared by gunicorn's workers, emptied at each start) every worker
writes its counters there and any worker's scrape adds them all up.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from tracker.metrics import TrackerCollector

# A request that came through a proxy shows the proxy's address, not the client's.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")

_tracker_collector = TrackerCollector()


@cache
def _networks(allow: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allow)


def _address_allowed(request: HttpRequest) -> bool:
    if any(request.META.get(header) for header in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(tuple(settings.TRACKER_METRICS_ALLOW)))


def _token_matches(request: HttpRequest) -> bool:
    expected = settings.TRACKER_METRICS_TOKEN
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(offered.strip().encode(), expected.encode())


def scrape_allowed(request: HttpRequest) -> bool:
    """From an address in TRACKER_METRICS_ALLOW (not through a proxy), or with the token."""
    return _token_matches(request) or _address_allowed(request)


def registry() -> CollectorRegistry:
    """What one scrape reads: this process's (or every worker's) metrics and the tracker's."""
    combined = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(combined)
    else:
        combined.register(REGISTRY)
    combined.register(_tracker_collector)
    return combined


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        # One answer whatever was missing: the address, the token, or both.
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)

"""The HTTP client every ticket backend sends through, against a real local HTTP server.

Waits go through a fake `sleep` that records them, except in the rate-limit
tests, which measure real time.
"""

import datetime as dt
import email.utils
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.ticketing.base import TicketError, TicketNotFound
from tracker.ticketing.http import HttpClient


@pytest.fixture(scope="module")
def make_httpserver() -> Iterator[HTTPServer]:
    # Overrides the plugin's server: on 127.0.0.1 rather than "localhost" (one
    # address, no IPv6 detour) and threaded, so a handler held back for a
    # timeout test does not queue the client's next attempt behind it.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(httpserver: HTTPServer, sleeps: list[float]) -> Iterator[Callable[..., HttpClient]]:
    clients: list[HttpClient] = []

    def make(**overrides) -> HttpClient:
        options = {
            # A fresh name per client: the rate-limit registry is per name and process.
            "name": f"test-{uuid.uuid4().hex[:12]}",
            "base_url": httpserver.url_for("/api"),
            "allow_local": True,
            "rate_per_second": 0,
            "max_retries": 3,
            "timeout": 5.0,
            "sleep": sleeps.append,
            **overrides,
        }
        client = HttpClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def connects(monkeypatch) -> list:
    """Every connection attempted, each refused without touching the network."""
    attempted: list = []

    def refuse(sock, address):
        attempted.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempted


def wait_for_log(server: HTTPServer, count: int) -> None:
    """Wait until the server has answered `count` requests (held-back handlers finish late)."""
    deadline = time.monotonic() + 5
    while len(server.log) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_it_returns_a_successful_response(httpserver, make_client, sleeps):
    httpserver.expect_request(
        "/api/issues.json", query_string="project_id=7", headers={"X-Redmine-API-Key": "k"}
    ).respond_with_json({"issues": []})
    client = make_client(headers={"X-Redmine-API-Key": "k"})

    response = client.get("/issues.json", params={"project_id": 7})

    assert response.json() == {"issues": []}
    assert client.requests_sent == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            422,
            {"errors": ["Subject cannot be blank", "Tracker is invalid"]},
            ["Subject cannot be blank", "Tracker is invalid"],
        ),
        (
            400,
            {
                "errorMessages": ["Field errors"],
                "errors": {"priority": "Priority name 'P9' is not valid"},
            },
            ["Field errors", "priority: Priority name 'P9' is not valid"],
        ),
        (
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}],
            },
            ["Validation Failed", "Issue.title missing_field"],
        ),
    ],
    ids=["redmine", "jira", "github"],
)
def test_it_reports_the_remote_error_text_of_a_rejected_request_as_permanent(
    httpserver, make_client, sleeps, status, body, expected
):
    httpserver.expect_request("/api/issues.json").respond_with_json(body, status=status)
    client = make_client()

    with pytest.raises(TicketError) as caught:
        client.post("issues.json", json={"subject": ""})

    error = caught.value
    assert error.permanent is True
    assert error.status == status
    assert str(status) in error.message
    for text in expected:
        assert text in error.message
    assert len(httpserver.log) == 1
    assert sleeps == []


def test_it_trims_a_long_error_text(httpserver, make_client):
    httpserver.expect_request("/api/x").respond_with_data("nope " * 500, status=400)

    with pytest.raises(TicketError) as caught:
        make_client().get("x")

    assert "400" in caught.value.message
    assert "nope nope" in caught.value.message
    assert len(caught.value.message) < 400


@pytest.mark.parametrize("status", [404, 410])
def test_it_raises_not_found_for_a_missing_ticket(httpserver, make_client, sleeps, status):
    httpserver.expect_request("/api/issues/9.json").respond_with_json(
        {"errors": ["gone"]}, status=status
    )

    with pytest.raises(TicketNotFound) as caught:
        make_client().get("issues/9.json")

    assert caught.value.permanent is True
    assert caught.value.status == status
    assert sleeps == []


def test_it_treats_a_plain_403_as_permanent(httpserver, make_client, sleeps):
    httpserver.expect_request("/api/x").respond_with_json({"message": "Bad credentials"}, 403)

    with pytest.raises(TicketError) as caught:
        make_client().get("x")

    assert caught.value.permanent is True
    assert "Bad credentials" in caught.value.message
    assert len(httpserver.log) == 1
    assert sleeps == []


def test_it_waits_as_long_as_retry_after_says(httpserver, make_client, sleeps):
    httpserver.expect_oneshot_request("/api/x").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "2"}
    )
    httpserver.expect_request("/api/x").respond_with_json({"ok": True})
    client = make_client()

    response = client.post("x", json={})

    assert response.json() == {"ok": True}
    assert sleeps == [2.0]
    assert client.requests_sent == 2


def test_it_reads_retry_after_as_an_http_date(httpserver, make_client, sleeps):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
    httpserver.expect_oneshot_request("/api/x").respond_with_data(
        "maintenance", status=503, headers={"Retry-After": email.utils.format_datetime(when, True)}
    )
    httpserver.expect_request("/api/x").respond_with_json({})

    make_client().get("x")

    assert len(sleeps) == 1
    assert 8 <= sleeps[0] <= 10


def test_it_hands_back_a_wait_longer_than_max_wait_without_sleeping(
    httpserver, make_client, sleeps
):
    httpserver.expect_request("/api/x").respond_with_data(
        "", status=429, headers={"Retry-After": "120"}
    )

    with pytest.raises(TicketError) as caught:
        make_client(max_wait=60).get("x")

    assert caught.value.permanent is False
    assert caught.value.status == 429
    assert caught.value.retry_after == 120
    assert sleeps == []
    assert len(httpserver.log) == 1


def test_it_waits_for_the_github_rate_limit_reset(httpserver, make_client, sleeps):
    reset = int(time.time()) + 5
    httpserver.expect_oneshot_request("/api/x").respond_with_json(
        {"message": "API rate limit exceeded"},
        status=403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    httpserver.expect_request("/api/x").respond_with_json({})

    make_client().get("x")

    assert len(sleeps) == 1
    assert 3.5 <= sleeps[0] <= 5


def test_it_retries_a_502_then_succeeds(httpserver, make_client, sleeps):
    httpserver.expect_oneshot_request("/api/x").respond_with_data("bad gateway", status=502)
    httpserver.expect_request("/api/x").respond_with_json({"ok": True})
    client = make_client()

    assert client.get("x").json() == {"ok": True}
    assert client.requests_sent == 2
    assert len(sleeps) == 1


def test_it_gives_up_after_the_maximum_retries(httpserver, make_client, sleeps):
    httpserver.expect_request("/api/x").respond_with_data("boom", status=500)
    client = make_client(max_retries=2)

    with pytest.raises(TicketError) as caught:
        client.put("x", json={})

    assert caught.value.permanent is False
    assert caught.value.status == 500
    assert "3 attempts" in caught.value.message
    assert client.requests_sent == 3
    assert len(httpserver.log) == 3
    assert len(sleeps) == 2


def test_it_does_not_resend_a_post_answered_with_a_server_error(httpserver, make_client, sleeps):
    # The remote may have created the ticket before failing: the sync looks it up first.
    httpserver.expect_request("/api/issues.json").respond_with_data("bad gateway", status=502)
    client = make_client()

    with pytest.raises(TicketError) as caught:
        client.post("issues.json", json={})

    assert caught.value.permanent is False
    assert caught.value.status == 502
    assert "outcome unknown" in caught.value.message
    assert len(httpserver.log) == 1
    assert sleeps == []


def test_it_resends_a_post_declared_idempotent_after_a_server_error(
    httpserver, make_client, sleeps
):
    httpserver.expect_oneshot_request("/api/search").respond_with_data("bad gateway", status=502)
    httpserver.expect_request("/api/search").respond_with_json({"issues": []})

    response = make_client().post("search", json={"jql": "x"}, idempotent=True)

    assert response.json() == {"issues": []}
    assert len(httpserver.log) == 2
    assert len(sleeps) == 1


def test_it_retries_a_post_the_remote_did_not_act_on(httpserver, make_client, sleeps):
    httpserver.expect_oneshot_request("/api/issues.json").respond_with_data("busy", status=503)
    httpserver.expect_request("/api/issues.json").respond_with_json({"id": 1}, status=201)

    assert make_client().post("issues.json", json={}).status_code == 201
    assert len(httpserver.log) == 2
    assert len(sleeps) == 1


def test_it_does_not_resend_a_post_after_a_read_timeout(httpserver, make_client, sleeps):
    release = threading.Event()

    def held_back(request: Request) -> Response:
        release.wait(5)
        return Response("{}", status=201, content_type="application/json")

    httpserver.expect_request("/api/issues.json").respond_with_handler(held_back)
    client = make_client(timeout=0.3)

    try:
        with pytest.raises(TicketError) as caught:
            client.post("issues.json", json={"subject": "x"})
    finally:
        release.set()
        wait_for_log(httpserver, 1)

    assert caught.value.permanent is False
    assert "outcome unknown" in caught.value.message
    # Not chained: transport exceptions repeat the URL with its query.
    assert caught.value.__suppress_context__
    assert len(httpserver.log) == 1
    assert client.requests_sent == 1
    assert sleeps == []


def test_it_retries_a_get_after_a_read_timeout(httpserver, make_client, sleeps):
    release = threading.Event()
    calls: list[int] = []

    def first_held_back(request: Request) -> Response:
        calls.append(1)
        if len(calls) == 1:
            release.wait(5)
        return Response('{"ok": true}', content_type="application/json")

    httpserver.expect_request("/api/x").respond_with_handler(first_held_back)
    client = make_client(timeout=0.3)

    try:
        response = client.get("x")
    finally:
        release.set()
        wait_for_log(httpserver, 2)

    assert response.json() == {"ok": True}
    assert client.requests_sent == 2
    assert len(sleeps) == 1


def test_it_retries_a_post_when_the_connection_is_refused(make_client, sleeps, closed_port):
    client = make_client(base_url=f"http://127.0.0.1:{closed_port}/api", max_retries=2)

    with pytest.raises(TicketError) as caught:
        client.post("issues.json", json={})

    assert caught.value.permanent is False
    assert "cannot connect" in caught.value.message
    assert len(sleeps) == 2
    # Nothing reached the remote.
    assert client.requests_sent == 0


def test_it_retries_a_post_after_a_connect_timeout(make_client, sleeps, monkeypatch):
    client = make_client(max_retries=2)
    calls: list[str] = []

    def connect_timeout(method, url, **kwargs):
        calls.append(method)
        raise requests.ConnectTimeout("connect timed out")

    monkeypatch.setattr(client.session, "request", connect_timeout)

    with pytest.raises(TicketError) as caught:
        client.post("issues.json", json={})

    assert caught.value.permanent is False
    assert calls == ["POST"] * 3
    assert len(sleeps) == 2


def test_it_refuses_to_follow_a_redirect(httpserver, make_client):
    httpserver.expect_request("/api/issues.json").respond_with_data(
        "", status=301, headers={"Location": "https://elsewhere.example/issues.json?key=k123"}
    )

    with pytest.raises(TicketError) as caught:
        make_client().get("issues.json")

    assert caught.value.permanent is True
    assert caught.value.status == 301
    assert "https://elsewhere.example/issues.json" in caught.value.message
    assert "k123" not in caught.value.message
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://elsewhere.example/api/issues.json",
        "//elsewhere.example/api/issues.json",
        "http://127.0.0.1:{other_port}/api/issues.json",
        "https://127.0.0.1:{port}/api/issues.json",
    ],
)
def test_it_refuses_an_absolute_url_outside_its_origin(httpserver, make_client, url):
    url = url.format(port=httpserver.port, other_port=httpserver.port + 1)

    with pytest.raises(ValueError, match="refusing to send"):
        make_client().get(url)

    assert httpserver.log == []


def test_it_follows_an_absolute_url_on_its_own_origin(httpserver, make_client):
    httpserver.expect_request("/api/issues.json", query_string="page=2").respond_with_json([])

    response = make_client().get(httpserver.url_for("/api/issues.json?page=2"))

    assert response.json() == []


@pytest.mark.parametrize(
    ("host", "address", "kind"),
    [
        ("127.0.0.1", "127.0.0.1", "loopback"),
        ("127.8.9.10", "127.8.9.10", "loopback"),
        ("169.254.169.254", "169.254.169.254", "link-local"),
        ("[::1]", "::1", "loopback"),
        ("[fe80::1]", "fe80::1", "link-local"),
        ("[::ffff:169.254.169.254]", "::ffff:169.254.169.254", "link-local"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "0.0.0.0", "unspecified"),
        ("[::]", "::", "unspecified"),
        ("localhost", "127.0.0.1", "loopback"),
        # IPv4 carried inside IPv6, which Python's own flags miss or call global.
        ("[::127.0.0.1]", "::7f00:1", "loopback"),
        ("[::ffff:0:7f00:1]", "::ffff:0:7f00:1", "loopback"),
        ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1", "loopback"),
        ("[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe", "link-local"),
        ("[2002:7f00:1::1]", "2002:7f00:1::1", "loopback"),
        (
            "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "loopback",
        ),
        # The IPv6 cloud metadata address, and private networks.
        ("[fd00:ec2::254]", "fd00:ec2::254", "private"),
        ("10.1.2.3", "10.1.2.3", "private"),
        ("192.168.0.10", "192.168.0.10", "private"),
        ("100.64.0.1", "100.64.0.1", "not globally routable"),
        ("224.0.0.1", "224.0.0.1", "multicast"),
        ("240.0.0.1", "240.0.0.1", "private"),
    ],
)
def test_it_refuses_local_addresses_before_connecting(make_client, connects, host, address, kind):
    client = make_client(base_url=f"http://{host}:8080/api", allow_local=False)

    with pytest.raises(TicketError) as caught:
        client.get("issues.json")

    assert caught.value.permanent is True
    assert f"resolves to {address}, a {kind} address" in caught.value.message
    assert host.strip("[]") in caught.value.message
    assert connects == []
    assert client.requests_sent == 0


def test_it_allows_a_private_network_that_settings_name(make_client, connects, sleeps):
    client = make_client(
        base_url="http://10.1.2.3/api", allow_local=False, allowed=["10.0.0.0/8"], max_retries=0
    )

    with pytest.raises(TicketError) as caught:
        client.get("issues.json")

    # The guard let it through: the connection itself was then refused.
    assert connects == [("10.1.2.3", 80)]
    assert caught.value.permanent is False


def test_it_refuses_a_private_network_that_settings_do_not_name(make_client, connects):
    client = make_client(base_url="http://10.1.2.3/api", allow_local=False, allowed=["10.9.0.0/16"])

    with pytest.raises(TicketError) as caught:
        client.get("issues.json")

    assert caught.value.permanent is True
    assert "10.1.2.3, a private address" in caught.value.message
    assert connects == []


def test_it_sends_through_the_pinned_connection_to_an_allowed_network(httpserver, make_client):
    httpserver.expect_request("/api/x").respond_with_json({"ok": True})
    client = make_client(allow_local=False, allowed=["127.0.0.0/8"])

    assert client.get("x").json() == {"ok": True}
    assert client.get("x").json() == {"ok": True}  # a kept-alive connection, reused

    assert len(httpserver.log) == 2


def test_it_allows_a_global_ipv4_address_behind_nat64(make_client, connects, sleeps):
    client = make_client(
        base_url="http://[64:ff9b::5db8:d822]/api", allow_local=False, max_retries=0
    )

    with pytest.raises(TicketError) as caught:
        client.get("issues.json")

    assert caught.value.permanent is False  # let through, then refused by the "network"
    assert [address[0] for address in connects] == ["64:ff9b::5db8:d822"]


def test_it_refuses_a_name_if_any_of_its_addresses_is_local(make_client, connects, monkeypatch):
    def resolve(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = make_client(base_url="https://tickets.example/api", allow_local=False)

    with pytest.raises(TicketError) as caught:
        client.get("x")

    assert "resolves to 127.0.0.1, a loopback address" in caught.value.message
    assert connects == []


def test_it_connects_to_the_address_it_checked_not_a_second_answer(
    make_client, connects, monkeypatch
):
    # DNS rebinding: the first answer is global, any later one loopback. The request
    # must go to the checked address, and the name must be looked up once.
    real_getaddrinfo = socket.getaddrinfo
    asked: list[str] = []

    def resolve(host, port, *args, **kwargs):
        if host == "tickets.example":
            asked.append(host)
            address = "93.184.216.34" if len(asked) == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = make_client(base_url="https://tickets.example/api", allow_local=False, max_retries=0)

    with pytest.raises(TicketError):
        client.get("x")

    assert asked == ["tickets.example"]
    assert connects == [("93.184.216.34", 443)]


def test_it_allows_local_addresses_when_settings_say_so(httpserver, settings, sleeps):
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    httpserver.expect_request("/api/x").respond_with_json({})
    client = HttpClient(
        name="settings-allow", base_url=httpserver.url_for("/api"), rate_per_second=0
    )

    assert client.get("x").status_code == 200
    client.close()


def test_it_resolves_the_host_again_for_every_request(make_client, connects, monkeypatch):
    answer = {"address": "93.184.216.34"}

    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer["address"], port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = make_client(base_url="https://tickets.example/api", allow_local=False, max_retries=0)

    with pytest.raises(TicketError) as first:
        client.get("x")
    answer["address"] = "127.0.0.1"
    with pytest.raises(TicketError) as second:
        client.get("x")

    assert first.value.permanent is False  # allowed, then refused by the "network"
    assert second.value.permanent is True
    assert "resolves to 127.0.0.1" in second.value.message
    assert connects == [("93.184.216.34", 443)]


def test_it_takes_its_defaults_from_settings(httpserver, settings, sleeps):
    settings.TICKETS_TIMEOUT_SECONDS = 4.5
    settings.TICKETS_MAX_RETRIES = 1
    settings.TICKETS_RATE_LIMIT = 0
    settings.TICKETS_ALLOW_LOCAL_ADDRESSES = True
    httpserver.expect_request("/api/x").respond_with_data("down", status=500)
    client = HttpClient(
        name="settings-defaults", base_url=httpserver.url_for("/api"), sleep=sleeps.append
    )

    with pytest.raises(TicketError):
        client.get("x")

    assert client.timeout == 4.5
    assert len(httpserver.log) == 2
    client.close()


def test_it_spaces_requests_by_the_rate_limit(httpserver, make_client):
    httpserver.expect_request("/api/x").respond_with_json({})
    client = make_client(rate_per_second=20, sleep=time.sleep)

    started = time.monotonic()
    for _ in range(5):
        client.get("x")

    assert time.monotonic() - started >= 0.19


def test_it_shares_the_rate_limit_between_clients_of_one_name(httpserver, make_client):
    httpserver.expect_request("/api/x").respond_with_json({})
    name = f"shared-{uuid.uuid4().hex[:12]}"
    clients = [make_client(name=name, rate_per_second=20, sleep=time.sleep) for _ in range(5)]
    threads = [threading.Thread(target=client.get, args=("x",)) for client in clients]

    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert time.monotonic() - started >= 0.19
    assert len(httpserver.log) == 5


def test_it_keeps_backoff_delays_within_the_jitter_bounds(
    httpserver, make_client, sleeps, monkeypatch
):
    httpserver.expect_request("/api/x").respond_with_data("boom", status=500)
    bounds: list[tuple[float, float]] = []
    real_uniform = random.uniform

    def recording_uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return real_uniform(low, high)

    monkeypatch.setattr(random, "uniform", recording_uniform)
    client = make_client(max_retries=4, backoff_base=0.5, backoff_max=2.0)

    with pytest.raises(TicketError):
        client.get("x")

    assert bounds == [(0, 0.5), (0, 1.0), (0, 2.0), (0, 2.0)]
    assert len(sleeps) == 4
    for delay, (low, high) in zip(sleeps, bounds, strict=True):
        assert low <= delay <= high


def test_it_never_logs_secrets(httpserver, make_client, caplog, closed_port):
    caplog.set_level(logging.DEBUG, logger="tracker.ticketing.http")
    httpserver.expect_request("/api/search").respond_with_data("boom", status=500)
    headers = {"Authorization": "Bearer sekrit"}
    answering = make_client(headers=headers, max_retries=1)
    refusing = make_client(
        base_url=f"http://127.0.0.1:{closed_port}/api", headers=headers, max_retries=1
    )

    errors = []
    for client in (answering, refusing):
        with pytest.raises(TicketError) as caught:
            client.get("search", params={"key": "sekrit"})
        errors.append(caught.value)
    # A query already in the path, as in a pagination link.
    with pytest.raises(TicketError) as caught:
        answering.get("search?key=sekrit&page=2")
    errors.append(caught.value)

    assert len(httpserver.log) == 4
    assert httpserver.log[0][0].args["key"] == "sekrit"  # it was sent, just not logged
    records = [r for r in caplog.records if r.name == "tracker.ticketing.http"]
    assert {r.levelno for r in records} == {logging.DEBUG, logging.WARNING}
    assert any("/api/search" in r.getMessage() for r in records)
    for record in records:
        assert "sekrit" not in record.getMessage()
        assert record.exc_info is None
    for error in errors:
        assert "sekrit" not in str(error)
        assert error.__cause__ is None
        assert error.__suppress_context__ or error.__context__ is None

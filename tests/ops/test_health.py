"""/healthz and /readyz: what they check, what they answer, and who may ask."""

import functools
import json

import pytest
from django.db import connections

from config import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_like(settings):
    """The https redirect on and a strict ALLOWED_HOSTS, as in production."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["tracker.example.com"]


@pytest.fixture
def filesystem_broker(settings, tmp_path):
    options = {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "processed_folder": str(tmp_path / "processed"),
        "control_folder": str(tmp_path / "control"),
    }
    for sub in ("queue", "processed", "control"):
        (tmp_path / sub).mkdir()
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    return tmp_path


def assert_never_cached(response):
    assert "no-store" in response["Cache-Control"]
    assert "max-age=0" in response["Cache-Control"]


def test_it_answers_healthz_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert_never_cached(response)


def test_it_answers_the_probes_by_ip_over_plain_http(client, production_like, filesystem_broker):
    for path in ("/healthz", "/readyz"):
        response = client.get(path, HTTP_HOST="10.1.2.3:8000")

        assert response.status_code == 200, (path, response.status_code)
    # Other pages still get the redirect and the host check.
    assert client.get("/accounts/login/", HTTP_HOST="tracker.example.com").status_code == 301
    assert client.get("/accounts/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400


def test_it_refuses_to_change_anything_through_the_probes(client):
    response = client.post("/healthz")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.postgres
@pytest.mark.redis
def test_it_is_ready_on_postgresql_and_redis(client, settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    assert_never_cached(response)


def test_it_is_ready_on_the_embedded_defaults(client, filesystem_broker):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_it_names_the_broker_when_redis_refuses(client, settings, closed_port):
    settings.CELERY_BROKER_URL = f"redis://:broker-password-1234@127.0.0.1:{closed_port}/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ")
    assert "refused" in body["checks"]["broker"].lower()
    assert "broker-password-1234" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert_never_cached(response)


def test_it_names_the_broker_when_its_folder_is_missing(client, filesystem_broker):
    (filesystem_broker / "processed").rmdir()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "broker": f"error: broker folder {filesystem_broker / 'processed'} is missing",
    }


def test_it_names_the_database_when_it_refuses(
    client, monkeypatch, filesystem_broker, closed_port, tmp_path
):
    # The default database's settings, pointing where no database answers.
    unreachable = dict(connections.settings["default"])
    if connections["default"].vendor == "postgresql":
        unreachable.update(HOST="127.0.0.1", PORT=str(closed_port), PASSWORD="db-password-1234")
    else:
        unreachable["NAME"] = str(tmp_path / "no-such-folder" / "tracker.sqlite3")
    monkeypatch.setitem(
        health.CHECKS, "database", functools.partial(health.check_database, unreachable)
    )

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == "ok"
    assert body["checks"]["database"].startswith("error: ")
    assert "refused" in body["checks"]["database"] or "unable to open" in body["checks"]["database"]
    assert "\n" not in body["checks"]["database"]
    assert "db-password-1234" not in json.dumps(body)

"""The API keeps the promises its OpenAPI schema makes.

schemathesis generates requests for every operation from the schema served at
/api/v1/schema/ and sends them to the app in-process (WSGI), signed in as a
manager with an API token, with the sample incident imported. No response may
be a 5xx, and each response's status code, content type and body must be ones
the schema documents.

The requests run against the real database in autocommit mode (a transactional
test), as in production: a request that fails in the database must leave the
connection usable for the next one.
"""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import hypothesis
import pytest
import schemathesis
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.api import TokenOrUserRateThrottle
from config.wsgi import application
from incidents.importing import import_document
from tests import factories
from tests.conftest import SAMPLE_PATH
from tracker.tokens import api_token_create

SAMPLE_INCIDENT = "INC-2024-0142"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    # Random ids almost never name a row: aim about half the cases at rows that exist.
    # Sequences are reset for each test, so the sample's items are 1..5, its people 1..3.
    if not path_parameters:
        return st.just(path_parameters)
    if "external_id" in path_parameters:
        return st.sampled_from(
            [path_parameters, {**path_parameters, "external_id": SAMPLE_INCIDENT}]
        )
    if "id" in path_parameters:
        return st.one_of(
            st.just(path_parameters),
            st.integers(min_value=1, max_value=5).map(lambda pk: {**path_parameters, "id": pk}),
        )
    return st.just(path_parameters)


@pytest.fixture
def manager_token(transactional_db, settings, monkeypatch) -> str:
    """A manager's API token, with the sample incident imported."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Hundreds of requests a minute from one token: the throttle is not what is under test.
    monkeypatch.setattr(TokenOrUserRateThrottle, "THROTTLE_RATES", {"user": "1000000/min"})
    manager = factories.UserFactory(username="schema-manager", is_staff=True)
    manager.groups.add(Group.objects.get_or_create(name=settings.TRACKER_MANAGERS_GROUP)[0])
    summary = import_document(raw=SAMPLE_PATH.read_bytes(), source="test", user=manager)
    assert summary.ok, summary.as_dict()
    return api_token_create(user=manager, name="schemathesis")[1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, reset_sequences=True)
@schema.parametrize()
@hypothesis.settings(
    max_examples=25,
    deadline=None,
    database=None,  # no .hypothesis/ directory; the same cases on every run
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_it_answers_every_operation_as_the_schema_says(case, manager_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {manager_token}"}, checks=CHECKS)


def test_it_serves_a_valid_schema_without_warnings(tmp_path):
    GENERATOR_STATS.reset()  # forget warnings from schemas generated earlier in this process
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    assert "/api/v1/action-items/" in out.read_text()


class _Assets(HTMLParser):
    """The URLs a page loads (script src, link href) and its inline scripts."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._script: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if attrs.get("src"):
                self.urls.append(attrs["src"])
            else:
                self._script = []
        elif tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])

    def handle_data(self, data):
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.inline_scripts.append("".join(self._script))
            self._script = None


def test_it_renders_the_docs_from_local_assets_only(client):
    response = client.get("/api/v1/docs/")

    assert response.status_code == 200
    page = _Assets()
    page.feed(response.content.decode())
    assert any(url.endswith("swagger-ui-bundle.js") for url in page.urls), page.urls
    assert not [url for url in page.urls if re.match(r"(?i)(https?:)?//", url)], page.urls
    # The split view serves its init script from a URL, so a strict CSP can forbid inline code.
    assert page.inline_scripts == []
    for url in page.urls:
        path = urlsplit(url).path
        if path.startswith(django_settings.STATIC_URL):
            # Collected static files are served by whitenoise; here it is enough that they exist.
            assert finders.find(path.removeprefix(django_settings.STATIC_URL)), url
        else:
            script = client.get(url)
            assert script.status_code == 200, url
            assert "javascript" in script["Content-Type"], url
            assert b"SwaggerUIBundle" in script.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/api/v1/action-items/4.0e-191/", "/api/v1/incidents/%C2%84/", "/api/v1/no-such-thing/"],
)
def test_it_answers_an_api_path_no_route_matches_in_the_error_format(client, path):
    # Malformed ids that schemathesis sends: the schema documents every 404 as JSON.
    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": 404,
        "errors": [{"path": None, "code": "not_found", "message": "Not found."}],
    }

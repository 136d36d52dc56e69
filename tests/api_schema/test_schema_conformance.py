"""The API keeps the promises its OpenAPI schema makes.

schemathesis generates requests for every operation from the schema served at
/api/v1/schema/ (valid ones and ones the schema forbids: bodies, query
parameters, path parameters) and sends them to the app in-process (WSGI), with
the sample incident imported, once signed in as a manager and once as the owner
of two of its items, each with an API token. No response may be a 5xx, and each
response's status code, content type and body must be ones the schema documents.

Each operation must also be exercised past authentication: a 401 fails the test,
and the manager must get at least one success from every operation that can
succeed (the owner from every read, and from a change or comment on their item),
so that a broken token or fixture cannot turn the run into hundreds of refusals.

The requests run against the real database in autocommit mode (a transactional
test), as in production: a request that fails in the database must leave the
connection usable for the next one.

60 generated examples per operation in CI, on top of schemathesis's coverage
cases; FUZZ_EXAMPLES and FUZZ_RANDOM run more (tests/fuzz/budget.py).
"""

import json
import re
from dataclasses import dataclass, field
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
from tests.fuzz.budget import fuzz_settings
from tracker.tokens import api_token_create

SAMPLE_INCIDENT = "INC-2024-0142"
SAMPLE_DOCUMENT = json.loads(SAMPLE_PATH.read_text())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    # Random ids almost never name a row: aim most cases at rows that exist, and many
    # at the owner's own items. Sequences are reset for each test, so the sample's items
    # are 1..5 (the owner's are 1 and 4), its people 1..3.
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
            st.sampled_from([1, 4]).map(lambda pk: {**path_parameters, "id": pk}),
        )
    return st.just(path_parameters)


@schema.hook
def flatmap_body(context, body):
    # A generated object is never a valid incident document: send the sample as well,
    # and the sample with the generated keys added (unknown keys are kept, with a
    # warning), so that imports get past validation too.
    if context.operation.path != "/api/v1/incidents/import/" or not isinstance(body, dict):
        return st.just(body)
    return st.sampled_from([body, SAMPLE_DOCUMENT, {**SAMPLE_DOCUMENT, **body}])


def status_alone(context, body):
    """Half of the owner's PATCH bodies keep their status alone, the one field an owner
    may change, so that the owner's cases reach the change as well as the refusal."""
    if context.operation.method.upper() != "PATCH" or not isinstance(body, dict):
        return st.just(body)
    return st.sampled_from([body, {k: v for k, v in body.items() if k == "status"}])


OWNER_EMAIL = "alice@company.com"  # owns the sample's items 1 and 4


@pytest.fixture
def api_tokens(transactional_db, settings, monkeypatch) -> dict[str, str]:
    """API tokens of a manager and of an owner of the sample's items, the sample imported."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Hundreds of requests a minute from one token: the throttle is not what is under test.
    monkeypatch.setattr(TokenOrUserRateThrottle, "THROTTLE_RATES", {"user": "1000000/min"})
    manager = factories.UserFactory(username="schema-manager", is_staff=True)
    manager.groups.add(Group.objects.get_or_create(name=settings.TRACKER_MANAGERS_GROUP)[0])
    owner = factories.UserFactory(username="schema-owner", email=OWNER_EMAIL)
    summary = import_document(raw=SAMPLE_PATH.read_bytes(), source="test", user=manager)
    assert summary.ok, summary.as_dict()
    return {
        "manager": api_token_create(user=manager, name="schemathesis")[1],
        "owner": api_token_create(user=owner, name="schemathesis")[1],
    }


# The operations each role can never succeed at: the manager's DELETE is always 405
# (items are cancelled, never deleted); owners may not create, import or delete.
NEVER_SUCCEEDS = {
    "manager": {"DELETE /api/v1/action-items/{id}/"},
    "owner": {
        "DELETE /api/v1/action-items/{id}/",
        "POST /api/v1/action-items/",
        "POST /api/v1/incidents/import/",
    },
}


@dataclass
class Answers:
    """The status codes one role got from one operation (with the operation's method;
    the coverage phase also tries others, which OPTIONS answers with a 200)."""

    role: str = ""
    codes: list[int] = field(default_factory=list)


@pytest.fixture
def answers(request) -> Answers:
    """Collects an operation's status codes; checked once all its cases have run."""
    failed_before = request.session.testsfailed
    answers = Answers()
    yield answers
    if request.session.testsfailed > failed_before:
        return  # a case failed: its report says more than this check would
    operation = request.node.name.split("[", 1)[-1].rstrip("]")
    assert answers.codes, f"{operation}: no request was sent"
    if operation not in NEVER_SUCCEEDS[answers.role]:
        assert any(200 <= code < 300 for code in answers.codes), (
            f"{operation} as {answers.role}: no success in {len(answers.codes)} requests "
            f"(only {sorted(set(answers.codes))}); the cases never got past the refusals"
        )


def call(case, token: str, answers: Answers) -> None:
    response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
    if case.method.upper() == case.operation.method.upper():
        answers.codes.append(response.status_code)
    # The token is valid: every case must get past authentication to reach the operation.
    assert response.status_code != 401, response.text[:300]


# The same cases on every run, no .hypothesis/ directory (tests/fuzz/budget.py).
FUZZ_SETTINGS = hypothesis.settings(
    fuzz_settings(60), suppress_health_check=list(HealthCheck), print_blob=False
)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, reset_sequences=True)
@schema.parametrize()
@FUZZ_SETTINGS
def test_it_answers_every_operation_as_the_schema_says_to_a_manager(case, api_tokens, answers):
    answers.role = "manager"
    call(case, api_tokens["manager"], answers)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, reset_sequences=True)
@schema.hooks.apply(status_alone, name="flatmap_body")
@schema.parametrize()
@FUZZ_SETTINGS
def test_it_answers_every_operation_as_the_schema_says_to_an_owner(case, api_tokens, answers):
    answers.role = "owner"
    call(case, api_tokens["owner"], answers)


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

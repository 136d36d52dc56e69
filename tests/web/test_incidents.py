"""The incidents list and an incident's page: content, counts, filters, escaping."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from incidents.models import Incident
from tests import factories
from tests.incidents.helpers import import_doc
from tracker.models import ActionItem, Status
from tracker.services import Actor, action_item_update

pytestmark = pytest.mark.django_db

LIST = reverse("incident-list")
SAMPLE_URL = reverse("incident-detail", args=["INC-2024-0142"])
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def reader_client(client, db):
    client.force_login(factories.UserFactory(username="reader"))
    return client


@pytest.fixture
def sample_incident(sample_bytes) -> Incident:
    assert import_doc(sample_bytes).ok
    return Incident.objects.get(external_id="INC-2024-0142")


def mark_done(item: ActionItem) -> None:
    action_item_update(item=item, actor=Actor.system(), status=Status.DONE)


def assert_escaped(html: str, payload: str) -> None:
    assert payload not in html
    assert payload.replace("<", "&lt;").replace(">", "&gt;") in html


def test_it_requires_sign_in(client, sample_incident):
    for url in (LIST, SAMPLE_URL):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_it_lists_incidents_with_open_and_total_item_counts(reader_client, sample_incident):
    mark_done(sample_incident.action_items.order_by("id").first())
    factories.IncidentFactory(external_id="INC-EMPTY", title="No follow-ups")

    response = reader_client.get(LIST)

    assert response.status_code == 200
    rows = {i.external_id: i for i in response.context["page"]}
    assert (rows["INC-2024-0142"].items_open, rows["INC-2024-0142"].items_total) == (4, 5)
    assert rows["INC-2024-0142"].items_done == 1
    assert (rows["INC-EMPTY"].items_open, rows["INC-EMPTY"].items_total) == (0, 0)
    html = response.content.decode()
    assert "Payment Service Degradation" in html
    assert "4 of 5" in html
    assert "1/5 done" in html
    assert f'href="{SAMPLE_URL}"' in html


def test_it_searches_and_filters_by_severity_and_status(reader_client):
    factories.IncidentFactory(
        external_id="INC-1", title="Checkout down", severity="SEV1", status="resolved"
    )
    factories.IncidentFactory(
        external_id="INC-2", title="Slow search", severity="SEV3", status="resolved"
    )
    factories.IncidentFactory(
        external_id="INC-3", title="Checkout slow", severity="SEV3", status="investigating"
    )

    def ids(**params) -> set[str]:
        response = reader_client.get(LIST, params)
        assert response.status_code == 200
        return {i.external_id for i in response.context["page"]}

    assert ids() == {"INC-1", "INC-2", "INC-3"}
    assert ids(q="checkout") == {"INC-1", "INC-3"}
    assert ids(q="inc-2") == {"INC-2"}
    assert ids(severity="SEV3") == {"INC-2", "INC-3"}
    assert ids(status="investigating") == {"INC-3"}
    assert ids(q="checkout", severity="SEV3") == {"INC-3"}


def test_it_offers_the_statuses_in_use(reader_client):
    factories.IncidentFactory(status="monitoring")
    response = reader_client.get(LIST)
    assert ("monitoring", "monitoring") in response.context["form"].fields["status"].choices
    assert 'label for="id_status"' in response.content.decode()


def test_it_paginates_and_keeps_the_filters_in_page_links(reader_client):
    for n in range(30):
        factories.IncidentFactory(external_id=f"INC-P{n:02d}", severity="SEV2")
    factories.IncidentFactory(external_id="INC-OTHER", severity="SEV4")

    first = reader_client.get(LIST, {"severity": "SEV2"})
    second = reader_client.get(LIST, {"severity": "SEV2", "page": 2})

    assert len(first.context["page"]) == 25
    assert len(second.context["page"]) == 5
    assert 'href="?severity=SEV2&amp;page=2"' in first.content.decode()
    # An out-of-range page shows the last page rather than an error.
    assert reader_client.get(LIST, {"page": 99}).status_code == 200


def test_it_lists_with_a_constant_number_of_queries(reader_client):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert reader_client.get(LIST).status_code == 200
        return len(queries)

    factories.ActionItemFactory()
    one = count()
    for _ in range(5):
        factories.ActionItemFactory()
    assert count() == one


def test_it_shows_the_sample_incident(reader_client, sample_incident):
    mark_done(sample_incident.action_items.order_by("id").first())

    response = reader_client.get(SAMPLE_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Payment Service Degradation" in html
    assert "SEV1" in html
    assert "payment-gateway" in html
    assert "Jane Smith" in html
    # Impact
    assert "Affected users percentage" in html
    assert "us-east-1, eu-west-1" in html
    # Timeline
    assert "Database connection pool utilization reaches 95% on payment-gateway primary" in html
    assert "Rollback deployment complete." in html
    # Communications
    assert "Investigating - We are investigating increased error rates" in html
    assert "Resolved - The issue affecting payment processing has been resolved." in html
    # Root cause and contributing factors
    assert "Database connection pool exhaustion caused by ORM 3.2.0" in html
    assert "Insufficient load testing of new ORM version" in html
    assert "No canary deployment process for database configuration or ORM changes" in html
    # Action items, linked, with progress
    for item in sample_incident.action_items.all():
        assert f'href="{reverse("item-detail", args=[item.pk])}"' in html
    assert "1/5 done" in html
    assert "4 open of 5" in html
    assert response.context["items_done"] == 1


def test_it_answers_404_for_an_unknown_incident(reader_client, sample_incident):
    response = reader_client.get(reverse("incident-detail", args=["INC-NOPE"]))
    assert response.status_code == 404


def test_it_shows_an_incident_page_with_a_constant_number_of_queries(reader_client):
    incident = factories.IncidentFactory(external_id="INC-Q")
    url = reverse("incident-detail", args=["INC-Q"])

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert reader_client.get(url).status_code == 200
        return len(queries)

    factories.ActionItemFactory(incident=incident)
    one = count()
    for _ in range(5):
        factories.ActionItemFactory(incident=incident)
    assert count() == one


@pytest.fixture
def hostile_incident(sample_doc) -> Incident:
    payload = f"{XSS_SCRIPT} {XSS_IMG}"
    sample_doc["incident"]["title"] = payload
    sample_doc["events"][0]["description"] = payload
    sample_doc["communications"][0]["message"] = payload
    sample_doc["resolution"]["root_cause"] = payload
    sample_doc["resolution"]["contributing_factors"][0] = payload
    sample_doc["impact"]["degradation_type"] = payload
    sample_doc["action_items"][0]["title"] = payload
    assert import_doc(sample_doc).ok
    return Incident.objects.get(external_id="INC-2024-0142")


def test_it_escapes_document_text_on_the_incident_page(reader_client, hostile_incident):
    html = reader_client.get(SAMPLE_URL).content.decode()
    assert_escaped(html, XSS_SCRIPT)
    assert_escaped(html, XSS_IMG)
    # Title, event, message, root cause, contributing factor, impact, item.
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 7


def test_it_escapes_document_text_on_the_list(reader_client, hostile_incident):
    html = reader_client.get(LIST).content.decode()
    assert_escaped(html, XSS_SCRIPT)
    assert_escaped(html, XSS_IMG)
    html = reader_client.get(LIST, {"q": XSS_SCRIPT}).content.decode()
    assert_escaped(html, XSS_SCRIPT)

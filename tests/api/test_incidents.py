"""/api/v1/incidents/: the list with item counts, the detail, filters and ordering."""

import datetime as dt
import hashlib

import pytest

from tests import factories
from tests.incidents.helpers import import_doc

from .helpers import INCIDENTS, assert_error

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def ids(client, **params) -> list[str]:
    response = client.get(INCIDENTS, params)
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_it_lists_incidents_with_open_and_total_item_counts(reader_client):
    busy = factories.IncidentFactory(external_id="INC-BUSY")
    for status in ["open", "in_progress", "blocked", "cancelled"]:
        factories.ActionItemFactory(incident=busy, status=status)
    factories.ActionItemFactory(
        incident=busy, status="done", completed_at=dt.datetime(2024, 1, 1, tzinfo=UTC)
    )
    factories.IncidentFactory(external_id="INC-QUIET")

    data = reader_client.get(INCIDENTS).json()

    rows = {row["id"]: row for row in data["results"]}
    assert data["count"] == 2
    assert (rows["INC-BUSY"]["items_open"], rows["INC-BUSY"]["items_total"]) == (3, 5)
    assert (rows["INC-QUIET"]["items_open"], rows["INC-QUIET"]["items_total"]) == (0, 0)
    assert set(rows["INC-BUSY"]) == {
        "id",
        "title",
        "severity",
        "status",
        "declared_at",
        "resolved_at",
        "commander",
        "service",
        "affected_services",
        "items_open",
        "items_total",
    }


def test_it_shows_an_incident_with_everything_its_document_gave(reader_client, sample_bytes):
    import_doc(sample_bytes)

    response = reader_client.get(f"{INCIDENTS}INC-2024-0142/")

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["id"] == "INC-2024-0142"
    assert data["title"] == "Payment Service Degradation"
    assert (data["severity"], data["status"]) == ("SEV1", "resolved")
    assert data["declared_at"] == "2024-01-15T14:23:00Z"
    assert data["affected_services"] == ["checkout", "subscription-billing"]
    assert (data["items_open"], data["items_total"]) == (5, 5)
    assert len(data["timeline"]) == 18
    assert data["timeline"][0]["type"] == "trigger"
    assert data["timeline"][0]["metadata"] == {
        "metric": "db_pool_utilization",
        "value": 95,
        "threshold": 90,
    }
    assert data["communications"] and set(data["communications"][0]) == {
        "timestamp",
        "channel",
        "audience",
        "message",
    }
    assert data["participants"][0] == {
        "name": "Jane Smith",
        "role": "Incident Commander",
        "email": data["participants"][0]["email"],
    }
    assert data["participants"][1]["name"] == "Alice Chen"
    assert data["impact"]["affected_regions"] == ["us-east-1", "eu-west-1"]
    assert data["resolution"]["customer_impact"]["failed_transactions"] == 342
    assert data["root_cause"].startswith("Database connection pool exhaustion")
    assert data["document_sha256"] == hashlib.sha256(sample_bytes).hexdigest()
    items = data["action_items"]
    assert len(items) == 5
    assert [i["deadline"] for i in items] == sorted(i["deadline"] for i in items)
    assert items[0]["title"].startswith("Add connection pool utilization alerting")
    assert items[0]["owner"] == "alice@company.com"
    assert items[0]["incident"] == "INC-2024-0142"


def test_it_gives_404_for_an_unknown_incident(reader_client):
    factories.IncidentFactory(external_id="INC-1")

    errors = assert_error(reader_client.get(f"{INCIDENTS}INC-404/"), 404)

    assert errors[0]["code"] == "not_found"


def test_it_filters_by_severity_status_and_service(reader_client):
    factories.IncidentFactory(external_id="A", severity="SEV1", status="resolved", service="db")
    factories.IncidentFactory(external_id="B", severity="SEV2", status="mitigated", service="db")
    factories.IncidentFactory(external_id="C", severity="SEV3", status="resolved", service="web")

    assert sorted(ids(reader_client, severity="SEV2")) == ["B"]
    assert sorted(ids(reader_client, severity=["SEV1", "SEV3"])) == ["A", "C"]
    assert sorted(ids(reader_client, status="resolved")) == ["A", "C"]
    assert sorted(ids(reader_client, service="db")) == ["A", "B"]
    assert sorted(ids(reader_client, service="db", status="resolved")) == ["A"]
    assert_error(reader_client.get(INCIDENTS, {"severity": "SEV9"}), 400)


def test_it_filters_by_declaration_time(reader_client):
    for external_id, day in [("JAN", 10), ("FEB", 40), ("MAR", 70)]:
        factories.IncidentFactory(
            external_id=external_id,
            declared_at=dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(days=day),
        )

    assert sorted(ids(reader_client, declared_after="2024-02-01T00:00:00Z")) == ["FEB", "MAR"]
    assert sorted(ids(reader_client, declared_before="2024-02-10T00:00:00Z")) == ["JAN"]
    assert sorted(
        ids(
            reader_client,
            declared_after="2024-02-01T00:00:00Z",
            declared_before="2024-03-01T00:00:00Z",
        )
    ) == ["FEB"]
    assert_error(reader_client.get(INCIDENTS, {"declared_after": "last week"}), 400)


def test_it_reads_any_iso_offset_as_the_same_instant(reader_client):
    factories.IncidentFactory(
        external_id="LATE", declared_at=dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    )

    # +19:33 is valid ISO 8601 but beyond what PostgreSQL accepts as an offset.
    assert ids(reader_client, declared_after="2024-03-02T07:32:00+19:33") == ["LATE"]
    assert ids(reader_client, declared_after="2024-03-02T07:34:00+19:33") == []


def test_it_rejects_a_time_that_leaves_the_calendar_in_utc(reader_client):
    response = reader_client.get(INCIDENTS, {"declared_before": "0001-01-01T00:10:00+05:00"})

    assert_error(response, 400)
    assert "declared_before" in response.content.decode()


def test_it_searches_id_and_title(reader_client):
    factories.IncidentFactory(external_id="INC-2024-0142", title="Payment degradation")
    factories.IncidentFactory(external_id="INC-2024-0200", title="Search outage")

    assert ids(reader_client, q="payment") == ["INC-2024-0142"]
    assert ids(reader_client, q="0200") == ["INC-2024-0200"]


def test_it_lists_the_latest_declared_first_and_orders_on_request(reader_client):
    base = dt.datetime(2024, 1, 1, tzinfo=UTC)
    factories.IncidentFactory(external_id="OLD", declared_at=base, severity="SEV1")
    factories.IncidentFactory(
        external_id="NEW", declared_at=base + dt.timedelta(days=2), severity="SEV3"
    )
    factories.IncidentFactory(
        external_id="MID", declared_at=base + dt.timedelta(days=1), severity="SEV2"
    )

    assert ids(reader_client) == ["NEW", "MID", "OLD"]
    assert ids(reader_client, ordering="declared_at") == ["OLD", "MID", "NEW"]
    assert ids(reader_client, ordering="severity") == ["OLD", "MID", "NEW"]
    assert ids(reader_client, ordering="-external_id") == ["OLD", "NEW", "MID"]


def test_it_refuses_to_change_an_incident_through_the_api(manager_client):
    factories.IncidentFactory(external_id="INC-1")

    assert_error(manager_client.patch(f"{INCIDENTS}INC-1/", {"title": "x"}, format="json"), 405)
    assert_error(manager_client.delete(f"{INCIDENTS}INC-1/"), 405)

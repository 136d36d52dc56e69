"""POST /api/v1/incidents/import/: the same import as the command, for managers."""

import io
import json

import pytest
from django.core.management import call_command
from django.test import override_settings

from incidents.models import DocumentImport, Incident, IncidentDocument
from tracker.models import ActionItem, ActionItemChange

from .helpers import IMPORT, assert_error

pytestmark = pytest.mark.django_db

SUMMARY_KEYS = {
    "path",
    "incident",
    "result",
    "items_created",
    "items_updated",
    "items_unchanged",
    "items_removed_from_source",
    "errors",
    "warnings",
}


def post_json(client, raw: bytes, query: str = ""):
    return client.post(IMPORT + query, raw, content_type="application/json")


def post_file(client, raw: bytes, name: str = "INC-2024-0142.json", query: str = ""):
    upload = io.BytesIO(raw)
    upload.name = name
    return client.post(IMPORT + query, {"file": upload}, format="multipart")


def assert_nothing_written():
    assert not Incident.objects.exists()
    assert not IncidentDocument.objects.exists()
    assert not DocumentImport.objects.exists()
    assert not ActionItem.objects.exists()
    assert not ActionItemChange.objects.exists()


def assert_import_rejected(response) -> list[dict]:
    """A rejection: the command's summary, in the API's one error shape too."""
    assert response.status_code == 400, response.content
    data = response.json()
    assert set(data) == {*SUMMARY_KEYS, "status"}
    assert (data["status"], data["result"]) == (400, "rejected")
    assert data["errors"]
    for error in data["errors"]:
        assert set(error) == {"path", "code", "message"}
        assert error["message"] and error["code"] == "invalid"
    return data["errors"]


def test_it_creates_then_reports_unchanged(manager_client, manager, sample_bytes):
    first = post_json(manager_client, sample_bytes)

    assert first.status_code == 201, first.content
    assert first.json() == {
        "path": "-",
        "incident": "INC-2024-0142",
        "result": "created",
        "items_created": 5,
        "items_updated": 0,
        "items_unchanged": 0,
        "items_removed_from_source": 0,
        "errors": [],
        "warnings": [],
    }
    assert Incident.objects.get().external_id == "INC-2024-0142"
    assert ActionItem.objects.count() == 5
    log = DocumentImport.objects.get()
    assert (log.source, log.imported_by) == ("api", manager)

    again = post_json(manager_client, sample_bytes)

    assert again.status_code == 200, again.content
    assert again.json()["result"] == "unchanged"
    assert again.json()["items_unchanged"] == 5
    assert ActionItem.objects.count() == 5


def test_it_reports_an_update_with_200(manager_client, sample_bytes, sample_doc):
    post_json(manager_client, sample_bytes)
    sample_doc["action_items"][0]["priority"] = "P0"

    response = post_json(manager_client, json.dumps(sample_doc).encode())

    assert response.status_code == 200, response.content
    assert (response.json()["result"], response.json()["items_updated"]) == ("updated", 1)
    assert ActionItem.objects.get(title__startswith="Add connection pool").priority == "P0"


def test_it_imports_a_multipart_file(manager_client, sample_bytes):
    response = post_file(manager_client, sample_bytes, name="postmortem.json")

    assert response.status_code == 201, response.content
    assert response.json()["path"] == "postmortem.json"
    assert response.json()["items_created"] == 5
    assert bytes(IncidentDocument.objects.get().content) == sample_bytes


def test_it_asks_for_the_file_field_in_a_multipart_body(manager_client, sample_bytes):
    upload = io.BytesIO(sample_bytes)
    upload.name = "x.json"

    response = manager_client.post(IMPORT, {"document": upload}, format="multipart")

    errors = assert_error(response, 400)
    assert errors[0]["path"] == "file"
    assert_nothing_written()


@pytest.mark.parametrize("flag", ["1", "true", "yes"])
def test_it_writes_nothing_on_a_dry_run(manager_client, sample_bytes, flag):
    response = post_json(manager_client, sample_bytes, query=f"?dry_run={flag}")

    assert response.status_code == 200, response.content
    assert response.json()["result"] == "created"
    assert response.json()["items_created"] == 5
    assert_nothing_written()


def test_it_answers_a_dry_run_with_200_since_nothing_was_created(manager_client, sample_bytes):
    response = post_file(manager_client, sample_bytes, query="?dry_run=1")

    assert response.status_code == 200, response.content
    assert response.json()["result"] == "created"
    assert_nothing_written()


def test_it_reports_the_same_summary_as_the_command(manager_client, sample_bytes, tmp_path):
    path = tmp_path / "INC-2024-0142.json"
    path.write_bytes(sample_bytes)
    out = io.StringIO()
    call_command("import_incidents", str(path), "--json", "--dry-run", stdout=out)
    (from_command,) = json.loads(out.getvalue())

    from_api = post_file(manager_client, sample_bytes, name=path.name, query="?dry_run=1").json()

    assert set(from_api) == SUMMARY_KEYS
    assert from_api == {**from_command, "path": path.name}


def test_it_rejects_a_bad_document_naming_the_paths(manager_client, sample_doc):
    sample_doc["incident"]["severity"] = "high"
    sample_doc["action_items"][0]["deadline"] = "soon"

    response = post_json(manager_client, json.dumps(sample_doc).encode())

    errors = assert_import_rejected(response)
    assert {e["path"] for e in errors} == {"incident.severity", "action_items[0].deadline"}
    assert_nothing_written()


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b"\xff\xfe\x00garbage"])
def test_it_rejects_a_body_that_is_not_a_document(manager_client, raw):
    response = post_json(manager_client, raw)

    errors = assert_import_rejected(response)
    assert all(e["path"] for e in errors)
    assert_nothing_written()


def test_it_refuses_a_reader(reader_client, sample_bytes):
    assert_error(post_json(reader_client, sample_bytes), 403)
    assert_nothing_written()


def test_it_refuses_an_owner(owner_client, sample_bytes):
    assert_error(post_file(owner_client, sample_bytes), 403)
    assert_nothing_written()


def test_it_refuses_an_anonymous_caller(api_client, sample_bytes):
    assert_error(post_json(api_client, sample_bytes), 401)
    assert_nothing_written()


def test_it_refuses_a_json_body_over_the_limit(manager_client, sample_bytes):
    with override_settings(TRACKER_IMPORT_MAX_BYTES=1000):
        response = post_json(manager_client, sample_bytes)

    errors = assert_error(response, 413)
    assert "1,000 bytes" in errors[0]["message"]
    assert_nothing_written()


def test_it_refuses_a_file_over_the_limit(manager_client, sample_bytes):
    with override_settings(TRACKER_IMPORT_MAX_BYTES=1000):
        response = post_file(manager_client, sample_bytes)

    assert_error(response, 413)
    assert_nothing_written()


def test_it_accepts_a_body_exactly_at_the_limit(manager_client, sample_bytes):
    with override_settings(TRACKER_IMPORT_MAX_BYTES=len(sample_bytes)):
        response = post_json(manager_client, sample_bytes)

    assert response.status_code == 201, response.content


def test_it_refuses_another_media_type(manager_client, sample_bytes):
    response = manager_client.post(IMPORT, sample_bytes, content_type="text/plain")

    assert_error(response, 415)
    assert_nothing_written()


def test_it_records_who_imported_in_the_items_history(manager_client, manager, sample_bytes):
    post_json(manager_client, sample_bytes)

    changes = ActionItemChange.objects.filter(field="created")
    assert changes.count() == 5
    assert {(c.source, c.actor) for c in changes} == {("import", manager)}

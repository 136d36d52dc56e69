import json

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from incidents.models import DocumentImport, Incident, IncidentDocument
from tests import factories
from tests.incidents.helpers import doc_bytes, import_doc
from tracker.models import ActionItem, ActionItemChange

pytestmark = pytest.mark.django_db

IMPORT = reverse("admin:incidents_incident_import")
CHANGELIST = reverse("admin:incidents_incident_changelist")


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/json")


def report(response) -> list:
    return [summary for summary, _url in response.context["reports"]]


def incident_url(incident: Incident) -> str:
    return reverse("admin:incidents_incident_change", args=[incident.pk])


# --- Import page ---------------------------------------------------------------------


def test_it_imports_uploaded_documents_for_a_manager(client, manager, sample_bytes):
    client.force_login(manager)

    response = client.post(IMPORT, {"documents": [upload("INC-2024-0142.json", sample_bytes)]})

    assert response.status_code == 200
    (summary,) = report(response)
    assert (summary.path, summary.incident, summary.result) == (
        "INC-2024-0142.json",
        "INC-2024-0142",
        "created",
    )
    assert summary.items_created == 5
    incident = Incident.objects.get(external_id="INC-2024-0142")
    assert incident.action_items.count() == 5
    imported = DocumentImport.objects.get()
    assert (imported.source, imported.imported_by, imported.result) == ("admin", manager, "created")
    body = response.content.decode()
    assert "1 document: 1 created" in body
    assert f'href="{incident_url(incident)}"' in body
    assert "nothing written" not in body


def test_it_imports_several_files_at_once(client, manager, sample_doc, sample_bytes):
    client.force_login(manager)
    other = {**sample_doc, "incident": {**sample_doc["incident"], "id": "INC-2024-0200"}}

    response = client.post(
        IMPORT,
        {"documents": [upload("a.json", sample_bytes), upload("b.json", doc_bytes(other))]},
    )

    assert [(s.path, s.result) for s in report(response)] == [
        ("a.json", "created"),
        ("b.json", "created"),
    ]
    assert set(Incident.objects.values_list("external_id", flat=True)) == {
        "INC-2024-0142",
        "INC-2024-0200",
    }


def test_it_reports_a_reimport_as_unchanged(client, manager, sample_bytes):
    import_doc(sample_bytes)
    client.force_login(manager)
    response = client.post(IMPORT, {"documents": [upload("again.json", sample_bytes)]})
    (summary,) = report(response)
    assert (summary.result, summary.items_unchanged) == ("unchanged", 5)


def test_it_writes_nothing_on_a_dry_run(client, manager, sample_bytes):
    client.force_login(manager)

    response = client.post(
        IMPORT, {"documents": [upload("doc.json", sample_bytes)], "dry_run": "on"}
    )

    (summary,) = report(response)
    assert (summary.result, summary.items_created) == ("created", 5)
    assert "Dry run, nothing written: 1 document: 1 created" in response.content.decode()
    assert not Incident.objects.exists()
    assert not ActionItem.objects.exists()
    assert not IncidentDocument.objects.exists()
    assert not DocumentImport.objects.exists()


def test_it_shows_the_errors_of_a_bad_document_and_writes_nothing(client, manager, sample_doc):
    client.force_login(manager)
    sample_doc["incident"]["severity"] = "SEV9"
    sample_doc["action_items"][0]["priority"] = "P9"

    response = client.post(IMPORT, {"documents": [upload("bad.json", doc_bytes(sample_doc))]})

    assert response.status_code == 400  # nothing importable: bad input, errors shown
    (summary,) = report(response)
    assert summary.result == "rejected"
    assert [e.path for e in summary.errors] == ["incident.severity", "action_items[0].priority"]
    body = response.content.decode()
    assert "bad.json" in body
    assert "<code>incident.severity</code>: expected one of SEV1" in body
    assert "<code>action_items[0].priority</code>" in body
    assert not Incident.objects.exists()
    assert not DocumentImport.objects.exists()


def test_it_imports_the_good_documents_of_a_mixed_upload(client, manager, sample_bytes):
    client.force_login(manager)
    response = client.post(
        IMPORT,
        {"documents": [upload("bad.json", b"{not json"), upload("good.json", sample_bytes)]},
    )
    assert [s.result for s in report(response)] == ["rejected", "created"]
    assert "2 documents: 1 created, 1 rejected" in response.content.decode()
    assert Incident.objects.count() == 1


def test_it_shows_warnings(client, manager, sample_bytes, sample_doc):
    import_doc(sample_bytes)
    # Edited in the tracker, then changed in the document: a conflict warning.
    item = ActionItem.objects.get(source_key__contains="connection pool utilization")
    ActionItem.objects.filter(pk=item.pk).update(priority="P0")
    sample_doc["action_items"][0]["priority"] = "P3"
    client.force_login(manager)

    response = client.post(IMPORT, {"documents": [upload("v2.json", doc_bytes(sample_doc))]})

    (summary,) = report(response)
    assert summary.warnings
    assert "<code>action_items[0].priority</code>: conflict" in response.content.decode()


def test_it_rejects_a_file_over_the_size_limit(client, manager, sample_bytes, settings):
    settings.TRACKER_IMPORT_MAX_BYTES = 100
    client.force_login(manager)

    response = client.post(IMPORT, {"documents": [upload("big.json", sample_bytes)]})

    (summary,) = report(response)
    assert summary.result == "rejected"
    # Only one byte past the limit is read: the service sees 101 bytes.
    assert summary.errors[0].message == "document is 101 bytes; the limit is 100 bytes"
    assert not Incident.objects.exists()


def test_it_reports_an_empty_file_through_the_service(client, manager):
    client.force_login(manager)
    response = client.post(IMPORT, {"documents": [upload("empty.json", b"")]})
    (summary,) = report(response)
    assert summary.errors[0].message == "document is empty"


def test_it_asks_for_at_least_one_file(client, manager):
    client.force_login(manager)
    response = client.post(IMPORT, {"dry_run": "on"})
    assert response.status_code == 400
    assert response.context["form"].errors == {"documents": ["This field is required."]}
    assert response.context["reports"] == []


def test_it_shows_the_upload_form(client, manager):
    client.force_login(manager)
    response = client.get(IMPORT)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'enctype="multipart/form-data"' in body
    assert 'type="file" name="documents"' in body
    assert "multiple" in body
    assert 'name="dry_run"' in body


def test_it_lets_superusers_and_users_who_may_add_incidents_import(client, superuser, sample_bytes):
    client.force_login(superuser)
    assert client.get(IMPORT).status_code == 200

    importer = factories.UserFactory(is_staff=True)
    importer.user_permissions.add(Permission.objects.get(codename="add_incident"))
    client.force_login(importer)
    response = client.post(IMPORT, {"documents": [upload("doc.json", sample_bytes)]})
    assert response.status_code == 200
    assert DocumentImport.objects.get().imported_by == importer


def test_it_forbids_the_import_to_staff_who_are_not_managers(client, sample_bytes):
    staff = factories.UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_incident"))
    client.force_login(staff)

    assert client.get(IMPORT).status_code == 403
    response = client.post(IMPORT, {"documents": [upload("doc.json", sample_bytes)]})
    assert response.status_code == 403
    assert not Incident.objects.exists()


def test_it_sends_anonymous_users_to_the_login_page(client, sample_bytes):
    response = client.post(IMPORT, {"documents": [upload("doc.json", sample_bytes)]})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not Incident.objects.exists()


def test_it_refuses_an_import_without_a_csrf_token(manager, sample_bytes):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    response = client.post(IMPORT, {"documents": [upload("doc.json", sample_bytes)]})
    assert response.status_code == 403
    assert not Incident.objects.exists()


def test_it_shows_the_import_button_to_managers_only(client, manager):
    client.force_login(manager)
    assert f'href="{IMPORT}"' in client.get(CHANGELIST).content.decode()

    viewer = factories.UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_incident"))
    client.force_login(viewer)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert f'href="{IMPORT}"' not in response.content.decode()


# --- Incidents list and page ----------------------------------------------------------


def test_it_lists_incidents_with_open_and_total_item_counts(client, manager):
    client.force_login(manager)
    incident = factories.IncidentFactory()
    factories.ActionItemFactory.create_batch(2, incident=incident, status="open")
    factories.ActionItemFactory(incident=incident, status="blocked")
    factories.ActionItemFactory(incident=incident, status="cancelled")
    empty = factories.IncidentFactory()

    response = client.get(CHANGELIST)

    counts = {i.pk: (i.items_open, i.items_total) for i in response.context["cl"].result_list}
    assert counts == {incident.pk: (3, 4), empty.pk: (0, 0)}


def test_it_lists_incidents_with_a_constant_number_of_queries(client, manager):
    client.force_login(manager)

    def add_incidents(n):
        for _ in range(n):
            factories.ActionItemFactory.create_batch(2, incident=factories.IncidentFactory())

    add_incidents(5)
    client.get(CHANGELIST)
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    add_incidents(25)
    with CaptureQueriesContext(connection) as many:
        response = client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 30
    assert len(many) == len(few)


def test_it_searches_and_filters_incidents(client, manager):
    client.force_login(manager)
    wanted = factories.IncidentFactory(commander="Grace Hopper", severity="SEV1", service="dns")
    factories.IncidentFactory(commander="Someone Else", severity="SEV3", service="payments")

    def listed(query):
        return [i.pk for i in client.get(CHANGELIST + query).context["cl"].result_list]

    assert listed("?q=hopper") == [wanted.pk]
    assert listed("?severity__exact=SEV1") == [wanted.pk]
    assert listed("?service=dns") == [wanted.pk]


def test_it_shows_incidents_read_only(client, manager, sample_bytes):
    import_doc(sample_bytes)
    incident = Incident.objects.get()
    client.force_login(manager)

    page = client.get(incident_url(incident))
    assert page.status_code == 200
    assert 'name="title"' not in page.content.decode()

    response = client.post(incident_url(incident), {"title": "Rewritten in the admin"})
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.title == "Payment Service Degradation"
    assert client.get(reverse("admin:incidents_incident_add")).status_code == 403


def test_it_shows_items_timeline_and_the_pretty_printed_document(client, manager, sample_doc):
    raw = json.dumps(sample_doc, separators=(",", ":")).encode()  # compact on purpose
    import_doc(raw)
    incident = Incident.objects.get()
    client.force_login(manager)

    response = client.get(incident_url(incident))

    body = response.content.decode()
    pretty = json.dumps(sample_doc, indent=2, ensure_ascii=False)
    assert escape(pretty) in body
    for item in incident.action_items.all():
        url = reverse("admin:tracker_actionitem_change", args=[item.pk])
        assert f'<a href="{url}">{escape(item.title)}</a>' in body
    assert escape(sample_doc["events"][0]["description"]) in body
    raw_url = reverse("admin:incidents_incidentdocument_raw", args=[incident.current_document_id])
    assert f'href="{raw_url}"' in body
    revisions = client.get(
        reverse("admin:incidents_incidentdocument_changelist")
        + f"?incident__id__exact={incident.pk}"
    )
    assert [d.pk for d in revisions.context["cl"].result_list] == [incident.current_document_id]
    # The inlines are summaries: nothing to edit from the incident's page.
    for inline in response.context["inline_admin_formsets"]:
        assert inline.has_change_permission is False
        assert inline.has_add_permission is False


# --- Stored documents -----------------------------------------------------------------


def test_it_shows_the_stored_document_verbatim(client, manager, sample_bytes):
    import_doc(sample_bytes, source="command:/tmp/doc.json", user=manager)
    document = IncidentDocument.objects.get()
    client.force_login(manager)

    response = client.get(reverse("admin:incidents_incidentdocument_change", args=[document.pk]))

    assert response.status_code == 200
    body = response.content.decode()
    assert escape(sample_bytes.decode()) in body
    assert document.sha256 in body
    assert "command:/tmp/doc.json" in body
    assert "created" in body


def test_it_downloads_the_raw_document_bytes(client, manager, sample_doc):
    raw = b"\xef\xbb\xbf" + doc_bytes(sample_doc) + b"\n\n"  # BOM and trailing space kept
    import_doc(raw)
    document = IncidentDocument.objects.get()
    client.force_login(manager)

    response = client.get(reverse("admin:incidents_incidentdocument_raw", args=[document.pk]))

    assert response.status_code == 200
    assert response.content == raw
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="INC-2024-0142-{document.sha256[:12]}.json"'
    )


def test_it_forbids_the_raw_document_to_staff_without_view_permission(client, sample_bytes):
    import_doc(sample_bytes)
    document = IncidentDocument.objects.get()
    client.force_login(factories.UserFactory(is_staff=True))
    url = reverse("admin:incidents_incidentdocument_raw", args=[document.pk])
    assert client.get(url).status_code == 403


def test_it_never_adds_changes_or_deletes_documents_or_imports(client, superuser, sample_bytes):
    import_doc(sample_bytes)
    document = IncidentDocument.objects.get()
    log = DocumentImport.objects.get()
    client.force_login(superuser)

    for model, obj in (("incidentdocument", document), ("documentimport", log)):
        assert client.get(reverse(f"admin:incidents_{model}_add")).status_code == 403
        change = reverse(f"admin:incidents_{model}_change", args=[obj.pk])
        assert client.get(change).status_code == 200
        assert client.post(change, {}).status_code == 403
        delete = reverse(f"admin:incidents_{model}_delete", args=[obj.pk])
        assert client.post(delete, {"post": "yes"}).status_code == 403
    assert IncidentDocument.objects.filter(pk=document.pk).exists()
    assert DocumentImport.objects.filter(pk=log.pk).exists()


def test_it_lists_imports_with_their_source_user_and_result(client, manager, sample_bytes):
    import_doc(sample_bytes, source="admin", user=manager)
    client.force_login(manager)
    response = client.get(reverse("admin:incidents_documentimport_changelist"))
    (row,) = response.context["cl"].result_list
    assert (row.source, row.imported_by, row.result) == ("admin", manager, "created")
    assert manager.username in response.content.decode()


def test_the_admin_import_writes_item_history_with_source_import(client, manager, sample_bytes):
    client.force_login(manager)
    client.post(IMPORT, {"documents": [upload("doc.json", sample_bytes)]})
    created = ActionItemChange.objects.filter(field="created")
    assert created.count() == 5
    assert {(c.source, c.actor_id) for c in created} == {("import", manager.pk)}

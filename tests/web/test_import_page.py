"""The import page: preview (a dry run), then confirm the very bytes previewed; managers only."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from incidents.models import DocumentImport, Incident, IncidentDocument
from incidents.views import PREVIEW_SESSION_KEY
from tests import factories
from tests.incidents.helpers import doc_bytes, import_doc
from tracker.models import ActionItem

pytestmark = pytest.mark.django_db

IMPORT = reverse("import")
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def upload(name: str, raw: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, raw, content_type="application/json")


def preview(client, *files: tuple[str, bytes]):
    return client.post(
        IMPORT, {"action": "preview", "documents": [upload(name, raw) for name, raw in files]}
    )


def confirm(client, preview_response):
    preview_id = preview_response.context["confirm_form"].initial["preview"]
    return client.post(IMPORT, {"action": "confirm", "preview": preview_id})


def reports(response) -> list[dict]:
    return [r["summary"].as_dict() for r in response.context["reports"]]


def nothing_written() -> bool:
    return not (
        Incident.objects.exists()
        or ActionItem.objects.exists()
        or IncidentDocument.objects.exists()
        or DocumentImport.objects.exists()
    )


def test_it_is_for_managers_only(client, sample_bytes):
    client.force_login(factories.UserFactory(username="reader"))
    assert client.get(IMPORT).status_code == 403
    assert preview(client, ("a.json", sample_bytes)).status_code == 403
    assert client.post(IMPORT, {"action": "confirm", "preview": "x"}).status_code == 403
    assert nothing_written()


def test_it_sends_strangers_to_sign_in(client):
    response = client.get(IMPORT)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_shows_the_upload_form_to_managers(manager_client):
    response = manager_client.get(IMPORT)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'type="file"' in html
    assert 'label for="id_documents"' in html
    assert "csrfmiddlewaretoken" in html


def test_it_previews_without_writing(manager_client, sample_bytes):
    response = preview(manager_client, ("INC-2024-0142.json", sample_bytes))

    assert response.status_code == 200
    assert reports(response)[0]["result"] == "created"
    assert reports(response)[0]["items_created"] == 5
    html = response.content.decode()
    assert "Preview, nothing written yet: 1 document: 1 created" in html
    assert "would be created" in html
    assert 'value="confirm"' in html
    assert nothing_written()
    assert manager_client.session[PREVIEW_SESSION_KEY]["documents"][0]["name"] == (
        "INC-2024-0142.json"
    )


def test_it_imports_the_previewed_bytes_on_confirm(manager_client, sample_bytes):
    previewed = preview(manager_client, ("INC-2024-0142.json", sample_bytes))

    response = confirm(manager_client, previewed)

    assert response.status_code == 200
    assert reports(response) == reports(previewed)
    assert response.context["changed_since_preview"] == []
    incident = Incident.objects.get(external_id="INC-2024-0142")
    assert incident.action_items.count() == 5
    assert bytes(incident.current_document.content) == sample_bytes
    log = DocumentImport.objects.get()
    assert (log.source, log.imported_by.pk) == ("web", response.wsgi_request.user.pk)
    html = response.content.decode()
    assert f'href="{reverse("incident-detail", args=["INC-2024-0142"])}"' in html
    assert PREVIEW_SESSION_KEY not in manager_client.session


def test_it_confirms_a_preview_only_once(manager_client, sample_bytes):
    previewed = preview(manager_client, ("INC-2024-0142.json", sample_bytes))
    assert confirm(manager_client, previewed).status_code == 200

    again = confirm(manager_client, previewed)

    assert again.status_code == 400
    assert DocumentImport.objects.count() == 1


def test_it_refuses_a_confirm_with_nothing_previewed(manager_client):
    response = manager_client.post(IMPORT, {"action": "confirm", "preview": "made-up"})

    assert response.status_code == 400
    assert "There is nothing to import" in response.content.decode()
    assert nothing_written()


def test_it_refuses_to_confirm_a_preview_replaced_by_a_newer_one(manager_client, sample_doc):
    first = preview(manager_client, ("first.json", doc_bytes(sample_doc)))
    sample_doc["incident"]["id"] = "INC-2024-0999"
    preview(manager_client, ("second.json", doc_bytes(sample_doc)))

    response = confirm(manager_client, first)

    assert response.status_code == 409
    assert nothing_written()


def test_it_forgets_a_cancelled_preview(manager_client, sample_bytes):
    previewed = preview(manager_client, ("a.json", sample_bytes))
    manager_client.post(IMPORT, {"action": "cancel"})

    assert confirm(manager_client, previewed).status_code == 400
    assert nothing_written()


def test_it_shows_path_errors_of_a_bad_document_and_writes_nothing(manager_client, sample_doc):
    del sample_doc["incident"]["title"]
    sample_doc["action_items"][1]["priority"] = "P9"

    response = preview(manager_client, ("bad.json", doc_bytes(sample_doc)))

    assert response.status_code == 400  # nothing importable: bad input, errors shown
    paths = [e["path"] for e in reports(response)[0]["errors"]]
    assert "incident.title" in paths
    assert "action_items[1].priority" in paths
    html = response.content.decode()
    assert "<code>incident.title</code>" in html
    assert "<code>action_items[1].priority</code>" in html
    assert response.context["confirm_form"] is None
    assert 'value="confirm"' not in html
    assert PREVIEW_SESSION_KEY not in manager_client.session
    assert manager_client.post(IMPORT, {"action": "confirm", "preview": "x"}).status_code == 400
    assert nothing_written()


def test_it_shows_an_unreadable_document_as_rejected(manager_client):
    response = preview(manager_client, ("broken.json", b'{"incident": '))
    assert reports(response)[0]["result"] == "rejected"
    assert reports(response)[0]["errors"]
    assert nothing_written()


def test_it_imports_only_the_documents_that_passed_the_preview(manager_client, sample_doc):
    good = doc_bytes(sample_doc)
    sample_doc["incident"]["id"] = "INC-2024-0200"
    sample_doc["incident"]["severity"] = "SEV9"
    bad = doc_bytes(sample_doc)
    previewed = preview(manager_client, ("good.json", good), ("bad.json", bad))
    assert "the 1 rejected one will be skipped" in previewed.content.decode()

    response = confirm(manager_client, previewed)

    assert [r["result"] for r in reports(response)] == ["created"]
    assert list(Incident.objects.values_list("external_id", flat=True)) == ["INC-2024-0142"]


def test_it_previews_a_changed_reimport_as_updated_kept_and_flagged(manager_client, sample_doc):
    assert import_doc(sample_doc).ok
    sample_doc["action_items"][0]["deadline"] = "2024-01-25"  # updated
    removed = sample_doc["action_items"].pop()  # flagged removed from source

    response = preview(manager_client, ("INC-2024-0142.json", doc_bytes(sample_doc)))

    report = reports(response)[0]
    assert report["result"] == "updated"
    assert (report["items_updated"], report["items_unchanged"]) == (1, 3)
    assert report["items_removed_from_source"] == 1
    assert "would be updated" in response.content.decode()
    # Nothing written: the deadline and the removed item are as they were.
    first = ActionItem.objects.get(title=sample_doc["action_items"][0]["title"])
    assert first.deadline.isoformat() == "2024-01-22"
    assert not ActionItem.objects.get(title=removed["title"]).removed_from_source

    confirmed = confirm(manager_client, response)
    assert reports(confirmed) == reports(response)
    assert ActionItem.objects.get(title=removed["title"]).removed_from_source


def test_it_caps_the_bytes_kept_between_preview_and_confirm(manager_client, sample_doc, settings):
    one = doc_bytes(sample_doc)
    settings.TRACKER_IMPORT_MAX_BYTES = len(one) + 100
    sample_doc["incident"]["id"] = "INC-2024-0300"

    response = preview(manager_client, ("a.json", one), ("b.json", doc_bytes(sample_doc)))

    assert response.status_code == 400
    assert "preview at most" in response.content.decode()
    assert PREVIEW_SESSION_KEY not in manager_client.session
    assert nothing_written()


def test_it_needs_the_csrf_token(manager, sample_bytes):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    response = preview(client, ("a.json", sample_bytes))
    assert response.status_code == 403
    assert PREVIEW_SESSION_KEY not in client.session


def test_it_escapes_document_text_in_the_report(manager_client, sample_doc):
    payload = f"{XSS_SCRIPT} {XSS_IMG}"
    sample_doc["action_items"][0]["title"] = payload
    assert import_doc(sample_doc).ok
    # The item disappears from the document: the warning quotes its title.
    sample_doc["action_items"].pop(0)
    sample_doc["incident"]["title"] = payload
    sample_doc["events"][0]["description"] = payload
    sample_doc["resolution"]["root_cause"] = payload
    bad = json.loads(doc_bytes(sample_doc))
    bad["incident"]["severity"] = payload

    response = preview(
        manager_client, (f"{XSS_SCRIPT}.json", doc_bytes(sample_doc)), ("bad.json", doc_bytes(bad))
    )

    html = response.content.decode()
    assert any(XSS_SCRIPT in w["message"] for w in reports(response)[0]["warnings"])
    assert XSS_SCRIPT not in html
    assert XSS_IMG not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html

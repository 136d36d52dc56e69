"""Every error, whatever raised it, has one shape: {"status", "errors": [{path, code, message}]}."""

import pytest
from django.db import IntegrityError
from django.test import override_settings
from rest_framework.test import APIRequestFactory

from config.api import exception_handler
from tests import factories
from tracker.models import ActionItem

from .helpers import IMPORT, ITEMS, assert_error, error_paths, item_url

pytestmark = pytest.mark.django_db


def test_it_names_each_invalid_field_in_a_400(manager_client):
    response = manager_client.post(
        ITEMS, {"title": "", "priority": "P9", "deadline": "nope"}, format="json"
    )

    errors = assert_error(response, 400)
    assert sorted(error_paths(response)) == ["deadline", "priority", "title"]
    assert {e["code"] for e in errors} >= {"invalid_choice"}


def test_it_gives_a_domain_validation_error_the_same_shape(manager_client):
    item = factories.ActionItemFactory(status="cancelled")

    response = manager_client.patch(item_url(item), {"status": "done"}, format="json")

    assert_error(response, 400)
    assert error_paths(response) == ["status"]


def test_it_refuses_malformed_json_with_400(manager_client):
    response = manager_client.post(ITEMS, b'{"title": "x",', content_type="application/json")

    errors = assert_error(response, 400)
    assert errors[0]["path"] is None
    assert errors[0]["code"] == "parse_error"
    assert not ActionItem.objects.exists()


def test_it_refuses_a_body_that_is_not_an_object(manager_client):
    response = manager_client.post(ITEMS, b"[1, 2]", content_type="application/json")

    assert_error(response, 400)
    assert not ActionItem.objects.exists()


def test_it_gives_401_the_same_shape(api_client):
    errors = assert_error(api_client.get(ITEMS), 401)

    assert errors[0]["code"] == "not_authenticated"


def test_it_gives_a_bad_token_401_the_same_shape(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer nope")

    errors = assert_error(api_client.get(ITEMS), 401)

    assert errors[0]["code"] == "authentication_failed"


def test_it_gives_403_the_same_shape(reader_client):
    errors = assert_error(reader_client.post(ITEMS, {"title": "x"}, format="json"), 403)

    assert errors[0]["code"] == "permission_denied"


@pytest.mark.parametrize(
    "url",
    [
        item_url(987654),
        item_url("not-a-number"),
        item_url("not-a-number", "history"),
        item_url("not-a-number", "comments"),
        "/api/v1/people/987654/",
        "/api/v1/people/nope/",
        "/api/v1/incidents/INC-NOPE/",
    ],
)
def test_it_gives_404_the_same_shape(reader_client, url):
    errors = assert_error(reader_client.get(url), 404)

    assert errors[0]["code"] == "not_found"


def test_it_gives_404_the_same_shape_on_patch_of_an_unknown_item(manager_client):
    assert_error(manager_client.patch(item_url(987654), {"title": "x"}, format="json"), 404)
    assert_error(manager_client.patch(item_url("abc"), {"title": "x"}, format="json"), 404)
    assert_error(manager_client.delete(item_url("abc")), 404)


def test_it_gives_405_the_same_shape(manager_client):
    item = factories.ActionItemFactory()

    errors = assert_error(manager_client.put(item_url(item), {"title": "x"}, format="json"), 405)

    assert errors[0]["code"] == "method_not_allowed"
    assert_error(manager_client.delete("/api/v1/people/1/"), 405)


def test_it_gives_412_the_same_shape(manager_client):
    item = factories.ActionItemFactory()

    response = manager_client.patch(
        item_url(item), {"title": "x"}, format="json", HTTP_IF_MATCH='"0.0"'
    )

    assert assert_error(response, 412)[0]["code"] == "precondition_failed"


def test_it_gives_413_the_same_shape(manager_client, sample_bytes):
    with override_settings(TRACKER_IMPORT_MAX_BYTES=100):
        response = manager_client.post(IMPORT, sample_bytes, content_type="application/json")

    assert assert_error(response, 413)[0]["code"] == "payload_too_large"


def test_it_refuses_an_oversized_json_body_with_413_and_writes_nothing(manager_client):
    body = b'{"title": "' + b"x" * 5000 + b'", "priority": "P1"}'
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        response = manager_client.post(ITEMS, body, content_type="application/json")

    assert assert_error(response, 413)[0]["code"] == "payload_too_large"
    assert not ActionItem.objects.exists()


def test_it_gives_415_the_same_shape(manager_client):
    response = manager_client.post(ITEMS, b"title=x", content_type="text/plain")

    assert assert_error(response, 415)[0]["code"] == "unsupported_media_type"


def test_it_gives_an_integrity_error_409_the_same_shape():
    request = APIRequestFactory().post(ITEMS)

    response = exception_handler(IntegrityError("duplicate key"), {"request": request})

    assert response.status_code == 409
    assert response.data == {
        "status": 409,
        "errors": [
            {
                "path": None,
                "code": "conflict",
                "message": "The request conflicts with the current state of the resource.",
            }
        ],
    }


def test_it_names_nested_paths_in_a_400():
    from rest_framework.exceptions import ValidationError

    exc = ValidationError({"owner": {"email": ["bad"]}, "non_field_errors": ["whole"]})

    response = exception_handler(exc, {})

    assert response.data["errors"] == [
        {"path": "owner.email", "code": "invalid", "message": "bad"},
        {"path": None, "code": "invalid", "message": "whole"},
    ]

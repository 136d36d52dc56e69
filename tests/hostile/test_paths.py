"""NUL and unpaired surrogates in a URL's path, query string or cookies: a 400 naming
the part that carries them, on every route, before any view or database sees them.

PostgreSQL refuses NUL in text, so these were server errors there (the calendar feed's
token lookup, an incident's id, the admin's filters, the session).
"""

import json

import pytest
from django.test import RequestFactory

from config.text_guard import UnstorableTextMiddleware
from tests import factories
from tracker.models import Person

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

TOKEN_LIKE = "a" * 43


def assert_bad_request_page(response, *words: str) -> None:
    assert response.status_code == 400, response.status_code
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert "This request could not be accepted" in body
    for word in words:
        assert word in body
    # The page is the site's own, under the same policy as every other.
    assert "script-src 'self'" in response["Content-Security-Policy"]


def api_errors(response) -> list[dict]:
    assert response.status_code == 400, response.status_code
    body = json.loads(response.content)
    assert body["status"] == 400
    return body["errors"]


@pytest.mark.parametrize(
    "path",
    [f"/calendar/{TOKEN_LIKE}%00.ics", "/incidents/%00/", "/items/%00/", "/r/%00/"],
    ids=["calendar-feed", "incident", "item", "email-link"],
)
def test_it_refuses_a_nul_in_the_path_without_sign_in(anonymous, path):
    assert_bad_request_page(anonymous.get(path), "NUL character")


@pytest.mark.parametrize(
    "path",
    [
        "/incidents/%00/",
        "/incidents/INC%00-1/",
        "/admin/tracker/actionitem/%00/change/",
        "/admin/incidents/incident/%00/change/",
    ],
)
def test_it_refuses_a_nul_in_the_path_when_signed_in(superuser_client, path):
    assert_bad_request_page(superuser_client.get(path), "NUL character")


def test_it_answers_a_nul_in_an_api_path_in_the_api_error_format(manager_client):
    errors = api_errors(manager_client.get("/api/v1/incidents/INC%00/"))

    assert errors == [
        {
            "path": None,
            "code": "invalid_characters",
            "message": "The address contains a NUL character or an unpaired surrogate; "
            "nothing here is named so.",
        }
    ]


def test_the_calendar_feed_still_answers_its_own_token(anonymous):
    from tracker.calendar import calendar_token_ensure

    person = factories.PersonFactory()
    token = calendar_token_ensure(person=person)

    assert anonymous.get(f"/calendar/{token}.ics").status_code == 200
    assert anonymous.get(f"/calendar/{token}%00.ics").status_code == 400
    assert Person.objects.get(pk=person.pk).calendar_token == token


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/items/?q=%00", "q"),
        ("/items/?owner=%00", "owner"),
        ("/items/?page=%00", "page"),
        ("/incidents/?q=%00", "q"),
        ("/admin/tracker/actionitem/?status=%00", "status"),
        ("/admin/tracker/actionitem/?q=a%00b", "q"),
        ("/admin/tracker/person/?q=%00", "q"),
    ],
)
def test_it_refuses_a_nul_in_a_page_query_parameter_naming_it(superuser_client, path, parameter):
    assert_bad_request_page(
        superuser_client.get(path), f"The query parameter &#x27;{parameter}&#x27;"
    )


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/action-items/?owner=%00", "owner"),
        ("/api/v1/action-items/?ordering=%00", "ordering"),
        ("/api/v1/action-items/?limit=%00", "limit"),
        ("/api/v1/incidents/?service=x%00", "service"),
        ("/api/v1/people/?q=%00", "q"),
    ],
)
def test_it_refuses_a_nul_in_an_api_query_parameter_naming_it(manager_client, path, parameter):
    errors = api_errors(manager_client.get(path))

    assert [(e["path"], e["code"]) for e in errors] == [(parameter, "invalid_characters")]
    assert f"The query parameter '{parameter}'" in errors[0]["message"]


def test_it_names_a_parameter_whose_name_carries_the_nul(manager_client):
    errors = api_errors(manager_client.get("/api/v1/action-items/?own%00er=x"))

    assert errors[0]["path"] == "own\\u0000er"


def test_it_refuses_a_session_cookie_carrying_a_nul(anonymous):
    anonymous.cookies["sessionid"] = "abcdefgh\x00ijklmnop"

    assert_bad_request_page(anonymous.get("/items/"), "The cookie &#x27;sessionid&#x27;")


def test_it_lets_ordinary_text_through(manager_client):
    factories.make_action_item(title="Rotate the keys")

    response = manager_client.get("/items/?q=Rotate%20%C3%A9")

    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/incidents/\ud800/", f"/calendar/{TOKEN_LIKE}\udfff.ics", "/api/v1/incidents/\ud800/"]
)
def test_it_refuses_an_unpaired_surrogate_in_the_path(path):
    # WSGI hands Django bytes, which Django re-escapes when they are not UTF-8; an ASGI
    # server hands over the decoded text, where a surrogate can survive.
    request = RequestFactory().get("/")
    request.path = request.path_info = path
    reached = []

    response = UnstorableTextMiddleware(lambda r: reached.append(r))(request)

    assert response.status_code == 400
    assert reached == []


def test_it_refuses_an_unpaired_surrogate_in_a_query_parameter():
    request = RequestFactory().get("/api/v1/action-items/")
    request.GET = request.GET.copy()
    request.GET["owner"] = "\udc80"

    response = UnstorableTextMiddleware(lambda r: None)(request)

    assert response.status_code == 400
    assert json.loads(response.content)["errors"][0]["path"] == "owner"

"""The confirmation form is protected against cross-site posts; other methods are refused."""

import pytest
from django.test import Client

from tracker.models import Status

from .helpers import csrf_token_from, link, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.mark.parametrize("action", ["done", "snooze"])
def test_it_refuses_a_post_without_the_csrf_token(browser, item, action):
    before = state(item)

    response = browser.post(link(item, action))

    assert response.status_code == 403
    assert state(item) == before


def test_it_refuses_a_post_with_a_token_but_no_cookie(item):
    page = Client(enforce_csrf_checks=True).get(link(item, "done"))
    before = state(item)

    response = Client(enforce_csrf_checks=True).post(
        link(item, "done"), {"csrfmiddlewaretoken": csrf_token_from(page)}
    )

    assert response.status_code == 403
    assert state(item) == before


def test_it_acts_on_a_post_from_the_confirmation_page(browser, item):
    page = browser.get(link(item, "done"))

    response = browser.post(link(item, "done"), {"csrfmiddlewaretoken": csrf_token_from(page)})

    assert response.status_code == 200
    item.refresh_from_db()
    assert item.status == Status.DONE


def test_it_snoozes_on_a_post_from_the_confirmation_page(browser, item):
    page = browser.get(link(item, "snooze"))

    response = browser.post(link(item, "snooze"), {"csrfmiddlewaretoken": csrf_token_from(page)})

    assert response.status_code == 200
    item.refresh_from_db()
    assert item.snoozed_until is not None


@pytest.mark.parametrize("method", ["head", "put", "patch", "delete", "options"])
@pytest.mark.parametrize("action", ["open", "done", "snooze"])
def test_it_allows_only_get_and_post(client, item, method, action):
    before = state(item)

    response = getattr(client, method)(link(item, action))

    assert response.status_code == 405
    assert sorted(response["Allow"].split(", ")) == ["GET", "POST"]
    assert state(item) == before

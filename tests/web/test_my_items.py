"""My items: only the signed-in person's, overdue first, status and comments in place."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests import factories
from tracker.models import ActionItem, ActionItemChange, ChangeSource, Comment

pytestmark = pytest.mark.django_db

MINE = reverse("my-items")
NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def olivia_person(db):
    return factories.PersonFactory(email="olivia@example.com")


@pytest.fixture
def olivia(db, olivia_person):
    # Another case than the Person's: people are matched by email whatever its case.
    return factories.UserFactory(username="olivia", email="Olivia@Example.com")


@pytest.fixture
def olivia_client(client, olivia):
    client.force_login(olivia)
    return client


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def status_url(item) -> str:
    return reverse("item-status", args=[item.pk])


def comment_url(item) -> str:
    return reverse("item-comment", args=[item.pk])


def shown(response) -> list[str]:
    return [card["item"].title for card in response.context["cards"]]


def test_it_redirects_anonymous_visitors_to_login(client):
    response = client.get(MINE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_shows_only_my_items_overdue_first(olivia_client, olivia_person):
    make = factories.ActionItemFactory
    make(title="Later", owner=olivia_person, deadline=days(30))
    make(title="Very late", owner=olivia_person, deadline=days(-9), status="blocked")
    make(title="Soon", owner=olivia_person, deadline=days(1))
    make(
        title="Done late", owner=olivia_person, deadline=days(-20), status="done", completed_at=NOW
    )
    make(title="Late", owner=olivia_person, deadline=days(-1), status="in_progress")
    make(title="Undated", owner=olivia_person, deadline=None)
    make(title="Someone else's", deadline=days(-5))
    make(title="Unassigned", owner=None, deadline=days(-5))

    response = olivia_client.get(MINE)

    assert response.status_code == 200
    assert shown(response) == ["Very late", "Late", "Soon", "Later", "Undated", "Done late"]
    assert "Someone else" not in response.content.decode()


def test_a_user_without_an_email_sees_why_there_is_nothing(client):
    factories.ActionItemFactory(owner=factories.PersonFactory(email="x@example.com"))
    user = factories.UserFactory(username="noemail", email="")
    client.force_login(user)

    response = client.get(MINE)

    assert response.context["cards"] == []
    assert "has no email address" in response.content.decode()


def test_it_lists_in_a_constant_number_of_queries(olivia_client, olivia_person):
    def make(count):
        for _ in range(count):
            item = factories.ActionItemFactory(owner=olivia_person)
            Comment.objects.create(item=item, body="hi", source=ChangeSource.WEB)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert olivia_client.get(MINE).status_code == 200
        return len(captured)

    make(3)
    few = queries()
    make(20)

    assert queries() == few


def test_it_changes_the_status_in_place_with_htmx(olivia_client, olivia, olivia_person):
    item = factories.ActionItemFactory(owner=olivia_person, title="Rotate keys")

    response = olivia_client.post(status_url(item), {"status": "in_progress", "next": MINE}, **HTMX)

    assert response.status_code == 200
    assert response.templates[0].name == "tracker/_item_card.html"
    html = response.content.decode()
    assert html.lstrip().startswith(f'<article class="item-card" id="item-{item.pk}"')
    assert "<html" not in html
    assert "Status changed to In progress." in html
    item.refresh_from_db()
    assert item.status == "in_progress"
    change = ActionItemChange.objects.get(item=item, field="status")
    assert (change.source, change.actor, change.old_value, change.new_value) == (
        ChangeSource.WEB,
        olivia,
        "open",
        "in_progress",
    )


def test_the_fragment_offers_the_statuses_the_item_may_now_move_to(olivia_client, olivia_person):
    item = factories.ActionItemFactory(owner=olivia_person)

    response = olivia_client.post(status_url(item), {"status": "cancelled"}, **HTMX)

    form = response.context["status_form"]
    assert [value for value, _ in form.fields["status"].widget.choices] == ["open", "cancelled"]


def test_a_refused_transition_shows_an_error_in_the_fragment(olivia_client, olivia_person):
    item = factories.ActionItemFactory(owner=olivia_person, status="cancelled")

    response = olivia_client.post(status_url(item), {"status": "done"}, **HTMX)

    assert response.status_code == 200
    assert "cannot change from cancelled to done" in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    item.refresh_from_db()
    assert item.status == "cancelled"
    assert not ActionItemChange.objects.filter(item=item).exists()


def test_an_unknown_status_is_an_error_not_a_crash(olivia_client, olivia_person):
    item = factories.ActionItemFactory(owner=olivia_person)

    response = olivia_client.post(status_url(item), {"status": "someday"}, **HTMX)

    assert response.status_code == 200
    assert "Choose a status" in response.content.decode()
    item.refresh_from_db()
    assert item.status == "open"


def test_without_javascript_the_status_form_redirects_back(olivia_client, olivia_person):
    item = factories.ActionItemFactory(owner=olivia_person)

    response = olivia_client.post(status_url(item), {"status": "done", "next": f"{MINE}?page=1"})

    assert response.status_code == 302
    assert response["Location"] == f"{MINE}?page=1"
    item.refresh_from_db()
    assert item.status == "done"
    page = olivia_client.get(response["Location"])
    assert "Status changed to Done." in page.content.decode()


def test_without_javascript_a_refused_transition_is_reported_on_the_page(
    olivia_client, olivia_person
):
    item = factories.ActionItemFactory(owner=olivia_person, status="cancelled")

    response = olivia_client.post(status_url(item), {"status": "done", "next": MINE}, follow=True)

    assert response.status_code == 200
    assert "cannot change from cancelled to done" in response.content.decode()


def test_it_ignores_a_next_url_on_another_site(olivia_client, olivia_person):
    item = factories.ActionItemFactory(owner=olivia_person)

    response = olivia_client.post(
        status_url(item), {"status": "done", "next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("item-detail", args=[item.pk])


def test_the_owner_cannot_change_someone_elses_item(olivia_client):
    item = factories.ActionItemFactory(title="Oscar's")

    assert olivia_client.post(status_url(item), {"status": "done"}, **HTMX).status_code == 403
    assert olivia_client.post(comment_url(item), {"body": "mine now"}).status_code == 403
    item.refresh_from_db()
    assert item.status == "open"
    assert not item.comments.exists()


def test_it_adds_a_comment_in_place_with_htmx(olivia_client, olivia, olivia_person):
    item = factories.ActionItemFactory(owner=olivia_person)

    response = olivia_client.post(comment_url(item), {"body": "Waiting for the vendor"}, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Comment added." in html
    assert "1 comment<" in html
    comment = Comment.objects.get(item=item)
    assert (comment.body, comment.author, comment.source) == (
        "Waiting for the vendor",
        olivia,
        ChangeSource.WEB,
    )


def test_an_empty_comment_is_an_error(olivia_client, olivia_person):
    item = factories.ActionItemFactory(owner=olivia_person)

    response = olivia_client.post(comment_url(item), {"body": "   "}, **HTMX)

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Comment.objects.exists()


def test_the_forms_work_without_javascript_and_are_labelled(olivia_client, olivia_person):
    item = factories.ActionItemFactory(owner=olivia_person)

    html = olivia_client.get(MINE).content.decode()

    assert f'<form method="post" action="{status_url(item)}"' in html
    assert f'<form method="post" action="{comment_url(item)}"' in html
    assert f'<label for="item{item.pk}-status">' in html
    assert f'<label for="item{item.pk}-body">' in html
    assert "csrfmiddlewaretoken" in html
    assert "<script>" not in html


def test_it_escapes_titles_and_descriptions(olivia_client, olivia_person):
    factories.ActionItemFactory(
        owner=olivia_person,
        title="<script>alert(1)</script>",
        description="<img src=x onerror=alert(1)>",
    )

    html = olivia_client.get(MINE).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "<img src=x onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_htmx_fragment_escapes_too(olivia_client, olivia_person):
    item = factories.ActionItemFactory(owner=olivia_person, title="<script>alert(1)</script>")

    html = olivia_client.post(status_url(item), {"status": "done"}, **HTMX).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert ActionItem.objects.get(pk=item.pk).status == "done"

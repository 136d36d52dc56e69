"""An item's page: details, history, reminders; who may change what, through the services."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from tests import factories
from tracker import services
from tracker.models import (
    ActionItemChange,
    ChangeSource,
    Comment,
    DeliveryState,
    Notification,
    Person,
    ReminderStage,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
XSS_TITLE = "<script>alert(1)</script>"
XSS_DESCRIPTION = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def olivia_person(db):
    return factories.PersonFactory(email="olivia@example.com", name="Olivia Owner")


@pytest.fixture
def olivia(db, olivia_person):
    return factories.UserFactory(username="olivia", email="olivia@example.com")


@pytest.fixture
def reader(db):
    return factories.UserFactory(username="reader", email="reader@example.com")


@pytest.fixture
def own_item(olivia_person):
    return factories.ActionItemFactory(
        owner=olivia_person, title="Olivia's item", priority="P2", deadline=TODAY
    )


@pytest.fixture
def other_item(db):
    return factories.ActionItemFactory(
        owner=factories.PersonFactory(email="oscar@example.com"), title="Oscar's item"
    )


@pytest.fixture
def as_user(client):
    def sign_in(user) -> Client:
        client.force_login(user)
        return client

    return sign_in


def page_url(item) -> str:
    return reverse("item-detail", args=[item.pk])


def status_url(item) -> str:
    return reverse("item-status", args=[item.pk])


def comment_url(item) -> str:
    return reverse("item-comment", args=[item.pk])


def edit_url(item) -> str:
    return reverse("item-edit", args=[item.pk])


def edit_data(item, **changes) -> dict:
    data = {
        "title": item.title,
        "priority": item.priority,
        "deadline": item.deadline.isoformat() if item.deadline else "",
        "owner_email": item.owner.email if item.owner else "",
        "version": item.version,
    }
    return {**data, **changes}


def test_it_redirects_anonymous_visitors_to_login(client, own_item):
    for response in (
        client.get(page_url(own_item)),
        client.post(status_url(own_item), {"status": "done"}),
        client.post(comment_url(own_item), {"body": "hi"}),
        client.post(edit_url(own_item), edit_data(own_item)),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    own_item.refresh_from_db()
    assert own_item.status == "open"


def test_it_is_404_for_a_missing_item(as_user, reader):
    assert as_user(reader).get(reverse("item-detail", args=[999999])).status_code == 404


def test_it_shows_details_history_reminders_and_comments(as_user, reader, manager, olivia_person):
    item = services.action_item_create(
        actor=services.Actor(source=ChangeSource.IMPORT, label="import of INC-1"),
        incident=factories.IncidentFactory(external_id="INC-PAGE-1", title="Pool exhausted"),
        title="Add alerting",
        description="Alert at 70%\nand at 85%.",
        owner=olivia_person,
        priority="P1",
        deadline=TODAY - dt.timedelta(days=2),
    )
    services.action_item_update(
        item=item, actor=services.Actor(source=ChangeSource.WEB, user=manager), priority="P0"
    )
    services.comment_add(
        item=item, actor=services.Actor(source=ChangeSource.WEB, user=manager), body="On it?"
    )
    Notification.objects.create(
        item=item,
        recipient="olivia@example.com",
        kind=ReminderStage.OVERDUE,
        stage="overdue+1",
        deadline=item.deadline,
        state=DeliveryState.SENT,
        sent_at=NOW,
    )

    response = as_user(reader).get(page_url(item))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Add alerting" in html
    assert "Alert at 70%<br>and at 85%." in html
    assert "INC-PAGE-1" in html and "Pool exhausted" in html
    assert "Olivia Owner &lt;olivia@example.com&gt;" in html
    assert "(overdue)" in html
    # History: newest first, with source, actor, field and old -> new.
    history = response.context["history"]
    assert [row["change"].field for row in history] == ["priority", "created"]
    assert (history[0]["old"], history[0]["new"]) == ("P1", "P0")
    assert "P1 → P0" in html
    assert "Web UI" in html and manager.username in html
    assert "import of INC-1" in html
    # Reminders sent.
    assert "overdue+1" in html and "Sent" in html and "2025-03-12 10:00" in html
    # Comments and the ticket.
    assert "On it?" in html
    assert "No ticket system configured" in html


def test_a_reader_sees_no_controls(as_user, reader, own_item):
    response = as_user(reader).get(page_url(own_item))

    html = response.content.decode()
    assert response.context["status_form"] is None
    assert response.context["comment_form"] is None
    assert response.context["edit_form"] is None
    assert status_url(own_item) not in html
    assert comment_url(own_item) not in html
    assert edit_url(own_item) not in html


def test_the_owner_sees_status_and_comment_forms_but_not_the_edit_form(as_user, olivia, own_item):
    html = as_user(olivia).get(page_url(own_item)).content.decode()

    assert f'action="{status_url(own_item)}"' in html
    assert f'action="{comment_url(own_item)}"' in html
    assert f'action="{edit_url(own_item)}"' not in html


def test_a_manager_sees_every_form(as_user, manager, own_item):
    html = as_user(manager).get(page_url(own_item)).content.decode()

    for url in (status_url(own_item), comment_url(own_item), edit_url(own_item)):
        assert f'action="{url}"' in html
    assert '<label for="id_owner_email">' in html


def test_the_owner_changes_the_status_of_their_item(as_user, olivia, own_item):
    response = as_user(olivia).post(
        status_url(own_item), {"status": "blocked", "next": page_url(own_item)}
    )

    assert response.status_code == 302
    assert response["Location"] == page_url(own_item)
    own_item.refresh_from_db()
    assert own_item.status == "blocked"
    change = ActionItemChange.objects.get(item=own_item, field="status")
    assert (change.source, change.actor, change.actor_label) == (ChangeSource.WEB, olivia, "olivia")


def test_the_owner_cannot_change_someone_elses_item(as_user, olivia, other_item):
    client = as_user(olivia)

    assert client.post(status_url(other_item), {"status": "done"}).status_code == 403
    assert client.post(comment_url(other_item), {"body": "hi"}).status_code == 403
    assert client.post(edit_url(other_item), edit_data(other_item, title="x")).status_code == 403
    other_item.refresh_from_db()
    assert (other_item.status, other_item.title) == ("open", "Oscar's item")


@pytest.mark.parametrize(
    "changes",
    [
        {"deadline": "2025-12-31"},
        {"priority": "P0"},
        {"title": "Renamed"},
        {"owner_email": "someone@example.com"},
    ],
)
def test_the_owner_cannot_edit_their_item_beyond_its_status(as_user, olivia, own_item, changes):
    response = as_user(olivia).post(edit_url(own_item), edit_data(own_item, **changes))

    assert response.status_code == 403
    own_item.refresh_from_db()
    assert (own_item.deadline, own_item.priority, own_item.title) == (TODAY, "P2", "Olivia's item")
    assert not ActionItemChange.objects.filter(item=own_item).exists()


def test_the_status_form_ignores_other_fields(as_user, olivia, own_item):
    as_user(olivia).post(status_url(own_item), {"status": "done", "priority": "P0"})

    own_item.refresh_from_db()
    assert (own_item.status, own_item.priority) == ("done", "P2")


def test_a_reader_cannot_change_anything(as_user, reader, own_item):
    client = as_user(reader)

    assert client.post(status_url(own_item), {"status": "done"}).status_code == 403
    assert (
        client.post(status_url(own_item), {"status": "done"}, HTTP_HX_REQUEST="true").status_code
        == 403
    )
    assert client.post(comment_url(own_item), {"body": "hi"}).status_code == 403
    assert client.post(edit_url(own_item), edit_data(own_item, title="x")).status_code == 403
    own_item.refresh_from_db()
    assert (own_item.status, own_item.title) == ("open", "Olivia's item")
    assert not Comment.objects.exists()


def test_a_refused_transition_is_an_error_on_the_page(as_user, manager, own_item):
    client = as_user(manager)
    client.post(status_url(own_item), {"status": "cancelled"})

    response = client.post(
        status_url(own_item), {"status": "done", "next": page_url(own_item)}, follow=True
    )

    assert response.status_code == 200
    assert response.redirect_chain == [(page_url(own_item), 302)]
    assert "cannot change from cancelled to done; allowed: open" in response.content.decode()
    own_item.refresh_from_db()
    assert own_item.status == "cancelled"


def test_a_manager_changes_any_items_status(as_user, manager, other_item):
    as_user(manager).post(status_url(other_item), {"status": "done"})

    other_item.refresh_from_db()
    assert other_item.status == "done"
    assert other_item.completed_at == NOW


def test_a_manager_edits_title_priority_deadline_and_owner(as_user, manager, own_item):
    own_item.deadline_derived = True
    own_item.save()
    data = edit_data(
        own_item,
        title="Sharper title",
        priority="P0",
        deadline="2025-04-01",
        owner_email="New.Owner@example.com",
    )

    response = as_user(manager).post(edit_url(own_item), data)

    assert response.status_code == 302
    assert response["Location"] == page_url(own_item)
    own_item.refresh_from_db()
    assert own_item.title == "Sharper title"
    assert own_item.priority == "P0"
    assert own_item.deadline == dt.date(2025, 4, 1)
    assert own_item.deadline_derived is False
    assert own_item.owner.email == "new.owner@example.com"
    changes = {
        c.field: (c.old_value, c.new_value, c.source)
        for c in ActionItemChange.objects.filter(item=own_item)
    }
    assert changes == {
        "title": ("Olivia's item", "Sharper title", ChangeSource.WEB),
        "priority": ("P2", "P0", ChangeSource.WEB),
        "deadline": (TODAY.isoformat(), "2025-04-01", ChangeSource.WEB),
        "deadline_derived": (True, False, ChangeSource.WEB),
        "owner": ("olivia@example.com", "new.owner@example.com", ChangeSource.WEB),
    }


def test_a_manager_saving_an_unchanged_form_changes_nothing(as_user, manager, own_item):
    response = as_user(manager).post(edit_url(own_item), edit_data(own_item), follow=True)

    assert "Nothing to change." in response.content.decode()
    assert not ActionItemChange.objects.filter(item=own_item).exists()


def test_a_manager_can_unassign_an_item(as_user, manager, own_item):
    as_user(manager).post(edit_url(own_item), edit_data(own_item, owner_email=""))

    own_item.refresh_from_db()
    assert own_item.owner is None
    assert Person.objects.filter(email="olivia@example.com").exists()


def test_an_invalid_edit_shows_the_errors(as_user, manager, own_item):
    response = as_user(manager).post(
        edit_url(own_item),
        edit_data(own_item, title="  ", priority="P9", deadline="someday", owner_email="nope"),
    )

    assert response.status_code == 400
    form = response.context["edit_form"]
    assert set(form.errors) == {"title", "priority", "deadline", "owner_email"}
    assert 'aria-invalid="true"' in response.content.decode()
    own_item.refresh_from_db()
    assert own_item.title == "Olivia's item"


def test_an_edit_over_someone_elses_change_is_refused(as_user, manager, own_item):
    stale = edit_data(own_item, title="Mine")
    services.action_item_update(
        item=own_item, actor=services.Actor(source=ChangeSource.API), title="Theirs"
    )

    response = as_user(manager).post(edit_url(own_item), stale)

    assert response.status_code == 400
    assert "Someone changed this item" in response.content.decode()
    own_item.refresh_from_db()
    assert own_item.title == "Theirs"


def test_comments_by_the_owner_and_a_manager(as_user, olivia, manager, own_item):
    response = as_user(olivia).post(
        comment_url(own_item), {"body": "Started", "next": page_url(own_item) + "#comments"}
    )
    assert response.status_code == 302
    assert response["Location"] == page_url(own_item) + "#comments"
    as_user(manager).post(comment_url(own_item), {"body": "Thanks"})

    comments = list(Comment.objects.filter(item=own_item).order_by("id"))
    assert [(c.body, c.author, c.source) for c in comments] == [
        ("Started", olivia, ChangeSource.WEB),
        ("Thanks", manager, ChangeSource.WEB),
    ]
    html = as_user(manager).get(page_url(own_item)).content.decode()
    assert html.index("Started") < html.index("Thanks")


def test_an_empty_comment_is_reported_not_saved(as_user, olivia, own_item):
    response = as_user(olivia).post(comment_url(own_item), {"body": ""}, follow=True)

    assert "This field is required." in response.content.decode()
    assert not Comment.objects.exists()


def test_changes_need_a_csrf_token(manager, own_item):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)

    for url, data in (
        (status_url(own_item), {"status": "done"}),
        (comment_url(own_item), {"body": "hi"}),
        (edit_url(own_item), edit_data(own_item, title="x")),
    ):
        assert client.post(url, data).status_code == 403
    own_item.refresh_from_db()
    assert (own_item.status, own_item.title) == ("open", "Olivia's item")

    client.get(page_url(own_item))  # sets the CSRF cookie, as a browser's visit does
    token = client.cookies["csrftoken"].value
    response = client.post(status_url(own_item), {"status": "done", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    # htmx sends the token in a header (hx-headers on <body>).
    response = client.post(
        comment_url(own_item), {"body": "hi"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200
    own_item.refresh_from_db()
    assert own_item.status == "done"
    assert own_item.comments.count() == 1


def test_it_only_accepts_posts_for_changes(as_user, manager, own_item):
    client = as_user(manager)

    assert client.get(status_url(own_item)).status_code == 405
    assert client.get(comment_url(own_item)).status_code == 405
    assert client.get(edit_url(own_item)).status_code == 405
    assert client.post(page_url(own_item)).status_code == 405


def test_it_escapes_everything_from_documents(as_user, manager, olivia_person):
    item = factories.ActionItemFactory(
        owner=olivia_person,
        title=XSS_TITLE,
        description=XSS_DESCRIPTION,
        type="<b>t</b>",
        incident=factories.IncidentFactory(title="<svg onload=alert(1)>"),
    )
    services.comment_add(
        item=item, actor=services.Actor(source=ChangeSource.WEB, user=manager), body=XSS_TITLE
    )
    services.action_item_update(
        item=item,
        actor=services.Actor(source=ChangeSource.WEB, user=manager),
        title=XSS_TITLE + "!",
    )

    html = as_user(manager).get(page_url(item)).content.decode()

    for raw in (XSS_TITLE, XSS_DESCRIPTION, "<b>t</b>", "<svg onload=alert(1)>"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert " onclick=" not in html and "<script>" not in html

import csv
import datetime as dt
import importlib
import io

import factory
import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests import factories
from tracker.admin import ActionItemAdmin
from tracker.models import ActionItem, ActionItemChange, Person

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tracker_actionitem_changelist")
EXPORT = reverse("admin:tracker_actionitem_export_csv")


def today() -> dt.date:
    return timezone.localdate()


def days(n: int) -> dt.date:
    return today() + dt.timedelta(days=n)


def change_url(item: ActionItem) -> str:
    return reverse("admin:tracker_actionitem_change", args=[item.pk])


def listed(client, query: str = "") -> set[int]:
    response = client.get(CHANGELIST + query)
    assert response.status_code == 200
    return {item.pk for item in response.context["cl"].result_list}


def run_action(client, action: str, items, query: str = "", **data):
    """Post a changelist action: first from the changelist, or with `apply` from its form."""
    payload = {"action": action, "_selected_action": [i.pk for i in items], **data}
    if "apply" not in data:
        payload["index"] = 0
    return client.post(CHANGELIST + query, payload)


def item_form_data(item: ActionItem, **overrides) -> dict:
    data = {
        "incident": item.incident_id or "",
        "title": item.title,
        "description": item.description,
        "owner": item.owner_id or "",
        "priority": item.priority,
        "type": item.type,
        "status": item.status,
        "deadline": item.deadline.isoformat() if item.deadline else "",
        # The read-only history and comment inlines still post their management forms.
        "changes-TOTAL_FORMS": 0,
        "changes-INITIAL_FORMS": 0,
        "comments-TOTAL_FORMS": 0,
        "comments-INITIAL_FORMS": 0,
    }
    data.update(overrides)
    return data


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


# --- Changelist ----------------------------------------------------------------


def test_it_lists_items_with_a_constant_number_of_queries(client, manager):
    client.force_login(manager)
    factories.ActionItemFactory.create_batch(5)
    client.get(CHANGELIST)  # warm up caches (content types, sessions)
    with CaptureQueriesContext(connection) as few:
        assert client.get(CHANGELIST).status_code == 200
    factories.ActionItemFactory.create_batch(25)
    with CaptureQueriesContext(connection) as many:
        response = client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 30
    assert len(many) == len(few)


def test_it_marks_overdue_items_in_the_list(client, manager):
    client.force_login(manager)
    late = factories.ActionItemFactory(deadline=days(-1), title="Late one")
    factories.ActionItemFactory(deadline=days(3), title="On time")
    response = client.get(CHANGELIST)
    overdue = {item.pk: item.is_overdue for item in response.context["cl"].result_list}
    assert overdue[late.pk] is True
    assert list(overdue.values()).count(True) == 1
    assert 'alt="True"' in response.content.decode()


def test_it_filters_overdue_items(client, manager):
    client.force_login(manager)
    open_late = factories.ActionItemFactory(status="open", deadline=days(-1))
    blocked_late = factories.ActionItemFactory(status="blocked", deadline=days(-30))
    in_progress_today = factories.ActionItemFactory(status="in_progress", deadline=today())
    done_late = factories.ActionItemFactory(
        status="done", deadline=days(-5), completed_at=timezone.now()
    )
    cancelled_late = factories.ActionItemFactory(status="cancelled", deadline=days(-5))
    undated = factories.ActionItemFactory(deadline=None)

    assert listed(client, "?overdue=yes") == {open_late.pk, blocked_late.pk}
    assert listed(client, "?overdue=no") == {
        in_progress_today.pk,
        done_late.pk,
        cancelled_late.pk,
        undated.pk,
    }


def test_it_filters_items_due_in_the_next_seven_days(client, manager):
    # The due-soon window of tracker.deadlines (TRACKER_DUE_SOON_DAYS=7): today
    # and the six days after it, as on the dashboard.
    client.force_login(manager)
    due_today = factories.ActionItemFactory(deadline=today())
    due_in_six = factories.ActionItemFactory(deadline=days(6), status="blocked")
    factories.ActionItemFactory(deadline=days(7))
    factories.ActionItemFactory(deadline=days(-1))  # overdue, not "due soon"
    factories.ActionItemFactory(deadline=days(2), status="done", completed_at=timezone.now())
    factories.ActionItemFactory(deadline=None)

    assert listed(client, "?due_within=7") == {due_today.pk, due_in_six.pk}


def test_it_searches_by_owner_email_and_incident_id(client, manager):
    client.force_login(manager)
    item = factories.ActionItemFactory(
        owner=factories.PersonFactory(email="dana@example.com"),
        incident=factories.IncidentFactory(external_id="INC-SEARCH-1"),
    )
    factories.ActionItemFactory()
    assert listed(client, "?q=dana@example") == {item.pk}
    assert listed(client, "?q=INC-SEARCH-1") == {item.pk}


# --- Editing through the services ------------------------------------------------


def test_it_writes_history_when_an_item_is_edited_in_the_admin(client, manager):
    client.force_login(manager)
    item = factories.ActionItemFactory(priority="P2", status="open", deadline_derived=True)
    response = client.post(
        change_url(item),
        item_form_data(item, priority="P1", status="done", deadline="2031-03-04"),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors

    item.refresh_from_db()
    assert (item.priority, item.status, item.deadline) == ("P1", "done", dt.date(2031, 3, 4))
    assert item.completed_at is not None
    assert item.deadline_derived is False
    changes = {c.field: c for c in ActionItemChange.objects.filter(item=item)}
    assert set(changes) == {"priority", "status", "deadline", "deadline_derived", "completed_at"}
    assert {c.source for c in changes.values()} == {"admin"}
    assert {c.actor for c in changes.values()} == {manager}
    assert (changes["priority"].old_value, changes["priority"].new_value) == ("P2", "P1")


def test_it_offers_only_the_statuses_the_services_allow(client, manager):
    client.force_login(manager)
    item = factories.ActionItemFactory(status="cancelled")

    form = client.get(change_url(item)).context["adminform"].form
    assert [value for value, _ in form.fields["status"].choices] == ["open", "cancelled"]

    response = client.post(change_url(item), item_form_data(item, status="done"))
    assert response.status_code == 200
    assert "status" in response.context["adminform"].form.errors
    item.refresh_from_db()
    assert item.status == "cancelled"
    assert not ActionItemChange.objects.exists()


def test_it_writes_no_history_when_an_item_is_saved_unchanged(client, manager):
    client.force_login(manager)
    item = factories.ActionItemFactory()
    response = client.post(change_url(item), item_form_data(item))
    assert response.status_code == 302
    assert not ActionItemChange.objects.filter(item=item).exists()


def test_it_ignores_posted_bookkeeping_fields(client, manager):
    client.force_login(manager)
    item = factories.ActionItemFactory(source_key="id:A-1", deadline_derived=True)
    response = client.post(
        change_url(item),
        item_form_data(
            item,
            title="Renamed",
            source_key="id:forged",
            removed_from_source="on",
            completed_at="2020-01-01 00:00",
            deadline_derived="",
        ),
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.title == "Renamed"
    assert item.source_key == "id:A-1"
    assert item.removed_from_source is False
    assert item.completed_at is None
    assert item.deadline_derived is True


def test_it_keeps_an_imported_item_on_its_incident(client, manager):
    client.force_login(manager)
    item = factories.ActionItemFactory(source_key="id:A-1")
    original_incident = item.incident
    other = factories.IncidentFactory()
    response = client.post(change_url(item), item_form_data(item, incident=other.pk, title="New"))
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.incident, item.title) == (original_incident, "New")

    manual = factories.ActionItemFactory(source_key="")
    client.post(change_url(manual), item_form_data(manual, incident=other.pk))
    manual.refresh_from_db()
    assert manual.incident == other
    assert ActionItemChange.objects.get(item=manual).field == "incident"


def test_it_creates_an_item_through_the_service(client, manager):
    client.force_login(manager)
    incident = factories.IncidentFactory()
    owner = factories.PersonFactory()
    response = client.post(
        reverse("admin:tracker_actionitem_add"),
        {
            "incident": incident.pk,
            "title": "Write the runbook",
            "description": "",
            "owner": owner.pk,
            "priority": "P1",
            "type": "process",
            "status": "open",
            "deadline": "2031-01-01",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    item = ActionItem.objects.get(title="Write the runbook")
    assert (item.incident, item.owner) == (incident, owner)
    created = ActionItemChange.objects.get(item=item)
    assert (created.field, created.source, created.actor) == ("created", "admin", manager)


def test_it_shows_the_items_history_read_only(client, manager):
    client.force_login(manager)
    item = factories.ActionItemFactory(priority="P2")
    client.post(change_url(item), item_form_data(item, priority="P0"))
    response = client.get(change_url(item))
    body = response.content.decode()
    assert "History" in body or "history" in body
    inline, comments = response.context["inline_admin_formsets"]
    assert inline.has_change_permission is False
    assert comments.has_add_permission is False
    assert [c.field for c in inline.formset.queryset] == ["priority"]


def test_it_does_not_offer_to_delete_items(client, manager):
    client.force_login(manager)
    item = factories.ActionItemFactory()
    assert (
        client.post(reverse("admin:tracker_actionitem_delete", args=[item.pk])).status_code == 403
    )
    assert ActionItem.objects.filter(pk=item.pk).exists()


# --- Bulk actions ----------------------------------------------------------------


def test_it_marks_items_done_and_writes_history(client, manager):
    client.force_login(manager)
    items = factories.ActionItemFactory.create_batch(3, status="in_progress")
    untouched = factories.ActionItemFactory(status="open")

    response = run_action(client, "mark_done", items)

    assert response.status_code == 302
    for item in items:
        item.refresh_from_db()
        assert item.status == "done"
        assert item.completed_at is not None
    untouched.refresh_from_db()
    assert untouched.status == "open"
    status_changes = ActionItemChange.objects.filter(field="status")
    assert status_changes.count() == 3
    assert {(c.source, c.actor_id, c.new_value) for c in status_changes} == {
        ("admin", manager.pk, "done")
    }


def test_it_marks_nothing_done_when_the_services_refuse_one_item(client, manager):
    client.force_login(manager)
    open_item = factories.ActionItemFactory(status="open")
    cancelled = factories.ActionItemFactory(status="cancelled")

    response = run_action(client, "mark_done", [open_item, cancelled])

    assert response.status_code == 302
    open_item.refresh_from_db()
    cancelled.refresh_from_db()
    assert (open_item.status, cancelled.status) == ("open", "cancelled")
    assert not ActionItemChange.objects.exists()
    message = next(iter(client.get(CHANGELIST).context["messages"]))
    assert str(message).startswith("Nothing changed: cannot change from cancelled to done")


def test_it_asks_for_the_new_owner_before_reassigning(client, manager):
    client.force_login(manager)
    item = factories.ActionItemFactory()
    response = run_action(client, "reassign", [item])
    assert response.status_code == 200
    assert 'name="owner_email"' in response.content.decode()
    assert f'name="_selected_action" value="{item.pk}"' in response.content.decode()
    assert not ActionItemChange.objects.exists()


def test_it_reassigns_items_to_a_new_person(client, manager):
    client.force_login(manager)
    items = factories.ActionItemFactory.create_batch(2)

    response = run_action(client, "reassign", items, apply="1", owner_email="New.Owner@Example.com")

    assert response.status_code == 302
    person = Person.objects.get(email="new.owner@example.com")
    assert {i.owner_id for i in ActionItem.objects.filter(pk__in=[i.pk for i in items])} == {
        person.pk
    }
    changes = ActionItemChange.objects.filter(field="owner")
    assert {(c.source, c.new_value) for c in changes} == {("admin", "new.owner@example.com")}
    assert changes.count() == 2


def test_it_reassigns_to_an_existing_person_whatever_the_case(client, manager):
    client.force_login(manager)
    person = factories.PersonFactory(email="kim@example.com")
    item = factories.ActionItemFactory()
    run_action(client, "reassign", [item], apply="1", owner_email="KIM@example.com")
    item.refresh_from_db()
    assert item.owner == person
    assert Person.objects.filter(email__iexact="kim@example.com").count() == 1


def test_it_moves_deadlines_to_a_date(client, manager):
    client.force_login(manager)
    items = factories.ActionItemFactory.create_batch(2, deadline_derived=True)

    response = run_action(client, "move_deadline", items, apply="1", new_deadline="2032-05-06")

    assert response.status_code == 302
    for item in items:
        item.refresh_from_db()
        assert item.deadline == dt.date(2032, 5, 6)
        assert item.deadline_derived is False
    assert ActionItemChange.objects.filter(field="deadline", source="admin").count() == 2


def test_it_shifts_deadlines_by_days_and_skips_undated_items(client, manager):
    client.force_login(manager)
    dated = factories.ActionItemFactory(deadline=dt.date(2030, 1, 10))
    undated = factories.ActionItemFactory(deadline=None)

    response = run_action(
        client, "move_deadline", [dated, undated], apply="1", new_deadline="", shift_days="-3"
    )

    assert response.status_code == 302
    dated.refresh_from_db()
    undated.refresh_from_db()
    assert dated.deadline == dt.date(2030, 1, 7)
    assert undated.deadline is None
    assert ActionItemChange.objects.filter(item=undated).count() == 0


@pytest.mark.parametrize(
    ("action", "data", "error"),
    [
        ("reassign", {"owner_email": "not an email"}, "Enter a valid email address."),
        ("reassign", {"owner_email": ""}, "This field is required."),
        ("move_deadline", {"new_deadline": "", "shift_days": ""}, "one of the two"),
        ("move_deadline", {"new_deadline": "2031-01-01", "shift_days": "2"}, "one of the two"),
        ("move_deadline", {"new_deadline": "next tuesday"}, "Enter a valid date."),
        ("move_deadline", {"shift_days": "0"}, "changes nothing"),
    ],
)
def test_it_changes_nothing_when_the_action_input_is_invalid(client, manager, action, data, error):
    client.force_login(manager)
    item = factories.ActionItemFactory(deadline=dt.date(2030, 1, 10))
    owner_before = item.owner_id

    response = run_action(client, action, [item], apply="1", **data)

    assert response.status_code == 200
    assert error in response.content.decode()
    item.refresh_from_db()
    assert (item.owner_id, item.deadline) == (owner_before, dt.date(2030, 1, 10))
    assert not ActionItemChange.objects.exists()
    assert Person.objects.count() == 1


def test_it_keeps_the_changelist_filters_on_the_action_page(client, manager):
    client.force_login(manager)
    p1 = factories.ActionItemFactory(priority="P1")
    p3 = factories.ActionItemFactory(priority="P3")
    # The selected ids are intersected with the filtered list: an item outside
    # the filter is not changed even if its id is posted.
    run_action(client, "mark_done", [p1, p3], query="?priority__exact=P1")
    p1.refresh_from_db()
    p3.refresh_from_db()
    assert (p1.status, p3.status) == ("done", "open")


# --- CSV export --------------------------------------------------------------------


def test_it_links_to_the_export_with_the_current_filters(client, manager):
    client.force_login(manager)
    factories.ActionItemFactory()
    response = client.get(CHANGELIST + "?priority__exact=P1&q=runbook")
    assert f'href="{EXPORT}?priority__exact=P1&amp;q=runbook"' in response.content.decode()


def test_it_exports_every_filtered_row_not_just_one_page(client, manager, monkeypatch):
    monkeypatch.setattr(ActionItemAdmin, "list_per_page", 2)
    client.force_login(manager)
    wanted = factories.ActionItemFactory.create_batch(5, priority="P1")
    factories.ActionItemFactory.create_batch(2, priority="P3")
    assert len(listed(client, "?priority__exact=P1")) == 2  # one page of the list

    response = client.get(EXPORT + "?priority__exact=P1")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    rows = csv_rows(response)
    assert {int(r["id"]) for r in rows} == {i.pk for i in wanted}
    assert list(rows[0]) == [
        "id",
        "incident",
        "title",
        "owner",
        "priority",
        "type",
        "status",
        "deadline",
        "deadline_derived",
        "overdue",
        "completed_at",
        "created_at",
        "updated_at",
    ]


def test_it_exports_the_values_of_each_item(client, manager):
    client.force_login(manager)
    item = factories.ActionItemFactory(
        incident=factories.IncidentFactory(external_id="INC-CSV-1"),
        owner=factories.PersonFactory(email="lee@example.com"),
        deadline=days(-2),
        title="Rotate keys",
    )
    factories.ActionItemFactory(deadline=days(5))

    rows = {r["title"]: r for r in csv_rows(client.get(EXPORT))}

    row = rows["Rotate keys"]
    assert row["id"] == str(item.pk)
    assert row["incident"] == "INC-CSV-1"
    assert row["owner"] == "lee@example.com"
    assert row["deadline"] == days(-2).isoformat()
    assert row["overdue"] == "yes"
    assert row["completed_at"] == ""
    assert [r["overdue"] for r in rows.values()].count("no") == 1


def test_it_exports_the_overdue_filter(client, manager):
    client.force_login(manager)
    late = factories.ActionItemFactory(deadline=days(-1))
    factories.ActionItemFactory(deadline=days(1))
    rows = csv_rows(client.get(EXPORT + "?overdue=yes"))
    assert [int(r["id"]) for r in rows] == [late.pk]


@pytest.mark.parametrize("title", ["=HYPERLINK(1)", "+SUM(1)", "-2+3", "@cmd", "\t=1"])
def test_it_escapes_formulas_in_the_export(client, manager, title):
    client.force_login(manager)
    factories.ActionItemFactory(title=title, type="=type")
    (row,) = csv_rows(client.get(EXPORT))
    assert row["title"] == "'" + title
    assert row["type"] == "'=type"


def test_it_refuses_the_export_to_staff_without_view_permission(client):
    staff = factories.UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(EXPORT).status_code == 403


# --- People ------------------------------------------------------------------------


def test_it_lists_people_with_their_open_item_counts(client, manager):
    client.force_login(manager)
    person = factories.PersonFactory(email="ops@example.com")
    factories.ActionItemFactory.create_batch(2, owner=person, status="open")
    factories.ActionItemFactory(owner=person, status="blocked")
    factories.ActionItemFactory(owner=person, status="done", completed_at=timezone.now())

    response = client.get(reverse("admin:tracker_person_changelist") + "?q=ops@")

    (listed_person,) = response.context["cl"].result_list
    assert listed_person.open_items == 3


def test_it_lists_people_with_a_constant_number_of_queries(client, manager):
    client.force_login(manager)
    url = reverse("admin:tracker_person_changelist")
    factories.ActionItemFactory.create_batch(5)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    factories.ActionItemFactory.create_batch(
        25, owner__user=factory.SubFactory(factories.UserFactory)
    )
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert len(response.context["cl"].result_list) == 30
    assert len(many) == len(few)


# --- Managers group ------------------------------------------------------------------


def test_it_gives_the_managers_group_full_rights_on_incidents_and_items(manager):
    for perm in (
        "incidents.view_incident",
        "incidents.add_incident",
        "incidents.delete_incident",
        "incidents.view_incidentdocument",
        "tracker.change_actionitem",
        "tracker.view_actionitemchange",
        "tracker.add_person",
    ):
        assert manager.has_perm(perm), perm
    assert not manager.has_perm("auth.change_user")


def test_the_managers_group_migration_is_reversible():
    migration = importlib.import_module("tracker.migrations.0002_managers_group")

    migration.remove_managers_group(django_apps, _SchemaEditor())
    assert not Group.objects.filter(name="managers").exists()

    migration.create_managers_group(django_apps, _SchemaEditor())
    group = Group.objects.get(name="managers")
    assert group.permissions.filter(codename="change_actionitem").exists()
    models = [*django_apps.get_app_config("incidents").get_models()]
    models += django_apps.get_app_config("tracker").get_models()
    assert group.permissions.count() == 4 * len(models)  # view, add, change, delete


class _SchemaEditor:
    connection = connection


def test_it_renders_the_item_and_person_pages(client, superuser):
    client.force_login(superuser)
    item = factories.ActionItemFactory(source_key="id:A-1")
    add = client.get(reverse("admin:tracker_actionitem_add"))
    assert add.status_code == 200
    assert 'name="source_key"' not in add.content.decode()
    change = client.get(change_url(item))
    assert change.status_code == 200
    assert "id:A-1" in change.content.decode()
    assert 'name="source_key"' not in change.content.decode()
    person_url = reverse("admin:tracker_person_change", args=[item.owner_id])
    assert client.get(person_url).status_code == 200
    assert client.get(reverse("admin:tracker_person_add")).status_code == 200

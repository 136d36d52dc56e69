"""The pages in a real browser: sign in, the dashboard's charts, changing a status in
place with htmx, the two-step import, and documents that try to run script."""

import json
import re

import pytest
from playwright.sync_api import Page, expect

from incidents.importing import import_document
from incidents.models import Incident
from tests import factories
from tests.conftest import SAMPLE_PATH
from tracker.models import ActionItem, ActionItemChange, ChangeSource, Status

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
SCRIPT_PAYLOAD = "<script>window.__xss=1</script>"
IMG_PAYLOAD = '<img src=x onerror="window.__xss=1">'
SAMPLE_ID = "INC-2024-0142"
ALERTING_ITEM = "Add connection pool utilization alerting"


def sign_in(page: Page, user) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def import_sample(raw: bytes) -> None:
    summary = import_document(raw=raw, source="e2e setup", path=SAMPLE_PATH.name)
    assert not summary.errors, summary.errors


def upload_and_confirm(page: Page, *, name: str, content: bytes) -> None:
    """The import page's two steps: upload and preview (nothing written), then confirm."""
    page.goto("/import/")
    page.get_by_label("Incident documents").set_input_files(
        {"name": name, "mimeType": "application/json", "buffer": content}
    )
    page.get_by_role("button", name=re.compile(r"preview", re.I)).click()
    expect(page.get_by_role("button", name=re.compile(r"^(confirm|import)", re.I))).to_be_visible()


def assert_no_script_ran(page: Page) -> None:
    assert page.evaluate("window.__xss") is None, f"a document's markup ran on {page.url}"
    # The payloads are text, not elements.
    assert page.locator("script", has_text="__xss").count() == 0
    assert page.locator("img[onerror]").count() == 0


def test_it_shows_a_manager_the_dashboard_with_its_charts(page, live_server, manager, screenshot):
    import_sample(SAMPLE_PATH.read_bytes())

    sign_in(page, manager)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("main svg").first).to_be_visible()
    screenshot(page, "dashboard.png")

    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Items", exact=True
    ).click()
    items = page.get_by_role("table")
    expect(items.get_by_role("link", name=re.compile(ALERTING_ITEM))).to_be_visible()
    # The filters fill the first screen; the picture is of the list.
    items.evaluate("table => table.scrollIntoView()")
    screenshot(page, "items.png")


def test_it_lets_an_owner_change_a_status_in_place(page, screenshot):
    import_sample(SAMPLE_PATH.read_bytes())
    owner = factories.UserFactory(username="alice", email="Alice@Company.com")
    item = ActionItem.objects.get(title__startswith=ALERTING_ITEM)

    sign_in(page, owner)
    page.goto("/items/mine/")
    # A marker that a full page load would wipe: the change must happen in place.
    page.evaluate("window.__samePage = true")
    card = page.get_by_role("article", name=re.compile(ALERTING_ITEM))
    expect(card.get_by_label("Status")).to_have_value(Status.OPEN)
    card.get_by_label("Status").select_option(label="In progress")
    with page.expect_response(re.compile(rf"/items/{item.pk}/status/$")) as answer:
        card.get_by_role("button", name="Change status").click()
    assert answer.value.ok
    expect(card.get_by_role("status")).to_have_text("Status changed to In progress.")
    assert page.evaluate("window.__samePage") is True, "the status change reloaded the page"

    page.reload()
    expect(card.get_by_label("Status")).to_have_value(Status.IN_PROGRESS)
    screenshot(page, "my-items.png")

    card.get_by_role("link", name=re.compile(ALERTING_ITEM)).click()
    expect(page).to_have_url(re.compile(rf"/items/{item.pk}/$"))
    change = (
        page.get_by_role("region", name="History")
        .get_by_role("row")
        .filter(has_text="Web UI")
        .filter(has_text="alice")
    )
    expect(change).to_contain_text("status")
    expect(change).to_contain_text(re.compile(r"open\s*→\s*in_progress"))
    screenshot(page, "item.png")

    item.refresh_from_db()
    assert item.status == Status.IN_PROGRESS
    assert ActionItemChange.objects.filter(
        item=item, field="status", source=ChangeSource.WEB, new_value=Status.IN_PROGRESS
    ).exists()


def test_it_imports_a_document_through_the_import_page(page, manager, screenshot):
    sign_in(page, manager)

    upload_and_confirm(page, name=SAMPLE_PATH.name, content=SAMPLE_PATH.read_bytes())
    expect(page.get_by_text(SAMPLE_ID).first).to_be_visible()
    screenshot(page, "import.png")
    assert not Incident.objects.exists(), "the preview wrote to the database"

    page.get_by_role("button", name=re.compile(r"^(confirm|import)", re.I)).click()
    expect(page.get_by_text(re.compile("created", re.I)).first).to_be_visible()

    page.goto(f"/incidents/{SAMPLE_ID}/")
    expect(
        page.get_by_role("heading", name=re.compile("Payment Service Degradation"))
    ).to_be_visible()
    expect(page.get_by_text(ALERTING_ITEM).first).to_be_visible()
    screenshot(page, "incident.png")
    assert Incident.objects.get(external_id=SAMPLE_ID).action_items.count() == 5


def test_it_shows_markup_from_a_document_as_text(page, manager):
    doc = json.loads(SAMPLE_PATH.read_text())
    doc["incident"]["title"] = f"Checkout down {SCRIPT_PAYLOAD}"
    doc["incident"]["commander"] = IMG_PAYLOAD
    doc["incident"]["service"] = SCRIPT_PAYLOAD
    doc["events"][0]["description"] = IMG_PAYLOAD
    doc["action_items"][0]["title"] = f"Rotate keys {SCRIPT_PAYLOAD}"
    doc["action_items"][0]["description"] = f"Alert on {IMG_PAYLOAD}"
    doc["action_items"][1]["title"] = f"Fix the pool {IMG_PAYLOAD}"
    doc["action_items"][1]["owner"] = manager.email
    sign_in(page, manager)

    # The preview shows the file's name: another string the page did not write.
    upload_and_confirm(page, name=f"{IMG_PAYLOAD}.json", content=json.dumps(doc).encode())
    assert_no_script_ran(page)
    expect(page.get_by_text("<img src=x onerror=").first).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^(confirm|import)", re.I)).click()
    assert_no_script_ran(page)

    page.goto(f"/incidents/{SAMPLE_ID}/")
    assert_no_script_ran(page)
    expect(page.get_by_role("heading", name=f"Checkout down {SCRIPT_PAYLOAD}")).to_be_visible()
    expect(page.get_by_text(f"Fix the pool {IMG_PAYLOAD}").first).to_be_visible()

    item = ActionItem.objects.get(title=f"Rotate keys {SCRIPT_PAYLOAD}")
    page.goto(f"/items/{item.pk}/")
    assert_no_script_ran(page)
    expect(page.get_by_role("heading", name=f"Rotate keys {SCRIPT_PAYLOAD}")).to_be_visible()
    expect(page.get_by_text(f"Alert on {IMG_PAYLOAD}").first).to_be_visible()

    for url, text in [
        ("/items/", SCRIPT_PAYLOAD),
        ("/items/mine/", IMG_PAYLOAD),
        ("/incidents/", SCRIPT_PAYLOAD),
    ]:
        page.goto(url)
        assert_no_script_ran(page)
        expect(page.get_by_text(text).first).to_be_visible()

    page.goto("/")
    assert_no_script_ran(page)
    expect(page.locator("main svg").first).to_be_visible()
    # The sample's deadlines are long past: both items are among the oldest overdue.
    expect(page.get_by_role("link", name=f"Rotate keys {SCRIPT_PAYLOAD}")).to_be_visible()
    expect(page.get_by_role("link", name=f"Fix the pool {IMG_PAYLOAD}")).to_be_visible()

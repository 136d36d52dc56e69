"""The Content-Security-Policy in a real browser: every page renders without a single
violation (no inline script or style anywhere), and htmx still works under it."""

import re

import pytest
from playwright.sync_api import Page, expect

from incidents.importing import import_document
from tests import factories
from tests.conftest import SAMPLE_PATH
from tracker.models import ActionItem, Status

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
SAMPLE_ID = "INC-2024-0142"
ALERTING_ITEM = "Add connection pool utilization alerting"
# Installed by the browser (through the DevTools protocol) before any page script,
# which a CSP does not block: it records what the policy refused on the page.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.violatedDirective} refused ${event.blockedURI || "inline"} ` +
    `at ${event.sourceFile || event.documentURI}:${event.lineNumber}`
  );
});
"""


class CspWatch:
    """Every CSP violation the browser reported, from page events and the console."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._on_console)

    def _on_console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def visit(self, url: str) -> None:
        """Go to `url`, check it was sent the production policy, and that nothing was refused."""
        response = self.page.goto(url)
        assert response is not None and response.ok, f"{url}: {response and response.status}"
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy, f"{url} was sent no CSP: {policy!r}"
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, policy
        self.page.wait_for_load_state("load")
        self.assert_clean(url)

    def assert_clean(self, where: str) -> None:
        violations = self.page.evaluate("window.__cspViolations")
        assert violations == [], f"{where}: {violations}"
        assert self.console == [], f"{where}: {self.console}"


def sign_in(page: Page, user) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.fixture
def sample():
    summary = import_document(
        raw=SAMPLE_PATH.read_bytes(), source="e2e setup", path=SAMPLE_PATH.name
    )
    assert not summary.errors, summary.errors


@pytest.fixture
def alice(managers_group):
    """A manager who also owns items of the sample, so "my items" has cards."""
    user = factories.UserFactory(username="alice", email="alice@company.com", is_staff=True)
    user.groups.add(managers_group)
    return user


def test_it_renders_every_page_without_a_csp_violation(page, sample, alice):
    watch = CspWatch(page)
    sign_in(page, alice)
    watch.assert_clean("sign-in")
    item = ActionItem.objects.get(title__startswith=ALERTING_ITEM)

    for url in [
        "/",
        "/items/",
        "/items/?status=open&ordering=-deadline",
        "/items/mine/",
        f"/items/{item.pk}/",
        "/incidents/",
        f"/incidents/{SAMPLE_ID}/",
        "/import/",
        "/calendar/",
        "/accounts/password_change/",
    ]:
        watch.visit(url)

    # The dashboard's charts are drawn (SVG styled from app.css), not blank.
    watch.visit("/")
    expect(page.locator("main svg").first).to_be_visible()
    line = page.locator(".series-open polyline").first
    assert line.evaluate("e => getComputedStyle(e).fill") == "none"


def test_it_changes_a_status_in_place_under_the_policy(page, sample, alice):
    watch = CspWatch(page)
    sign_in(page, alice)
    item = ActionItem.objects.get(title__startswith=ALERTING_ITEM)
    watch.visit("/items/mine/")
    page.evaluate("window.__samePage = true")

    card = page.get_by_role("article", name=re.compile(ALERTING_ITEM))
    card.get_by_label("Status").select_option(label="Blocked")
    with page.expect_response(re.compile(rf"/items/{item.pk}/status/$")) as answer:
        card.get_by_role("button", name="Change status").click()

    assert answer.value.ok
    assert answer.value.request.headers.get("hx-request") == "true", "htmx did not send it"
    expect(card.get_by_role("status")).to_have_text("Status changed to Blocked.")
    assert page.evaluate("window.__samePage") is True, "the status change reloaded the page"
    watch.assert_clean("after the in-place change")
    item.refresh_from_db()
    assert item.status == Status.BLOCKED


def test_it_serves_the_admin_and_the_api_docs_without_a_csp_violation(page, sample, alice):
    alice.is_superuser = True  # the periodic tasks belong to superusers
    alice.save()
    watch = CspWatch(page)
    sign_in(page, alice)
    item = ActionItem.objects.get(title__startswith=ALERTING_ITEM)

    for url in [
        "/admin/",
        "/admin/tracker/actionitem/",
        f"/admin/tracker/actionitem/{item.pk}/change/",
        "/admin/incidents/incident/",
        "/admin/incidents/incident/import/",
        "/admin/django_celery_beat/periodictask/add/",
    ]:
        watch.visit(url)

    watch.visit("/api/v1/docs/")
    expect(page.get_by_text("Incident follow-up tracker API").first).to_be_visible()
    expect(page.get_by_text("/api/v1/action-items/").first).to_be_visible()
    watch.assert_clean("/api/v1/docs/ once drawn")

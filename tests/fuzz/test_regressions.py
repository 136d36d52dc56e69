"""Server errors the fuzz tests found, each as a named test.

The hostile inputs of the original report (long names and emails, 1e999, 5,000
digits, the ends of the calendar, NUL in paths, long usernames, deep nesting,
duplicate keys) have theirs in tests/hostile/; these are the ones found since.
"""

import pytest

from tracker.models import TicketWebhookDelivery

from .conftest import describe, signed_webhook

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.mark.parametrize("ordering", ["--id", "--deadline", "-deadline,---priority"])
def test_the_items_page_ignores_an_ordering_with_doubled_minus_signs(owner_client, ordering):
    # "--id".lstrip("-") is a known field, so the term passed the page's check and
    # reached order_by(), which raised FieldError: a 500 for any signed-in user.
    response = owner_client.get("/items/", {"ordering": ordering})

    assert response.status_code == 200, describe(response)


@pytest.mark.parametrize(
    "repository", [b'"acme/ops"', b'["acme/ops"]', b"7"], ids=["string", "list", "number"]
)
def test_a_signed_github_delivery_whose_repository_is_not_an_object_is_answered(
    github_webhooks, anonymous_client, repository
):
    # Found by the webhook fuzzing (with FUZZ_RANDOM=1): the backend read the
    # repository's full_name with .get(), so any other JSON type was an AttributeError.
    body = b'{"action": "closed", "issue": {"number": 1}, "repository": ' + repository + b"}"

    response = signed_webhook(anonymous_client)(body)

    assert response.status_code < 500, describe(response)
    if response.status_code >= 400:
        assert not TicketWebhookDelivery.objects.exists()

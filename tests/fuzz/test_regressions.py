"""Server errors the fuzz tests found, each as a named test.

The hostile inputs of the original report (long names and emails, 1e999, 5,000
digits, the ends of the calendar, NUL in paths, long usernames, deep nesting,
duplicate keys) have theirs in tests/hostile/; these are the ones found since.
"""

import pytest

from .conftest import describe

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.mark.parametrize("ordering", ["--id", "--deadline", "-deadline,---priority"])
def test_the_items_page_ignores_an_ordering_with_doubled_minus_signs(owner_client, ordering):
    # "--id".lstrip("-") is a known field, so the term passed the page's check and
    # reached order_by(), which raised FieldError: a 500 for any signed-in user.
    response = owner_client.get("/items/", {"ordering": ordering})

    assert response.status_code == 200, describe(response)

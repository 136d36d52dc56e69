"""Hostile query parameters on every list the API documents, and on the list pages.

The API's parameters are read from its OpenAPI schema, so a new filter is swept as
soon as it is documented. Each parameter gets each value below in turn (text at
and past the column limits, dates at both ends of the calendar and past them,
numbers past every range, junk where a list, a boolean or an ordering is
expected, a parameter repeated past Django's limit); hypothesis then mixes them.
Every answer must be below 500.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import given
from hypothesis import strategies as st

from .budget import fuzz_settings
from .conftest import SAMPLE_INCIDENT, describe
from .hostile import HUGE_INTEGER, email, text

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# Each value as it appears in the query string, already percent-encoded.
QUERY_VALUES: dict[str, str] = {
    name: quote(value, safe="")
    for name, value in {
        "empty": "",
        "blank": "   ",
        "65 chars": text(65),
        "201 chars": text(201),
        "5000 chars": text(5000),
        "201 chars of é": text(201, "é"),
        "255-char email": email(255),
        "320-char email": email(320),
        "0001-01-01": "0001-01-01",
        "9999-12-31": "9999-12-31",
        "9999-12-30T00:00:00Z": "9999-12-30T00:00:00Z",
        "9999-12-31T23:59:59-12:00": "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00": "0001-01-01T00:00:00+14:00",
        "2024-01-15T14:23:00+23:59": "2024-01-15T14:23:00+23:59",
        "2024-02-30": "2024-02-30",
        "10000-01-01": "10000-01-01",
        "1e999": "1e999",
        "-1e999": "-1e999",
        "NaN": "NaN",
        "Infinity": "Infinity",
        "-1": "-1",
        "2**64": str(2**64),
        "5,000-digit integer": HUGE_INTEGER,
        "1.5": "1.5",
        "maybe": "maybe",
        "commas": ",,,",
        "ordering junk": "-,--id,owner__email,__class__",
        "NUL": "a\u0000b",
    }.items()
}
QUERY_VALUES["invalid UTF-8"] = "%FF%FE"


def api_lists() -> dict[str, list[str]]:
    """Each list the schema documents (paths with query parameters), with its parameters."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    lists = {}
    for path, operations in schema["paths"].items():
        query = [
            p["name"] for p in operations.get("get", {}).get("parameters", []) if p["in"] == "query"
        ]
        if query:
            lists[path] = query
    return lists


API_LISTS = api_lists()
PAGE_LISTS = {
    "/items/": sorted({*API_LISTS["/api/v1/action-items/"], "page", "export"}),
    "/items/mine/": ["page"],
    "/incidents/": ["q", "severity", "status", "page"],
}


def url_for(path: str, item_id: int) -> str:
    return path.replace("{id}", str(item_id)).replace("{external_id}", SAMPLE_INCIDENT)


def sweep(client, url: str, parameters: list[str]) -> list[str]:
    failures = []
    for parameter in [*parameters, "not_a_parameter"]:
        cases = [(name, f"{parameter}={value}") for name, value in QUERY_VALUES.items()]
        cases.append(("1,001 times", "&".join([f"{parameter}=1"] * 1001)))
        for name, query in cases:
            response = client.get(f"{url}?{query}")
            if response.status_code >= 500:
                failures.append(f"{parameter} = {name}: {describe(response)}")
    return failures


@pytest.mark.parametrize("path", list(API_LISTS))
def test_every_api_list_answers_any_query(manager_client, path, owned_item):
    failures = sweep(manager_client, url_for(path, owned_item.pk), API_LISTS[path])

    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures)


@pytest.mark.parametrize("path", list(PAGE_LISTS))
def test_every_list_page_answers_any_query(owner_client, path, sample_incident):
    failures = sweep(owner_client, path, PAGE_LISTS[path])

    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures)


def test_the_api_lists_are_found_in_the_schema():
    assert set(API_LISTS) >= {"/api/v1/action-items/", "/api/v1/incidents/", "/api/v1/people/"}
    assert "due_before" in API_LISTS["/api/v1/action-items/"]


@st.composite
def queries(draw, parameters: list[str]) -> str:
    """A few of the parameters, each with a hostile value or hypothesis's own text."""
    chosen = draw(st.lists(st.sampled_from([*parameters, "x"]), min_size=1, max_size=5))
    values = st.sampled_from(list(QUERY_VALUES.values())) | st.text(
        st.characters(exclude_categories=["Cs"]), max_size=30
    ).map(lambda v: quote(v, safe=""))
    return "&".join(f"{name}={draw(values)}" for name in chosen)


@fuzz_settings(60)
@given(data=st.data())
def test_any_mix_of_parameters_on_the_lists_is_answered(
    manager_client, owner_client, owned_item, data
):
    lists = {url_for(path, owned_item.pk): names for path, names in API_LISTS.items()}
    lists.update(PAGE_LISTS)
    url = data.draw(st.sampled_from(sorted(lists)), label="url")
    who = data.draw(st.sampled_from(["manager", "owner"]), label="who")
    query = data.draw(queries(lists[url]), label="query")
    client = manager_client if who == "manager" else owner_client

    response = client.get(f"{url}?{query}")

    assert response.status_code < 500, describe(response)


def test_a_plain_query_finds_the_sample(manager_client, sample_incident):
    # The sweeps' requests reach the filters: a valid query answers with results.
    response = manager_client.get(
        "/api/v1/action-items/?"
        + urlencode({"incident": SAMPLE_INCIDENT, "due_before": "2030-01-01"})
    )

    assert response.status_code == 200, describe(response)
    assert response.json()["count"] == 5

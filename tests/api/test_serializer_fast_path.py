"""The list's hand-built representation matches DRF's field-by-field one."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework import serializers

from tests import factories
from tracker.serializers import ActionItemSerializer

pytestmark = pytest.mark.django_db


def declared(item) -> dict:
    # DRF's own rendering of the declared fields, bypassing the fast path.
    return serializers.ModelSerializer.to_representation(ActionItemSerializer(), item)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"owner": None, "incident": None, "deadline": None},
        {"status": "done", "completed_at": dt.datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC)},
        {"deadline": dt.date(2020, 1, 1), "description": "<b>x</b>", "type": ""},
    ],
)
def test_it_renders_items_exactly_as_the_declared_fields_do(fields):
    item = factories.ActionItemFactory(**fields)
    if item.owner:
        item.owner.time_zone = "Pacific/Auckland"
        item.owner.save()
    item.refresh_from_db()

    assert ActionItemSerializer().to_representation(item) == declared(item)


def test_it_formats_timestamps_in_the_current_time_zone_like_drf():
    item = factories.ActionItemFactory()
    item.refresh_from_db()
    with timezone.override("America/New_York"):
        assert ActionItemSerializer().to_representation(item) == declared(item)

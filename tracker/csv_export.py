"""Action items as CSV, for the admin's export and the items page's.

A spreadsheet runs a cell that starts with one of CSV_FORMULA_PREFIXES as a
formula (OWASP "CSV injection"), and titles come from documents anyone can
write: such cells are prefixed with a quote so they read as text.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from .models import ActionItem

CSV_COLUMNS = (
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
)
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object whose write returns the line, for streaming with csv.writer."""

    def write(self, value: str) -> str:
        return value


def csv_cell(value: Any) -> Any:
    """One value as a cell: dates in ISO format, booleans as yes/no, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_lines(items: QuerySet[ActionItem]) -> Iterator[str]:
    """The header and one line per item; `items` needs the `is_overdue` annotation
    (selectors.action_items_with_overdue) and should select the incident and owner."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for item in items.iterator(chunk_size=1000):
        row = (
            item.id,
            item.incident.external_id if item.incident else None,
            item.title,
            item.owner.email if item.owner else None,
            item.priority,
            item.type,
            item.status,
            item.deadline,
            item.deadline_derived,
            item.is_overdue,
            item.completed_at,
            item.created_at,
            item.updated_at,
        )
        yield writer.writerow([csv_cell(v) for v in row])

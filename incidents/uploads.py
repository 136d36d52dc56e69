"""What the four ways into the import share: reading a document's bytes, and the line
that totals a batch of imports.

The import_incidents command, the admin's upload page, the import page and the API
all read documents with `read_document` and hand the bytes to
`incidents.importing.import_document`, which decodes, parses and judges them; the
command and both pages sum up their batch with `summary_line`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import IO

from django.conf import settings

from .importing import ImportSummary


def read_document(file: IO[bytes]) -> bytes:
    """The bytes of an uploaded, posted or named document, up to one past the limit.

    The import refuses a document over TRACKER_IMPORT_MAX_BYTES by its size, with
    the same message whichever way it came in: one byte past the limit is enough
    for that, so an oversized document is never read whole.
    """
    return file.read(settings.TRACKER_IMPORT_MAX_BYTES + 1)


def is_too_large(raw: bytes) -> bool:
    """Whether `read_document` stopped at the limit: the import will refuse these bytes."""
    return len(raw) > settings.TRACKER_IMPORT_MAX_BYTES


def summary_line(
    summaries: Sequence[ImportSummary],
    *,
    dry_run: bool = False,
    dry_run_note: str = "Dry run, nothing written",
) -> str:
    """The totals of a batch: "2 documents: 1 created, 1 rejected", noting a dry run."""
    counts = Counter(str(s.result) for s in summaries)
    return "{}{} document{}: {}".format(
        f"{dry_run_note}: " if dry_run else "",
        len(summaries),
        "" if len(summaries) == 1 else "s",
        ", ".join(f"{n} {result}" for result, n in sorted(counts.items())),
    )

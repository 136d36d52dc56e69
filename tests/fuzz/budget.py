"""How many cases the fuzz tests run, and how to run more.

CI runs a fixed, bounded set of cases: derandomized, so the same ones on every
run, and no example database. To search longer locally, raise the examples per
test and draw new cases on each run:

    FUZZ_EXAMPLES=2000 FUZZ_RANDOM=1 DATABASE_URL=postgres://... .venv/bin/pytest tests/fuzz

FUZZ_EXAMPLES applies to every hypothesis test under tests/fuzz, to
tests/incidents/test_import_fuzz.py and, per operation, to schemathesis in
tests/api_schema/test_schema_conformance.py. The sweeps (each hostile value in
each field) are exhaustive already and do not change with it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def examples(default: int) -> int:
    """The examples per test: FUZZ_EXAMPLES if set, else `default` (CI's budget)."""
    return int(os.environ.get("FUZZ_EXAMPLES", default))


def fuzz_settings(max_examples: int) -> settings:
    """Hypothesis settings for a fuzz test: `max_examples` cases in CI (see `examples`),
    the same on every run unless FUZZ_RANDOM=1, no deadline, no example database."""
    return settings(
        max_examples=examples(max_examples),
        derandomize=os.environ.get("FUZZ_RANDOM") != "1",
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )

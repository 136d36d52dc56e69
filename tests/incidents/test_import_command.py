"""`manage.py import_incidents`: paths, directories, stdin, --json, --dry-run, exit codes."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from incidents.models import Incident

from .helpers import doc_bytes

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> tuple[str, int]:
    out = StringIO()
    try:
        call_command("import_incidents", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return out.getvalue(), exc.returncode
    return out.getvalue(), 0


def write(tmp_path: Path, name: str, doc: dict | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(doc if isinstance(doc, bytes) else doc_bytes(doc))
    return path


def test_it_imports_every_json_file_under_a_directory(tmp_path, sample_doc):
    for n in range(3):
        sample_doc["incident"]["id"] = f"INC-{n}"
        write(tmp_path, f"team{n % 2}/nested/inc-{n}.json", sample_doc)
    write(tmp_path, "notes.txt", b"not a document")

    out, code = run(str(tmp_path), "--json")

    assert code == 0
    report = json.loads(out)
    assert sorted(r["incident"] for r in report) == ["INC-0", "INC-1", "INC-2"]
    assert {r["result"] for r in report} == {"created"}
    assert Incident.objects.count() == 3


def test_it_prints_the_documented_json_summary(tmp_path, sample_doc):
    path = write(tmp_path, "a.json", sample_doc)

    out, code = run(str(path), "--json")

    assert code == 0
    (entry,) = json.loads(out)
    assert set(entry) == {
        "path",
        "incident",
        "result",
        "items_created",
        "items_updated",
        "items_unchanged",
        "items_removed_from_source",
        "errors",
        "warnings",
    }
    assert entry["path"] == str(path)


def test_it_exits_1_when_any_document_is_rejected(tmp_path, sample_doc):
    good = write(tmp_path, "good.json", sample_doc)
    sample_doc["incident"]["id"] = "INC-BAD"
    sample_doc["action_items"][1]["deadline"] = "tomorrow"
    bad = write(tmp_path, "bad.json", sample_doc)

    out, code = run(str(good), str(bad), "--json")

    assert code == 1
    results = {r["path"]: r for r in json.loads(out)}
    assert results[str(good)]["result"] == "created"
    assert results[str(bad)]["result"] == "rejected"
    assert results[str(bad)]["errors"] == [
        {
            "path": "action_items[1].deadline",
            "message": "expected a date (YYYY-MM-DD) or an ISO 8601 timestamp, got 'tomorrow'",
        }
    ]
    assert list(Incident.objects.values_list("external_id", flat=True)) == ["INC-2024-0142"]


def test_it_is_a_usage_error_when_a_path_does_not_exist(tmp_path):
    _out, code = run(str(tmp_path / "missing.json"))

    assert code == 2


def test_it_writes_nothing_on_dry_run(tmp_path, sample_doc):
    path = write(tmp_path, "a.json", sample_doc)

    out, code = run(str(path), "--dry-run")

    assert code == 0
    assert "Dry run, nothing written" in out
    assert "INC-2024-0142 created" in out
    assert Incident.objects.count() == 0


def test_it_ends_with_the_same_totals_line_as_the_upload_pages(tmp_path, sample_doc):
    path = write(tmp_path, "a.json", sample_doc)

    out, code = run(str(path))

    assert code == 0
    assert out.splitlines()[-1] == "1 document: 1 created"


def test_it_prints_errors_and_warnings_in_plain_text(tmp_path, sample_doc):
    sample_doc["action_items"][0]["type"] = "Chaos"
    ok = write(tmp_path, "ok.json", sample_doc)
    bad = write(tmp_path, "bad.json", b"[]")

    out, code = run(str(ok), str(bad))

    assert code == 1
    assert "warning action_items[0].type: unknown type 'Chaos'; kept as 'chaos'" in out
    assert f"{bad}: rejected" in out
    assert "error $: expected a JSON object at the top level, got a list" in out


@pytest.mark.django_db(transaction=True)
def test_it_exits_with_the_documented_codes_from_a_shell(tmp_path, sample_bytes):
    """The real process: stdin, exit codes 0/1/2, and no traceback on stderr."""
    env = {**os.environ, "DEBUG": "1"}
    env["TRACKER_VAR_DIR"] = str(tmp_path / "var")
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, timeout=120)

    ok = subprocess.run(
        [*manage, "import_incidents", "-", "--json"],
        input=sample_bytes,
        capture_output=True,
        env=env,
        timeout=60,
    )
    rejected = subprocess.run(
        [*manage, "import_incidents", "-"],
        input=b"{",
        capture_output=True,
        env=env,
        timeout=60,
    )
    usage = subprocess.run(
        [*manage, "import_incidents", str(tmp_path / "nope")],
        capture_output=True,
        env=env,
        timeout=60,
    )
    no_args = subprocess.run(
        [*manage, "import_incidents"], capture_output=True, env=env, timeout=60
    )

    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)[0]["result"] == "created"
    assert rejected.returncode == 1
    assert b"invalid JSON" in rejected.stdout
    assert usage.returncode == 2
    assert b"no such file or directory" in usage.stderr
    assert no_args.returncode == 2
    for proc in (ok, rejected, usage, no_args):
        assert b"Traceback" not in proc.stderr

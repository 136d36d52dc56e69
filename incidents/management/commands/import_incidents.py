import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from incidents.document import Problem
from incidents.importing import ImportSummary, import_document
from incidents.uploads import read_document, summary_line

PROGRESS_BAR_FROM = 5  # files


class Command(BaseCommand):
    help = (
        "Import incident documents (JSON). PATH may be a file, a directory (every *.json "
        "inside, recursively) or - for standard input. Exit status: 0 all imported, "
        "1 some rejected, 2 usage error."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, write nothing"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON summary to stdout")

    def handle(self, *args, paths, dry_run, json: bool, **options):
        files = self._expand(paths)
        show_bar = not json and len(files) >= PROGRESS_BAR_FROM and sys.stderr.isatty()
        summaries = []
        for path in tqdm(files, unit="doc", disable=not show_bar, file=sys.stderr):
            summary = self._import(path, dry_run=dry_run)
            summaries.append(summary)
            if not json:
                self._print(summary, bar=show_bar)

        if json:
            self.stdout.write(_json_dumps([s.as_dict() for s in summaries]))
        else:
            self.stdout.write(summary_line(summaries, dry_run=dry_run))
        rejected = sum(1 for s in summaries if not s.ok)
        if rejected:
            raise CommandError(f"{rejected} of {len(summaries)} documents rejected", returncode=1)

    def _expand(self, paths: tuple[str, ...]) -> list[str]:
        files: list[str] = []
        for arg in paths:
            if arg == "-":
                files.append("-")
                continue
            path = Path(arg)
            if path.is_dir():
                found = sorted(str(p) for p in path.rglob("*.json") if p.is_file())
                if not found:
                    raise CommandError(f"{arg}: no *.json files in this directory", returncode=2)
                files.extend(found)
            elif path.exists():
                files.append(str(path))
            else:
                raise CommandError(f"{arg}: no such file or directory", returncode=2)
        return files

    def _import(self, path: str, *, dry_run: bool) -> ImportSummary:
        try:
            if path == "-":
                raw = read_document(sys.stdin.buffer)
            else:
                with open(path, "rb") as fh:
                    raw = read_document(fh)
        except OSError as exc:
            return ImportSummary(path=path, errors=[Problem("$", f"cannot read: {exc.strerror}")])
        source = "command:stdin" if path == "-" else f"command:{Path(path).resolve()}"
        return import_document(raw=raw, source=source, path=path, dry_run=dry_run)

    def _print(self, summary: ImportSummary, *, bar: bool) -> None:
        write = tqdm.write if bar else self.stdout.write
        if summary.ok:
            line = (
                f"{summary.path}: {summary.incident} {summary.result} "
                f"(items: {summary.items_created} created, {summary.items_updated} updated, "
                f"{summary.items_unchanged} unchanged, "
                f"{summary.items_removed_from_source} removed from source)"
            )
            write(self.style.SUCCESS(line) if not bar else line)
        else:
            write(
                self.style.ERROR(f"{summary.path}: rejected")
                if not bar
                else f"{summary.path}: rejected"
            )
            for error in summary.errors:
                write(f"  error {error.path}: {error.message}")
        for warning in summary.warnings:
            write(f"  warning {warning.path}: {warning.message}")


def _json_dumps(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)

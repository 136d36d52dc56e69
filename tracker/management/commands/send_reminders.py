import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from tracker import reminders


class Command(BaseCommand):
    help = (
        "Run the reminder sweep now, synchronously, and deliver every email it claims "
        "before exiting (no worker needed)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", help="ISO 8601 moment to run the sweep at (testing, catch-up); default: now"
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="print who would get what; send and write nothing",
        )

    def handle(self, *args, now=None, dry_run=False, **options):
        moment = timezone.now()
        if now:
            try:
                moment = dt.datetime.fromisoformat(now)
            except ValueError:
                raise CommandError(
                    f"--now: expected an ISO 8601 moment, got {now!r}", returncode=2
                ) from None
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
        try:
            self._run(moment, dry_run)
        except DatabaseError as exc:
            # What was sent is recorded; a new run sends the rest (see README).
            raise CommandError(
                f"the database failed during the run ({exc}); run it again"
            ) from None

    def _run(self, moment: dt.datetime, dry_run: bool) -> None:
        report = reminders.sweep(now=moment, dry_run=dry_run)
        if dry_run:
            for recipient, stage, item in sorted(report.notifications):
                self.stdout.write(f"{recipient}: item {item} {stage}")
            self.stdout.write(
                f"Dry run, nothing sent: {len(report.recipients)} recipients, "
                f"{len(report.notifications)} reminders {report.by_stage()}"
            )
            return
        reminders.deliver_pending(now=moment, report=report)
        self.stdout.write(
            f"{report.emails} emails, {report.sent} reminders sent, {report.failed} failed; "
            f"new reminders: {len(report.notifications)} for {len(report.recipients)} "
            f"recipients, by stage {report.by_stage()}"
        )
        if report.failed:
            raise CommandError(f"{report.failed} reminders could not be sent; they will be retried")

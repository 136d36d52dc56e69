"""Sync items with the ticket system now, without a worker."""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from tracker.models import ActionItem, TicketLink
from tracker.ticketing import get_backend
from tracker.ticketing.base import SYNCED_FIELDS, TicketError
from tracker.ticketing.preflight import tickets_preflight
from tracker.ticketing.pull import ticket_link_existing, tickets_poll, tickets_pull
from tracker.ticketing.push import (
    ticket_fields,
    ticket_push,
    tickets_due,
    tickets_link_missing,
    tickets_push,
)


class Command(BaseCommand):
    help = (
        "Push items to the ticket system (by default those pending or due for a retry) "
        "and, with --pull, read back the tickets changed there. Exits 1 if any item failed. "
        "--check only reports what will not work with the configured ticket system."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--all", action="store_true", help="every item, giving a ticket to those without"
        )
        which.add_argument(
            "--item", type=int, action="append", metavar="ID", help="this item (repeatable)"
        )
        parser.add_argument(
            "--pull", action="store_true", help="also read back tickets changed remotely"
        )
        parser.add_argument(
            "--link",
            metavar="KEY_OR_URL",
            help="with one --item: attach it to this existing ticket instead of creating one",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="say what would be pushed; send nothing"
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="connect with the configured credentials and report what will not work "
            "(one line each; exit 1 if any blocks a sync); change nothing",
        )

    def handle(self, *args, all, item, pull, link, dry_run, check, verbosity, **options):
        backend = get_backend()
        if backend is None:
            raise CommandError("Ticket sync is off: set TICKETS_BACKEND (see the README).")
        if check:
            return self._check(backend)
        # `--link ""` (an unset variable in a script) must not fall through to a
        # push, which would create a second ticket for an item meant to be linked.
        if link is not None:
            return self._link(backend, item, link, dry_run)

        if item:
            found = set(ActionItem.objects.filter(pk__in=item).values_list("pk", flat=True))
            missing = sorted(set(item) - found)
            if missing:
                raise CommandError(f"No action item with id {', '.join(map(str, missing))}.")
            if not dry_run:
                tickets_link_missing(system=backend.name, item_ids=item)
            ids = sorted(found)
        elif all:
            if not dry_run:
                tickets_link_missing(system=backend.name)
            ids = list(ActionItem.objects.order_by("pk").values_list("pk", flat=True))
        else:
            ids = tickets_due(now=timezone.now(), system=backend.name)

        if dry_run:
            self._dry_run(ids)
            return

        show_bar = sys.stderr.isatty() and len(ids) > 1
        with tqdm(total=len(ids), unit="item", disable=not show_bar, file=sys.stderr) as bar:
            report = tickets_push(item_ids=ids, backend=backend, progress=bar.update)
        self.stdout.write(
            f"{backend.name}: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.failed} failed, {report.skipped} skipped"
        )
        for item_id, error in sorted(report.errors.items()):
            self.stderr.write(f"item {item_id}: {error}")

        pull_error = ""
        if pull:
            if item:
                keys = TicketLink.objects.filter(item_id__in=item).exclude(key="")
                pulled = tickets_pull(keys=keys.values_list("key", flat=True), backend=backend)
            else:
                pulled = tickets_poll(backend=backend)
            self.stdout.write(
                f"{backend.name}: {pulled.seen} tickets read back, {pulled.changed} items changed"
            )
            pull_error = pulled.error
            if pull_error:
                self.stderr.write(f"reading back failed: {pull_error}")
        if report.failed or pull_error:
            sys.exit(1)

    def _check(self, backend) -> None:
        findings = tickets_preflight(backend=backend)
        for finding in findings:
            kind = "blocking" if finding.blocking else "warning"
            message = " ".join(finding.message.split())
            self.stdout.write(f"{kind} {finding.area}: {message}")
        blocking = sum(1 for finding in findings if finding.blocking)
        if not findings:
            self.stdout.write(f"{backend.name}: every check passed")
            return
        self.stdout.write(
            f"{backend.name}: {blocking} blocking, {len(findings) - blocking} warnings"
        )
        if blocking:
            sys.exit(1)

    def _dry_run(self, ids: list[int]) -> None:
        links = {
            link.item_id: link
            for link in TicketLink.objects.filter(item_id__in=ids).select_related(
                "item__owner", "item__incident"
            )
        }
        items = ActionItem.objects.filter(pk__in=ids).select_related("owner", "incident")
        for action_item in items.order_by("pk"):
            link = links.get(action_item.pk)
            if link is None or not link.key:
                self.stdout.write(f"item {action_item.pk}: would create a ticket")
                continue
            desired = ticket_fields(action_item).as_values()
            changed = [f for f in SYNCED_FIELDS if link.pushed_values.get(f) != desired[f]]
            what = f"would update {', '.join(changed)}" if changed else "up to date"
            self.stdout.write(f"item {action_item.pk}: {link.system} {link.key}: {what}")
        self.stdout.write(f"{len(ids)} items, nothing sent (--dry-run)")

    def _link(self, backend, item, reference, dry_run):
        if not item or len(item) != 1:
            raise CommandError("--link needs exactly one --item.")
        action_item = ActionItem.objects.filter(pk=item[0]).first()
        if action_item is None:
            raise CommandError(f"No action item with id {item[0]}.")
        try:
            key = backend.parse_reference(reference)
            if dry_run:
                remote = backend.fetch(key)
                self.stdout.write(f"item {action_item.pk}: would link {backend.name} {remote.key}")
                return
            link = ticket_link_existing(item=action_item, reference=reference, backend=backend)
        except (ValueError, TicketError) as error:
            raise CommandError(f"Cannot link item {action_item.pk}: {error}") from None
        self.stdout.write(f"item {action_item.pk}: linked to {link.system} {link.key} {link.url}")
        outcome, error = ticket_push(item_id=action_item.pk, backend=backend)
        if outcome == "failed":
            self.stderr.write(f"item {action_item.pk}: pushing to the ticket failed: {error}")
            sys.exit(1)

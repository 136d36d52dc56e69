"""Fill a fault test's scratch database through the services, then describe it as JSON.

    DATABASE_URL=... python -m tests.faults.seed reminders --items 300 --escalated 50 [--now ISO]
    DATABASE_URL=... python -m tests.faults.seed api --items 6
    DATABASE_URL=... REDIS_URL=... TICKETS_BACKEND=github ... python -m tests.faults.seed tickets --items 40

Run by the tests in a process of their own, with the environment of the processes
under test (Django reads its settings once per process, and the test process is
configured for pytest-django's database). Items are made through
tracker.services, so that next_reminder_on is maintained and, with a ticket
backend, each item gets a pending link and a push task queued once it commits.
The last line of output is the JSON description.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys


def reminders(args) -> dict:
    """`items` items two days overdue, one owner each; the first `escalated` are P0
    (grace 1 day) and escalate to one of five managers, the others P4 (never escalate)."""
    import time_machine
    from django.utils import timezone

    from incidents.models import Incident
    from tracker.models import ActionItem, Person
    from tracker.services import Actor, action_items_create

    now = dt.datetime.fromisoformat(args.now) if args.now else timezone.now()
    travel = time_machine.travel(now, tick=False) if args.now else contextlib.nullcontext()
    with travel:
        incident = Incident.objects.create(
            external_id="INC-FAULTS-1",
            title="Fault test incident",
            severity="SEV2",
            status="resolved",
            declared_at=now - dt.timedelta(days=30),
        )
        deadline = now.astimezone(dt.UTC).date() - dt.timedelta(days=2)
        items, expected = [], []
        for n in range(args.items):
            escalated = n < args.escalated
            manager = f"manager{n % 5}@example.com" if escalated else ""
            owner = Person.objects.create(email=f"owner{n:04d}@example.com", manager_email=manager)
            title = f"Fault item {n:04d}"
            items.append(
                ActionItem(
                    incident=incident,
                    title=title,
                    owner=owner,
                    priority="P0" if escalated else "P4",
                    deadline=deadline,
                )
            )
            expected.append([owner.email, title, "overdue"])
            if escalated:
                expected.append([manager, title, "escalation"])
        created = action_items_create(items=items, actor=Actor.system("faults seed"))
    due = sum(1 for item in created if item.next_reminder_on is not None)
    return {"now": now.isoformat(), "items": len(created), "due": due, "expected": expected}


def api(args) -> dict:
    """A manager with an API token, and `items` open items for the clients to change."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from incidents.models import Incident
    from tracker.models import ActionItem
    from tracker.services import Actor, action_items_create, person_get_or_create
    from tracker.tokens import api_token_create

    user = get_user_model().objects.create_user(
        "faults-manager", email="faults-manager@example.com", is_staff=True
    )
    user.groups.add(Group.objects.get_or_create(name="managers")[0])
    _, key = api_token_create(user=user, name="faults")
    incident = Incident.objects.create(
        external_id="INC-FAULTS-API",
        title="Fault test incident",
        severity="SEV3",
        status="resolved",
        declared_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    owner = person_get_or_create(email="owner@example.com")
    created = action_items_create(
        items=[
            ActionItem(
                incident=incident,
                title=f"API item {n}",
                owner=owner,
                priority="P2",
                deadline=dt.date(2099, 1, 1),
            )
            for n in range(args.items)
        ],
        actor=Actor.system("faults seed"),
    )
    return {"token": key, "items": [item.pk for item in created]}


def tickets(args) -> dict:
    """`items` items made one by one: with TICKETS_BACKEND set, one push task each."""
    from incidents.models import Incident
    from tracker.services import Actor, action_item_create, person_get_or_create

    incident = Incident.objects.create(
        external_id="INC-FAULTS-TICKETS",
        title="Fault test incident",
        severity="SEV2",
        status="resolved",
        declared_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    owner = person_get_or_create(email="alice@example.com")
    ids = [
        action_item_create(
            actor=Actor.system("faults seed"),
            incident=incident,
            title=f"Ticket item {n:03d}",
            owner=owner,
            priority="P2",
            deadline=dt.date(2099, 1, 1),
        ).pk
        for n in range(args.items)
    ]
    return {"items": ids}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("reminders")
    command.add_argument("--items", type=int, required=True)
    command.add_argument("--escalated", type=int, default=0)
    command.add_argument("--now")
    command = commands.add_parser("api")
    command.add_argument("--items", type=int, required=True)
    command = commands.add_parser("tickets")
    command.add_argument("--items", type=int, required=True)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    result = {"reminders": reminders, "api": api, "tickets": tickets}[args.command](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

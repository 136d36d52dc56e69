"""Fill a migrated scratch database with the load test's data set, then describe it.

    DATABASE_URL=postgres://.../tracker_load_x python -m tests.load.seed OUT.json

Run by tests/load/test_load.py in its own process, because Django reads its
settings once per process and the test process is configured for the test
database. What it makes:

- 100 people (names, a spread of time zones), five of them signed-in owners
  (`load-owner1`...`load-owner5`, each with a password and an API token) and
  one manager (`load-manager`, in the managers group, with a password);
- 200 incidents imported through `incidents.importing.import_document`, the
  path every document takes (events, communications, participants, the kept
  revision and each item's "created" history), with 25 action items each:
  5,000 items, a tenth of them owned by the five owners, statuses spread as in
  a tracker in use (open, in progress, blocked, done, cancelled), deadlines
  from a week to five months after the incident, so that some are overdue;
- a status change through `tracker.services` on every tenth item and a
  comment on every fifth, so that history and comments have rows to read;
- `created_at` of each item moved back to its incident's resolution, and
  `completed_at` of the done ones between that and now, so that the dashboard's
  trend and time-to-done are those of months of use, not of one instant.

OUT.json gets the credentials, the item ids (all, and each owner's), the
incident ids and the allowed status transitions, for the load users.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import secrets
import sys
import time
from pathlib import Path

INCIDENTS = 200
ITEMS_PER_INCIDENT = 25
PEOPLE = 100
OWNER_USERS = 5
OWNED_BY_USERS = 0.10  # share of the items owned by the five signed-in owners
SEED = 20240115

FIRST = ["Alice", "Bob", "Carol", "Dmitri", "Erin", "Farah", "Gustavo", "Hana", "Ivan", "Jonas"]
LAST = ["Chen", "Kim", "Davis", "Volkov", "O'Neill", "Haddad", "Reyes", "Sato", "Berg", "Rossi"]
TIME_ZONES = ["", "", "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Tokyo"]
SERVICES = ["payment-gateway", "checkout", "user-api", "search", "auth", "ledger", "inventory"]
CAUSES = [
    ("database connection pool exhaustion", "db_pool_utilization"),
    ("a certificate that expired on the load balancer", "tls_handshake_errors"),
    ("a cache stampede after a cold restart", "cache_miss_ratio"),
    ("a bad feature flag rollout", "error_rate"),
    ("a retry storm from a downstream timeout", "request_rate"),
]
VERBS = [
    "Add alerting on",
    "Load test",
    "Document the runbook for",
    "Add a canary stage for",
    "Write an integration test for",
    "Set capacity limits on",
    "Automate the rollback of",
]
TYPES = ["prevention", "detection", "mitigation", "process", "documentation"]
PRIORITIES = ["P0", "P1", "P1", "P2", "P2", "P2", "P3", "P4"]
STATUSES = ["open"] * 30 + ["in_progress"] * 20 + ["blocked"] * 10 + ["done"] * 30
STATUSES += ["cancelled"] * 10


def _ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_document(rng: random.Random, number: int, pick_owner, now: dt.datetime) -> dict:
    """One postmortem document shaped like samples/INC-2024-0142.json."""
    service = rng.choice(SERVICES)
    cause, metric = rng.choice(CAUSES)
    declared = now - dt.timedelta(days=rng.uniform(5, 150))
    resolved = declared + dt.timedelta(minutes=rng.randint(30, 600))
    crew = rng.sample(FIRST, 4)
    events = [
        {
            "timestamp": _ts(declared + dt.timedelta(minutes=5 * i)),
            "type": ["trigger", "declaration", "investigation", "mitigation"][min(i, 3)],
            "actor": rng.choice(crew),
            "description": f"Step {i} on {service}: {cause}",
            "metadata": {"step": i, metric: round(rng.uniform(0, 100), 1)},
        }
        for i in range(12)
    ]
    items = []
    for i in range(ITEMS_PER_INCIDENT):
        status = rng.choice(STATUSES)
        # From a week to five months after the incident: some open items are overdue.
        deadline = (resolved + dt.timedelta(days=rng.randint(7, 150))).date()
        item = {
            "id": f"AI-{i + 1}",
            "title": f"{rng.choice(VERBS)} {rng.choice(SERVICES)} ({metric}, follow-up {i + 1})",
            "description": f"After {cause} on {service}: make sure it cannot happen again.",
            "owner": pick_owner(),
            "priority": rng.choice(PRIORITIES),
            "deadline": deadline.isoformat(),
            "type": rng.choice(TYPES),
            "status": status,
        }
        if status == "done":
            item["completed_at"] = _ts(now - dt.timedelta(days=rng.uniform(0, 4)))
        items.append(item)
    return {
        "incident": {
            "id": f"INC-LOAD-{number:04d}",
            "title": f"{service} degraded: {cause}",
            "severity": rng.choice(["SEV1", "SEV2", "SEV2", "SEV3", "SEV3", "SEV4"]),
            "status": "resolved",
            "declared_at": _ts(declared),
            "resolved_at": _ts(resolved),
            "commander": crew[0],
            "service": service,
            "affected_services": rng.sample(SERVICES, 2),
        },
        "events": events,
        "communications": [
            {
                "timestamp": _ts(declared + dt.timedelta(minutes=15 * i)),
                "channel": "status_page",
                "audience": "external",
                "message": f"Update {i + 1}: we are working on {cause}.",
            }
            for i in range(3)
        ],
        "impact": {"affected_users_percentage": rng.randint(1, 80), "customer_facing": True},
        "resolution": {
            "root_cause": f"{cause.capitalize()} on {service}",
            "contributing_factors": [f"No alert before {metric} reached its limit"],
            "mitigation_steps": ["Rolled back the last deployment"],
        },
        "action_items": items,
        "participants": [
            {"name": name, "role": role}
            for name, role in zip(crew, ["Commander", "Ops Lead", "Comms", "SME"], strict=True)
        ],
    }


def seed(out: Path) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from incidents.importing import import_document
    from incidents.models import Incident
    from tracker import services
    from tracker.models import ActionItem, ChangeSource, Person
    from tracker.tokens import api_token_create

    rng = random.Random(SEED)
    now = timezone.now()
    started = time.perf_counter()
    users = get_user_model().objects

    manager_password = secrets.token_urlsafe(12)
    manager = users.create_user(
        username="load-manager", email="load-manager@example.com", password=manager_password
    )
    manager.groups.add(Group.objects.get_or_create(name="managers")[0])

    owners = []
    people = []
    for n in range(PEOPLE):
        user = None
        if n < OWNER_USERS:
            password = secrets.token_urlsafe(12)
            user = users.create_user(
                username=f"load-owner{n + 1}",
                email=f"load-owner{n + 1}@example.com",
                password=password,
            )
            _, token = api_token_create(user=user, name="load test")
            owners.append(
                {"username": user.username, "email": user.email, "password": password}
                | {"token": token}
            )
        people.append(
            Person(
                email=user.email if user else f"person{n:03d}@example.com",
                name=f"{FIRST[n % 10]} {LAST[n // 10 % 10]}",
                time_zone=rng.choice(TIME_ZONES),
                manager_email="load-manager@example.com" if n % 3 else "",
                user=user,
            )
        )
    Person.objects.bulk_create(people)
    owner_emails = [o["email"] for o in owners]
    other_emails = [p.email for p in people[OWNER_USERS:]]

    def pick_owner() -> str:
        pool = owner_emails if rng.random() < OWNED_BY_USERS else other_emails
        return rng.choice(pool)

    for number in range(INCIDENTS):
        doc = make_document(rng, number, pick_owner, now)
        summary = import_document(raw=json.dumps(doc).encode(), source="command", user=manager)
        if not summary.ok:
            raise SystemExit(f"seed document {number} rejected: {summary.as_dict()['errors']}")

    # Some history and comments to read, through the services like any change.
    actor = services.Actor(source=ChangeSource.WEB, user=manager)
    items = list(ActionItem.objects.select_related("owner").order_by("id"))
    with transaction.atomic():
        updates = []
        for item in items[::10]:
            allowed = sorted(services.ALLOWED_TRANSITIONS[item.status])
            updates.append(services.ItemUpdate(item, {"status": rng.choice(allowed)}))
        services.action_items_update(updates=updates, actor=actor, note="load test seed")
        for item in items[::5]:
            services.comment_add(item=item, actor=actor, body="Checked with the owner: on track.")

    # Ages as after months of use (the import stamps every row with now).
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE tracker_actionitem a SET created_at = i.resolved_at + interval '1 hour'
            FROM incidents_incident i WHERE i.id = a.incident_id
            """
        )
        cursor.execute(
            """
            UPDATE tracker_actionitem
            SET completed_at = created_at + (%s - created_at) * (0.1 + 0.9 * random())
            WHERE status = 'done'
            """,
            [now],
        )
        cursor.execute("VACUUM ANALYZE")

    by_owner = {email: [] for email in owner_emails}
    for item_id, email in ActionItem.objects.filter(owner__email__in=owner_emails).values_list(
        "id", "owner__email"
    ):
        by_owner[email].append(item_id)
    for owner in owners:
        owner["item_ids"] = by_owner[owner["email"]]
    description = {
        "manager": {"username": manager.username, "password": manager_password},
        "owners": owners,
        "item_ids": list(ActionItem.objects.order_by("id").values_list("id", flat=True)),
        "incident_ids": list(Incident.objects.order_by("id").values_list("external_id", flat=True)),
        "transitions": {k: sorted(v) for k, v in services.ALLOWED_TRANSITIONS.items()},
        "counts": {
            "incidents": Incident.objects.count(),
            "items": len(items),
            "open_items": ActionItem.objects.filter(status="open").count(),
            "people": Person.objects.count(),
            "owned_by_owner_users": sum(len(ids) for ids in by_owner.values()),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    out.write_text(json.dumps(description))
    print(json.dumps(description["counts"] | {"seconds": description["seconds"]}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m tests.load.seed OUT.json")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    seed(Path(sys.argv[1]))

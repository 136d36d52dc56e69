"""A Celery worker killed with SIGKILL (its whole process group) half-way through its work.

The worker is the production one (`celery -A config worker -P prefork -c 2`,
acks_late) on the private Redis and PostgreSQL. Its unacknowledged task is
redelivered by Redis only after the visibility timeout, which settings.py fixes
at six hours (CELERY_BROKER_TRANSPORT_OPTIONS, not configurable): no test can
wait for that, and production does not rely on it either. Recovery comes from
the beat tasks, which the test sends to a new worker as beat would.

Reminders: 350 reminders (305 digests) due now, an SMTP server that answers 20
ms after taking each message. The worker runs `tracker.sweep_reminders` and is
killed after about 100 digests. A new worker runs
`tracker.deliver_pending_reminders` (beat: every five minutes) with
TRACKER_SEND_LEASE_SECONDS=5, once the dead sender's lease has run out. Every
reminder is then sent, once, but for the README's window: a digest the SMTP
server took while the worker died, before its rows were marked sent, goes out
again. One worker process was sending, so at most one digest may be doubled,
and only one whose rows the dead worker left claimed.

Tickets: 100 items queued for a first push, a fake GitHub that makes each issue
and answers 50 ms later. The worker is killed after about 30 issues. A new
worker takes the rest of the queue and runs `tracker.push_pending_tickets`
(beat: every minute) every 2 s. Every item must end with exactly one issue,
including the items the dead worker was pushing: their issue may exist without
the tracker knowing its key, and the marker lookup must find it rather than
make a second one.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import time
from collections import Counter

import pytest

from .helpers import SlowFakeGitHub, Ticker, github_env, seed
from .services import Deliveries, django_env, query, send_task, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.faults]

REMINDER_ITEMS, ESCALATED = 300, 50
TICKET_ITEMS = 100
SHORT_LEASE_SECONDS = 5
CLAIM_SECONDS = 300  # the default of TICKETS_CLAIM_SECONDS (tracker.ticketing.push)
RECOVERY_BOUND = 45.0  # seconds for the new worker to finish everything
LEASE_MARGIN = 10.0  # after a short lease: a beat tick, a worker's start, the push

# `manage.py ARGS` run with the clock moved SECONDS ahead (after a lease has run out).
CLOCK_AHEAD = """
import datetime as dt, runpy, sys
import time_machine
ahead = float(sys.argv[1])
time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ahead), tick=True).start()
sys.argv = ["manage.py", *sys.argv[2:]]
runpy.run_path("manage.py", run_name="__main__")
"""


def notifications(url: str) -> list[tuple]:
    return query(
        url,
        """
        SELECT n.recipient, i.title, n.kind, n.state, n.claimed_at
        FROM tracker_notification n JOIN tracker_actionitem i ON i.id = n.item_id
        """,
    )


def test_it_sends_every_reminder_once_when_the_worker_is_killed_mid_sweep(
    redis_server, scratch_db, slow_smtp, processes, workdir
):
    base = {
        "REDIS_URL": redis_server.url(),
        "EMAIL_URL": slow_smtp.url,
        # Real time here (the worker's clock): any weekday, any hour.
        "TRACKER_REMIND_WEEKDAYS": "0,1,2,3,4,5,6",
        "TRACKER_REMIND_HOUR": "0",
    }
    env = django_env(workdir, database_url=scratch_db, **base)
    seeded = seed(
        processes, env, "reminders", "--items", str(REMINDER_ITEMS), "--escalated", str(ESCALATED)
    )
    expected = {tuple(key) for key in seeded["expected"]}
    digests = len({r for r, _, _ in expected})

    first = processes.celery_worker("worker-1", env)
    send_task(redis_server.url(), "tracker.sweep_reminders")
    reached = wait_until(lambda: slow_smtp.count >= 100, timeout=90)
    assert reached, (slow_smtp.count, processes.log(first))
    processes.kill(first, signal.SIGKILL)
    at_kill = slow_smtp.count
    time.sleep(0.2)  # let the SMTP server finish taking a message that was in flight
    taken_by_first = slow_smtp.count
    unacked = redis_server.client().hlen("unacked")  # kombu's: back after the visibility timeout
    rows = notifications(scratch_db)
    states_after_kill = Counter(state for *_, state, _ in rows)
    left_claimed = {(r, t, k) for r, t, k, state, _ in rows if state == "sending"}
    # The new worker presumes the dead one's claims abandoned once their lease is over.
    claimed = [at for *_, state, at in rows if state == "sending"]
    if claimed:
        wait_until(
            lambda: (
                dt.datetime.now(dt.UTC)
                > max(claimed) + dt.timedelta(seconds=SHORT_LEASE_SECONDS + 1)
            ),
            timeout=SHORT_LEASE_SECONDS + 5,
        )

    recovery_env = env | {"TRACKER_SEND_LEASE_SECONDS": str(SHORT_LEASE_SECONDS)}
    second = processes.celery_worker("worker-2", recovery_env)
    send_task(redis_server.url(), "tracker.deliver_pending_reminders")  # beat, every 5 minutes
    started = time.monotonic()
    done = wait_until(
        lambda: {s for *_, s, _ in notifications(scratch_db)} == {"sent"},
        timeout=RECOVERY_BOUND,
        interval=0.5,
    )
    recovery_seconds = time.monotonic() - started

    rows = notifications(scratch_db)
    deliveries = Deliveries.count(slow_smtp, expected)
    report = {
        "test": "worker_killed_mid_sweep",
        "digests_expected": digests,
        "digests_at_kill": at_kill,
        "digests_taken_by_the_killed_worker": taken_by_first,
        "states_after_kill": dict(states_after_kill),
        "tasks_unacknowledged_by_the_killed_worker": unacked,
        "left_claimed_by_the_killed_worker": len(left_claimed),
        "recovery_seconds": round(recovery_seconds, 1),
        "rows_by_state": dict(Counter(state for *_, state, _ in rows)),
        **deliveries.figures(),
        "duplicated": deliveries.duplicated_messages,
    }
    print(json.dumps(report, default=str))

    assert taken_by_first < digests, f"the kill came after the sweep: {report}"
    assert done, (report, processes.log(second))
    assert sorted((r, t, k) for r, t, k, _, _ in rows) == sorted(expected), report
    assert deliveries.missing == [] and deliveries.unexpected == [], report
    duplicated = deliveries.duplicated_messages
    assert len(duplicated) <= 1 and all(n == 2 for *_, n in duplicated), report
    assert set(deliveries.duplicated_keys) <= left_claimed, (left_claimed, report)


def ticket_links(url: str) -> dict[int, tuple]:
    return {
        row[0]: row[1:]
        for row in query(url, "SELECT item_id, state, key, claimed_until FROM tracker_ticketlink")
    }


def test_it_makes_one_issue_per_item_when_the_worker_is_killed_mid_sync(
    redis_server, scratch_db, github_server, processes, workdir
):
    github = SlowFakeGitHub(github_server)
    env = django_env(
        workdir,
        database_url=scratch_db,
        REDIS_URL=redis_server.url(),
        # The claim lease a test can wait for (tracker/ticketing/push.py reads it).
        TICKETS_CLAIM_SECONDS=str(SHORT_LEASE_SECONDS),
        **github_env(github),
    )
    items = seed(processes, env, "tickets", "--items", str(TICKET_ITEMS))["items"]

    first = processes.celery_worker("worker-1", env)
    reached = wait_until(lambda: len(github.issues) >= 30, timeout=90)
    assert reached, (len(github.issues), processes.log(first))
    processes.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    issues_at_kill = len(github.issues)
    unacked = redis_server.client().hlen("unacked")  # kombu's: back after the visibility timeout
    killed_at = time.monotonic()
    links = ticket_links(scratch_db)
    now = dt.datetime.now(dt.UTC)
    held = sorted(item for item, (_, _, until) in links.items() if until and until > now)

    second = processes.celery_worker("worker-2", env)
    beat = Ticker(lambda: send_task(redis_server.url(), "tracker.push_pending_tickets"), 2.0)

    def synced(item_ids) -> bool:
        current = ticket_links(scratch_db)
        return all(current[i][0] == "synced" and current[i][1] for i in item_ids)

    try:
        # The rest of the queue, and the items the dead worker had taken but not started.
        others = wait_until(
            lambda: synced(set(items) - set(held)), timeout=RECOVERY_BOUND, interval=0.5
        )
        # Those it was pushing, once a claim lease a test can wait for has passed.
        wait_until(
            lambda: (
                synced(items) or time.monotonic() > killed_at + SHORT_LEASE_SECONDS + LEASE_MARGIN
            ),
            timeout=RECOVERY_BOUND,
            interval=0.5,
        )
    finally:
        beat.stop()
    recovery_seconds = time.monotonic() - killed_at
    links = ticket_links(scratch_db)
    stuck = sorted(item for item, (state, key, _) in links.items() if state != "synced" or not key)
    stuck_claims = {item: str(links[item][2]) for item in stuck}
    made_without_key = [item for item in stuck if github.marked(f"followup-{item}")]
    processes.kill(second)  # the run below is the only pusher

    # What happens once the dead worker's claims have run out (CLAIM_SECONDS): the
    # command an operator (or the next beat run) would use, with the clock that far ahead.
    after_lease = None
    if stuck:
        after_lease = (
            processes.run(
                "sync_tickets-after-lease",
                [sys.executable, "-c", CLOCK_AHEAD, str(CLAIM_SECONDS + 1), "sync_tickets"],
                env,
                timeout=120,
            )
            .strip()
            .splitlines()[-1]
        )
    links = ticket_links(scratch_db)
    per_item = {item: [i["number"] for i in github.marked(f"followup-{item}")] for item in items}
    report = {
        "test": "worker_killed_mid_sync",
        "items": TICKET_ITEMS,
        "issues_at_kill": issues_at_kill,
        "tasks_unacknowledged_by_the_killed_worker": unacked,
        "links_held_by_the_killed_worker": held,
        "stuck_with_an_issue_whose_key_was_never_saved": made_without_key,
        "seconds_from_kill_to_end_of_recovery": round(recovery_seconds, 1),
        "others_synced": bool(others),
        "stuck_after_recovery_bound": stuck,
        "their_claimed_until": stuck_claims,
        "sync_tickets_after_the_claim_lease": after_lease,
        "issues": len(github.issues),
        "items_without_issue": [i for i, found in per_item.items() if not found],
        "items_with_several_issues": {i: f for i, f in per_item.items() if len(f) > 1},
        "links_not_synced": [i for i, (s, k, _) in links.items() if s != "synced" or not k],
    }
    print(json.dumps(report))

    assert issues_at_kill < TICKET_ITEMS, f"the kill came after the sync: {report}"
    assert others, (report, processes.log(second))
    assert report["items_with_several_issues"] == {}, report
    assert report["items_without_issue"] == [] and report["links_not_synced"] == [], report
    assert report["issues"] == TICKET_ITEMS, report
    assert [i for i in items if links[i][1] != str(per_item[i][0])] == [], report
    assert stuck == [], (
        f"items {stuck} were still held by the killed worker's claims "
        f"(claimed_until {stuck_claims}) {recovery_seconds:.0f} s after it died: "
        "tracker/ticketing/push.py ticket_push claims each link for "
        "TICKETS_CLAIM_SECONDS; the recovery did not happen once that lease ran out",
        report,
    )

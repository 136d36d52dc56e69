"""Redis restarts while ticket pushes wait in the queue.

40 items are made through the services with GitHub sync on (a fake GitHub on
loopback) and no worker running: each commit queues one `tracker.push_tickets`
task in Redis.

- Redis as brokers usually run it (no snapshots, no append-only file): the
  restart loses the 40 queued tasks. The README's claim is that this delays a
  push but never drops it, because a pending push is a TicketLink row that the
  beat task `tracker.push_pending_tickets` (every minute) pushes again. A worker
  started afterwards gets nothing to do until that task is sent, as beat would;
  then every item has exactly one issue.
- Redis with `appendonly yes` and `appendfsync always`, killed with SIGKILL:
  the 40 tasks are still queued when it comes back, and a worker alone (no beat
  task) pushes every item.
"""

from __future__ import annotations

import json
import time

import pytest

from .helpers import github_env, seed
from .services import django_env, query, send_task, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.faults]

ITEMS = 40
QUEUE = "celery"  # the project routes every task to Celery's default queue


def links(url: str) -> dict[int, tuple[str, str]]:
    return {
        item: (state, key)
        for item, state, key in query(url, "SELECT item_id, state, key FROM tracker_ticketlink")
    }


def converged(url: str, items: list[int]) -> bool:
    now = links(url)
    return all(now.get(item, ("", ""))[0] == "synced" and now[item][1] for item in items)


def one_issue_per_item(github, url: str, items: list[int]) -> dict:
    """Issues per item marker, and the items whose link names another issue."""
    keyed = links(url)
    per_item = {item: [i["number"] for i in github.marked(f"followup-{item}")] for item in items}
    return {
        "issues": len(github.issues),
        "items_without_issue": [i for i, found in per_item.items() if not found],
        "items_with_several": {i: found for i, found in per_item.items() if len(found) > 1},
        "links_to_another_issue": [
            i for i, found in per_item.items() if [str(n) for n in found] != [keyed[i][1]]
        ],
    }


@pytest.fixture
def github(github_server):
    from tests.ticketing.fakes import FakeGitHub

    return FakeGitHub(github_server)


def test_it_pushes_every_ticket_after_a_redis_restart_lost_the_queue(
    redis_server, scratch_db, github, processes, workdir
):
    env = django_env(
        workdir, database_url=scratch_db, REDIS_URL=redis_server.url(), **github_env(github)
    )
    items = seed(processes, env, "tickets", "--items", str(ITEMS))["items"]
    queued_before = redis_server.client().llen(QUEUE)
    assert queued_before == ITEMS and github.issues == {}

    away = redis_server.restart()
    queued_after = redis_server.client().llen(QUEUE)

    worker = processes.celery_worker("worker", env)
    ready = wait_until(lambda: "ready." in processes.log(worker), timeout=60, interval=0.2)
    assert ready, processes.log(worker)
    time.sleep(1.0)  # a worker that had tasks would have started on them by now
    issues_before_beat = len(github.issues)

    send_task(redis_server.url(), "tracker.push_pending_tickets")  # what beat sends every minute
    started = time.monotonic()
    done = wait_until(lambda: converged(scratch_db, items), timeout=60, interval=0.2)
    report = {
        "test": "redis_restart_without_aof",
        "queued_before_restart": queued_before,
        "queued_after_restart": queued_after,
        "redis_away_seconds": round(away, 2),
        "issues_before_the_beat_task": issues_before_beat,
        "seconds_to_converge_after_the_beat_task": round(time.monotonic() - started, 2),
        **one_issue_per_item(github, scratch_db, items),
    }
    print(json.dumps(report))

    assert queued_after == 0, f"the restart was expected to lose the queue: {report}"
    assert issues_before_beat == 0, report
    assert done, (report, links(scratch_db), processes.log(worker))
    assert report["issues"] == ITEMS, report
    assert not (
        report["items_without_issue"]
        or report["items_with_several"]
        or report["links_to_another_issue"]
    ), report


def test_it_keeps_the_queued_pushes_across_a_crash_of_a_redis_with_aof(
    durable_redis, scratch_db, github, processes, workdir
):
    env = django_env(
        workdir, database_url=scratch_db, REDIS_URL=durable_redis.url(), **github_env(github)
    )
    items = seed(processes, env, "tickets", "--items", str(ITEMS))["items"]
    queued_before = durable_redis.client().llen(QUEUE)

    away = durable_redis.restart(crash=True)
    queued_after = durable_redis.client().llen(QUEUE)

    worker = processes.celery_worker("worker", env)
    started = time.monotonic()
    done = wait_until(lambda: converged(scratch_db, items), timeout=60, interval=0.2)
    report = {
        "test": "redis_crash_with_aof",
        "queued_before_crash": queued_before,
        "queued_after_crash": queued_after,
        "redis_away_seconds": round(away, 2),
        "seconds_to_converge_without_beat": round(time.monotonic() - started, 2),
        **one_issue_per_item(github, scratch_db, items),
    }
    print(json.dumps(report))

    assert queued_before == queued_after == ITEMS, report
    assert done, (report, links(scratch_db), processes.log(worker))
    assert report["issues"] == ITEMS, report
    assert not (
        report["items_without_issue"]
        or report["items_with_several"]
        or report["links_to_another_issue"]
    ), report

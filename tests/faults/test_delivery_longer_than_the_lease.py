"""A slow SMTP server makes a delivery outlast the send lease: a second deliverer must not
take over the claims of the first, which is alive and sending.

Found while writing test_worker_killed.py: tracker/reminders/delivery.py deliver_to stamps
each claim with `claimed_at=now`, the moment the sweep (or `send_reminders
--now`) started, not the moment of the claim. Once a delivery has run longer
than TRACKER_SEND_LEASE_SECONDS, every claim it makes is born "abandoned", and
the five-minute `deliver_pending_reminders` (or any second run) claims the rows
it is sending at that very moment and sends them again. In production: an hourly
sweep that takes more than 10 minutes (a slow relay, many recipients), or a
catch-up `send_reminders --now <earlier>` while the worker runs.

Here: 100 digests due, an SMTP server that answers 50 ms after taking each, the
lease at 2 s. `send_reminders` runs; 3 s later a second `send_reminders` starts
(as the 5-minute retry would). No process dies, so the README's one window does
not apply: every reminder must arrive exactly once.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from .helpers import seed
from .services import Deliveries, SmtpSink, django_env, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.faults]

ITEMS = 100
LEASE_SECONDS = 2


@pytest.fixture
def slower_smtp():
    sink = SmtpSink(delay=0.05)
    try:
        yield sink
    finally:
        sink.close()


def test_it_does_not_send_twice_when_a_delivery_outlasts_the_lease(
    scratch_db, slower_smtp, processes, workdir
):
    env = django_env(
        workdir,
        database_url=scratch_db,
        EMAIL_URL=slower_smtp.url,
        TRACKER_SEND_LEASE_SECONDS=str(LEASE_SECONDS),
        # Real time (two processes, no shared --now): any weekday, any hour.
        TRACKER_REMIND_WEEKDAYS="0,1,2,3,4,5,6",
        TRACKER_REMIND_HOUR="0",
    )
    expected = {
        tuple(key) for key in seed(processes, env, "reminders", "--items", str(ITEMS))["expected"]
    }

    command = [sys.executable, "manage.py", "send_reminders"]
    first = processes.start("send_reminders-1", command, env)
    assert wait_until(lambda: slower_smtp.count >= 1 or first.poll() is not None, timeout=60)
    time.sleep(LEASE_SECONDS + 1)
    assert first.poll() is None, f"the first run ended too soon: {processes.log(first)}"
    second = processes.start("send_reminders-2", command, env)
    first_code = processes.wait(first, timeout=120)
    second_code = processes.wait(second, timeout=120)

    deliveries = Deliveries.count(slower_smtp, expected)
    report = {
        "test": "delivery_longer_than_the_lease",
        "lease_seconds": LEASE_SECONDS,
        "exit_codes": [first_code, second_code],
        "first_run": processes.log(first).strip().splitlines()[-1:],
        "second_run": processes.log(second).strip().splitlines()[-1:],
        **deliveries.figures(),
    }
    print(json.dumps(report))

    assert (first_code, second_code) == (0, 0), report
    assert deliveries.missing == [] and deliveries.unexpected == [], report
    assert deliveries.duplicated_keys == {}, (
        "reminders sent twice although no sender died: tracker/reminders/delivery.py deliver_to "
        "stamps claims with claimed_at=now (the run's start), so past the lease a live "
        "sender's fresh claims look abandoned to _claimable and a second deliverer takes "
        "them; the claim should carry the time it is made (timezone.now())",
        report,
    )

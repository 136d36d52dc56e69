"""The hourly sweep task run by a real Celery worker over the Redis broker."""

import datetime as dt
import uuid

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.result import EagerResult
from django.core import mail
from django.utils import timezone

from config import celery_app
from tracker.models import DeliveryState, Notification
from tracker.tasks import sweep_reminders

from .helpers import make_item, make_person

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_app(redis_url):
    """The project's app pointed at REDIS_URL, on a queue of this test's own."""
    queue = f"test-reminders-{uuid.uuid4().hex}"
    changes = {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "task_always_eager": False,
        "task_default_queue": queue,
    }
    saved = {key: celery_app.conf[key] for key in changes}
    celery_app.conf.update(changes)
    vars(celery_app._local).pop("backend", None)  # built afresh from result_backend
    yield celery_app, queue
    celery_app.conf.update(saved)
    vars(celery_app._local).pop("backend", None)
    # The queue's bindings and results outlive the worker; leave the shared Redis as found.
    client = redis.Redis.from_url(redis_url)
    if keys := client.keys(f"_kombu.binding*{queue}"):
        client.delete(*keys)


def test_it_sweeps_and_sends_through_a_worker(worker_app, settings):
    # Real time here (the worker's timers need a clock that moves): any day, any hour.
    settings.TRACKER_REMIND_WEEKDAYS = [0, 1, 2, 3, 4, 5, 6]
    settings.TRACKER_REMIND_HOUR = 0
    now = timezone.now()
    owner = make_person("ann@example.com")
    item = make_item(
        created=now,
        deadline=now.date() - dt.timedelta(days=2),
        owner=owner,
        priority="P4",
        title="Patch the load balancer",
    )
    app, queue = worker_app

    with start_worker(app, pool="solo", queues=[queue], perform_ping_check=False):
        result = sweep_reminders.apply_async(queue=queue, ignore_result=False)
        outcome = result.get(timeout=60)
        result.forget()

    assert not isinstance(result, EagerResult)
    assert outcome == {"items": 1, "sent": 1, "failed": 0}
    [message] = mail.outbox
    assert message.to == ["ann@example.com"]
    assert "Patch the load balancer" in message.body
    row = Notification.objects.get(item=item)
    assert (row.stage, row.state) == ("overdue+1", DeliveryState.SENT)

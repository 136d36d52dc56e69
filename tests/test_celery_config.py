"""The Celery broker the settings choose, and a real message through it.

Settings load once per process, so each environment is tried in a subprocess
that starts from a clean environment.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent

# Prints the broker configuration; with "round-trip", also publishes one message
# through the app's own connection and prints what comes back.
PROBE = """
import json, os, sys, uuid
import django
django.setup()
from config.celery import app

report = {
    "broker_url": app.conf.broker_url,
    "transport_options": app.conf.broker_transport_options,
    "acks_late": app.conf.task_acks_late,
}
if "round-trip" in sys.argv:
    name = f"test-round-trip-{uuid.uuid4().hex}"
    with app.connection_for_write() as conn:
        queue = conn.SimpleQueue(name)
        try:
            queue.put({"sent": name})
            folder = report["transport_options"].get("data_folder_out")
            report["files_queued"] = sorted(os.listdir(folder)) if folder else None
            message = queue.get(timeout=10)
            message.ack()
            report["received"] = message.payload
        finally:
            queue.queue.delete()
            queue.close()
    report["sent"] = {"sent": name}
print(json.dumps(report))
"""


def probe(tmp_path: Path, *args: str, **env_vars: str) -> dict:
    """Run PROBE with TRACKER_VAR_DIR at tmp_path/var, from the empty folder tmp_path/cwd."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "PYTHONPATH": str(BASE_DIR),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "TRACKER_VAR_DIR": str(tmp_path / "var"),
        **env_vars,
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_it_uses_a_filesystem_broker_under_var_by_default(tmp_path):
    report = probe(tmp_path)

    assert report["broker_url"] == "filesystem://"
    broker_dir = tmp_path / "var" / "broker"
    options = report["transport_options"]
    assert options["data_folder_in"] == options["data_folder_out"] == str(broker_dir / "queue")
    assert options["processed_folder"] == str(broker_dir / "processed")
    assert options["control_folder"] == str(broker_dir / "control")


def test_it_delivers_a_message_through_the_filesystem_broker(tmp_path):
    report = probe(tmp_path, "round-trip")

    assert len(report["files_queued"]) == 1
    assert report["received"] == report["sent"]
    assert os.listdir(tmp_path / "var" / "broker" / "queue") == []
    assert os.listdir(tmp_path / "cwd") == [], "the broker wrote outside TRACKER_VAR_DIR"


def test_it_uses_redis_url_as_the_broker_with_late_acks(tmp_path):
    report = probe(tmp_path, REDIS_URL="redis://redis.example.com:6379/2")

    assert report["broker_url"] == "redis://redis.example.com:6379/2"
    assert report["acks_late"] is True
    # Redis re-delivers an unacknowledged task after the visibility timeout, so it
    # must outlast the longest countdown or retry delay.
    assert report["transport_options"]["visibility_timeout"] >= 60 * 60
    assert not (tmp_path / "var" / "broker").exists()


@pytest.mark.redis
def test_it_delivers_a_message_through_redis(tmp_path, redis_url):
    report = probe(tmp_path, "round-trip", REDIS_URL=redis_url)

    assert report["broker_url"] == redis_url
    assert report["received"] == report["sent"]

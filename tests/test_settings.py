"""Settings read from the environment, the demo login and scripts/setup.

Settings load once per process, so each environment is tried in a subprocess
that starts from a clean environment.
"""

import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

BASE_DIR = Path(__file__).resolve().parent.parent

PRINT_SETTINGS = """
import json, sys
import django
django.setup()
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in sys.argv[1:]}, default=str))
"""


def clean_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """Only what a process needs to start; settings see nothing from the test run."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "TRACKER_VAR_DIR": str(var_dir),
    }
    env.update(overrides)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", *args], env)


def settings_in(env: dict[str, str], *names: str) -> dict:
    result = run([sys.executable, "-c", PRINT_SETTINGS, *names], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    return clean_env(
        tmp_path / "var",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="tracker.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **overrides,
    )


def test_it_refuses_to_start_without_a_secret_key_in_production(tmp_path):
    result = manage("check", env=clean_env(tmp_path))

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert "SECRET_KEY" in lines[-1]
    assert "Traceback" not in result.stderr, "expected one line, got a traceback"


def test_it_uses_a_development_key_when_debug_is_on(tmp_path):
    result = manage("check", env=clean_env(tmp_path, DEBUG="1"))

    assert result.returncode == 0, result.stderr


def test_it_passes_the_deploy_checks_in_production(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr


def test_it_reads_the_secret_key_from_a_file(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("key-from-a-file-" + secrets.token_urlsafe(40) + "\n")
    env = clean_env(tmp_path / "var", SECRET_KEY_FILE=str(key_file))

    values = settings_in(env, "SECRET_KEY", "DEBUG")

    assert values == {"SECRET_KEY": key_file.read_text().strip(), "DEBUG": False}


def test_it_sends_email_through_the_smtp_server_in_email_url(tmp_path):
    env = clean_env(tmp_path, DEBUG="1", EMAIL_URL="smtp://user:pass@mail.example.com:2525")

    values = settings_in(
        env, "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD"
    )

    assert values == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "mail.example.com",
        "EMAIL_PORT": 2525,
        "EMAIL_HOST_USER": "user",
        "EMAIL_HOST_PASSWORD": "pass",
    }


def test_it_prints_email_to_the_console_by_default(tmp_path):
    values = settings_in(clean_env(tmp_path, DEBUG="1"), "EMAIL_BACKEND")

    assert values == {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}


def _create_demo_manager(*args: str) -> str:
    """Run the command and return the password it printed."""
    out = StringIO()
    call_command("create_demo_manager", *args, stdout=out)
    assert f"{settings.TRACKER_BASE_URL}/admin/" in out.getvalue()
    assert re.search(r"username: demo-manager$", out.getvalue(), re.MULTILINE)
    return re.search(r"password: (.+)$", out.getvalue(), re.MULTILINE).group(1)


def _logs_in_to_admin(client, password: str) -> bool:
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "demo-manager", "password": password}
    )
    return response.status_code == 302 and client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_it_creates_a_demo_manager_who_can_log_in_to_the_admin(client):
    password = _create_demo_manager()

    user = get_user_model().objects.get(username="demo-manager")
    assert user.email == "manager@example.com"
    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == [settings.TRACKER_MANAGERS_GROUP]
    assert _logs_in_to_admin(client, password)


@pytest.mark.django_db
def test_it_gives_the_demo_manager_a_new_password_when_run_again(client):
    first = _create_demo_manager()
    second = _create_demo_manager()

    assert first != second
    assert get_user_model().objects.filter(username="demo-manager").count() == 1
    assert not _logs_in_to_admin(client, first)
    assert _logs_in_to_admin(client, second)


@pytest.mark.django_db
def test_it_uses_the_password_given_to_the_demo_manager_command(client):
    password = _create_demo_manager("--password", "given demo password")

    assert password == "given demo password"
    assert _logs_in_to_admin(client, "given demo password")


def test_it_sets_up_a_checkout_with_the_sample_incident(tmp_path):
    var_dir = tmp_path / "var"
    env = clean_env(var_dir, DEBUG="1", TRACKER_SKIP_INSTALL="1")

    result = run(["scripts/setup"], env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "username: demo-manager" in result.stdout
    with sqlite3.connect(var_dir / "tracker.sqlite3") as db:
        incidents = db.execute("SELECT external_id FROM incidents_incident").fetchall()
        users = db.execute("SELECT username FROM auth_user WHERE is_staff").fetchall()
    assert incidents == [("INC-2024-0142",)]
    assert users == [("demo-manager",)]

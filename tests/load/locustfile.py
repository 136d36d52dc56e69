"""The load test's users, run by the `locust` command that tests/load/test_load.py starts.

Never import this module from the test process (pytest does not collect it: its
name does not start with test_): importing locust monkey-patches the standard
library with gevent, which breaks Django, psycopg and pytest in that process.

Two kinds of users:

- `ApiClient` (3 in 5): an integration with an owner's API token. It lists items
  with filters (status, owner, overdue, orderings, pages), reads an item, its
  history, incidents; as a small share of its requests it changes the status of
  one of its owner's items (read, then PATCH with If-Match and a transition
  the item allows) or comments on one.
- `Browser` (2 in 5): a person who signs in once through /accounts/login/ (CSRF
  token from the form) and reads the dashboard, the open items, their items,
  an item's page, the incidents and an incident's page.

Every request states what it expects; anything else is a failure. The one
answer besides success that the API defines for what these users do is 412: the
If-Match was stale because another client changed the item between the read
and the PATCH. It is a success here, and the test counts it apart.

Each request is also written, with its status and time, to the JSON file named
by TRACKER_LOAD_SAMPLES when locust quits; the test computes its figures from it.
TRACKER_LOAD_SEED names the data set's description (tests/load/seed.py).
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from pathlib import Path
from urllib.parse import urlencode

from locust import FastHttpUser, between, events, task

SEED = json.loads(Path(os.environ["TRACKER_LOAD_SEED"]).read_text())
SAMPLES_PATH = Path(os.environ["TRACKER_LOAD_SAMPLES"])
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
STATUSES = ["open", "in_progress", "blocked", "done", "cancelled"]
ORDERINGS = ["deadline", "-deadline", "priority,deadline", "-updated_at", "-created_at"]
PAGE_SIZE = 50

samples: list[dict] = []


@events.request.add_listener
def _record(request_type, name, response_time, response_length, response, exception, **kwargs):
    status = getattr(response, "status_code", 0) or 0
    samples.append(
        {
            "name": name,
            "method": request_type,
            "status": status,
            "ms": round(response_time, 3),
            "start": kwargs.get("start_time"),
            "error": None if exception is None else f"{type(exception).__name__}: {exception}",
            "url": kwargs.get("url"),
        }
    )


@events.quitting.add_listener
def _write_samples(environment, **kwargs):
    SAMPLES_PATH.write_text(json.dumps({"samples": samples, "written_at": time.time()}))


def _text(response) -> str:
    """The start of a response's body on one line, to say what went wrong."""
    return " ".join((response.text or "").split())[:300] if response.status_code else ""


class Client(FastHttpUser):
    abstract = True
    # A timeout is a failure. 30 s is gunicorn's own limit for a silent worker; on
    # this data set a request takes well under a second when the machine is not
    # overloaded.
    connection_timeout = 10.0
    network_timeout = 30.0

    def expect(self, method: str, path: str, name: str, expected=(200,), **kwargs):
        """One request; a failure unless its status is one of `expected`."""
        with self.client.request(
            method, path, name=name, catch_response=True, allow_redirects=False, **kwargs
        ) as response:
            if response.status_code in expected:
                response.success()
            else:
                response.failure(f"{response.status_code} (expected {expected}): {_text(response)}")
            return response


class ApiClient(Client):
    weight = 3
    wait_time = between(0.2, 1.0)

    def on_start(self):
        self.owner = random.choice(SEED["owners"])
        self.client.auth_header = f"Bearer {self.owner['token']}"

    def list_items(self, name: str, **params):
        params.setdefault("limit", PAGE_SIZE)
        self.expect("GET", f"/api/v1/action-items/?{urlencode(params)}", name)

    @task(4)
    def items_by_status(self):
        self.list_items(
            "api items ?status",
            status=random.choice(["open", "open,in_progress,blocked", *STATUSES]),
            ordering=random.choice(ORDERINGS),
            offset=PAGE_SIZE * random.randrange(10),
        )

    @task(2)
    def items_by_owner(self):
        self.list_items("api items ?owner", owner=self.owner["email"], status="open,in_progress")

    @task(2)
    def items_overdue(self):
        self.list_items(
            "api items ?overdue", overdue="true", ordering="deadline", offset=random.choice([0, 50])
        )

    @task(3)
    def item_detail(self):
        item_id = random.choice(SEED["item_ids"])
        self.expect("GET", f"/api/v1/action-items/{item_id}/", "api item")

    @task(2)
    def item_history(self):
        item_id = random.choice(SEED["item_ids"])
        self.expect("GET", f"/api/v1/action-items/{item_id}/history/", "api item history")

    @task(2)
    def incident_list(self):
        params = {"ordering": "-declared_at", "limit": 25, "offset": 25 * random.randrange(8)}
        if random.random() < 0.5:
            params["severity"] = random.choice(["SEV1", "SEV2", "SEV3"])
        self.expect("GET", f"/api/v1/incidents/?{urlencode(params)}", "api incidents")

    @task(2)
    def incident_detail(self):
        external_id = random.choice(SEED["incident_ids"])
        self.expect("GET", f"/api/v1/incidents/{external_id}/", "api incident")

    @task(1)
    def change_status(self):
        item_id = random.choice(self.owner["item_ids"])
        read = self.expect("GET", f"/api/v1/action-items/{item_id}/", "api item")
        if read.status_code != 200:
            return
        current = read.json()["status"]
        new = random.choice(SEED["transitions"][current])
        with self.client.request(
            "PATCH",
            f"/api/v1/action-items/{item_id}/",
            name="api PATCH item status",
            json={"status": new},
            headers={"If-Match": read.headers.get("ETag", "")},
            catch_response=True,
            allow_redirects=False,
        ) as response:
            if response.status_code == 200 and response.json()["status"] == new:
                response.success()
            elif response.status_code == 412:
                response.success()  # another client changed the item since the read
            else:
                response.failure(f"{response.status_code}: {_text(response)}")

    @task(1)
    def add_comment(self):
        item_id = random.choice(self.owner["item_ids"])
        self.expect(
            "POST",
            f"/api/v1/action-items/{item_id}/comments/",
            "api POST comment",
            expected=(201,),
            json={"body": f"Load test note {random.randrange(10**6)}: still on track."},
        )


class Browser(Client):
    weight = 2
    wait_time = between(0.5, 2.0)

    def on_start(self):
        account = random.choice([SEED["manager"], *SEED["owners"]])
        form = self.expect("GET", "/accounts/login/", "web login page")
        match = CSRF_FIELD.search(form.text or "")
        body = urlencode(
            {
                "csrfmiddlewaretoken": match.group(1) if match else "",
                "username": account["username"],
                "password": account["password"],
                "next": "/",
            }
        )
        # Signed in: a redirect to the dashboard. A wrong form comes back as 200.
        self.expect(
            "POST",
            "/accounts/login/",
            "web POST login",
            expected=(302,),
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    # Pages answer 200; a signed-out session would get a redirect to the login page.
    @task(2)
    def dashboard(self):
        self.expect("GET", "/", "web dashboard")

    @task(3)
    def open_items(self):
        page = random.randrange(1, 6)
        self.expect("GET", f"/items/?status=open&page={page}", "web items ?status=open")

    @task(2)
    def my_items(self):
        self.expect("GET", "/items/mine/", "web my items")

    @task(3)
    def item_page(self):
        self.expect("GET", f"/items/{random.choice(SEED['item_ids'])}/", "web item")

    @task(2)
    def incident_list(self):
        self.expect("GET", f"/incidents/?page={random.randrange(1, 5)}", "web incidents")

    @task(2)
    def incident_page(self):
        self.expect("GET", f"/incidents/{random.choice(SEED['incident_ids'])}/", "web incident")

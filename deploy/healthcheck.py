"""Container health check: GET a path from the local gunicorn; exit 0 only on 200.

    python deploy/healthcheck.py /healthz     liveness (the image's HEALTHCHECK)
    python deploy/healthcheck.py /readyz      readiness (docker-compose.yml's web)

The tracker answers these paths before host validation and the https redirect
(config/health.py), so a plain request to 127.0.0.1 is enough. Standard library
only: the slim image has no curl, and importing Django for every probe would
cost a second of CPU.
"""

import http.client
import os
import sys


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    port = int(os.environ.get("PORT", "8000"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read(300).decode("utf-8", "replace")
    except OSError as exc:
        print(f"GET {path}: {exc}")
        return 1
    finally:
        connection.close()
    if response.status != 200:
        # Shown by `docker inspect` (State.Health.Log): /readyz names the failed part.
        print(f"GET {path}: {response.status} {body}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""gunicorn settings for the image (Dockerfile CMD) and the Procfile.

Each value can be changed through the environment, so one image serves every
deployment; `GUNICORN_CMD_ARGS` overrides anything here.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"

# Sync workers: each request holds one process. Two per core is a fair start;
# each worker takes about 100 MB.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# A request still running after this many seconds is killed and its worker
# replaced. Raise it if large imports through the web page hit it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, requests in flight get this long to finish (compose's
# stop_grace_period for web is longer).
graceful_timeout = 30
# Behind a proxy that keeps connections to the app open.
keepalive = 5

# Replace each worker after about this many requests (the jitter keeps them from
# all restarting at once): bounds the damage of a slow memory leak.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "100"))

# Addresses whose X-Forwarded-Proto (and other forwarding headers) gunicorn
# believes; it then reports https to Django. Django trusts a TLS proxy on its
# own through TRUST_X_FORWARDED_PROTO, so the loopback default is enough behind
# one. Setting "*" is safe only when no client can reach this port directly.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# gunicorn's access log on stdout; GUNICORN_ACCESS_LOG= (empty) turns it off
# when the app's own JSON access lines (logger tracker.access) are enough.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
# Access lines carry the request line and the Referer, where calendar feed tokens
# and signed email links travel: they are written redacted, as the app's logs are.
logger_class = "config.gunicorn_logging.RedactingLogger"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# The worker heartbeat file: on tmpfs, so a slow overlay filesystem cannot make
# the arbiter think a busy worker is hung.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# gunicorn 25.1+ opens a control socket under $HOME by default; the container
# user has no home and nothing uses it. (Older versions ignore this name.)
control_socket_disable = True


# Prometheus counters of every worker, when PROMETHEUS_MULTIPROC_DIR is set
# (config/metrics.py): the folder starts empty, and a worker that exits (worker
# recycling above) stops counting in the live gauges.
def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

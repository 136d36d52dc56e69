"""Settings, driven by environment variables (see README "Configuration").

Every value has an embedded default so that `scripts/run` works on a machine
with nothing but Python: SQLite and a filesystem message broker under `var/`,
and email printed to the console.
"""

import datetime as dt
import ipaddress
import re
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
VAR_DIR = Path(env.str("TRACKER_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret(name: str, default: str = "") -> str:
    """Read a secret from NAME or from the file named by NAME_FILE (container secrets)."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        return Path(path).read_text().strip()
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = _secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE), or DEBUG=1 for development."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "csp",
    "axes",
    "incidents",
    "tracker",
]

MIDDLEWARE = [
    # First: every log line of the request carries its id (see README "Observability").
    "config.logs.RequestIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Before host validation and the https redirect: probes and scrapes come by IP over http.
    "config.health.OpsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session and every view: NUL in a path, parameter or cookie is a 400.
    "config.text_guard.UnstorableTextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes requires: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tracker.context_processors.roles",
            ],
        },
    },
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- Database -------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tracker.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server, worker and beat share one file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# django-prometheus's wrapper of the PostgreSQL backend counts queries, errors and
# connections. Not SQLite's: tools that key on the stock engine name (pytest-django
# naming each parallel worker's test database) would misread a wrapped one.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
STATICFILES_DIRS = [d for d in [BASE_DIR / "static"] if d.is_dir()]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Email ----------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tracker@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security (see README "Security") ---------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
# A fixed lifetime from sign-in, browser closed or not.
SESSION_COOKIE_AGE = int(env.float("TRACKER_SESSION_HOURS", default=12) * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = False
# Every page's scripts and styles are files served by the app: no inline script or
# style anywhere, so an injected one is refused by the browser.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# Reverse proxies in front that append to X-Forwarded-For; 0: the connection's address.
TRACKER_PROXY_COUNT = env.int("TRACKER_PROXY_COUNT", default=0)
# Sign-in lockout (django-axes), on /accounts/login/ and /admin/login/ alike: after
# this many failures for one username from one address, that pair is refused for the
# cool-off (a failure meanwhile starts it again); a success clears the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("TRACKER_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.float("TRACKER_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
# The username as typed, cut to the length axes can store (a longer one names no account).
AXES_USERNAME_CALLABLE = "config.security.client_username"
# Failures and lockouts are logged with the address and path; the username is masked
# (people type passwords into it), and is in the admin's "Access attempts" instead.
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["username"]
# Failed API token authentications allowed per client address ("N/s|min|hour|day").
TRACKER_API_TOKEN_FAILURE_RATE = env.str("TRACKER_API_TOKEN_FAILURE_RATE", default="20/min")
# Password reset requests that send an email, per target address and per client
# address ("N/s|min|hour|day"; empty or 0 for no limit). Past either, the same page
# answers and nothing is sent (config.password_reset).
TRACKER_PASSWORD_RESET_RATE = env.str("TRACKER_PASSWORD_RESET_RATE", default="3/hour")
TRACKER_PASSWORD_RESET_CLIENT_RATE = env.str(
    "TRACKER_PASSWORD_RESET_CLIENT_RATE", default="10/hour"
)
for _name in (
    "TRACKER_API_TOKEN_FAILURE_RATE",
    "TRACKER_PASSWORD_RESET_RATE",
    "TRACKER_PASSWORD_RESET_CLIENT_RATE",
):
    if not re.fullmatch(r"\s*(\d+\s*/\s*(s|m|h|d)[a-z]*)?\s*", vars()[_name]):
        raise ImproperlyConfigured(f"{_name}={vars()[_name]!r}: use N/s, N/min, N/hour or N/day.")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("TRUST_X_FORWARDED_PROTO", default=False)
    else None
)
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # SECURE_COOKIES=false only for trying the production layout over plain http.
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading commits the whole domain to HTTPS for good: the owner's choice, not a defect.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- Celery ---------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or env.str("REDIS_URL", default="")
if not CELERY_BROKER_URL:
    # Embedded broker: messages are files under var/, so no server is needed.
    CELERY_BROKER_URL = "filesystem://"
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        # Exchange bindings; kombu's default is ./control, in whatever the current directory is.
        "control_folder": str(BROKER_DIR / "control"),
    }
else:
    # acks_late needs a visibility timeout longer than any countdown or retry delay,
    # or Redis re-delivers a task that is still waiting to run.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=6 * 60 * 60)
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- REST framework ---------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header turns "not signed in" into 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tracker.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": ["config.api.LimitedJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["config.api.TokenOrUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env.str("API_THROTTLE_RATE", default="1200/min")},
    # X-Forwarded-For is trusted only as far as TRACKER_PROXY_COUNT says (DRF trusts it all if None).
    "NUM_PROXIES": TRACKER_PROXY_COUNT,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Incident follow-up tracker API",
    "DESCRIPTION": "Incidents, their action items, people, history and comments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs stay public (drf-spectacular's default): they describe
    # the open-source API, no data of this installation.
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Assets served by the app itself: the product runs on networks without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.add_error_responses",
    ],
}
# Large enough for the biggest document the import accepts, and no larger.
DATA_UPLOAD_MAX_MEMORY_SIZE = (
    env.int("TRACKER_IMPORT_MAX_BYTES", default=5 * 1024 * 1024) + 64 * 1024
)

# Throttle counters must be shared by every web process: Redis when there is one.
_cache_url = env.str("REDIS_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Logging (see README "Observability") -------------------------------------
# JSON lines for log collectors, text for people at a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="") or ("text" if sys.stderr.isatty() else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use json or text.")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "config.logs.ContextFilter"},
        "redact": {"()": "config.logs.RedactFilter"},
    },
    "formatters": {
        "json": {"()": "config.logs.JsonFormatter"},
        "text": {"()": "config.logs.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "redact"],
            # A floor for every logger, Django's included (they propagate past root's level).
            "level": LOG_LEVEL,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own loggers write through the same handler, not their default ones.
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # runserver's request lines: tracker.access already writes one, with the request id.
        "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
    },
}

# --- Health and metrics (see README "Observability") ---------------------------
TRACKER_READYZ_TIMEOUT_SECONDS = env.float("TRACKER_READYZ_TIMEOUT_SECONDS", default=2.0)
# /metrics answers requests from these addresses (IPs or CIDRs; empty for none) or
# with "Authorization: Bearer <TRACKER_METRICS_TOKEN>".
TRACKER_METRICS_ALLOW = env.list("TRACKER_METRICS_ALLOW", default=["127.0.0.1", "::1"])
for _network in TRACKER_METRICS_ALLOW:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"TRACKER_METRICS_ALLOW: {_exc}") from None
TRACKER_METRICS_TOKEN = _secret("TRACKER_METRICS_TOKEN")

# --- Tracker ----------------------------------------------------------------
TRACKER_BASE_URL = env.str("TRACKER_BASE_URL", default="http://localhost:8000").rstrip("/")
TRACKER_IMPORT_MAX_BYTES = env.int("TRACKER_IMPORT_MAX_BYTES", default=5 * 1024 * 1024)
# The most entries a document's row-making sections may hold (README "Importing"): a
# document at all four limits imports in seconds (bench/import_bench.py).
TRACKER_IMPORT_MAX_ITEMS = env.int("TRACKER_IMPORT_MAX_ITEMS", default=1000)
TRACKER_IMPORT_MAX_EVENTS = env.int("TRACKER_IMPORT_MAX_EVENTS", default=5000)
TRACKER_IMPORT_MAX_COMMUNICATIONS = env.int("TRACKER_IMPORT_MAX_COMMUNICATIONS", default=2000)
TRACKER_IMPORT_MAX_PARTICIPANTS = env.int("TRACKER_IMPORT_MAX_PARTICIPANTS", default=1000)
# Days from the incident's resolution (or declaration while unresolved) to the
# deadline of an item whose document gives none.
TRACKER_DEFAULT_DEADLINE_DAYS = env.dict(
    "TRACKER_DEFAULT_DEADLINE_DAYS",
    cast={"value": int},
    default={"P0": 7, "P1": 14, "P2": 30, "P3": 60, "P4": 90},
)
TRACKER_MANAGERS_GROUP = "managers"

# --- Reminders (see README "Reminders") --------------------------------------------
TRACKER_REMIND_DAYS_BEFORE = env.list("TRACKER_REMIND_DAYS_BEFORE", cast=int, default=[7, 1])
TRACKER_OVERDUE_REPEAT_DAYS = env.int("TRACKER_OVERDUE_REPEAT_DAYS", default=7)
# Days overdue before the escalation contact hears; a priority left out never escalates.
TRACKER_ESCALATE_AFTER_DAYS = env.dict(
    "TRACKER_ESCALATE_AFTER_DAYS",
    cast={"value": int},
    default={"P0": 1, "P1": 3, "P2": 7, "P3": 14},
)
TRACKER_ESCALATION_EMAIL = env.str("TRACKER_ESCALATION_EMAIL", default="")
# Weekdays reminders go out on, Monday = 0.
TRACKER_REMIND_WEEKDAYS = env.list("TRACKER_REMIND_WEEKDAYS", cast=int, default=[0, 1, 2, 3, 4])
# A day's stages go out in the first sweep at or after this hour, in the recipient's time zone.
TRACKER_REMIND_HOUR = env.int("TRACKER_REMIND_HOUR", default=9)
TRACKER_MANAGER_DIGEST = env.list("TRACKER_MANAGER_DIGEST", default=[])
TRACKER_SNOOZE_DAYS = env.int("TRACKER_SNOOZE_DAYS", default=7)
# "Due soon" (dashboard, admin and items filters, metrics, digests): open and due
# within this many days starting with the owner's today (tracker.deadlines).
TRACKER_DUE_SOON_DAYS = env.int("TRACKER_DUE_SOON_DAYS", default=7)
TRACKER_ACTION_LINK_MAX_AGE_DAYS = env.int("TRACKER_ACTION_LINK_MAX_AGE_DAYS", default=14)
TRACKER_SEND_MAX_ATTEMPTS = env.int("TRACKER_SEND_MAX_ATTEMPTS", default=5)
# A sender that claimed notifications and vanished for this long is presumed dead.
TRACKER_SEND_LEASE_SECONDS = env.int("TRACKER_SEND_LEASE_SECONDS", default=600)
# Enqueue tasks only once the transaction that asked for them has committed.
CELERY_TASK_PUBLISH_RETRY = True

# --- Ticket sync (tracker.ticketing) ---------------------------------------
# One backend at a time: redmine, jira, github, webhook, or empty for none.
TICKETS_BACKEND = env.str("TICKETS_BACKEND", default="").strip().lower()
# Create a ticket for every new item (default: on whenever a backend is set).
TICKETS_AUTO_CREATE = env.bool("TICKETS_AUTO_CREATE", default=bool(TICKETS_BACKEND))
# Every ticket carries "<prefix>-<item id>" (label or description marker): the
# item's stable identity, looked up before any create so a retried create never
# makes a second ticket. Give each installation sharing a project its own prefix.
TICKETS_MARKER_PREFIX = env.str("TICKETS_MARKER_PREFIX", default="followup")
TICKETS_TIMEOUT_SECONDS = env.float("TICKETS_TIMEOUT_SECONDS", default=10.0)
TICKETS_MAX_RETRIES = env.int("TICKETS_MAX_RETRIES", default=3)
# The most requests per second sent to the ticket system, per process.
TICKETS_RATE_LIMIT = env.float("TICKETS_RATE_LIMIT", default=10.0)
# Ticket URLs are configuration; by default they may not point at loopback or
# link-local addresses (cloud metadata services). Tests and same-host setups opt in.
TICKETS_ALLOW_LOCAL_ADDRESSES = env.bool("TICKETS_ALLOW_LOCAL_ADDRESSES", default=False)
# Ticket URLs reach only globally routable addresses; a self-hosted ticket system on
# a private network is allowed by naming its network, e.g. "10.20.0.0/16".
TICKETS_ALLOWED_NETWORKS = env.list("TICKETS_ALLOWED_NETWORKS", default=[])
# An inbound webhook whose body was accepted within this window is a replay,
# whatever delivery id it carries.
TICKETS_WEBHOOK_REPLAY_WINDOW_SECONDS = env.int(
    "TICKETS_WEBHOOK_REPLAY_WINDOW_SECONDS", default=7 * 24 * 3600
)
# How long a failing push waits before its next attempt: doubled per failure, capped.
TICKETS_RETRY_BASE_SECONDS = env.int("TICKETS_RETRY_BASE_SECONDS", default=60)
TICKETS_RETRY_MAX_SECONDS = env.int("TICKETS_RETRY_MAX_SECONDS", default=3600)
# A worker pushing an item holds it this long; if it dies, the next one waits that long.
TICKETS_CLAIM_SECONDS = env.int("TICKETS_CLAIM_SECONDS", default=300)
# Polls re-read this far behind the last successful poll (clock skew, slow commits).
TICKETS_POLL_OVERLAP_SECONDS = env.int("TICKETS_POLL_OVERLAP_SECONDS", default=300)
# Mappings, "key=value,key=value": tracker priority/status to the remote names,
# remote status names read back, and owner emails to remote users.
TICKETS_PRIORITY_MAP = env.dict("TICKETS_PRIORITY_MAP", default={})
TICKETS_STATUS_MAP = env.dict("TICKETS_STATUS_MAP", default={})
TICKETS_STATUS_READ_MAP = env.dict("TICKETS_STATUS_READ_MAP", default={})
TICKETS_USER_MAP = env.dict("TICKETS_USER_MAP", default={})

REDMINE_URL = env.str("REDMINE_URL", default="").rstrip("/")
REDMINE_API_KEY = _secret("REDMINE_API_KEY")
REDMINE_PROJECT = env.str("REDMINE_PROJECT", default="")
# Redmine's tracker (Bug, Feature, Support...) for new tickets: name or id; empty for the project's default.
REDMINE_TRACKER = env.str("REDMINE_TRACKER", default="")

JIRA_URL = env.str("JIRA_URL", default="").rstrip("/")
JIRA_PROJECT = env.str("JIRA_PROJECT", default="")
JIRA_EMAIL = env.str("JIRA_EMAIL", default="")
JIRA_API_TOKEN = _secret("JIRA_API_TOKEN")
JIRA_PAT = _secret("JIRA_PAT")
JIRA_ISSUE_TYPE = env.str("JIRA_ISSUE_TYPE", default="Task")
JIRA_WEBHOOK_SECRET = _secret("JIRA_WEBHOOK_SECRET")

GITHUB_REPOSITORY = env.str("GITHUB_REPOSITORY", default="")
GITHUB_TOKEN = _secret("GITHUB_TOKEN")
GITHUB_API_URL = env.str("GITHUB_API_URL", default="https://api.github.com").rstrip("/")
GITHUB_WEBHOOK_SECRET = _secret("GITHUB_WEBHOOK_SECRET")

TICKETS_WEBHOOK_URL = env.str("TICKETS_WEBHOOK_URL", default="")
TICKETS_WEBHOOK_SECRET = _secret("TICKETS_WEBHOOK_SECRET")

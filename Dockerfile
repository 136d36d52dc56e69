# Production image: gunicorn by default; the same image runs the migrations,
# the Celery worker and Celery beat with another command (docker-compose.yml).
#
#   docker build -t incident-followup-tracker .
#
# Both stages must use the same Python: the virtualenv is built in the first
# and copied into the second.
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: wheels for every dependency and for the project ----------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Compilers for any dependency that ships no wheel for this platform (today
# none does: psycopg[binary] bundles libpq). They stay in this stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so a code change reuses this layer.
# The virtualenv has no pip: the base image's pip installs into it.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && pip wheel --wheel-dir /wheels -r requirements.txt \
    && python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-index --find-links /wheels -r requirements.txt

# The project itself: a wheel built from pyproject.toml, installed (not editable)
# into /app. settings.py finds templates/ and static/ beside the config package,
# so the packages go into the application directory, which is on PYTHONPATH,
# rather than into the virtualenv's site-packages.
COPY README.md ./
COPY config config/
COPY incidents incidents/
COPY tracker tracker/
RUN pip wheel --no-deps --wheel-dir /wheels/project . \
    && pip install --no-deps --no-index --target /app /wheels/project/*.whl

# --- runtime: the interpreter, the virtualenv and the application -------------
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    TRACKER_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    PORT=8000

# A fixed uid/gid, so volumes and Kubernetes' runAsUser can name it.
RUN groupadd --gid 10001 tracker \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin tracker

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
COPY manage.py ./
COPY templates templates/
COPY static static/
COPY samples samples/
COPY deploy deploy/

# Static files are collected into the image (whitenoise serves them, compressed
# and with hashed names). The key below exists for this build step only: the
# settings refuse to load without one, and nothing signed here is kept.
# STATIC_ROOT is outside var/, so a volume mounted on /app/var does not hide it.
RUN DEBUG=0 SECRET_KEY=collectstatic-at-build-time-only-not-a-secret \
        python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var \
    && chown 10001:10001 /app/var

USER 10001:10001
EXPOSE 8000

# Liveness only: /healthz answers while gunicorn serves requests. The worker and
# beat containers run no web server and override or disable this check
# (docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py", "/healthz"]

# Workers from WEB_CONCURRENCY, the access log on stdout, worker recycling and
# the timeout: see deploy/gunicorn.conf.py.
CMD ["gunicorn", "--config", "/app/deploy/gunicorn.conf.py", "config.wsgi"]

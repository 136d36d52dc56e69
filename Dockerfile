# Production image: gunicorn by default; the same image runs the Celery worker
# and beat with another command (see docker-compose.yml and Procfile).
FROM python:3.11-slim

# STATIC_ROOT is outside var/, so a volume mounted on /app/var (SQLite) does not hide it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEB_CONCURRENCY=2 \
    STATIC_ROOT=/app/staticfiles

RUN useradd --system --create-home --uid 10001 tracker
WORKDIR /app

# Dependencies first, from pyproject.toml alone, so code changes reuse this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# Editable, so config/ and the apps are imported from /app next to templates/ and static/.
RUN pip install --no-deps -e . \
    && DEBUG=0 SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput \
    && chown -R tracker:tracker /app/var

USER tracker
EXPOSE 8000
# gunicorn reads the number of workers from WEB_CONCURRENCY.
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]

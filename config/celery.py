import os

from celery import Celery, signals

from config import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every log line of a task carries its id and name, and the id of the request that enqueued it.
signals.task_prerun.connect(logs.task_prerun)
signals.task_postrun.connect(logs.task_postrun)
signals.before_task_publish.connect(logs.before_task_publish)


@signals.setup_logging.connect
def use_django_logging(**kwargs) -> None:
    """Worker and beat log as the web does (settings.LOGGING): with a receiver
    for this signal, Celery leaves the root logger alone (and ignores `-l`; LOG_LEVEL rules)."""
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)

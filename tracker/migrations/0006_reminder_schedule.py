"""Put the reminder schedule in the database (django-celery-beat), where operators can change it."""

from django.conf import settings
from django.db import migrations

TASKS = [
    ("Reminder sweep (hourly)", "tracker.sweep_reminders", {"minute": "0", "hour": "*"}),
    (
        "Manager digest (Mondays 08:00)",
        "tracker.send_manager_digest",
        {"minute": "0", "hour": "8", "day_of_week": "1"},
    ),
]


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, cron in TASKS:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            day_of_month="*", month_of_year="*", timezone=settings.TIME_ZONE,
            **{"day_of_week": "*", **cron},
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})
    every_five, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Retry pending reminders (every 5 minutes)",
        defaults={"task": "tracker.deliver_pending_reminders", "interval": every_five},
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(
        task__in=[t for _, t, _ in TASKS] + ["tracker.deliver_pending_reminders"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0005_reminders"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]

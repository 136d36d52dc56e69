"""Put the ticket sync schedule in the database (django-celery-beat), next to the reminders'."""

from django.db import migrations

TASKS = [
    ("Push pending tickets (every minute)", "tracker.push_pending_tickets", 1),
    ("Poll the ticket system (every 5 minutes)", "tracker.poll_tickets", 5),
]


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minutes in TASKS:
        interval, _ = IntervalSchedule.objects.get_or_create(every=minutes, period="minutes")
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval})


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task__in=[task for _, task, _ in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0009_ticket_sync"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]

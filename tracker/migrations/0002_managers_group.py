"""Create the managers group: full rights on incidents and action items in the admin."""

from django.apps import apps as global_apps
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations

APP_LABELS = ("incidents", "tracker")
ACTIONS = ("view", "add", "change", "delete")


def group_name() -> str:
    return getattr(settings, "TRACKER_MANAGERS_GROUP", "managers")


def create_managers_group(apps, schema_editor):
    using = schema_editor.connection.alias
    # Permissions are normally created by post_migrate, after every migration
    # has run; create them now so the group can be given them. The installed
    # app config only says "this app has models"; the models themselves are
    # read from the historical `apps`.
    for label in APP_LABELS:
        create_permissions(global_apps.get_app_config(label), verbosity=0, using=using, apps=apps)

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(name=group_name())
    codenames = [
        f"{action}_{model._meta.model_name}"
        for label in APP_LABELS
        for model in apps.get_app_config(label).get_models()
        for action in ACTIONS
    ]
    permissions = Permission.objects.using(using).filter(
        content_type__app_label__in=APP_LABELS, codename__in=codenames
    )
    group.permissions.add(*permissions)


def remove_managers_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=group_name()).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0001_initial"),
        ("incidents", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_managers_group, remove_managers_group),
    ]

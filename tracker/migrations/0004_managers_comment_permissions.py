"""Give the managers group rights on comments (API tokens stay with superusers)."""

from django.apps import apps as global_apps
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    create_permissions(global_apps.get_app_config("tracker"), verbosity=0, using=using, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(
        name=getattr(settings, "TRACKER_MANAGERS_GROUP", "managers")
    )
    group.permissions.add(
        *Permission.objects.using(using).filter(
            content_type__app_label="tracker",
            codename__in=["view_comment", "add_comment", "change_comment", "delete_comment"],
        )
    )


class Migration(migrations.Migration):
    dependencies = [("tracker", "0003_api_tokens_comments_version")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

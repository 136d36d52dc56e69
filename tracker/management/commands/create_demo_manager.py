"""Create the demo manager login that `scripts/run` prints, or give it a new password."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

USERNAME = "demo-manager"
EMAIL = "manager@example.com"


class Command(BaseCommand):
    help = (
        f"Create the staff user {USERNAME!r} in the managers group, or reset its password, "
        "and print how to log in. For demonstrations: remove it on a real installation."
    )

    def add_arguments(self, parser):
        parser.add_argument("--password", help="use this password instead of a random one")

    def handle(self, *args, password: str | None, **options):
        password = password or secrets.token_urlsafe(12)
        with transaction.atomic():
            user, _ = get_user_model().objects.update_or_create(
                username=USERNAME, defaults={"email": EMAIL, "is_staff": True, "is_active": True}
            )
            user.set_password(password)
            user.save(update_fields=["password"])
            group, _ = Group.objects.get_or_create(name=settings.TRACKER_MANAGERS_GROUP)
            user.groups.add(group)

        self.stdout.write(f"Log in at {settings.TRACKER_BASE_URL}/admin/")
        self.stdout.write(f"  username: {USERNAME}")
        self.stdout.write(f"  password: {password}")

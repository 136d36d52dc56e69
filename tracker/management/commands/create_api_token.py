"""Create an API token for a user and print it, once."""

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from tracker.models import ApiToken
from tracker.tokens import api_token_create


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME and print it. Only a hash is stored: the token "
        "cannot be shown again. It is printed alone on the last line of standard output."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="what the token is for")
        parser.add_argument(
            "--expires-in-days", type=int, help="the token stops working after N days"
        )

    def handle(self, *args, username: str, name: str, expires_in_days: int | None, **options):
        name = name.strip()
        max_length = ApiToken._meta.get_field("name").max_length
        if not name or len(name) > max_length:
            raise CommandError(f"--name must have 1 to {max_length} characters")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        expires_at = (
            timezone.now() + dt.timedelta(days=expires_in_days) if expires_in_days else None
        )
        token, key = api_token_create(user=user, name=name, expires_at=expires_at)

        until = f", expires {token.expires_at:%Y-%m-%d %H:%M %Z}" if expires_at else ""
        self.stdout.write(f"Created token {token.name!r} for {username} ({token.prefix}…{until}).")
        self.stdout.write("Copy it now: it is stored hashed and cannot be shown again.")
        self.stdout.write(key)

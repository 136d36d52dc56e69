"""Reminders by email: one message per recipient, from templates/emails/reminder-*."""

from __future__ import annotations

import datetime as dt
import smtplib

from django.core.mail import get_connection

from ...models import Notification
from ..messages import reminder_message
from .base import Channel, ChannelError


class EmailChannel(Channel):
    name = "email"

    def __init__(self) -> None:
        # One backend for the run's messages, from EMAIL_BACKEND and the EMAIL_* settings.
        self.connection = get_connection()

    def send(self, *, recipient: str, notifications: list[Notification], now: dt.datetime) -> None:
        message = reminder_message(
            recipient=recipient, notifications=notifications, now=now, connection=self.connection
        )
        try:
            message.send()
        except (smtplib.SMTPException, OSError) as exc:
            # Never permanent: a refused recipient may be a full mailbox or a greylist,
            # and TRACKER_SEND_MAX_ATTEMPTS bounds the attempts anyway.
            raise ChannelError(f"{type(exc).__name__}: {exc}") from exc

"""Reminder channels, one module each, found by name through CHANNELS.

A channel implements tracker.reminders.channels.base.Channel. The registry
holds dotted paths, imported only when a channel is asked for, so a channel's
dependencies (an HTTP client, an SDK) load only where it is used.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from .base import Channel, ChannelError

CHANNELS = {
    "email": "tracker.reminders.channels.email.EmailChannel",
}

__all__ = ["CHANNELS", "Channel", "ChannelError", "channel"]


def channel(name: str) -> Channel:
    """A new instance of the channel called `name` (KeyError if there is none)."""
    return import_string(CHANNELS[name])()

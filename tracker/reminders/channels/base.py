"""The interface every reminder channel implements (email now; chat next).

Delivery (tracker.reminders.delivery) claims a recipient's Notification rows,
writes them down as claimed, then hands them to a channel in one call. The
channel only turns them into a message and sends it; claims, retries, backoff
and the history stay in delivery, the same for every channel.
"""

from __future__ import annotations

import datetime as dt

from ...models import Notification


class ChannelError(Exception):
    """A send that did not go out.

    `permanent`: sending again cannot help (a revoked token, a recipient the
    service does not know), so the rows fail at once instead of after
    TRACKER_SEND_MAX_ATTEMPTS attempts with backoff.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel:
    """One way to deliver reminders; an instance serves one delivery run.

    A run creates one instance and sends every recipient's message through it,
    so a channel may keep what its sends share (the email channel's SMTP
    backend) on the instance.
    """

    name: str = ""

    def is_configured(self) -> bool:
        """Whether the settings this channel needs are there; if not, its rows wait."""
        return True

    def send(self, *, recipient: str, notifications: list[Notification], now: dt.datetime) -> None:
        """Send `recipient` their `notifications` (all still due) as one message.

        `now` is the moment the message is written, for what it says ("2 days
        late"). Raise ChannelError when the message did not go out.
        """
        raise NotImplementedError

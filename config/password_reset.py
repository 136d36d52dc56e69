"""Password reset with a throttle that never shows.

Django's reset page sends an email for every request naming an account: nine
requests in a second were nine emails in one person's inbox. Requests are now
counted per target address (`TRACKER_PASSWORD_RESET_RATE`) and per client
(`TRACKER_PASSWORD_RESET_CLIENT_RATE`, the address as config.security.client_ip
reads it) in the cache, which every web process shares; past either limit the
request sends nothing. The answer is the same "check your inbox" page whether
the email was sent, throttled or names no account, so the page tells nobody
which addresses have accounts, or that a limit was reached.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect

from .security import client_ip, rate_exceeded

logger = logging.getLogger(__name__)


def password_reset_allowed(*, email: str, client: str | None) -> bool:
    """Count one reset request for `email` from `client`; False once either is over its rate.

    A client past its limit is not counted against the address, so one client
    cannot use up the budget of someone else's address beyond its own.
    """
    if rate_exceeded(
        key=f"password-reset:client:{client}", rate=settings.TRACKER_PASSWORD_RESET_CLIENT_RATE
    ):
        return False
    # Hashed: the cache has no business holding people's addresses.
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return not rate_exceeded(
        key=f"password-reset:address:{digest}", rate=settings.TRACKER_PASSWORD_RESET_RATE
    )


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset page, throttled per address and per client."""

    def form_valid(self, form):
        client = client_ip(self.request)
        if password_reset_allowed(email=form.cleaned_data["email"], client=client):
            return super().form_valid(form)
        # The address is not logged: it is personal, and may name no account.
        logger.warning("Password reset throttled: nothing sent (client %s)", client)
        return HttpResponseRedirect(self.get_success_url())

from django.conf import settings
from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from config.security import client_ip, parse_rate

from .tokens import api_token_authenticate

KEYWORDS = ("bearer", "token")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` (or `Token <token>`).

    Failures are counted per client address: past `TRACKER_API_TOKEN_FAILURE_RATE`,
    every token request from that address gets 429 until the window ends. Secrets
    are far too long to guess, but whoever keeps sending wrong ones is probing (or
    broken) and should not cost a database query each time.
    """

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in KEYWORDS:
            return None
        limit, window = _failure_rate()
        key = f"api-token-failures:{client_ip(request)}"
        if limit and (cache.get(key) or 0) >= limit:
            raise exceptions.Throttled(
                wait=window, detail="Too many failed token authentications from this address."
            )
        try:
            token = _token(header)
        except exceptions.AuthenticationFailed:
            if limit and not cache.add(key, 1, timeout=window):
                try:
                    cache.incr(key)
                except ValueError:  # expired between add() and incr()
                    cache.add(key, 1, timeout=window)
            raise
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def _token(header: list[bytes]):
    if len(header) != 2:
        raise exceptions.AuthenticationFailed("Malformed Authorization header.")
    try:
        key = header[1].decode()
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("Malformed token.") from None
    token = api_token_authenticate(key=key)
    if token is None:
        raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
    return token


def _failure_rate() -> tuple[int, int]:
    """TRACKER_API_TOKEN_FAILURE_RATE ("20/min") as (failures, seconds); 0 failures: no limit."""
    return parse_rate(settings.TRACKER_API_TOKEN_FAILURE_RATE)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes token authentication in the OpenAPI schema."""

    target_class = "tracker.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `Authorization: Bearer <token>` (or `Token <token>`).",
        }

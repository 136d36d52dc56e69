"""System checks: a ticket backend that is enabled but cannot work is reported at start."""

from django.conf import settings
from django.core.checks import Error, register

from . import ticketing
from .ticketing.http import allowed_networks


@register("tickets")
def ticket_backend_configured(app_configs, **kwargs) -> list[Error]:
    name = settings.TICKETS_BACKEND
    if not name:
        return []
    try:
        allowed_networks(settings.TICKETS_ALLOWED_NETWORKS)
    except ValueError as exc:
        return [Error(str(exc), hint="Use networks such as 10.20.0.0/16.", id="tracker.E003")]
    if name not in ticketing.BACKENDS:
        return [
            Error(
                f"TICKETS_BACKEND={name!r} is not a ticket backend.",
                hint=f"Use one of: {', '.join(sorted(ticketing.BACKENDS))}, or leave it empty.",
                id="tracker.E001",
            )
        ]
    config = ticketing.backend_config(name)
    return [
        Error(
            problem, hint=f"Set it in the environment (TICKETS_BACKEND={name}).", id="tracker.E002"
        )
        for problem in ticketing.backend_class(name).config_problems(config)
    ]

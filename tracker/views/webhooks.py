"""Inbound webhooks from ticket systems: `/api/v1/webhooks/<system>/`.

A plain Django view rather than a DRF one: the signature is computed over the
raw body, which must be checked before anything parses it.
"""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..ticketing import inbound


@csrf_exempt  # signed by the sender instead; there is no session here
@require_POST
def ticket_webhook(request: HttpRequest, system: str) -> JsonResponse:
    length = request.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return JsonResponse({"detail": "delivery too large"}, status=413)
    # request.headers looks names up case-insensitively, as HTTP means them.
    outcome = inbound.webhook_receive(system=system, headers=request.headers, body=request.body)
    return JsonResponse({"detail": outcome.message}, status=outcome.status)

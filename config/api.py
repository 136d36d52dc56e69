"""What every API endpoint shares: one error format, pagination, throttling."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error
from rest_framework import exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from .json_input import JSONInputError, read_json

logger = logging.getLogger(__name__)


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The item changed since you read it (If-Match does not match its ETag)."
    default_code = "precondition_failed"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable for a moment; try again shortly."
    default_code = "unavailable"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _flatten(detail: Any, path: str = "") -> list[dict[str, str | None]]:
    if isinstance(detail, dict):
        errors = []
        for key, value in detail.items():
            key = "" if key in ("non_field_errors", "__all__") else str(key)
            sub = f"{path}.{key}" if path and key else (key or path)
            errors.extend(_flatten(value, sub))
        return errors
    if isinstance(detail, list):
        errors = []
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                errors.extend(_flatten(value, f"{path}[{index}]"))
            else:
                errors.extend(_flatten(value, path))
        return errors
    code = getattr(detail, "code", None) or "invalid"
    return [{"path": path or None, "code": str(code), "message": str(detail)}]


def error_response(status_code: int, errors: list[dict], headers: dict | None = None) -> Response:
    return Response({"status": status_code, "errors": errors}, status=status_code, headers=headers)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every error, whatever raised it, as {"status": N, "errors": [{path, code, message}]}."""
    # Imported here: rest_framework.views reads DEFAULT_THROTTLE_CLASSES, which names
    # this module, so a top-level import fails whenever this module is imported first.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, IntegrityError):
        exc = Conflict()
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # The database went away (restart, failover): nothing was written, and
        # the client may retry. Logged, since it is ours to look at.
        logger.warning("API request failed on the database: %s", type(exc).__name__)
        exc = ServiceUnavailable()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = "5"
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
    else:
        code = getattr(exc.detail, "code", None) or exc.default_code
        path = exc.path if isinstance(exc, JSONBodyError) else None
        errors = [{"path": path, "code": str(code), "message": str(exc.detail)}]
    response.data = {"status": response.status_code, "errors": errors}
    return response


def not_found(request, exception=None):
    """handler404: an /api/ path that no route matches gets the one error format too."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "status": 404,
                "errors": [{"path": None, "code": "not_found", "message": "Not found."}],
            },
            status=404,
        )
    return page_not_found(request, exception)


def server_error(request):
    """handler500: an /api/ path gets the one error format, a page Django's plain one.

    Reached only by errors the API's exception handler did not turn into an answer
    (and by the pages): never shows a traceback, whatever DEBUG says elsewhere.
    """
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "status": 500,
                "errors": [
                    {"path": None, "code": "server_error", "message": "Internal server error."}
                ],
            },
            status=500,
        )
    return django_server_error(request)


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class TokenOrUserRateThrottle(SimpleRateThrottle):
    """Limits each API token separately, and each signed-in user's session."""

    scope = "user"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None  # anonymous requests are refused before they cost anything
        token = getattr(request, "auth", None)
        ident = f"token:{token.pk}" if hasattr(token, "pk") else f"user:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


ERROR_SCHEMA = {
    "type": "object",
    "required": ["status", "errors"],
    "properties": {
        "status": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {
                    "path": {
                        "type": "string",
                        "nullable": True,
                        "description": "The field, or null",
                    },
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
ERROR_DESCRIPTIONS = {
    "400": "Invalid input; each error names its field",
    "401": "Not signed in, or a bad token",
    "403": "Not allowed for this user",
    "404": "No such resource",
    "405": "Method not allowed",
    "406": "Not acceptable",
    "409": "Conflict with the current state",
    "412": "If-Match does not match the current ETag",
    "413": "Body too large",
    "415": "Unsupported media type",
    "429": "Too many requests; retry after the Retry-After header",
}


def add_error_responses(result, generator, request, public):
    """Document the one error format on every operation (drf-spectacular postprocessing hook)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = ["400", "401", "403", "404", "405", "406", "415", "429"]
            if method in ("patch", "put"):
                codes.append("412")
            if method in ("post", "patch", "put", "delete"):
                codes += ["409", "413"]
            for code in codes:
                operation["responses"].setdefault(
                    code,
                    {
                        "description": ERROR_DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": ref}},
                    },
                )
    return result


class JSONBodyError(exceptions.ParseError):
    """A body config.json_input refuses, with the JSON path of what it refused."""

    def __init__(self, error: JSONInputError):
        super().__init__(error.message, code=error.code)
        self.path = None if error.path == "$" else error.path


class LimitedJSONParser(JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE (larger ones get 413 before they
    are read), read by config.json_input, which refuses what the database or Python
    cannot take (deep nesting, infinite numbers, duplicate keys...) with a 400.

    Django enforces that limit on forms, but DRF reads JSON from the raw stream.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge()
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge()
        try:
            return read_json(body)
        except JSONInputError as error:
            raise JSONBodyError(error) from None

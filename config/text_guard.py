"""Text the database cannot store is refused at the door, for every route.

PostgreSQL refuses NUL in text, and no encoding stores an unpaired surrogate:
a URL path, query parameter or cookie carrying one would reach a lookup (the
calendar feed's token, an incident id, a filter, the session) and fail there
as a server error. No page, item or person is named with either, so the
request is answered 400, naming the part of it that carries them, before any
view, session or database sees it.

Bodies are not read here: form and serializer fields refuse NUL themselves
(Django's and DRF's CharField), with the field named.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _printable(text: str) -> str:
    """`text` with its NUL and surrogates spelled out, to name it in an answer."""
    return UNSTORABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def unstorable_part(request: HttpRequest) -> tuple[str | None, str] | None:
    """(parameter name or None, message) for the first part of the request the
    database could not store, or None when there is none."""
    if UNSTORABLE.search(request.path):
        return None, (
            "The address contains a NUL character or an unpaired surrogate; "
            "nothing here is named so."
        )
    for name, values in request.GET.lists():
        if UNSTORABLE.search(name) or any(UNSTORABLE.search(value) for value in values):
            return _printable(name), (
                f"The query parameter {_printable(name)!r} contains a NUL character "
                "or an unpaired surrogate."
            )
    for name, value in request.COOKIES.items():
        if UNSTORABLE.search(name) or UNSTORABLE.search(value):
            return None, (
                f"The cookie {_printable(name)!r} contains a NUL character; "
                "remove it from the browser and try again."
            )
    return None


class UnstorableTextMiddleware:
    """Answers 400 to a request whose path, query string or cookies carry NUL or
    unpaired surrogates: in the API's error format under /api/, else a page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = unstorable_part(request)
        if found is None:
            return self.get_response(request)
        parameter, message = found
        if request.path_info.startswith("/api/"):
            return JsonResponse(
                {
                    "status": 400,
                    "errors": [
                        {"path": parameter, "code": "invalid_characters", "message": message}
                    ],
                },
                status=400,
            )
        return render(request, "400.html", {"message": message}, status=400)

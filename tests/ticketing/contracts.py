"""The vendors' own API descriptions, held against every request a backend
sends to the fakes (fakes.py) and every answer a fake gives.

- GitHub: `generated/api.github.com.json` of the npm package @octokit/openapi,
  which scripts/test installs into .cache/octokit (GITHUB_OPENAPI names another file).
- Jira Cloud (REST v3): `../shared/contracts/jira-cloud-platform-v3.openapi3.json`,
  beside the clone (JIRA_OPENAPI names another file).

openapi-core checks each request (the path and method exist, parameters and
body match their schemas) and each answer (the status is described, the body
matches it). Many schemas allow fields they do not name, so two checks are
added here: no query parameter the operation does not name, and no top-level
body field (sent or answered) that the schema's `properties` do not name.
An answer with a status the operation does not describe is accepted only for
what any endpoint may answer (401, a 403 or 429 rate limit, 5xx), with the
vendor's error shape if it is JSON.

Each description is read once per test process (about 0.3 s for GitHub's 13 MB,
0.05 s for Jira's 2 MB; then about 8 ms a request and its answer), whole: no
pruning. openapi-core's validation of the description itself is turned off
(it would take minutes on GitHub's and says nothing about the fakes).
Their servers (https://api.github.com, https://{your-domain}.atlassian.net) are
replaced by the fakes' http://127.0.0.1:{port} (and, for GitHub Enterprise
Server's prefix, http://127.0.0.1:{port}/api/v3).
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.finders import APICallPathFinder
from werkzeug import Request, Response

ROOT = Path(__file__).resolve().parents[2]
GITHUB_PACKAGE = "@octokit/openapi"
GITHUB_DEFAULT = (
    ROOT / ".cache/octokit/node_modules" / GITHUB_PACKAGE / "generated/api.github.com.json"
)
JIRA_DEFAULT = ROOT.parent / "shared/contracts/jira-cloud-platform-v3.openapi3.json"
# What any endpoint may answer, described or not: bad credentials, rate limits, outages.
ANY_ENDPOINT_STATUSES = frozenset({401, 403, 429, 500, 502, 503, 504})
# Jira's description offers OAuth 2 beside basic auth; openapi-core checks the one it knows.
warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning, "openapi_core")
# The fakes' server on loopback (127.0.0.1, or localhost for pytest-httpserver's own).
LOCAL_SERVER = {
    "url": "http://{host}:{port}",
    "variables": {"host": {"default": "127.0.0.1"}, "port": {"default": "80"}},
}


class Contract:
    """One vendor's description: `problems(request, response)` says, in words,
    where a request or an answer departs from it (an empty list: none)."""

    def __init__(self, name: str, document: dict[str, Any], *, error_schema: str) -> None:
        self.name = name
        self.document = document
        self.error_schema = error_schema
        self.api = OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))
        self._finder = APICallPathFinder(self.api.spec)
        # openapi-core keeps caches as it goes; the fakes' server is threaded.
        self._lock = threading.Lock()

    def problems(self, request: Request, response: Response | None = None) -> list[str]:
        where = f"{request.method} {request.path}"
        with self._lock:
            try:
                found = self._finder.find(request.method.lower(), request.base_url)
            except Exception as error:  # PathNotFound, OperationNotFound
                return [f"{self.name} describes no {where}: {error}"]
            template = found.path.parts[1]
            operation = self.document["paths"][template][request.method.lower()]
            where = f"{request.method} {template}"
            problems = self._request_problems(request, template, operation, where)
            if response is not None:
                problems += self._response_problems(request, response, operation, where)
        return problems

    # --- Requests -----------------------------------------------------------------

    def _request_problems(
        self, request: Request, template: str, operation: dict[str, Any], where: str
    ) -> list[str]:
        problems = []
        try:
            self.api.validate_request(WerkzeugOpenAPIRequest(request))
        except Exception as error:
            problems.append(f"request {where}: {_describe(error)}")
        named = {
            parameter["name"]
            for parameter in self._parameters(template, operation)
            if parameter.get("in") == "query"
        }
        unknown = sorted(set(request.args) - named)
        if unknown:
            problems.append(f"request {where}: query parameters not described: {unknown}")
        body = request.get_json(silent=True) if request.data else None
        schema = (
            operation.get("requestBody", {})
            .get("content", {})
            .get("application/json", {})
            .get("schema")
        )
        if body is not None and schema is not None:
            unknown = self._unknown_fields(body, schema)
            if unknown:
                problems.append(f"request {where}: body fields not described: {unknown}")
        return problems

    def _parameters(self, template: str, operation: dict[str, Any]) -> list[dict[str, Any]]:
        shared = self.document["paths"][template].get("parameters", [])
        return [self.resolve(p) for p in [*shared, *operation.get("parameters", [])]]

    # --- Answers --------------------------------------------------------------------

    def _response_problems(
        self, request: Request, response: Response, operation: dict[str, Any], where: str
    ) -> list[str]:
        status = response.status_code
        described = operation.get("responses", {})
        answer = f"answer {status} to {where}"
        if str(status) not in described and "default" not in described:
            if status not in ANY_ENDPOINT_STATUSES:
                return [f"{answer}: a status {self.name} does not describe for it"]
            body = _json(response)
            if body is None:
                return []
            unknown = self._unknown_fields(body, {"$ref": self.error_schema})
            if unknown or not isinstance(body, dict):
                return [f"{answer}: not {self.name}'s error shape: {body!r}"[:500]]
            return []
        if status == 204:
            # No Content has no body (RFC 9110), though Jira describes one as "{}".
            return [f"{answer}: a body in a 204"] if response.get_data() else []
        problems = []
        try:
            self.api.validate_response(
                WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response)
            )
        except Exception as error:
            problems.append(f"{answer}: {_describe(error)}")
        entry = self.resolve(described.get(str(status)) or described["default"])
        schema = entry.get("content", {}).get("application/json", {}).get("schema")
        body = _json(response)
        if schema is not None and body is not None:
            unknown = self._unknown_fields(body, schema)
            if unknown:
                problems.append(f"{answer}: fields not described: {unknown}")
        return problems

    # --- Schemas --------------------------------------------------------------------

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def property_names(self, schema: dict[str, Any]) -> set[str] | None:
        """The top-level field names `schema` describes, or None when it describes
        no fixed set (a map, a free-form value, a non-object)."""
        schema = self.resolve(schema)
        names: set[str] = set(schema.get("properties", {}))
        fixed = "properties" in schema
        for key in ("allOf", "oneOf", "anyOf"):
            for part in schema.get(key, []):
                part_names = self.property_names(part)
                if part_names is not None:
                    names |= part_names
                    fixed = True
        return names if fixed else None

    def _unknown_fields(self, body: Any, schema: dict[str, Any]) -> list[str]:
        schema = self.resolve(schema)
        if isinstance(body, list):
            items = schema.get("items")
            if items is None:
                return []
            return sorted({name for entry in body for name in self._unknown_fields(entry, items)})
        if not isinstance(body, dict):
            return []
        names = self.property_names(schema)
        if names is None:
            return []
        return sorted(set(body) - names)

    def example(self, schema_name: str, **values: Any) -> dict[str, Any]:
        """The least object that component schema `schema_name` allows (each required
        field the least value of its type), with `values` over it: for the parts of
        an answer no backend reads (a repository's forty-odd URLs)."""
        schema = self.resolve({"$ref": f"#/components/schemas/{schema_name}"})
        return {**self._least(schema), **values}

    def _least(self, schema: dict[str, Any]) -> Any:
        schema = self.resolve(schema)
        for key in ("allOf", "oneOf", "anyOf"):
            if key in schema:
                merged: dict[str, Any] = {}
                for part in schema[key] if key == "allOf" else schema[key][:1]:
                    least = self._least(part)
                    if not isinstance(least, dict):
                        return least
                    merged.update(least)
                return merged
        if schema.get("nullable"):
            return None
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type", "object")
        if kind == "object":
            return {
                name: self._least(schema["properties"][name])
                for name in schema.get("required", [])
                if name in schema.get("properties", {})
            }
        if kind == "array":
            return []
        if kind in ("integer", "number"):
            return 0
        if kind == "boolean":
            return False
        formats = {"uri": "http://127.0.0.1/", "date-time": "2024-01-01T00:00:00Z"}
        return formats.get(schema.get("format"), "")


def _json(response: Response) -> Any:
    if "json" not in (response.content_type or ""):
        return None
    try:
        return json.loads(response.get_data())
    except ValueError:
        return None


def _describe(error: Exception) -> str:
    """openapi-core's error and the schema errors it wraps, a line each, without
    repeating the whole value."""
    lines = [type(error).__name__ + ": " + str(error).split(" Value ", 1)[0][:200]]
    todo: list[Any] = [error]
    while todo:
        current = todo.pop()
        if current is None:
            continue
        found = getattr(current, "schema_errors", None)
        for inner in found or ():
            lines.extend(_schema_error_lines(inner))
        if not found:
            todo.extend([current.__cause__, *getattr(current, "errors", ())])
    return "\n".join(dict.fromkeys(lines))[:3000]


def _schema_error_lines(error: Any) -> list[str]:
    """The innermost jsonschema errors, with where they are."""
    if getattr(error, "context", None):
        return [line for inner in error.context for line in _schema_error_lines(inner)]
    path = "/".join(str(p) for p in getattr(error, "absolute_path", []))
    return [f"  at {path or '(top)'}: {str(getattr(error, 'message', error))[:300]}"]


def _read(path: Path, how: str) -> dict[str, Any]:
    if not path.is_file():
        pytest.fail(f"the API description {path} is missing: {how}", pytrace=False)
    document = json.loads(path.read_text())
    _allow_null_in_nullable_enums(document)
    return document


def _allow_null_in_nullable_enums(node: Any) -> None:
    """OpenAPI 3.0.3 reads `nullable: true` with an `enum` lacking null as "never
    null", which the vendors do not mean: GitHub answers `"state_reason": null`
    for every open issue it never closed. Null joins such enums."""
    if isinstance(node, dict):
        if node.get("nullable") is True and None not in node.get("enum", [None]):
            node["enum"] = [*node["enum"], None]
        for value in node.values():
            _allow_null_in_nullable_enums(value)
    elif isinstance(node, list):
        for value in node:
            _allow_null_in_nullable_enums(value)


@cache
def github() -> Contract:
    """GitHub's REST API (api.github.com), as @octokit/openapi publishes it."""
    path = Path(os.environ.get("GITHUB_OPENAPI") or GITHUB_DEFAULT)
    document = _read(path, f"scripts/test installs {GITHUB_PACKAGE} into .cache/octokit")
    # The fakes serve at the root and, as GitHub Enterprise Server does, under /api/v3.
    document["servers"] = [LOCAL_SERVER, {**LOCAL_SERVER, "url": LOCAL_SERVER["url"] + "/api/v3"}]
    return Contract("GitHub", document, error_schema="#/components/schemas/basic-error")


@cache
def jira() -> Contract:
    """Jira Cloud's platform REST API v3, as Atlassian publishes it."""
    path = Path(os.environ.get("JIRA_OPENAPI") or JIRA_DEFAULT)
    document = _read(path, "it lives in ../shared/contracts/ beside the clone (see its README)")
    document["servers"] = [LOCAL_SERVER]
    return Contract("Jira", document, error_schema="#/components/schemas/ErrorCollection")

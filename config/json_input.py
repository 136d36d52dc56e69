"""The one reader of JSON from outside: documents, API bodies and inbound webhooks.

`read_json(data)` is `json.loads` with the limits every caller needs, so that input
the database or Python cannot handle is refused with an error naming its JSON path
(`action_items[3].owner`, `$` for the whole text) instead of failing later:

- invalid UTF-8 (a byte order mark is accepted);
- nesting deeper than MAX_DEPTH, measured on the text before it is parsed
  (Python's json recurses, and 100,000 levels raise RecursionError);
- NaN, Infinity and numbers that overflow a float to infinity (PostgreSQL's
  jsonb refuses them), and integers longer than MAX_INTEGER_DIGITS (Python
  refuses to convert integers of over 4,300 digits, and nobody means one);
- duplicate keys in an object (json keeps the last one, silently);
- NUL characters and unpaired surrogates, in strings and keys: PostgreSQL stores
  neither in text or jsonb, and no input we accept has a use for them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64
MAX_INTEGER_DIGITS = 100
# The most problems one error lists; a hostile text could hold millions.
MAX_PROBLEMS = 20

# A string literal, or one left open, which then runs to the end of the text (json
# will refuse it). Every quote outside a string begins a match that cannot fail and
# is never backtracked into (possessive quantifiers), so stripping stays linear: a
# pattern that could fail would be tried again from every quote inside the string,
# and `"` followed by 50,000 escaped quotes took a minute.
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+\\?+(?:"|\Z)', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Escapes and characters that may decode to a NUL or an unpaired surrogate: where
# none is present (most texts), the parsed value need not be walked for them.
_MAYBE_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])|[\x00\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class JSONProblem:
    path: str
    message: str
    code: str


class JSONInputError(ValueError):
    """JSON that is refused; `problems` names each problem's path (the first is `path`)."""

    def __init__(self, problems: list[JSONProblem]):
        self.problems = problems
        first = problems[0]
        self.path, self.message, self.code = first.path, first.message, first.code
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))


def read_json(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a JSON text, or JSONInputError naming what is wrong and where."""
    text = _decode(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    depth = nesting_depth(text)
    if depth > max_depth:
        raise _error("$", f"nested {depth:,} levels deep; the limit is {max_depth}", "too_deep")
    marks = _Marks()
    try:
        value = json.loads(
            text,
            parse_constant=marks.constant,
            parse_float=marks.float,
            parse_int=marks.int,
            object_pairs_hook=marks.object,
        )
    except json.JSONDecodeError as exc:
        hint = " (it looks truncated)" if exc.pos >= len(text.rstrip()) else ""
        raise _error(
            "$",
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}{hint}",
            "parse_error",
        ) from None
    if marks.found or _MAYBE_UNSTORABLE.search(text):
        problems = []
        for problem in _problems(value, "$"):
            problems.append(problem)
            if len(problems) == MAX_PROBLEMS:
                break
        if problems:
            raise JSONInputError(problems)
    return value


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text`, without parsing it.

    String literals are removed first (their brackets are text), then the
    brackets left are counted: linear time and no recursion whatever the depth.
    """
    brackets = _NOT_A_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets))))


def _decode(data: bytes | bytearray | memoryview) -> str:
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(
            "$", f"not valid UTF-8 (byte {exc.start}: {exc.reason})", "invalid_utf8"
        ) from None


def _error(path: str, message: str, code: str) -> JSONInputError:
    return JSONInputError([JSONProblem(path, message, code)])


class _Refused:
    """Stands in the parsed value for a number that is refused, until its path is known."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


class _DuplicateKeys(dict):
    """An object whose text gave some keys more than once."""

    __slots__ = ("duplicates",)


class _Marks:
    """json's hooks: refused values are marked where they stand, and reported with
    their paths once the whole text is parsed (the hooks cannot know the paths)."""

    def __init__(self):
        self.found = False

    def _refuse(self, message: str) -> _Refused:
        self.found = True
        return _Refused(message)

    def constant(self, name: str) -> Any:
        return self._refuse(f"{name} is not a JSON number")

    def float(self, literal: str) -> Any:
        value = float(literal)
        if math.isinf(value):
            return self._refuse(f"the number {_abridged(literal)} is too large (over 1.8e308)")
        return value

    def int(self, literal: str) -> Any:
        digits = len(literal.lstrip("-"))
        if digits > MAX_INTEGER_DIGITS:
            return self._refuse(
                f"an integer of {digits:,} digits; the limit is {MAX_INTEGER_DIGITS} digits"
            )
        return int(literal)

    def object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(pairs)
        if len(value) == len(pairs):
            return value
        self.found = True
        marked = _DuplicateKeys(value)
        seen: set[str] = set()
        marked.duplicates = []
        for key, _ in pairs:
            if key in seen and key not in marked.duplicates:
                marked.duplicates.append(key)
            seen.add(key)
        return marked


def _problems(value: Any, path: str):
    if isinstance(value, _Refused):
        yield JSONProblem(path, value.message, "invalid_number")
    elif isinstance(value, str):
        if "\x00" in value:
            yield JSONProblem(path, "contains a NUL character (\\u0000)", "invalid_characters")
        elif _UNSTORABLE.search(value):
            yield JSONProblem(
                path, "contains an unpaired surrogate (invalid Unicode)", "invalid_characters"
            )
    elif isinstance(value, dict):
        for key in getattr(value, "duplicates", ()):
            yield JSONProblem(
                _child(path, key), "duplicate key: given more than once", "duplicate_key"
            )
        for key, item in value.items():
            if _UNSTORABLE.search(key):
                yield JSONProblem(
                    _child(path, key),
                    "the key contains a NUL character or an unpaired surrogate",
                    "invalid_characters",
                )
            yield from _problems(item, _child(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _problems(item, f"{'' if path == '$' else path}[{index}]")


def _child(path: str, key: str) -> str:
    key = _printable(key)
    return key if path == "$" else f"{path}.{key}"


def _printable(text: str) -> str:
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def _abridged(literal: str) -> str:
    return literal if len(literal) <= 24 else f"{literal[:20]}…"

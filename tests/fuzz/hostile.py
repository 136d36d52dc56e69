"""Pathological JSON values, and JSON text that `json.dumps` cannot write.

The values sit at and just past every column limit of the models (64, 200, 254,
500 characters; emails of 255 to 320 characters that pass email validation), at
both ends of the calendar, beyond a float's range (`1e999`) and Python's integer
parsing limit (5,000 digits), nested 10,000 and 100,000 levels deep, and carry
NUL or an unpaired surrogate. `Raw` puts JSON text in place verbatim, so the text
itself can be hostile: numbers out of range, deep nesting, duplicate keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st


@dataclass(frozen=True)
class Raw:
    """JSON text emitted as it is; `label` names it in test reports."""

    text: str
    label: str

    def __repr__(self) -> str:
        return f"Raw({self.label})"


@dataclass(frozen=True)
class DuplicateKey:
    """An object whose `key` appears twice: first with `first`, then with the value in `value`.

    Python's json keeps the last one; a reader that refuses duplicates refuses it.
    """

    value: dict
    key: str
    first: Any


def to_json(value: Any) -> str:
    """JSON text of `value`, with `Raw` text in place and `DuplicateKey` keys repeated.

    Strings are escaped as json.dumps does (ASCII only), so a lone surrogate or NUL
    arrives as `\\ud800` or `\\u0000` in the text, as a hostile client would send it.
    """
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, DuplicateKey):
        members = [f"{json.dumps(value.key)}: {to_json(value.first)}"]
        members += [f"{json.dumps(str(k))}: {to_json(v)}" for k, v in value.value.items()]
        if value.key not in value.value:
            members.append(f"{json.dumps(value.key)}: {to_json(value.first)}")
        return "{" + ", ".join(members) + "}"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(str(k))}: {to_json(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


def to_bytes(value: Any) -> bytes:
    # surrogatepass: the text is ASCII unless a Raw value carries a raw surrogate.
    return to_json(value).encode("utf-8", "surrogatepass")


def nested(depth: int, *, inner: str = "0", kind: str = "list") -> Raw:
    """`depth` levels of lists (`[[[0]]]`) or objects (`{"a": {"a": 0}}`)."""
    if kind == "list":
        return Raw("[" * depth + inner + "]" * depth, f"{depth:,} nested lists")
    return Raw('{"a": ' * depth + inner + "}" * depth, f"{depth:,} nested objects")


def text(length: int, char: str = "x") -> str:
    return char * length


def email(length: int) -> str:
    """A valid address of exactly `length` characters (6 to 320): 64-character local part,
    labels of at most 63 characters."""
    assert 6 <= length <= 320, length
    local = "a" * min(64, length - 5)
    domain_length = length - len(local) - 1  # without the "@"
    labels, rest = [], domain_length - 4  # ".com"
    while rest > 0:
        size = min(63, rest)
        if rest - size == 1:  # a lone dot with no label after it
            size -= 1
        labels.append("b" * size)
        rest -= size + 1
    address = f"{local}@{'.'.join(labels)}.com"
    assert len(address) == length, (length, len(address))
    return address


# One entry per class of value, so a failure report says which class broke a field.
HUGE_INTEGER = "9" * 5000  # past Python's 4,300-digit limit for int("...")

STRINGS: dict[str, Any] = {
    # At and one past each column limit: 64 (types, audiences), 200 (names, roles,
    # services), 500 (titles); and far past all of them.
    **{f"{n} chars": text(n) for n in (64, 65, 200, 201, 500, 501)},
    "201 chars of é": text(201, "é"),  # 402 bytes: a limit in characters, not bytes
    "NUL": "ops\u0000lead",
    "lone surrogate": "a\ud800b",
}
EMAILS: dict[str, Any] = {
    # 254 is the column; 255 to 320 pass Django's email validation all the same.
    "254-char email": email(254),
    "255-char email": email(255),
    "320-char email": email(320),
}
NUMBERS: dict[str, Any] = {
    "1e999": Raw("1e999", "1e999"),  # json.loads reads it as inf
    "5,000-digit integer": Raw(HUGE_INTEGER, "5,000-digit integer"),
    "NaN": Raw("NaN", "NaN"),
}
DATES: dict[str, Any] = {
    "0001-01-01": "0001-01-01",
    "9999-12-31": "9999-12-31",
    "9999-12-30T00:00:00Z": "9999-12-30T00:00:00Z",
    "9999-12-31T23:59:59-12:00": "9999-12-31T23:59:59-12:00",  # past 9999 once in UTC
    "0001-01-01T00:00:00+14:00": "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
}
TYPES: dict[str, Any] = {
    "null": None,
    "0": 0,
    "object": {"a": "b"},
}
NESTING: dict[str, Any] = {
    "100,000 nested lists": nested(100_000),
    "10,000 nested objects": nested(10_000, kind="object"),
}

# Every hostile value by name: what the sweeps put into every field, one at a time.
VALUES: dict[str, Any] = {**STRINGS, **EMAILS, **NUMBERS, **DATES, **TYPES, **NESTING}

# Values Python's json reads that reach the columns, or the dates computed from them:
# worth importing over an incident that exists as well as into an empty database.
STORABLE = [
    "200 chars",
    "201 chars",
    "255-char email",
    "1e999",
    "9999-12-31",
    "9999-12-30T00:00:00Z",
    "null",
]

# More of the same kinds, for hypothesis to draw from with the above.
MORE: dict[str, Any] = {
    "empty": "",
    "blank": "   ",
    "5000 chars": text(5000),
    "255 chars": text(255),
    "256 chars": text(256),
    "NUL alone": "\u0000",
    "lone low surrogate": "\udfff",
    "260-char email": email(260),
    "65-char local part": "a" * 65 + "@example.com",
    "1e-999": Raw("1e-999", "1e-999"),
    "-1e999": Raw("-1e999", "-1e999"),
    "-5,000-digit integer": Raw("-" + HUGE_INTEGER, "-5,000-digit integer"),
    "2**64": 2**64,
    "Infinity": Raw("Infinity", "Infinity"),
    "-0": Raw("-0", "-0"),
    "-2**63-1": -(2**63) - 1,
    "0001-01-01T00:00:00Z": "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z": "9999-12-31T23:59:59Z",
    "2024-02-30": "2024-02-30",
    "10000-01-01": "10000-01-01",
    "2024-01-15T14:23:00+23:59": "2024-01-15T14:23:00+23:59",
    "true": True,
    "-1": -1,
    "1.5": 1.5,
    "empty list": [],
    "list of a string": ["x"],
    "10,000 nested lists": nested(10_000),
}

# All of them drawn by hypothesis, mixed with its own text, numbers and structures.
hostile_scalars = (
    st.sampled_from([*VALUES.values(), *MORE.values()]) | st.text(max_size=20) | st.integers()
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


# --- Paths into a document ------------------------------------------------------------

Path = tuple[str | int, ...]


def leaf_paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every leaf of `value` (an empty list or object counts as one), each list entry apart."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaf_paths(item, (*prefix, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*prefix, index))
    else:
        yield prefix


def container_paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every object and list inside `value` (not `value` itself): where a wrong type
    can stand in for a whole section, an entry or a nested object."""
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in children:
        if isinstance(item, (dict, list)):
            yield (*prefix, key)
            yield from container_paths(item, (*prefix, key))


def object_paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every object in `value`, the top level (`()`) included."""
    if isinstance(value, dict):
        yield prefix
        for key, item in value.items():
            yield from object_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from object_paths(item, (*prefix, index))


def field_paths(value: Any) -> list[Path]:
    """One leaf path per field: entries of a list stand for each other (the first that
    has the field is kept), so `events[0].actor` stands for the actor of every event."""
    return first_of_each_shape(leaf_paths(value))


def first_of_each_shape(paths: Iterable[Path]) -> list[Path]:
    """The first path of each shape, a shape being the path with its list indices left out."""
    seen, first = set(), []
    for path in paths:
        if shape(path) not in seen:
            seen.add(shape(path))
            first.append(path)
    return first


def shape(path: Path) -> tuple:
    """The path without its list indices: `events[3].actor` and `events[0].actor` alike."""
    return tuple(None if isinstance(part, int) else part for part in path)


def one_entry_per_shape(value: Any) -> Any:
    """`value` with each list cut to the entries that bring a field no earlier entry has:
    every field is still there, once."""
    if isinstance(value, dict):
        return {key: one_entry_per_shape(item) for key, item in value.items()}
    if not isinstance(value, list):
        return value
    kept, seen = [], set()
    for item in value:
        shapes = {shape(path) for path in leaf_paths(item)}
        if not kept or shapes - seen:
            kept.append(one_entry_per_shape(item))
            seen |= shapes
    return kept


def dotted(path: Path) -> str:
    """`action_items[1].owner`, as the import names paths; `$` for the top level."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "$"


def put(doc: Any, path: Path, value: Any) -> Any:
    """`doc` with `value` at `path` (`doc` itself is changed; `()` replaces the whole)."""
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return doc


def get(doc: Any, path: Path) -> Any:
    for part in path:
        doc = doc[part]
    return doc

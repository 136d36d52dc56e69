"""config.json_input.read_json: the one reader of JSON from outside refuses what Python
or PostgreSQL cannot handle, naming the JSON path, and never raises anything else."""

import json
import time

import pytest

from config.json_input import (
    MAX_DEPTH,
    MAX_INTEGER_DIGITS,
    JSONInputError,
    nesting_depth,
    read_json,
)


def refusal(data) -> list[tuple[str, str]]:
    with pytest.raises(JSONInputError) as caught:
        read_json(data)
    return [(p.path, p.code) for p in caught.value.problems]


def test_it_reads_json_as_json_does():
    text = '{"a": [1, 2.5, -3, true, null, "x\\u00e9\\ud83d\\ude00"], "b": {"c": {}}}'

    assert read_json(text) == json.loads(text)
    assert read_json(b"\xef\xbb\xbf" + text.encode()) == json.loads(text)


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_it_refuses_deep_nesting_before_parsing(depth):
    with pytest.raises(JSONInputError) as caught:
        read_json("[" * depth + "]" * depth)

    assert caught.value.path == "$"
    assert caught.value.code == "too_deep"
    assert f"{depth:,} levels" in caught.value.message
    assert f"limit is {MAX_DEPTH}" in caught.value.message


def test_it_refuses_deep_nesting_of_objects_left_open():
    assert refusal('{"a":' * 100_000) == [("$", "too_deep")]


def test_it_takes_the_deepest_nesting_allowed():
    text = '{"a":' * (MAX_DEPTH - 1) + "[]" + "}" * (MAX_DEPTH - 1)

    assert nesting_depth(text) == MAX_DEPTH
    read_json(text)
    assert refusal("[" + text + "]") == [("$", "too_deep")]


@pytest.mark.parametrize("ending", ["", "\\", '"'], ids=["open", "backslash", "closed"])
def test_the_depth_scan_is_linear_on_strings_full_of_escaped_quotes(ending):
    # Stripping strings with a pattern that can fail retried it from every quote:
    # 400 KB of escaped quotes took minutes.
    text = '"' + '\\"' * 200_000 + ending

    started = time.perf_counter()
    with pytest.raises(JSONInputError):
        read_json("[" + text)
    assert time.perf_counter() - started < 2
    assert nesting_depth(text) == 0


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = json.dumps({"a": "[[[[{{{{" * 1000, "b": 'say \\"[[[" and "}}}}"' * 100})

    assert nesting_depth(text) == 1
    assert read_json(text)["a"].startswith("[[[[")


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"a": 1e999}', "a"),
        ('{"a": [1, -1e400]}', "a[1]"),
        ('{"issue": {"number": 1E+999}}', "issue.number"),
        ('{"a": NaN}', "a"),
        ('{"a": {"b": Infinity}}', "a.b"),
        ("[-Infinity]", "[0]"),
    ],
)
def test_it_refuses_numbers_that_are_not_finite(text, path):
    assert refusal(text) == [(path, "invalid_number")]


def test_it_refuses_an_integer_of_thousands_of_digits():
    with pytest.raises(JSONInputError) as caught:
        read_json('{"items": [{"id": ' + "9" * 5000 + "}]}")

    assert caught.value.path == "items[0].id"
    assert f"limit is {MAX_INTEGER_DIGITS} digits" in caught.value.message


def test_it_takes_the_longest_integer_allowed():
    assert read_json("-" + "9" * MAX_INTEGER_DIGITS) == -int("9" * MAX_INTEGER_DIGITS)


def test_small_and_long_floats_are_numbers():
    assert read_json("[1e-999, 1.5e308, 0." + "1" * 5000 + "]")[:2] == [0.0, 1.5e308]


def test_it_refuses_duplicate_keys_naming_each():
    text = '{"incident": {"id": "A", "title": "x", "id": "B"}, "items": [{"k": 1, "k": 2}]}'

    assert refusal(text) == [("incident.id", "duplicate_key"), ("items[0].k", "duplicate_key")]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"a": "x\\u0000y"}', "a"),
        ('{"a": ["ok", "\\ud800"]}', "a[1]"),
        ('{"a": "\\udc00 low half alone"}', "a"),
        ('{"k\\u0000": 1}', "k\\u0000"),
        ('{"\\ud800": "key"}', "\\ud800"),
    ],
)
def test_it_refuses_nul_and_unpaired_surrogates(text, path):
    assert refusal(text) == [(path, "invalid_characters")]


def test_an_escaped_backslash_before_u0000_is_text():
    assert read_json('{"a": "\\\\u0000"}') == {"a": "\\u0000"}


def test_it_refuses_invalid_utf8():
    assert refusal(b'{"a": "\xff"}') == [("$", "invalid_utf8")]


@pytest.mark.parametrize("text", ['{"a": 1,', "{'a': 1}", "", "[1] [2]"])
def test_it_refuses_invalid_json(text):
    assert refusal(text) == [("$", "parse_error")]


def test_it_names_at_most_twenty_problems():
    with pytest.raises(JSONInputError) as caught:
        read_json("[" + ", ".join(["NaN"] * 10_000) + "]")

    assert len(caught.value.problems) == 20
    assert isinstance(caught.value, ValueError)

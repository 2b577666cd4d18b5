import pytest

from generation.jsonchecks import errors_at, json_problem


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"context": {"Order\x00": "x"}}, ("context", "Order\\0")),
        ({"attributes": {"features": ["ok", "bad\x00"]}}, ("attributes", "features", 1)),
        ({"a": "lone \ud800 surrogate"}, ("a",)),
        (["x", {"k": "\x00"}], (1, "k")),
    ],
)
def test_unstorable_characters_are_found_with_their_path(value, path):
    found, message = json_problem(value)
    assert found == path
    assert "not allowed" in message


def test_clean_documents_pass_and_surrogate_pairs_are_fine():
    assert json_problem({"a": ["😀 emoji", {"b": 1.5, "c": None}]}) is None


def test_depth_and_keys_are_limited_without_recursion():
    deep = current = {}
    for _ in range(20_000):  # far past the interpreter's recursion limit
        current["a"] = current = {}
    path, message = json_problem(deep, max_depth=32)
    assert len(path) == 32 and "GENAI_JSON_MAX_DEPTH" in message
    assert json_problem({"a": [[1]]}, max_depth=3) is None
    assert json_problem({"a": [[[1]]]}, max_depth=3)[1].startswith("Nested deeper than 3")
    assert "GENAI_JSON_MAX_KEYS" in json_problem({str(i): i for i in range(11)}, max_keys=10)[1]


def test_errors_nest_like_drf():
    assert errors_at(("a", 0, "b"), "m") == {"a": {0: {"b": ["m"]}}}

"""The CQL2 1.0 standard's own examples parse, and every text/JSON pair parses alike.

The examples are vendored verbatim in ``examples/`` (see ``examples/NOTICE``). Some use
functions that no server defines (``avg(windSpeed)``, ``Buffer(...)``): functions are part
of the grammar, so they must parse all the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).parent / "examples"
TEXT = sorted(p.stem for p in (EXAMPLES / "text").glob("*.txt"))
JSON = sorted(p.stem for p in (EXAMPLES / "json").glob("*.json"))
PAIRS = sorted(set(TEXT) & set(JSON))


def _text(name: str) -> str:
    return (EXAMPLES / "text" / f"{name}.txt").read_text(encoding="utf-8")


def _json(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / "json" / f"{name}.json").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def cql2() -> Any:
    """``dafab_static.cql2``; the module is skipped only while that module does not exist."""
    try:
        import dafab_static.cql2 as module
    except ModuleNotFoundError as e:
        if e.name != "dafab_static.cql2":
            raise
        pytest.skip("dafab_static.cql2 is not written yet")
    return module


def test_the_vendored_examples_are_all_there() -> None:
    # cql2-1.0.0 ships 120 text and 109 JSON examples; the 11 "-alt01" texts have no JSON.
    assert (len(TEXT), len(JSON), len(PAIRS)) == (120, 109, 109)
    assert sorted(set(TEXT) - set(JSON)) == sorted(n for n in TEXT if n.endswith("-alt01"))


@pytest.mark.parametrize("name", TEXT)
def test_text_parses(cql2: Any, name: str) -> None:
    text = _text(name)
    node = cql2.parse_text(text)
    assert node == cql2.parse_text(text)
    assert cql2.parse(text) == node
    assert cql2.parse(text, lang="cql2-text") == node


@pytest.mark.parametrize("name", JSON)
def test_json_parses(cql2: Any, name: str) -> None:
    document = _json(name)
    node = cql2.parse_json(document)
    serialized = json.dumps(document)
    assert cql2.parse_json(serialized) == node
    assert cql2.parse(document) == node
    assert cql2.parse(serialized, lang="cql2-json") == node


@pytest.mark.parametrize("name", PAIRS)
def test_text_and_json_parse_to_the_same_expression(cql2: Any, name: str) -> None:
    assert cql2.parse_text(_text(name)) == cql2.parse_json(_json(name))


@pytest.mark.parametrize(
    ("name", "other"),
    [
        # Not every pair may compare equal by accident (a parser returning None, say).
        ("example01", "example02"),
        ("clause6_02a", "clause6_02b"),
        ("clause7_12", "clause7_13"),
    ],
)
def test_different_examples_parse_to_different_expressions(
    cql2: Any, name: str, other: str
) -> None:
    assert cql2.parse_text(_text(name)) != cql2.parse_text(_text(other))
    assert cql2.parse_json(_json(name)) != cql2.parse_json(_json(other))

"""CQL2 (OGC 21-065r2): parse both encodings to one AST, evaluate it on Arrow.

``parse`` accepts text or JSON; ``to_arrow`` evaluates the AST over record batches;
``spatial`` and ``temporal`` hold the exact, vectorised predicates.
"""

from __future__ import annotations

from typing import Any

from dafab_static.cql2._json import parse_json
from dafab_static.cql2._text import parse_text
from dafab_static.errors import QueryError

__all__ = ["CONFORMANCE", "parse", "parse_json", "parse_text"]

# The CQL2 conformance classes this implementation passes (tests/cql2/ proves each one).
CONFORMANCE: tuple[str, ...] = tuple(
    f"http://www.opengis.net/spec/cql2/1.0/conf/{name}"
    for name in (
        "cql2-text",
        "cql2-json",
        "basic-cql2",
        "advanced-comparison-operators",
        "case-insensitive-comparison",
        "accent-insensitive-comparison",
        "basic-spatial-functions",
        "basic-spatial-functions-plus",
        "spatial-functions",
        "temporal-functions",
        "array-functions",
        "property-property",
        "arithmetic",
    )
)


def parse(filter: str | dict[str, Any] | bool, lang: str | None = None) -> Any:
    """Parse a CQL2 filter in either encoding.

    ``lang`` is ``"cql2-text"`` or ``"cql2-json"``; without it a dict or a boolean (the
    JSON ``true`` is a whole CQL2 filter), or a string that starts with ``{``, is JSON and
    anything else is text. Raises QueryError with the position and what was expected.

    >>> parse("eo:cloud_cover < 10") == parse({"op": "<", "args": [{"property": "eo:cloud_cover"}, 10]})
    True
    """  # noqa: E501
    if lang not in (None, "cql2-text", "cql2-json"):
        raise QueryError(f"filter-lang must be cql2-text or cql2-json, not {lang!r}")
    if lang == "cql2-json" or isinstance(filter, (dict, bool)):
        return parse_json(filter)
    if not isinstance(filter, str):
        raise QueryError(
            f"filter: expected CQL2 text (a string) or CQL2 JSON (an object), "
            f"not {type(filter).__name__}"
        )
    if lang is None and filter.lstrip().startswith("{"):
        return parse_json(filter)
    return parse_text(filter)

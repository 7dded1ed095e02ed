"""Check a search's filter and sort keys against the index files' columns, before the scan.

An unknown property (one that no file has) or an operand of the wrong type is a
:class:`~dafab_static.errors.QueryError` that names it, never a silently empty result.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pygeofilter import ast

from dafab_static.cql2 import nodes
from dafab_static.errors import QueryError

if TYPE_CHECKING:
    from dafab_static.search.params import Request
    from dafab_static.search.scan import OpenFile


def attributes(node: Any) -> Iterator[str]:
    """Every property name a CQL2 node refers to."""
    if isinstance(node, ast.Attribute):
        yield node.name
    elif isinstance(node, list):
        for item in node:
            yield from attributes(item)
    elif isinstance(node, nodes.Interval):
        yield from attributes([node.start, node.end])
    elif isinstance(node, ast.Node):
        children = node.get_sub_nodes()
        if isinstance(node, ast.Like):
            children = [node.lhs, node.pattern]
        yield from attributes(list(children))


def check(request: Request, files: list[OpenFile], *, where: str) -> None:
    """Check the filter and sort keys against the files' columns before scanning.

    An unknown property (one no file has) or an operand of the wrong type is a QueryError
    naming it, never a silently empty result. ``lenient`` searches skip this and follow
    CQL2 null semantics instead.
    """
    types: dict[str, pa.DataType] = {}
    for file in files:
        for field in file.schema:
            types.setdefault(field.name, field.type)
        if file.geometry:
            types.setdefault("geometry", file.schema.field(file.geometry).type)

    def kind(name: str) -> pa.DataType | None:
        bare = name.removeprefix("properties.")
        for file in files:
            found = file.resolve(bare)
            if found is not None:
                column, path = found
                value = file.schema.field(column).type
                for part in path:
                    if not pa.types.is_struct(value) or value.get_field_index(part) < 0:
                        return pa.null()
                    value = value.field(part).type
                return value
        close = difflib.get_close_matches(bare, sorted(types), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise QueryError(f"unknown property {name!r} in {where}{hint}")

    for conjunct in request.conjuncts:
        for name in attributes(conjunct):
            kind(name)
        _check_types(conjunct, kind)
    for key in request.sortby:
        try:
            kind(key.field)
        except QueryError as error:
            raise QueryError(f"sortby: {error}") from None


_GROUPS = {
    "string": (pa.types.is_string, pa.types.is_large_string),
    "number": (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal),
    "boolean": (pa.types.is_boolean,),
    "time": (pa.types.is_timestamp, pa.types.is_date),
    "array": (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list),
    "binary": (pa.types.is_binary, pa.types.is_large_binary),
}


def _group(kind: pa.DataType) -> str:
    for name, tests in _GROUPS.items():
        if any(test(kind) for test in tests):
            return name
    return "null" if pa.types.is_null(kind) else "other"


def _literal_group(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (dt.date, nodes.Interval)):
        return "time"
    return None


def _check_types(node: Any, kind: Any) -> None:
    """Type errors a schema can prove: comparing a text property with a number, LIKE on a
    number, a spatial test on a non-geometry, an array function on a scalar."""

    def prop(value: Any) -> str | None:
        return _group(kind(value.name)) if isinstance(value, ast.Attribute) else None

    def mismatch(a: Any, b: Any) -> None:
        for p, lit in ((a, b), (b, a)):
            group, other = prop(p), _literal_group(lit)
            if group in (None, "null", "other") or other is None:
                continue
            ok = (
                group == other
                or (group == "time" and other == "string")
                or (group == "string" and other == "time")
            )
            if not ok:
                raise QueryError(
                    f"type mismatch: property {p.name!r} is {kind(p.name)}, "
                    f"but it is compared with {lit!r}"
                )

    if isinstance(node, (ast.And, ast.Or)):
        _check_types(node.lhs, kind)
        _check_types(node.rhs, kind)
    elif isinstance(node, ast.Not):
        _check_types(node.sub_node, kind)
    elif isinstance(node, ast.Comparison):
        mismatch(node.lhs, node.rhs)
    elif isinstance(node, ast.Between):
        mismatch(node.lhs, node.low)
        mismatch(node.lhs, node.high)
    elif isinstance(node, ast.In):
        for item in node.sub_nodes:
            mismatch(node.lhs, item)
    elif isinstance(node, ast.Like):
        if prop(node.lhs) not in (None, "string", "null"):
            raise QueryError(
                f"LIKE needs text, but property {node.lhs.name!r} is {kind(node.lhs.name)}"
            )
    elif isinstance(node, ast.SpatialComparisonPredicate):
        for side in (node.lhs, node.rhs):
            # WKB, or GeoArrow's native struct ("other") or list encodings (geometry.py
            # checks those).
            if prop(side) not in (None, "binary", "null", "other", "array"):
                raise QueryError(f"{side.name!r} is {kind(side.name)}, not a geometry")
    elif isinstance(node, ast.ArrayPredicate):
        for side in (node.lhs, node.rhs):
            if prop(side) not in (None, "array", "null"):
                raise QueryError(f"{side.name!r} is {kind(side.name)}, not an array")
    elif isinstance(node, ast.TemporalPredicate):
        for side in (node.lhs, node.rhs):
            if prop(side) not in (None, "time", "string", "null"):
                raise QueryError(f"{side.name!r} is {kind(side.name)}, not a date or timestamp")

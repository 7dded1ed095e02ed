"""CQL2 array predicates (A_EQUALS, A_CONTAINS, A_CONTAINEDBY, A_OVERLAPS) over Arrow list
columns and literal arrays. CQL2 compares arrays as sets (clause 7.13), as cql2-rs does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pygeofilter import ast

_KINDS = {
    ast.ArrayEquals: "equals",
    ast.ArrayContains: "contains",
    ast.ArrayContainedBy: "containedby",
    ast.ArrayOverlaps: "overlaps",
}
# A_CONTAINS(literal, column) is A_CONTAINEDBY(column, literal), and so on.
_SWAPPED = {
    "equals": "equals",
    "contains": "containedby",
    "containedby": "contains",
    "overlaps": "overlaps",
}


def relate(predicate: type[ast.ArrayPredicate], lhs: Any, rhs: Any, n: int) -> pa.Array:
    """The A_* ``predicate`` between two operands, for each of ``n`` rows.

    An operand is a literal Python list, a :class:`PerRow` (a literal whose elements name
    properties), or an Arrow list array; a null list gives null.

    Example:
        >>> relate(ast.ArrayContains, pa.array([[1, 2], [3], None]), [1], 3).to_pylist()
        [True, False, None]
    """
    kind = _KINDS[predicate]
    if isinstance(lhs, list) and isinstance(rhs, list):
        return pa.array(np.full(n, _set_relation(kind, set(lhs), set(rhs))))
    if isinstance(lhs, list):
        lhs, rhs, kind = rhs, lhs, _SWAPPED[kind]
    if isinstance(rhs, list) and isinstance(lhs, pa.Array):
        return _list_against_set(kind, lhs, rhs, n)
    rows = [
        None if a is None or b is None else _set_relation(kind, set(a), set(b))
        for a, b in zip(_rows(lhs, n), _rows(rhs, n), strict=True)
    ]
    return pa.array(rows, pa.bool_())


@dataclass(frozen=True)
class PerRow:
    """An array literal whose elements name properties: its Python list for each row."""

    rows: list[list[Any]]


def _rows(operand: Any, n: int) -> list[Any]:
    """An A_* operand (a literal list, a ``PerRow`` or an Arrow list array) as one Python
    list (or None) per row."""
    if isinstance(operand, PerRow):
        return operand.rows
    if isinstance(operand, list):
        return [operand] * n
    return operand.to_pylist()  # type: ignore[no-any-return]


def _set_relation(kind: str, a: set[Any], b: set[Any]) -> bool:
    # CQL2 A_* compare arrays as sets (clause 7.13), as cql2-rs does.
    if kind == "equals":
        return a == b
    if kind == "contains":
        return a >= b
    if kind == "containedby":
        return a <= b
    return not a.isdisjoint(b)


def _list_against_set(kind: str, lists: pa.Array, literal: list[Any], n: int) -> pa.Array:
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy()
    value_set = pa.array([v for v in literal if _fits(v, flat.type)], type=flat.type)
    member = pc.fill_null(pc.is_in(flat, value_set=value_set), False).to_numpy(zero_copy_only=False)
    overlaps = np.bincount(parents[member], minlength=n) > 0
    contained = np.bincount(parents[~member], minlength=n) == 0
    contains = np.ones(n, dtype=bool)
    flat_values = np.asarray(flat.to_pylist(), dtype=object)
    for item in set(literal):
        contains &= np.bincount(parents[flat_values == item], minlength=n) > 0
    result = {
        "overlaps": overlaps,
        "containedby": contained,
        "contains": contains,
        "equals": contains & contained,
    }[kind]
    return pa.array(result, mask=pc.is_null(lists).to_numpy(zero_copy_only=False))


def _fits(value: Any, kind: pa.DataType) -> bool:
    """Whether a literal can be an element of an array of ``kind``: ``1`` of doubles, not
    ``'msi'`` of numbers nor ``1`` of strings, which are never equal to one of its elements."""
    try:
        pa.scalar(value, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return False
    return True

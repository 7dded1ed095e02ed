"""Evaluate a CQL2 AST over Arrow columns, vectorised, with SQL three-valued logic.

Comparisons with a null give null, AND/OR are Kleene (``pc.and_kleene``), and a row is
selected only where the filter is true, as CQL2 (clause 7.7 and Annex A) and SQL agree.
Columns are fetched lazily through ``Columns.column``, so a batch whose first conjunct
rejects every row never decodes the columns that the rest would need.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pygeofilter import ast

from dafab_static.arrays import one_array
from dafab_static.cql2 import array_predicates, folding, nodes, spatial, temporal
from dafab_static.errors import QueryError

_COMPARE: dict[type[Any], Callable[[Any, Any], Any]] = {
    ast.Equal: pc.equal,
    ast.NotEqual: pc.not_equal,
    ast.LessThan: pc.less,
    ast.LessEqual: pc.less_equal,
    ast.GreaterThan: pc.greater,
    ast.GreaterEqual: pc.greater_equal,
}


class Columns(spatial.GeometryColumns, Protocol):
    """A batch of rows, as the evaluator sees it."""

    def column(self, name: str) -> pa.Array:
        """The values of property ``name``; raises QueryError when there is no such property."""
        ...


def mask(node: Any, columns: Columns) -> np.ndarray:
    """Rows where ``node`` is true (null, CQL2's unknown, does not select)."""
    result = evaluate(node, columns)
    return np.asarray(pc.fill_null(result, False).to_numpy(zero_copy_only=False), dtype=bool)


def evaluate(node: Any, columns: Columns) -> pa.Array:
    """The boolean column of ``node`` over ``columns`` (nulls where the answer is unknown)."""
    return _Evaluator(columns).boolean(node)


class _Evaluator:
    def __init__(self, columns: Columns) -> None:
        self.columns = columns
        self.n = columns.num_rows

    def _broadcast(self, value: Any) -> pa.Array:
        if isinstance(value, pa.Scalar):
            if not value.is_valid:
                return pa.nulls(self.n, pa.bool_())
            return pa.array(np.full(self.n, bool(value.as_py())))
        return one_array(value)

    # -- boolean expressions ----------------------------------------------------------
    def boolean(self, node: Any) -> pa.Array:
        if isinstance(node, ast.And):
            left = self.boolean(node.lhs)
            if not pc.any(pc.fill_null(left, True)).as_py():
                return left  # nothing can be true: skip (and skip loading) the rest
            return pc.and_kleene(left, self.boolean(node.rhs))
        if isinstance(node, ast.Or):
            return pc.or_kleene(self.boolean(node.lhs), self.boolean(node.rhs))
        if isinstance(node, ast.Not):
            return pc.invert(self.boolean(node.sub_node))
        if isinstance(node, bool):
            return pa.array(np.full(self.n, node))
        if isinstance(node, ast.Comparison):
            return self._broadcast(self._compare(node))
        if isinstance(node, ast.Like):
            return self._broadcast(self._like(node))
        if isinstance(node, ast.Between):
            low = self._compare(ast.GreaterEqual(node.lhs, node.low))
            high = self._compare(ast.LessEqual(node.lhs, node.high))
            return self._broadcast(pc.and_kleene(low, high))
        if isinstance(node, ast.In):
            return self._broadcast(self._in(node))
        if isinstance(node, ast.IsNull):
            return self._broadcast(pc.is_null(self.value(node.lhs)))
        if isinstance(node, ast.SpatialComparisonPredicate):
            return spatial.evaluate(node, self.columns)
        if isinstance(node, ast.TemporalPredicate):
            return self._broadcast(temporal.evaluate(node, self._span))
        if isinstance(node, ast.ArrayPredicate):
            return self._array(node)
        if isinstance(node, ast.Attribute):
            column = self.columns.column(node.name)
            if _absent(column):
                return pa.nulls(self.n, pa.bool_())
            if not pa.types.is_boolean(column.type):
                raise QueryError(f"property {node.name!r} is {column.type}, not a boolean")
            return column
        if isinstance(node, nodes.Elevation):
            return self._elevation(node)
        if isinstance(node, ast.Function) and node.name not in nodes.STRING_FUNCTIONS:
            raise QueryError(_unknown_function(node))
        raise QueryError(f"{nodes.show(node)} is not a condition")

    def _elevation(self, node: nodes.Elevation) -> pa.Array:
        """Rows whose bbox heights overlap ``[low, high]``; 2D boxes are at height 0."""
        flat = bool(node.low <= 0 <= node.high)
        bbox = self.columns.column("bbox")
        if not pa.types.is_struct(bbox.type) or bbox.type.get_field_index("zmin") < 0:
            return pa.array(np.full(self.n, flat))
        low, high = pc.struct_field(bbox, "zmin"), pc.struct_field(bbox, "zmax")
        overlap = pc.and_kleene(pc.less_equal(low, node.high), pc.greater_equal(high, node.low))
        return one_array(pc.fill_null(overlap, flat))

    # -- scalar expressions -----------------------------------------------------------
    def value(self, node: Any) -> Any:
        if isinstance(node, ast.Attribute):
            return self.columns.column(node.name)
        if isinstance(node, bool | int | float | str):
            return pa.scalar(_number(node))
        if isinstance(node, dt.date):
            return temporal.instant(node)
        if isinstance(node, ast.Arithmetic):
            return self._arithmetic(node)
        if isinstance(node, ast.Function) and node.name in nodes.STRING_FUNCTIONS:
            text = self.value(node.arguments[0])
            if _absent(text):
                return text
            if not _is_string(text):
                arg = nodes.show(node.arguments[0])
                raise QueryError(f"{node.name.upper()} takes a string, got {arg}")
            return folding.casei(text) if node.name == "casei" else folding.accenti(text)
        if isinstance(node, ast.Function):
            raise QueryError(_unknown_function(node))
        if isinstance(node, ast.Node):
            return self._broadcast(self.boolean(node))
        raise QueryError(f"{nodes.show(node)} cannot be used as a value here")

    def _compare(self, node: ast.Comparison) -> Any:
        lhs, rhs = self.value(node.lhs), self.value(node.rhs)
        if _absent(lhs) or _absent(rhs):
            return pa.nulls(self.n, pa.bool_())
        lhs, rhs = _align_numbers(*_align_times(lhs, rhs, node))
        try:
            return _COMPARE[type(node)](lhs, rhs)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            raise QueryError(
                f"cannot compare {nodes.show(node.lhs)} ({lhs.type}) with "
                f"{nodes.show(node.rhs)} ({rhs.type})"
            ) from None

    def _like(self, node: ast.Like) -> Any:
        text, pattern = self.value(node.lhs), self.value(node.pattern)
        if _absent(text):
            return pa.nulls(self.n, pa.bool_())
        if not isinstance(pattern, pa.Scalar) or not _is_string(pattern):
            raise QueryError(f"the LIKE pattern must be a string literal, got {node.pattern!r}")
        if not _is_string(text):
            raise QueryError(f"LIKE needs a string, but {nodes.show(node.lhs)} is {text.type}")
        if not pattern.is_valid:
            return pa.nulls(self.n, pa.bool_())
        like = pattern.as_py()
        if "\\" not in like:
            return pc.match_like(text, like)
        # Arrow's LIKE misreads an escaped backslash followed by more text: 'a\\x%' matched
        # nothing, not even 'a\x' (pyarrow 21; its prefix shortcut keeps the escape). A
        # pattern with escapes becomes the regular expression it means instead.
        return pc.match_substring_regex(text, _like_regex(like))

    def _in(self, node: ast.In) -> Any:
        lhs = self.value(node.lhs)
        if _absent(lhs):
            return pa.nulls(self.n, pa.bool_())
        items = [self.value(item) for item in node.sub_nodes]
        if not all(isinstance(i, pa.Scalar) for i in items):
            # A property in the list: expand to ORed equalities.
            result: Any = pa.scalar(False)
            for item in node.sub_nodes:
                result = pc.or_kleene(result, self._compare(ast.Equal(node.lhs, item)))
            return result
        if lhs.type == temporal.TIMESTAMP or any(i.type == temporal.TIMESTAMP for i in items):
            lhs = _as_time(lhs, node.lhs)
            items = [_as_time(i, node.lhs) for i in items]
        elif (
            _is_number(lhs.type)
            and all(_is_number(i.type) for i in items)
            and not all(pa.types.is_integer(t) for t in (lhs.type, *(i.type for i in items)))
        ):
            # Numbers as in =: doubles unless all are integers (1.5 or 1e30 against an
            # integer column, 2^53 + 1 against a double one), see _align_numbers.
            lhs = pc.cast(lhs, pa.float64(), safe=False)
            items = [pc.cast(i, pa.float64(), safe=False) for i in items]
        try:
            value_set = pa.array([i.as_py() for i in items], type=lhs.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            raise QueryError(
                f"IN list {[i.as_py() for i in items]!r} does not match the type of "
                f"{nodes.show(node.lhs)} ({lhs.type})"
            ) from None
        found = pc.is_in(lhs, value_set=value_set)
        # SQL: a null operand gives unknown, not false (so NOT IN stays unknown too).
        return pc.if_else(pc.is_null(lhs), pa.scalar(None, pa.bool_()), found)

    def _arithmetic(self, node: ast.Arithmetic) -> Any:
        lhs, rhs = self.value(node.lhs), self.value(node.rhs)
        if _absent(lhs) or _absent(rhs):
            return pa.nulls(self.n, pa.float64())
        for side, raw in ((lhs, node.lhs), (rhs, node.rhs)):
            if not (pa.types.is_integer(side.type) or pa.types.is_floating(side.type)):
                raise QueryError(f"arithmetic needs numbers, but {nodes.show(raw)} is {side.type}")
        op = node.op if isinstance(node.op, str) else node.op.value
        if op in _EXACT:
            try:
                return _EXACT[op](lhs, rhs)
            except pa.ArrowInvalid:  # past 64 bits: CQL2 numbers have no such bound
                return _EXACT[op](_real(lhs), _real(rhs))
        a, b = _real(lhs), _real(rhs)
        if op == "/":
            return pc.divide(a, b)  # real division, also for integers (CQL2 clause 7.10)
        if op == "^":
            return pc.power(a, b)
        # div and % by zero have no value: null, so the comparison is unknown (it was
        # INT64_MIN for div, and an error from Arrow for %).
        b = pc.if_else(pc.equal(b, 0.0), pa.scalar(None, pa.float64()), b)
        quotient = pc.trunc(pc.divide(a, b))
        if op == "div":
            return _integral(quotient)
        remainder = pc.subtract(a, pc.multiply(b, quotient))  # %: the sign of the dividend
        both_int = pa.types.is_integer(lhs.type) and pa.types.is_integer(rhs.type)
        return _integral(remainder) if both_int else remainder

    # -- temporal and array operands --------------------------------------------------
    def _span(self, operand: Any) -> temporal.Span:
        if isinstance(operand, nodes.Interval):
            start = None if operand.start is None else self._bounds(operand.start)[0]
            end = None if operand.end is None else self._bounds(operand.end)[1]
            return temporal.open_start(start), temporal.open_end(end)
        return self._bounds(operand)

    def _bounds(self, operand: Any) -> temporal.Span:
        """An instant's first and last microsecond. A date, literal or property, is a day
        (OGC 21-065r2 clause 6, "an instant with a granularity of a day"): read as its
        midnight, T_INTERSECTS(datetime, DATE('2024-07-14')) missed every item of that
        day, unlike the datetime parameter."""
        if isinstance(operand, dt.date):
            return temporal.instant(operand), temporal.last_instant(operand)
        value = self.value(operand)
        start = _as_time(value, operand)
        if isinstance(value, pa.Array) and pa.types.is_date(value.type):
            return start, temporal.days_end(start)
        if isinstance(value, pa.Array) and _is_string(value):
            # STAC JSON keeps dates as text ("2022-04-16"): such a row is a day too, or
            # T_EQUALS(day, DATE('2022-04-16')) never held (OGC CQL2 ATS, temporal-functions).
            days = pc.fill_null(pc.match_substring_regex(value, _DATE_ONLY), False)
            return start, pc.if_else(days, temporal.days_end(start), start)
        return start, start

    def _array(self, node: ast.ArrayPredicate) -> pa.Array:
        lhs, rhs = self._array_operand(node.lhs), self._array_operand(node.rhs)
        if (lhs is None) or (rhs is None):
            return pa.nulls(self.n, pa.bool_())
        return array_predicates.relate(type(node), lhs, rhs, self.n)

    def _array_operand(self, operand: Any) -> Any:
        if isinstance(operand, list):
            values = [self.value(v) for v in operand]
            if all(isinstance(v, pa.Scalar) for v in values):
                return [v.as_py() for v in values]
            # Elements that are properties ("A_CONTAINS(bands, (red, nir))"): CQL2 allows
            # them, and they make one array per row.
            columns = [
                v.to_pylist() if isinstance(v, pa.Array) else [v.as_py()] * self.n for v in values
            ]
            return array_predicates.PerRow([list(row) for row in zip(*columns, strict=True)])
        value = self.value(operand)
        if _absent(value):
            return None
        if isinstance(value, pa.Scalar) or not (
            pa.types.is_list(value.type) or pa.types.is_large_list(value.type)
        ):
            raise QueryError(f"{nodes.show(operand)} is not an array")
        return value


def _like_regex(pattern: str) -> str:
    """A CQL2 LIKE pattern as an anchored RE2 expression: ``%`` any text, ``_`` one
    character, a backslash makes the character after it literal."""
    out, chars = ["(?s)^"], iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return "".join(out) + "$"


#: A text value that is a calendar date alone (RFC 3339 full-date).
_DATE_ONLY = r"^\d{4}-\d{2}-\d{2}$"


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _absent(value: Any) -> bool:
    """A property with no values in this file (all null, so Parquet stored no type): every
    operation on it is unknown (null), as CQL2 treats a missing property."""
    return isinstance(value, pa.Array) and pa.types.is_null(value.type)


def _is_string(value: Any) -> bool:
    return bool(pa.types.is_string(value.type) or pa.types.is_large_string(value.type))


def _as_time(value: Any, raw: Any) -> Any:
    if isinstance(value, pa.Scalar):
        if value.type == temporal.TIMESTAMP:
            return value
        if _is_string(value) and value.is_valid:
            try:
                return temporal.instant(nodes.instant(value.as_py(), where="CQL2") or dt.date.min)
            except QueryError:
                pass
        raise QueryError(f"{nodes.show(raw)} is not a date or timestamp")
    name = raw.name if isinstance(raw, ast.Attribute) else nodes.show(raw)
    return temporal.as_timestamps(value, name=name)


def _align_times(lhs: Any, rhs: Any, node: Any) -> tuple[Any, Any]:
    """Compare times as times: a DATE/TIMESTAMP on one side converts the other side."""
    either = lhs.type == temporal.TIMESTAMP or rhs.type == temporal.TIMESTAMP
    if either and _is_time_like(lhs) and _is_time_like(rhs):
        return _as_time(lhs, node.lhs), _as_time(rhs, node.rhs)
    return lhs, rhs


def _align_numbers(lhs: Any, rhs: Any) -> tuple[Any, Any]:
    """An integer compared with a double becomes the nearest double: CQL2 has one number
    type, and Arrow's safe cast refused integers beyond 2^53 ("eo:cloud_cover <
    9007199254740993" was an error). Two integers stay exact."""
    if _is_number(lhs.type) and _is_number(rhs.type):
        if pa.types.is_floating(lhs.type) and pa.types.is_integer(rhs.type):
            return lhs, pc.cast(rhs, pa.float64(), safe=False)
        if pa.types.is_integer(lhs.type) and pa.types.is_floating(rhs.type):
            return pc.cast(lhs, pa.float64(), safe=False), rhs
    return lhs, rhs


def _is_time_like(value: Any) -> bool:
    kind = value.type
    return bool(
        pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
        or (isinstance(value, pa.Array) and _is_string(value))
        or pa.types.is_null(kind)
    )


def _unknown_function(node: ast.Function) -> str:
    return (
        f"unknown function {node.name!r}: the functions this catalog supports are CASEI and "
        "ACCENTI, plus the S_*, T_* and A_* predicates"
    )


def _number(value: Any) -> Any:
    """A literal as Arrow can hold it: CQL2 numbers have no size limit, int64 has, so an
    integer beyond it becomes the nearest double (``999…9`` compares as ``1e30``)."""
    if type(value) is int and not -(2**63) <= value < 2**63:
        return float(value)
    return value


#: Integer-exact arithmetic that raises on overflow, where plain ``pc.add`` wraps around.
_EXACT = {"+": pc.add_checked, "-": pc.subtract_checked, "*": pc.multiply_checked}


def _real(values: Any) -> Any:
    """Numbers as float64, rounding integers past 2**53 (a safe cast refused them)."""
    return pc.cast(values, pa.float64(), safe=False)


def _integral(values: Any) -> Any:
    """Whole-number floats as int64, or as they are where one lies past 64 bits (a plain
    cast gave INT64_MIN for them)."""
    try:
        return pc.cast(values, pa.int64())
    except pa.ArrowInvalid:
        return values

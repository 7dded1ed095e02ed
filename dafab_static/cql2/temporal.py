"""CQL2 temporal functions (T_*) as vectorised Allen-interval relations on Arrow timestamps.

Every operand becomes a (start, end) pair of timestamp[us, UTC] values: a timestamp is a
degenerate interval, a DATE the whole day, an open end ('..') the far past or future. The
relations are the CQL2 definitions (OGC 21-065r2, clause 7.12, table 6); the inverse
relations swap operands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pygeofilter import ast

from dafab_static.cql2 import nodes

TIMESTAMP = pa.timestamp("us", tz="UTC")
_FAR_PAST = pa.scalar(dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc), TIMESTAMP)
_FAR_FUTURE = pa.scalar(dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc), TIMESTAMP)

Value = Any  # a timestamp Array or Scalar
Span = tuple[Value, Value]

_and = pc.and_kleene
_eq, _lt, _gt, _le, _ge = pc.equal, pc.less, pc.greater, pc.less_equal, pc.greater_equal


def _rel(a: Span, b: Span, which: str) -> Any:
    (s1, e1), (s2, e2) = a, b
    if which == "before":
        return _lt(e1, s2)
    if which == "meets":
        return _eq(e1, s2)
    if which == "overlaps":
        return _and(_and(_lt(s1, s2), _lt(s2, e1)), _lt(e1, e2))
    if which == "starts":
        return _and(_eq(s1, s2), _lt(e1, e2))
    if which == "during":
        return _and(_gt(s1, s2), _lt(e1, e2))
    if which == "finishes":
        return _and(_gt(s1, s2), _eq(e1, e2))
    if which == "equals":
        return _and(_eq(s1, s2), _eq(e1, e2))
    if which == "intersects":
        return _and(_le(s1, e2), _ge(e1, s2))
    raise AssertionError(which)


# node type → (relation, swap operands, negate)
RELATIONS: dict[type[Any], tuple[str, bool, bool]] = {
    ast.TimeBefore: ("before", False, False),
    ast.TimeAfter: ("before", True, False),
    ast.TimeMeets: ("meets", False, False),
    ast.TimeMetBy: ("meets", True, False),
    ast.TimeOverlaps: ("overlaps", False, False),
    ast.TimeOverlappedBy: ("overlaps", True, False),
    ast.TimeBegins: ("starts", False, False),
    ast.TimeBegunBy: ("starts", True, False),
    ast.TimeDuring: ("during", False, False),
    ast.TimeContains: ("during", True, False),
    ast.TimeEnds: ("finishes", False, False),
    ast.TimeEndedBy: ("finishes", True, False),
    ast.TimeEquals: ("equals", False, False),
    nodes.TimeIntersects: ("intersects", False, False),
    ast.TimeDisjoint: ("intersects", False, True),
}


def evaluate(node: ast.TemporalPredicate, span: Callable[[Any], Span]) -> Any:
    """Evaluate a T_* node; ``span`` turns an operand into its (start, end) timestamps."""
    relation, swap, negate = RELATIONS[type(node)]
    a, b = span(node.lhs), span(node.rhs)
    result = _rel(b, a, relation) if swap else _rel(a, b, relation)
    return pc.invert(result) if negate else result


def instant(value: dt.date | dt.datetime) -> pa.Scalar:
    """A DATE or TIMESTAMP literal as a UTC timestamp scalar (a DATE is its midnight)."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    return pa.scalar(value, TIMESTAMP)


def day_end(value: dt.date) -> pa.Scalar:
    """The last microsecond of a DATE: CQL2 makes a date "an instant with a granularity of
    a day" (OGC 21-065r2, clause 6), so it spans the whole day in the T_* relations."""
    start = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    return pa.scalar(start + dt.timedelta(days=1, microseconds=-1), TIMESTAMP)


def days_end(midnights: pa.Array) -> pa.Array:
    """:func:`day_end` of each midnight of a date column."""
    return pc.add(midnights, pa.scalar(dt.timedelta(days=1, microseconds=-1), pa.duration("us")))


def last_instant(value: dt.date | dt.datetime) -> pa.Scalar:
    """The last microsecond a DATE or TIMESTAMP literal covers: a DATE's whole day, a
    TIMESTAMP itself."""
    return day_end(value) if is_day(value) else instant(value)


def is_day(value: object) -> bool:
    """Whether a literal is a DATE (a day), not a TIMESTAMP."""
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def open_start(value: Value | None) -> Value:
    """An interval start, with '..' as the far past."""
    return _FAR_PAST if value is None else value


def open_end(value: Value | None) -> Value:
    """An interval end, with '..' as the far future."""
    return _FAR_FUTURE if value is None else value


def as_timestamps(array: pa.Array, *, name: str) -> pa.Array:
    """A column as timestamp[us, UTC]: timestamps and dates convert, strings are parsed.

    Strings hold RFC 3339 timestamps or dates (STAC keeps dates such as
    ``published`` as strings); values that do not parse become null, CQL2's unknown.
    """
    kind = array.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            return pc.assume_timezone(array.cast(pa.timestamp("us")), "UTC")
        return array.cast(TIMESTAMP)
    if pa.types.is_date(kind):
        return array.cast(pa.timestamp("us")).cast(TIMESTAMP)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            return array.cast(TIMESTAMP)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        parsed = [_parse(v) for v in array.to_pylist()]
        return pa.array(parsed, TIMESTAMP)
    if pa.types.is_null(kind):
        return pa.nulls(len(array), TIMESTAMP)
    from dafab_static.errors import QueryError

    raise QueryError(f"property {name!r} is {kind}, not a date or timestamp")


def _parse(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed

"""The CQL2 AST: pygeofilter's nodes, plus the few the CQL2 standard needs and pygeofilter lacks.

Both encodings parse to these nodes (``_text.py``, ``_json.py``) and ``to_arrow.py`` evaluates
them, so a text filter and its JSON twin are the same expression by construction.

Conventions shared by both parsers, so that ``==`` compares meaning, not spelling:

- negations are ``Not(...)`` around the positive predicate (``x NOT LIKE p`` and
  ``NOT x LIKE p`` are one node; pygeofilter's ``not_`` flags stay False);
- ``AND``/``OR`` chains fold to the left;
- numbers keep their JSON/Python type (``4`` is int, ``4.0`` float; they compare equal);
- geometry literals are GeoJSON dicts with float coordinates; BBOX is a ``values.Envelope``;
- DATE is a ``datetime.date``, TIMESTAMP an aware ``datetime``, ``'..'`` an open end (None);
- CASEI/ACCENTI and custom functions are ``ast.Function`` with a lower-case standard name.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from pygeofilter import ast, values

from dafab_static.errors import QueryError

Node = ast.Node
Attribute = ast.Attribute
Function = ast.Function
Geometry = values.Geometry
Envelope = values.Envelope
Interval = values.Interval


def show(node: Any) -> str:
    """A node as a user wrote it, near enough for an error message: ``property 'x'``,
    ``CASEI(...)``, ``INTERVAL('2021-01-01', '..')``, never a Python repr."""
    if isinstance(node, ast.Attribute):
        return f"property {node.name!r}"
    if isinstance(node, ast.Function):
        return f"{node.name.upper()}(...)"
    if isinstance(node, Interval):
        return f"INTERVAL({', '.join(_show_end(end) for end in (node.start, node.end))})"
    if isinstance(node, Envelope):
        return f"BBOX({node.x1}, {node.y1}, {node.x2}, {node.y2})"
    if isinstance(node, Geometry):
        return f"a {node.geometry.get('type', 'geometry')} literal"
    if isinstance(node, (dt.date, str)):
        return _show_end(node)
    if isinstance(node, ast.Node):
        return f"a {type(node).__name__} expression"
    return repr(node)


def _show_end(value: Any) -> str:
    if value is None:
        return "'..'"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP('{value.isoformat().replace('+00:00', 'Z')}')"
    if isinstance(value, dt.date):
        return f"DATE('{value.isoformat()}')"
    return show(value) if not isinstance(value, str) else repr(value)


@dataclass
class TimeIntersects(ast.TemporalPredicate):  # type: ignore[misc]
    """T_INTERSECTS: pygeofilter has T_DISJOINT but not its complement."""

    op: ClassVar[str] = "INTERSECTS"


@dataclass
class Mod(ast.Arithmetic):  # type: ignore[misc]
    """``%``: CQL2 arithmetic (clause 7.10) beyond pygeofilter's + - * /."""

    op: ClassVar[str] = "%"


@dataclass
class IntDiv(ast.Arithmetic):  # type: ignore[misc]
    """``div``: integer division, CQL2 clause 7.10."""

    op: ClassVar[str] = "div"


@dataclass
class Pow(ast.Arithmetic):  # type: ignore[misc]
    """``^``: exponentiation, CQL2 clause 7.10."""

    op: ClassVar[str] = "^"


@dataclass
class Elevation(ast.Node):  # type: ignore[misc]
    """The heights of a STAC API 6-number ``bbox``: items whose bbox spans some height in
    ``[low, high]``, 2D items being at elevation 0 (STAC API Item Search, "bbox"). Not CQL2,
    which has no 3D BBOX: only the ``bbox`` search parameter makes it."""

    low: float
    high: float


COMPARISONS: dict[str, type[ast.Comparison]] = {
    "=": ast.Equal,
    "<>": ast.NotEqual,
    "<": ast.LessThan,
    "<=": ast.LessEqual,
    ">": ast.GreaterThan,
    ">=": ast.GreaterEqual,
}
ARITHMETIC: dict[str, type[ast.Arithmetic]] = {
    "+": ast.Add,
    "-": ast.Sub,
    "*": ast.Mul,
    "/": ast.Div,
    "%": Mod,
    "div": IntDiv,
    "^": Pow,
}
SPATIAL: dict[str, type[ast.SpatialComparisonPredicate]] = {
    "s_intersects": ast.GeometryIntersects,
    "s_disjoint": ast.GeometryDisjoint,
    "s_contains": ast.GeometryContains,
    "s_within": ast.GeometryWithin,
    "s_touches": ast.GeometryTouches,
    "s_crosses": ast.GeometryCrosses,
    "s_overlaps": ast.GeometryOverlaps,
    "s_equals": ast.GeometryEquals,
}
# CQL2 names the Allen relations differently from pygeofilter (which follows OGC Filter 2.0).
TEMPORAL: dict[str, type[ast.TemporalPredicate]] = {
    "t_after": ast.TimeAfter,
    "t_before": ast.TimeBefore,
    "t_contains": ast.TimeContains,
    "t_disjoint": ast.TimeDisjoint,
    "t_during": ast.TimeDuring,
    "t_equals": ast.TimeEquals,
    "t_finishedby": ast.TimeEndedBy,
    "t_finishes": ast.TimeEnds,
    "t_intersects": TimeIntersects,
    "t_meets": ast.TimeMeets,
    "t_metby": ast.TimeMetBy,
    "t_overlappedby": ast.TimeOverlappedBy,
    "t_overlaps": ast.TimeOverlaps,
    "t_startedby": ast.TimeBegunBy,
    "t_starts": ast.TimeBegins,
}
ARRAY: dict[str, type[ast.ArrayPredicate]] = {
    "a_equals": ast.ArrayEquals,
    "a_contains": ast.ArrayContains,
    "a_containedby": ast.ArrayContainedBy,
    "a_overlaps": ast.ArrayOverlaps,
}
STRING_FUNCTIONS = ("casei", "accenti")


#: A filter nested deeper than Python's recursion allows (parentheses or NOTs by the
#: thousand); chains of AND and OR are balanced and never reach it.
TOO_DEEP = "{where}: the filter is nested too deeply to evaluate; flatten its parentheses"


def fold(op: type[ast.Combination], args: list[Any]) -> Any:
    """Join an AND/OR argument list into a balanced tree of binary nodes.

    pygeofilter's nodes are binary. A left-deep chain of 1,000 ORs (a list of ids, say)
    is 1,000 levels deep, and every walk over the AST (checks, pruning, evaluation on
    Arrow) would recurse that deep; balanced, it is 10. AND and OR are associative, and
    evaluation here is on whole columns, so the shape changes no result.
    """
    if len(args) == 1:
        return args[0]
    middle = len(args) // 2
    return op(fold(op, args[:middle]), fold(op, args[middle:]))


def instant(text: str, *, where: str) -> dt.date | dt.datetime | None:
    """A DATE or TIMESTAMP string as CQL2 writes them; ``'..'`` is an open end (None).

    Raises QueryError naming ``where`` when the string is neither.
    """
    if text == "..":
        return None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return timestamp(text, where=where)
    except ValueError:
        raise QueryError(
            f"{where}: {text!r} is not a date (YYYY-MM-DD) or timestamp (RFC 3339)"
        ) from None


#: RFC 3339 §5.6 date-time: full date, ``T`` (or ``t``, or a space, as its note allows),
#: full time with an optional fraction, and ``Z`` or a numeric offset. Python's
#: ``fromisoformat`` alone would also take ISO 8601 forms that are not RFC 3339
#: (``20200615``, ``2020-W24``, ``2020-06-15T12``, no offset).
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:(\d{2})(\.\d+)?([Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
)


def timestamp(text: str, *, where: str) -> dt.datetime:
    """An RFC 3339 timestamp, in UTC.

    Raises:
        QueryError: ``text`` is not one (a date alone, no offset, another ISO 8601 form).
    """
    match = _RFC3339.fullmatch(text)
    if not match:
        raise QueryError(
            f"{where}: {text!r} is not an RFC 3339 timestamp (YYYY-MM-DDThh:mm:ss[.f] and Z "
            "or an offset)"
        )
    # fromisoformat of Python 3.10 takes only 3 or 6 fraction digits: give it 6.
    fraction = f".{(match[2][1:] + '000000')[:6]}" if match[2] else ""
    offset = "+00:00" if match[3] in "Zz" else match[3]
    clock = text[11:19]
    if match[1] == "60" and clock[3:5] == "59":
        # A leap second (RFC 3339 5.6 and 5.7: "1990-12-31T23:59:60Z"), which Python
        # cannot hold: its last representable instant, 59.999999, keeps the order.
        clock, fraction = clock[:6] + "59", ".999999"
    try:
        value = dt.datetime.fromisoformat(f"{text[:10]}T{clock}{fraction}{offset}")
    except ValueError:  # a month 13, a day 32
        raise QueryError(f"{where}: {text!r} is not an RFC 3339 timestamp") from None
    return value.astimezone(dt.timezone.utc)


def date(text: str, *, where: str) -> dt.date:
    """A CQL2 DATE string (YYYY-MM-DD)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None


def envelope(numbers: list[Any], *, where: str) -> values.Envelope:
    """A CQL2 BBOX of 4 or 6 numbers as an Envelope.

    The 3D form keeps only x and y: STAC geometries are 2D footprints, and pygeofilter's
    Envelope has no z. A west edge greater than the east edge crosses the antimeridian
    and is kept as given; spatial.py splits it.
    """
    if len(numbers) not in (4, 6) or not all(
        isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers
    ):
        got = ", ".join(show(n) if not isinstance(n, (int, float)) else str(n) for n in numbers)
        raise QueryError(f"{where}: BBOX takes 4 or 6 numbers, got ({got})")
    half = len(numbers) // 2
    xmin, ymin, xmax, ymax = numbers[0], numbers[1], numbers[half], numbers[half + 1]
    if ymin > ymax:
        raise QueryError(f"{where}: BBOX south edge {ymin} is north of its north edge {ymax}")
    for x, y in ((xmin, ymin), (xmax, ymax)):
        _check_position(x, y, where=f"{where}: BBOX")
    return values.Envelope(float(xmin), float(xmax), float(ymin), float(ymax))


def _check_position(x: float, y: float, *, where: str) -> None:
    """Reject a position outside CRS84: CQL2 geometry literals are longitude, latitude in
    degrees (no filter-crs is supported), and the CQL2 conformance tests require
    ``POINT(90 180)`` to be an error, not an empty result."""
    if not -180 <= x <= 180:
        raise QueryError(f"{where}: longitude {x} is outside [-180, 180] (CRS84: lon lat)")
    if not -90 <= y <= 90:
        raise QueryError(f"{where}: latitude {y} is outside [-90, 90] (CRS84: lon lat)")


#: How deep each GeoJSON type nests its positions (RFC 7946, section 3.1).
_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2,
          "MultiPolygon": 3}  # fmt: skip


def geometry(obj: dict[str, Any], *, where: str = "geometry literal") -> values.Geometry:
    """A GeoJSON geometry with float coordinates, so WKT and GeoJSON spellings compare equal.

    Raises QueryError, prefixed with ``where``, for a geometry that RFC 7946 does not allow
    (a position of fewer than 2 numbers, a LineString of one position, an unclosed ring,
    empty coordinates, a GeometryCollection without ``geometries``) or a position outside
    CRS84's range. Such a literal matched nothing before, or failed deep in GEOS.
    """
    kind = obj.get("type")
    if kind == "GeometryCollection":
        members = obj.get("geometries")
        if not isinstance(members, list) or not all(isinstance(g, dict) for g in members):
            raise QueryError(f"{where}: a GeometryCollection needs a 'geometries' list")
        return values.Geometry(
            {"type": kind, "geometries": [geometry(g, where=where).geometry for g in members]}
        )
    if kind not in _DEPTH:
        raise QueryError(f"{where}: {kind!r} is not a GeoJSON geometry type")
    coordinates = _positions(obj.get("coordinates"), _DEPTH[kind], where=f"{where}: {kind}")
    if not coordinates:
        raise QueryError(f"{where}: a {kind} with no coordinates matches nothing")
    lines = {"LineString": [coordinates], "MultiLineString": coordinates}.get(kind, [])
    if any(len(line) < 2 for line in lines):
        raise QueryError(f"{where}: each {kind} line needs 2 or more positions (RFC 7946)")
    for polygon in {"Polygon": [coordinates], "MultiPolygon": coordinates}.get(kind, []):
        if not polygon:
            raise QueryError(f"{where}: a {kind} polygon needs an exterior ring")
        for ring in polygon:
            if len(ring) < 4 or ring[0] != ring[-1]:
                raise QueryError(
                    f"{where}: a {kind} ring is not closed (RFC 7946: 4 or more positions, "
                    "the last equal to the first)"
                )
    return values.Geometry({"type": kind, "coordinates": coordinates})


def _positions(value: Any, depth: int, *, where: str) -> Any:
    """``value`` as float positions nested ``depth`` lists deep, each 2 or more numbers."""
    if depth:
        if not isinstance(value, (list, tuple)):
            raise QueryError(f"{where}: coordinates must be nested lists of positions")
        return [_positions(v, depth - 1, where=where) for v in value]
    if (
        not isinstance(value, (list, tuple))
        or len(value) < 2
        or not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in value)
    ):
        raise QueryError(f"{where}: a position is 2 or more numbers, got {_short(value)}")
    position = [float(n) for n in value]
    _check_position(position[0], position[1], where=where)
    return position


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict, str, int, float)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _interval_end(value: Any, *, where: str) -> Any:
    if isinstance(value, str):
        return instant(value, where=where)
    if isinstance(value, (ast.Node, dt.date)):
        return value
    raise QueryError(f"{where}: an INTERVAL end is a date, a timestamp, '..' or a property")


def _arity(name: str, args: list[Any], n: int, where: str) -> None:
    if len(args) != n:
        raise QueryError(f"{where}: {name} takes {n} argument(s), got {len(args)}")


def build(op: str, args: list[Any], *, where: str) -> Any:
    """The AST node for CQL2 operator or function ``op`` applied to parsed ``args``.

    The one place both encodings turn an operation into a node: the JSON parser calls it
    with ``{"op": ..., "args": [...]}`` as written, the text transformer with the operator
    its grammar rule stands for. ``where`` (a JSON path or a text position) prefixes errors.
    """
    name = op.lower()
    if name in ("and", "or"):
        if len(args) < 2:
            raise QueryError(f"{where}: {name} needs at least 2 arguments")
        return fold(ast.And if name == "and" else ast.Or, args)
    if name == "not":
        _arity(name, args, 1, where)
        return ast.Not(args[0])
    if op in COMPARISONS:
        _arity(op, args, 2, where)
        return COMPARISONS[op](args[0], args[1])
    if name == "like":
        _arity(name, args, 2, where)
        return ast.Like(args[0], args[1], False, "%", "_", "\\", False)
    if name == "between":
        _arity(name, args, 3, where)
        return ast.Between(args[0], args[1], args[2], False)
    if name == "in":
        _arity(name, args, 2, where)
        if not isinstance(args[1], list):
            raise QueryError(f"{where}: the second argument of IN is a list")
        return ast.In(args[0], args[1], False)
    if name == "isnull":
        _arity("isNull", args, 1, where)
        return ast.IsNull(args[0], False)
    if name in ARITHMETIC:
        if name in ("+", "-", "*", "/", "%") and len(args) > 2:
            # CQL2 JSON chains these to the left: {"op": "+", "args": [a, b, c]} is (a + b) + c.
            node = args[0]
            for arg in args[1:]:
                node = ARITHMETIC[name](node, arg)
            return node
        _arity(op, args, 2, where)
        return ARITHMETIC[name](args[0], args[1])
    if name in SPATIAL:
        _arity(name.upper(), args, 2, where)
        return SPATIAL[name](args[0], args[1])
    if name in TEMPORAL:
        _arity(name.upper(), args, 2, where)
        return TEMPORAL[name](args[0], args[1])
    if name in ARRAY:
        _arity(name.upper(), args, 2, where)
        # `('a')` in text is a parenthesised scalar; as an array operand it is `['a']`.
        pair = [a if isinstance(a, (list, ast.Node)) else [a] for a in args]
        return ARRAY[name](pair[0], pair[1])
    if name in STRING_FUNCTIONS:
        _arity(name.upper(), args, 1, where)
        return ast.Function(name, [args[0]])
    if name == "date":
        _arity("DATE", args, 1, where)
        return date(_text_arg(args[0], "DATE", where), where=where)
    if name == "timestamp":
        _arity("TIMESTAMP", args, 1, where)
        return timestamp(_text_arg(args[0], "TIMESTAMP", where), where=where)
    if name == "interval":
        _arity("INTERVAL", args, 2, where)
        start, end = (_interval_end(a, where=where) for a in args)
        first, last = _instant_key(start), _instant_key(end)
        if first is not None and last is not None and first > last:
            raise QueryError(f"{where}: INTERVAL starts ({args[0]}) after it ends ({args[1]})")
        return values.Interval(start, end)
    if name == "bbox":
        return envelope(list(args), where=where)
    return ast.Function(op, list(args))


def _instant_key(value: Any) -> dt.datetime | None:
    """A literal interval end as a comparable UTC instant (a date is its first moment);
    None for an open end or a property."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    return None


def _text_arg(value: Any, name: str, where: str) -> str:
    if not isinstance(value, str):
        raise QueryError(f"{where}: {name} takes a string, got {show(value)}")
    return value

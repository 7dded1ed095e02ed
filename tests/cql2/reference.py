"""Expected results for the differential tests, computed without dafab_static.

The oracle is the ``cql2`` package (cql2-rs): ``cql2.Expr(filter).matches(item)``. Where it
departs from the CQL2 1.0 standard (``ORACLE_GAPS``, found by probing it), a plain-Python
reading of the standard decides instead: :func:`compile_filter` turns CQL2 JSON into a three-valued
predicate, with shapely for geometry. ``test_reference_agrees_with_the_oracle`` checks that the
two agree everywhere else, so this module is itself under test.
"""

from __future__ import annotations

import datetime as _dt
import functools
import operator
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cql2
import shapely
from shapely.geometry import shape

#: Where cql2 0.6 departs from the CQL2 1.0 standard text, and what decides instead.
ORACLE_GAPS = {
    "null": "a predicate on a NULL or missing property raises 'Could not reduce expression "
    "to boolean' instead of evaluating to NULL (§6.2 truth table, /req/basic-cql2/"
    "binary-comparison-predicate C): three-valued logic here",
    "casei": "no full case folding, CASEI('Straße') <> CASEI('STRASSE') "
    "(/req/case-insensitive-comparison/casei-function E): str.casefold() here",
    "casei-in": "CASEI()/ACCENTI() inside IN raises: evaluated here",
    "geometrycollection": "S_TOUCHES/S_OVERLAPS against a GEOMETRYCOLLECTION disagree with "
    "DE-9IM (OGC 06-103r4 §6.1.15): shapely (GEOS) here",
    "antimeridian-bbox": "BBOX with west > east is read as a box from east to west, not one "
    "across the antimeridian (§7.5.1): split at 180 here",
}

Value = Any
Row = dict[str, Any]
Interval = tuple[_dt.datetime, _dt.datetime]  # an instant t is (t, t)
Predicate = Callable[[Row], "bool | None"]
Expression = Callable[[Row], Value]

#: Properties holding RFC 3339 timestamps (strings in item JSON).
TEMPORAL_PROPERTIES = frozenset({"datetime", "start_datetime", "end_datetime"})
_MIN = _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
_MAX = _dt.datetime.max.replace(tzinfo=_dt.timezone.utc)


@dataclass
class Reference:
    """Expected results over one fixed list of items."""

    items: list[dict[str, Any]]

    def __post_init__(self) -> None:
        self.rows = [_row(item) for item in self.items]
        # The oracle gets items without assets and links: a third faster, same answers.
        self.slim = [
            {k: it[k] for k in ("type", "id", "collection", "geometry", "properties")}
            for it in self.items
        ]

    def outcome(self, filter_json: dict[str, Any]) -> Outcome:
        """The ids ``filter_json`` (CQL2 JSON) selects, and where the oracle disagrees with us.

        The expected ids are the oracle's answer, except on a gap (``ORACLE_GAPS``) and for
        items where the oracle raises (a NULL operand): there our evaluation decides.
        """
        ours = compile_filter(filter_json)
        oracle = None if uses_gap(filter_json) else cql2.Expr(filter_json)
        selected, disagreements = set(), []
        for item, row in zip(self.slim, self.rows, strict=True):
            mine = ours(row) is True
            hit = mine
            if oracle is not None:
                try:
                    hit = oracle.matches(item)
                except Exception as e:  # the oracle's only failure here: a NULL operand
                    if "Could not reduce expression to boolean" not in str(e):
                        raise
                    hit = mine
                if hit != mine:
                    disagreements.append(item["id"])
            if hit:
                selected.add(item["id"])
        return Outcome(frozenset(selected), tuple(disagreements))

    def ids(self, filter_json: dict[str, Any]) -> set[str]:
        """Ids selected by our own evaluation alone."""
        ours = compile_filter(filter_json)
        return {row["id"] for row in self.rows if ours(row) is True}


@dataclass(frozen=True)
class Outcome:
    """What :meth:`Reference.outcome` found for one filter."""

    expected: frozenset[str]
    #: Ids where the oracle answered and our evaluation differs (gaps excluded): should be none.
    disagreements: tuple[str, ...]


def uses_gap(node: Any, *, inside_in: bool = False) -> bool:
    """Whether ``node`` uses an operator the oracle gets wrong (see ``ORACLE_GAPS``)."""
    if isinstance(node, list):
        return any(uses_gap(n, inside_in=inside_in) for n in node)
    if not isinstance(node, dict):
        return False
    if node.get("type") == "GeometryCollection":
        return True
    if "bbox" in node and node["bbox"][0] > node["bbox"][len(node["bbox"]) // 2]:
        return True
    op = node.get("op")
    if op == "casei" or (op == "accenti" and inside_in):
        return True
    return any(uses_gap(a, inside_in=inside_in or op == "in") for a in node.get("args", ()))


def _row(item: dict[str, Any]) -> Row:
    row: Row = {
        "id": item["id"],
        "collection": item.get("collection"),
        "geometry": shape(item["geometry"]),
    }
    for name, raw in item["properties"].items():
        row[name] = _instant(raw) if raw is not None and name in TEMPORAL_PROPERTIES else raw
    return row


# --- booleans: three-valued logic (CQL2 1.0 §6.2) --------------------------------------------


def compile_filter(node: Any) -> Predicate:
    """A function of a row giving True, False or None (NULL) for a CQL2 JSON boolean."""
    if isinstance(node, bool):
        return lambda row: node
    op, args = node["op"], node["args"]
    if op in ("and", "or"):
        parts = [compile_filter(a) for a in args]
        decisive = op == "or"  # True decides OR, False decides AND

        def connect(row: Row) -> bool | None:
            results = [p(row) for p in parts]
            if decisive in results:
                return decisive
            return None if None in results else not decisive

        return connect
    if op == "not":
        inner = compile_filter(args[0])
        return lambda row: None if (v := inner(row)) is None else not v
    operands = [_expression(a) for a in args]
    if op == "isNull":
        return lambda row: operands[0](row) is None
    test = PREDICATES[op]

    def predicate(row: Row) -> bool | None:
        values = [o(row) for o in operands]
        # Every predicate but IS NULL is NULL when an operand is (each predicate's
        # requirement C, e.g. /req/basic-cql2/binary-comparison-predicate).
        return None if any(v is None for v in values) else test(*values)

    return predicate


# --- values -------------------------------------------------------------------------------


def _expression(node: Any) -> Expression:
    literal = _literal(node)
    if literal is not _NOT_LITERAL:
        return lambda row: literal
    if isinstance(node, list):
        parts = [_expression(n) for n in node]
        return lambda row: [p(row) for p in parts]
    if "property" in node:
        name = node["property"]
        return lambda row: row.get(name)
    if "interval" in node:
        start, end = (_bound_expression(n) for n in node["interval"])

        def interval(row: Row) -> Interval | None:
            a, b = start(row), end(row)
            return None if a is None or b is None else (a[0], b[1])

        return interval
    fn = FUNCTIONS[node["op"]]
    parts = [_expression(a) for a in node["args"]]

    def apply(row: Row) -> Value:
        values = [p(row) for p in parts]
        # NULL in, NULL out (/req/arithmetic/arithmetic B, casei-function D, accenti D).
        return None if any(v is None for v in values) else fn(*values)

    return apply


def _bound_expression(node: Any) -> Expression:
    # An INTERVAL() end: a property, '..' (open) or a date or timestamp string.
    if isinstance(node, dict):
        return _expression(node)
    bound = (_MIN, _MAX) if node == ".." else _bound(node)
    return lambda row: bound


_NOT_LITERAL = object()


def _literal(node: Any) -> Value:
    if isinstance(node, (bool, int, float, str)):
        return node
    if not isinstance(node, dict):
        return _NOT_LITERAL
    if "timestamp" in node:
        return _instant(node["timestamp"])
    if "date" in node:
        return _day(node["date"])
    if "bbox" in node:
        return _bbox(node["bbox"])
    if "type" in node:
        return shape(node)
    return _NOT_LITERAL


def _instant(text: str) -> Interval:
    t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (t, t)


def _day(text: str) -> Interval:
    # A date is an instant at day granularity (§7.8.1): the whole day. The dataset keeps item
    # times off the days used in DATE literals, so the start-of-day reading agrees.
    start = _dt.datetime.fromisoformat(text).replace(tzinfo=_dt.timezone.utc)
    return (start, start + _dt.timedelta(days=1, microseconds=-1))


def _bound(text: str) -> Interval:
    return _day(text) if len(text) == 10 else _instant(text)


def _bbox(b: list[float]) -> shapely.Geometry:
    w, s, e, n = (b[0], b[1], b[2], b[3]) if len(b) == 4 else (b[0], b[1], b[3], b[4])
    if w > e:  # across the antimeridian (§7.5.1)
        return shapely.MultiPolygon([shapely.box(w, s, 180, n), shapely.box(-180, s, e, n)])
    return shapely.box(w, s, e, n)


def _casei(s: str) -> str:
    return s.casefold()  # Unicode full case folding, as the requirement asks


def _accenti(s: str) -> str:
    decomposed = unicodedata.normalize("NFD", s)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def _like(s: str, pattern: str) -> bool:
    return _like_regex(pattern).fullmatch(s) is not None


@functools.cache
def _like_regex(pattern: str) -> re.Pattern[str]:
    # % any run, _ one character, backslash escapes (/req/advanced-comparison-operators/like).
    regex = re.sub(
        r"\\(.)|(%)|(_)|(.)",
        lambda m: re.escape(m[1]) if m[1] else ".*" if m[2] else "." if m[3] else re.escape(m[4]),
        pattern,
        flags=re.DOTALL,
    )
    return re.compile(regex, flags=re.DOTALL)


def _scalar(v: Value) -> Value:
    # An instant compares as its time; filters never compare a DATE with a TIMESTAMP.
    return v[0] if isinstance(v, tuple) else v


def _compare(fn: Callable[[Any, Any], bool]) -> Callable[[Value, Value], bool]:
    return lambda a, b: fn(_scalar(a), _scalar(b))


def _sets(fn: Callable[[set[Any], set[Any]], bool]) -> Callable[[list[Any], list[Any]], bool]:
    # Arrays compare as sets (/req/array-functions/array-predicates B).
    return lambda a, b: fn(set(a), set(b))


def _spatial(name: str) -> Callable[[shapely.Geometry, shapely.Geometry], bool]:
    predicate = getattr(shapely, name)
    return lambda a, b: bool(predicate(a, b))


# Allen's relations as OWL-Time defines them (§7.8.2, both tables), on closed intervals.
def _before(a: Interval, b: Interval) -> bool:
    return a[1] < b[0]


def _after(a: Interval, b: Interval) -> bool:
    return a[0] > b[1]


PREDICATES: dict[str, Callable[..., bool]] = {
    "=": _compare(operator.eq),
    "<>": _compare(operator.ne),
    "<": _compare(operator.lt),
    "<=": _compare(operator.le),
    ">": _compare(operator.gt),
    ">=": _compare(operator.ge),
    "like": _like,
    "between": lambda v, lo, hi: lo <= v <= hi,
    "in": lambda v, options: _scalar(v) in [_scalar(o) for o in options],
    "a_equals": _sets(operator.eq),
    "a_contains": _sets(operator.ge),
    "a_containedBy": _sets(operator.le),
    "a_overlaps": _sets(lambda a, b: bool(a & b)),
    **{
        f"s_{name}": _spatial(name)
        for name in (
            "intersects",
            "disjoint",
            "contains",
            "within",
            "touches",
            "crosses",
            "overlaps",
            "equals",
        )
    },
    "t_after": _after,
    "t_before": _before,
    "t_disjoint": lambda a, b: _before(a, b) or _after(a, b),
    "t_intersects": lambda a, b: not (_before(a, b) or _after(a, b)),
    "t_equals": lambda a, b: a == b,
    "t_meets": lambda a, b: a[1] == b[0],
    "t_metBy": lambda a, b: a[0] == b[1],
    "t_overlaps": lambda a, b: a[0] < b[0] < a[1] < b[1],
    "t_overlappedBy": lambda a, b: b[0] < a[0] < b[1] < a[1],
    "t_starts": lambda a, b: a[0] == b[0] and a[1] < b[1],
    "t_startedBy": lambda a, b: a[0] == b[0] and a[1] > b[1],
    "t_during": lambda a, b: a[0] > b[0] and a[1] < b[1],
    "t_contains": lambda a, b: a[0] < b[0] and a[1] > b[1],
    "t_finishes": lambda a, b: a[1] == b[1] and a[0] > b[0],
    "t_finishedBy": lambda a, b: a[1] == b[1] and a[0] < b[0],
}

FUNCTIONS: dict[str, Callable[..., Value]] = {
    "casei": _casei,
    "accenti": _accenti,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,  # the filters take % and div of non-negative integers only
    "div": operator.floordiv,
    "^": operator.pow,
}

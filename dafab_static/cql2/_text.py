"""CQL2 text → AST, with lark (pygeofilter's parser engine) over ``cql2.lark``."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token, Transformer, v_args

from dafab_static.cql2 import nodes
from dafab_static.errors import QueryError

_GRAMMAR = Path(__file__).with_name("cql2.lark")

# Terminal names as a user would say them, for "expected ..." in error messages.
_READABLE = {
    "_OR": "OR", "_AND": "AND", "_NOT": "NOT", "_LIKE": "LIKE", "_BETWEEN": "BETWEEN",
    "_IN": "IN", "_IS": "IS", "_NULL": "NULL", "_DIV": "div", "TRUE": "TRUE", "FALSE": "FALSE",
    "COMPARE": "a comparison (= <> < <= > >=)", "NUMBER": "a number", "STRING": "a 'string'",
    "NAME": "a property or function name", "QUOTED_NAME": 'a "property"', "LPAR": "(",
    "RPAR": ")", "COMMA": ",", "PLUS": "+", "MINUS": "-", "STAR": "*", "SLASH": "/",
    "PERCENT": "%", "CIRCUMFLEX": "^", "_POINT": "POINT", "_POLYGON": "POLYGON",
    "_LINESTRING": "LINESTRING", "_MULTIPOINT": "MULTIPOINT", "_MULTIPOLYGON": "MULTIPOLYGON",
    "_MULTILINESTRING": "MULTILINESTRING", "_GEOMETRYCOLLECTION": "GEOMETRYCOLLECTION",
    "_Z": "Z", "$END": "end of filter",
}  # fmt: skip


@functools.cache
def _parser() -> Lark:
    return Lark(_GRAMMAR.read_text(encoding="utf-8"), parser="lalr", propagate_positions=True)


def _where(token: Token | None) -> str:
    if token is None or token.line is None:
        return "CQL2 text"
    return f"CQL2 text, line {token.line} column {token.column}"


#: In a character literal: a doubled quote, or a backslash and the character after it.
_ESCAPE = re.compile(r"''|\\(.)", re.DOTALL)
#: The control characters a character literal may spell (OGC 21-065r2,
#: /req/cql2-text/escaping C), and the quote (B).
_CONTROL = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r", "'": "'"}


def _unescape(match: re.Match[str]) -> str:
    """One escape of a character literal decoded. Other backslash pairs stay as written:
    ``\\%``, ``\\_`` and ``\\\\`` are LIKE's escapes, which the pattern matcher reads."""
    escaped = match.group(1)
    if escaped is None:
        return "'"
    return _CONTROL.get(escaped, match.group(0))


@v_args(inline=True)
class _ToAst(Transformer[Token, Any]):
    """Grammar rules → ``nodes.build`` calls; only literals are decoded here."""

    def number(self, token: Token) -> int | float:
        text = str(token)
        return int(text) if text.isdigit() else float(text)

    def string(self, token: Token) -> str:
        return _ESCAPE.sub(_unescape, str(token)[1:-1])

    def true(self, _: Token) -> bool:
        return True

    def false(self, _: Token) -> bool:
        return False

    def property(self, token: Token) -> nodes.Attribute:
        name = str(token)
        return nodes.Attribute(name[1:-1] if name.startswith('"') else name)

    @v_args(inline=False, meta=True)
    def call(self, meta: Any, children: list[Any]) -> Any:
        name, *args = children
        args = [a for a in args if a is not None]
        return nodes.build(str(name), args, where=_where(name))

    def pos(self, value: Any) -> Any:
        # The BNF's sign of a numeric literal ("+" | "-"); on anything else, unary plus is
        # not CQL2, as the grammar's arithmetic has no such operator.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise QueryError(f"CQL2 text: '+' stands only before a number, not before {value!r}")

    def neg(self, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
        return nodes.build("*", [-1, value], where="CQL2 text")

    def array(self, first: Any, *rest: Any) -> list[Any]:
        return [first, *rest]

    def empty_array(self) -> list[Any]:
        return []

    def compare(self, lhs: Any, op: Token, rhs: Any) -> Any:
        return nodes.build(str(op), [lhs, rhs], where=_where(op))

    def in_(self, lhs: Any, *items: Any) -> Any:
        return nodes.build("in", [lhs, list(items)], where="CQL2 text")

    def not_in(self, lhs: Any, *items: Any) -> Any:
        return nodes.build("not", [self.in_(lhs, *items)], where="CQL2 text")

    def like(self, lhs: Any, pattern: Any) -> Any:
        return nodes.build("like", [lhs, pattern], where="CQL2 text")

    def not_like(self, lhs: Any, pattern: Any) -> Any:
        return nodes.build("not", [self.like(lhs, pattern)], where="CQL2 text")

    def between(self, lhs: Any, low: Any, high: Any) -> Any:
        return nodes.build("between", [lhs, low, high], where="CQL2 text")

    def not_between(self, lhs: Any, low: Any, high: Any) -> Any:
        return nodes.build("not", [self.between(lhs, low, high)], where="CQL2 text")

    def is_null(self, lhs: Any) -> Any:
        return nodes.build("isNull", [lhs], where="CQL2 text")

    def is_not_null(self, lhs: Any) -> Any:
        return nodes.build("not", [self.is_null(lhs)], where="CQL2 text")

    def not_(self, value: Any) -> Any:
        return nodes.build("not", [value], where="CQL2 text")

    def and_(self, *operands: Any) -> Any:
        return nodes.build("and", list(operands), where="CQL2 text")

    def or_(self, *operands: Any) -> Any:
        return nodes.build("or", list(operands), where="CQL2 text")

    def _arith(op: str) -> Any:  # type: ignore[misc]
        def rule(self: _ToAst, lhs: Any, rhs: Any) -> Any:
            return nodes.build(op, [lhs, rhs], where="CQL2 text")

        return rule

    add, sub, mul, div = _arith("+"), _arith("-"), _arith("*"), _arith("/")
    mod, intdiv, pow = _arith("%"), _arith("div"), _arith("^")

    # WKT → GeoJSON dicts; `coord` keeps 2 or 3 numbers.
    def signed(self, *parts: Token) -> float:
        return -float(parts[1]) if len(parts) == 2 else float(parts[0])

    def coord(self, *numbers: float) -> list[float]:
        return list(numbers)

    def coords(self, *points: list[float]) -> list[list[float]]:
        return list(points)

    def rings(self, *rings: list[list[float]]) -> list[list[list[float]]]:
        return list(rings)

    def _shape(kind: str) -> Any:  # type: ignore[misc]
        def rule(self: _ToAst, *parts: Any) -> nodes.Geometry:
            coordinates = parts[0] if kind in ("Point", "LineString", "Polygon") else list(parts)
            return nodes.geometry({"type": kind, "coordinates": coordinates}, where="CQL2 text")

        return rule

    point, linestring, polygon = _shape("Point"), _shape("LineString"), _shape("Polygon")
    multipoint, multilinestring = _shape("MultiPoint"), _shape("MultiLineString")
    multipolygon = _shape("MultiPolygon")

    def geometrycollection(self, *members: nodes.Geometry) -> nodes.Geometry:
        return nodes.geometry(
            {"type": "GeometryCollection", "geometries": [m.geometry for m in members]},
            where="CQL2 text",
        )


def parse_text(text: str) -> Any:
    """Parse a CQL2 text filter into the AST.

    Raises QueryError with the line, column and what the grammar expected there, e.g.
    ``CQL2 text, line 1 column 14: unexpected end of the filter; expected one of: AND, OR``.
    """
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as error:
        raise QueryError(_describe(error, text)) from None
    try:
        return _ToAst().transform(tree)
    except lark.exceptions.VisitError as error:
        if isinstance(error.orig_exc, QueryError):
            raise error.orig_exc from None
        if isinstance(error.orig_exc, RecursionError):
            raise QueryError(nodes.TOO_DEEP.format(where="CQL2 text")) from None
        raise
    except RecursionError:
        raise QueryError(nodes.TOO_DEEP.format(where="CQL2 text")) from None


def _describe(error: lark.exceptions.UnexpectedInput, text: str) -> str:
    where = f"CQL2 text, line {error.line} column {error.column}"
    expected: set[str] = set()
    if isinstance(error, lark.exceptions.UnexpectedToken):
        found = "end of filter" if error.token.type == "$END" else repr(str(error.token))
        expected = set(error.accepts or error.expected)
    elif isinstance(error, lark.exceptions.UnexpectedCharacters):
        at = error.pos_in_stream or 0
        found = repr(text[at : at + 12])
        if text[at : at + 1] == "'":
            return f"{where}: a 'string' is not closed"
        expected = set(error.allowed or ())
    else:
        found = "end of filter"
        expected = set(getattr(error, "expected", ()) or ())
    names = sorted(
        {_READABLE.get(e, e) for e in expected if not e.startswith("__")},
        key=lambda n: (n[0].isupper(), n),  # "a number", "a property" before keywords
    )
    shown = [n if n[0].isalnum() else repr(n) for n in names[:16]]
    hint = f"; expected {' or '.join(shown)}" if shown else ""
    return f"{where}: unexpected {found}{hint}"

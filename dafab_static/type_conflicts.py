"""Items that one stac-geoparquet table cannot hold together: found, named and set aside.

JSON lets one field be a number in one item and text in another (``raster:bands`` ``nodata``
is ``0`` in one, ``"nan"`` in another, both valid STAC), and even inside one item (a list
``["a", 1]``); one Parquet column holds one type. When a month's items fail to form one
table, the writer asks :func:`set_aside` which items to leave out so that the rest can be
published: those that clash within themselves, then, field by field, those whose type is
not the month's most common one. A pure walk over the JSON, so a month of ten thousand
items costs milliseconds, not a table per item.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

#: Arrow's int64, the widest integer a stac-geoparquet column holds.
_INT64 = (-(2**63), 2**63 - 1)
#: Rounds of "find a clashing field, keep its most common type": one per clashing field.
MAX_ROUNDS = 64


#: JSON nesting a column may have: Parquet refuses schemas about 45 lists deep (an item
#: 60 deep was published in a file no reader could open, or failed the build).
MAX_DEPTH = 32


def type_depth(kind: pa.DataType) -> int:
    """How deep an Arrow type nests (lists and structs count one level each).

    Example:
        >>> type_depth(pa.list_(pa.struct([("a", pa.list_(pa.int64()))])))
        3
    """
    if pa.types.is_struct(kind):
        return 1 + max((type_depth(f.type) for f in kind), default=0)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return 1 + type_depth(kind.value_type)
    if pa.types.is_map(kind):
        return 1 + max(type_depth(kind.key_type), type_depth(kind.item_type))
    return 0


def too_deep(schema: pa.Schema) -> bool:
    """Whether a table of this schema nests deeper than Parquet files hold."""
    return any(type_depth(field.type) > MAX_DEPTH for field in schema)


@dataclass(frozen=True)
class SetAside:
    """One item left out of the month, and why (a sentence without the item's name)."""

    position: int
    reason: str


def set_aside(items: Sequence[dict[str, Any]]) -> list[SetAside]:
    """The items to leave out so that the others form one table, and why; empty when the
    JSON shows no clash (the caller then reports the Arrow error as it is).

    Example:
        >>> a = {"id": "a", "properties": {"n": 1}}
        >>> b = {"id": "b", "properties": {"n": "x"}}
        >>> c = {"id": "c", "properties": {"n": 2}}
        >>> [(s.position, s.reason) for s in set_aside([a, b, c])]  # doctest: +NORMALIZE_WHITESPACE
        [(1, 'properties.n is text here and a number in 2 other items of its collection and
          month; one Parquet column cannot hold both')]
    """
    out: list[SetAside] = []
    for position, item in enumerate(items):
        reason = _own_clash(item)
        if reason is not None:
            out.append(SetAside(position, reason))
    left = [i for i in range(len(items)) if i not in {s.position for s in out}]
    for _ in range(MAX_ROUNDS):
        found = _shared_clash([items[i] for i in left])
        if found is None:
            break
        path, kinds = found
        counts = Counter(kinds.values())  # in order of first appearance
        keep = max(counts, key=counts.__getitem__)  # the most common; on a tie, the first
        others = counts[keep]
        for index, kind in sorted(kinds.items()):
            if kind != keep:
                reason = (
                    f"{_name(path)} is {_said(kind)} here and {_said(keep)} in {others} other "
                    f"item{'s' if others != 1 else ''} of its collection and month; one Parquet "
                    "column cannot hold both"
                )
                out.append(SetAside(left[index], reason))
        gone = {left[i] for i, kind in kinds.items() if kind != keep}
        left = [i for i in left if i not in gone]
    return sorted(out, key=lambda s: s.position)


def _own_clash(item: dict[str, Any]) -> str | None:
    """Why ``item`` alone cannot be a row, or None."""
    big = _big_integer(item, ())
    if big is not None:
        return f"{_name(big)} holds an integer beyond the 64 bits Parquet holds"
    deep = _too_deep(item)
    if deep is not None:
        return f"{deep} nests more than {MAX_DEPTH} levels deep; a Parquet column holds no deeper"
    found = _mixed([item], ())
    if found is None:
        return None
    path, kinds = found
    both = _said(" and ".join(sorted({k for ks in kinds for k in ks})))
    return f"{_name(path)} holds {both}; one Parquet column holds one type"


def _too_deep(item: dict[str, Any]) -> str | None:
    """The field (its first two names) holding a value nested deeper than a column may,
    or None. Iterative: a pathological item must not exhaust Python's recursion limit.
    Properties are columns of their own in the index, so their depth starts there."""
    props = item.get("properties")
    roots = [(v, f"properties.{k}", 1) for k, v in props.items()] if isinstance(props, dict) else []
    stack: list[tuple[Any, str, int]] = [
        *roots,
        *((v, k, 1) for k, v in item.items() if k != "properties"),
    ]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH and isinstance(value, (dict, list)):  # as :func:`type_depth`
            return ".".join(path.split("[")[0].split(".")[:2])
        if isinstance(value, dict):
            stack.extend((v, f"{path}.{k}", depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def _shared_clash(items: Sequence[dict[str, Any]]) -> tuple[tuple[str, ...], dict[int, str]] | None:
    """The first field whose kind differs between items, with each item's kind of it."""
    boxes = {i: "2-D" if len(it["bbox"]) == 4 else "3-D" for i, it in enumerate(items)
             if isinstance(it.get("bbox"), list) and len(it["bbox"]) in (4, 6)}  # fmt: skip
    if len(set(boxes.values())) > 1:
        return ("bbox",), boxes
    found = _mixed(list(items), ())
    if found is None:
        return None
    path, _ = found
    kinds = {}
    for i, item in enumerate(items):
        seen = _kinds_at(item, path)
        if seen:
            kinds[i] = " and ".join(sorted(seen))
    return path, kinds


#: JSON kinds by Python type, bool before int (a bool is an int to Python).
_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"), ((int, float), "number"), (str, "text"), (dict, "object"), (list, "array"),
)  # fmt: skip


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    return next((kind for types, kind in _KINDS if isinstance(value, types)), type(value).__name__)


def _mixed(
    values: list[Any], path: tuple[str, ...]
) -> tuple[tuple[str, ...], list[set[str]]] | None:
    """The first path below ``path`` where ``values`` (one per item, or the elements of
    arrays) hold two kinds, nulls aside, and the kinds seen there."""
    kinds = {k for k in map(_kind, values) if k is not None}
    if len(kinds) > 1:
        return path, [kinds]
    if kinds == {"object"}:
        for key in sorted({key for value in values if value for key in value}):
            if _not_a_column(path, key):
                continue
            found = _mixed([v[key] for v in values if v and key in v], (*path, key))
            if found is not None:
                return found
    elif kinds == {"array"}:
        return _mixed([e for value in values for e in value], (*path, "[]"))
    return None


def _not_a_column(path: tuple[str, ...], key: str) -> bool:
    """Members stored otherwise than as JSON-typed columns: geometries become WKB (a
    Polygon's and a MultiPolygon's coordinates nest to different depths, and one binary
    column holds both), and ``bbox``, whose 2-D/3-D clash :func:`_shared_clash` checks."""
    return key == "proj:geometry" or (not path and key in ("geometry", "bbox"))


def _kinds_at(value: Any, path: tuple[str, ...]) -> set[str]:
    """The kinds of the values at ``path`` in one item (several below an array)."""
    if not path:
        kind = _kind(value)
        return {kind} if kind is not None else set()
    head, rest = path[0], path[1:]
    if head == "[]":
        return (
            set().union(*(_kinds_at(e, rest) for e in value)) if isinstance(value, list) else set()
        )
    return _kinds_at(value[head], rest) if isinstance(value, dict) and head in value else set()


def _big_integer(value: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return None if _INT64[0] <= value <= _INT64[1] else path
    if isinstance(value, dict):
        for key, member in value.items():
            if (found := _big_integer(member, (*path, key))) is not None:
                return found
    elif isinstance(value, list):
        for member in value:
            if (found := _big_integer(member, (*path, "[]"))) is not None:
                return found
    return None


def _name(path: tuple[str, ...]) -> str:
    """``("assets", "data", "bands", "[]", "nodata")`` → ``assets.data.bands[].nodata``."""
    return ".".join(path).replace(".[]", "[]") or "the item"


def _said(kinds: str) -> str:
    """``"number and text"`` → ``"a number and text"``."""
    words = {"number": "a number", "boolean": "a boolean", "object": "an object",
             "array": "an array"}  # fmt: skip
    return " and ".join(words.get(kind, kind) for kind in kinds.split(" and "))

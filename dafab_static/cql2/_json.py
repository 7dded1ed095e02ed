"""CQL2 JSON → AST.

Why not pygeofilter's cql2_json parser: it rejects BETWEEN, ACCENTI, INTERVAL with property
ends and several OGC examples, and it builds different nodes than its own text parser for the
same expression. This walker decodes literals and hands every operation to ``nodes.build``,
which the text parser shares, so both encodings meet in one AST.
"""

from __future__ import annotations

import json
from typing import Any

from dafab_static.cql2 import nodes
from dafab_static.errors import QueryError

_GEOJSON_TYPES = {
    "Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
    "GeometryCollection",
}  # fmt: skip


def parse_json(document: str | bytes | dict[str, Any] | bool) -> Any:
    """Parse a CQL2 JSON filter (a dict, or its JSON text) into the AST.

    Raises QueryError naming the JSON path of the offending member, e.g.
    ``CQL2 JSON at args[1]: unknown member 'propertee'``.
    """
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as error:
            raise QueryError(
                f"CQL2 JSON, line {error.lineno} column {error.colno}: {error.msg}"
            ) from None
    try:
        return _walk(document, "$")
    except RecursionError:
        raise QueryError(nodes.TOO_DEEP.format(where="CQL2 JSON")) from None


def _walk(value: Any, path: str) -> Any:
    where = f"CQL2 JSON at {path}"
    if isinstance(value, (bool, int, float, str)) or value is None:
        if value is None:
            raise QueryError(f"{where}: null is not a CQL2 value")
        return value
    if isinstance(value, list):
        return [_walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        raise QueryError(f"{where}: unexpected {type(value).__name__}")
    if "op" in value:
        args = value.get("args", [])
        if not isinstance(args, list):
            raise QueryError(f"{where}: 'args' must be a list")
        parsed = [_walk(a, f"{path}.args[{i}]") for i, a in enumerate(args)]
        return nodes.build(str(value["op"]), parsed, where=where)
    if "property" in value:
        return nodes.Attribute(str(value["property"]))
    if "date" in value:
        return nodes.date(str(value["date"]), where=where)
    if "timestamp" in value:
        return nodes.timestamp(str(value["timestamp"]), where=where)
    if "interval" in value:
        ends = value["interval"]
        if not isinstance(ends, list) or len(ends) != 2:
            raise QueryError(f"{where}: 'interval' is a list of two ends")
        parsed = [_walk(e, f"{path}.interval[{i}]") for i, e in enumerate(ends)]
        return nodes.build("interval", parsed, where=where)
    # A GeoJSON geometry may carry a "bbox" member (RFC 7946, section 5): it is no BBOX.
    if value.get("type") in _GEOJSON_TYPES:
        return nodes.geometry(value, where=where)
    if "bbox" in value:
        if not isinstance(value["bbox"], list):
            raise QueryError(f"{where}: 'bbox' is a list of 4 or 6 numbers")
        return nodes.envelope(value["bbox"], where=where)
    raise QueryError(f"{where}: unknown member(s) {', '.join(map(repr, sorted(value)))}")

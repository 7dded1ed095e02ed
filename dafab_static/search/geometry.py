"""Shapely geometries of a GeoParquet geometry column, in any of its encodings.

GeoParquet 1.0 stores WKB; 1.1 adds GeoArrow's native encodings (``point``,
``linestring``, ``polygon``, ``multipoint``, ``multilinestring``, ``multipolygon``:
coordinates as structs of x/y, nested in lists), which geopandas writes with
``geometry_encoding="geoarrow"``. Native columns go through shapely's ragged-array
constructor in one vectorised call rather than row by row.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from dafab_static.errors import QueryError

# encoding → (shapely type, list depth above the coordinates)
_NATIVE = {
    "point": (shapely.GeometryType.POINT, 0),
    "linestring": (shapely.GeometryType.LINESTRING, 1),
    "polygon": (shapely.GeometryType.POLYGON, 2),
    "multipoint": (shapely.GeometryType.MULTIPOINT, 1),
    "multilinestring": (shapely.GeometryType.MULTILINESTRING, 2),
    "multipolygon": (shapely.GeometryType.MULTIPOLYGON, 3),
}
# Without metadata, the nesting alone decides (a list of points reads as a linestring).
_BY_DEPTH = {0: "point", 1: "linestring", 2: "polygon", 3: "multipolygon"}


def encoding_of(schema: pa.Schema, column: str) -> str | None:
    """The GeoParquet ``encoding`` of ``column`` (lower case), or None when not given."""
    try:
        found = json.loads((schema.metadata or {})[b"geo"])["columns"][column]["encoding"]
    except (KeyError, TypeError, ValueError):
        return None
    return str(found).lower()


def shapes(column: pa.Array, encoding: str | None = None, *, name: str = "geometry") -> np.ndarray:
    """The geometries of ``column`` as a numpy array of shapely objects (None where null).

    Raises QueryError naming ``name`` when the column holds no geometry encoding.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return np.asarray(shapely.from_wkb(column.to_numpy(zero_copy_only=False)))
    depth, leaf = 0, kind
    while pa.types.is_list(leaf) or pa.types.is_large_list(leaf):
        depth, leaf = depth + 1, leaf.value_type
    native = encoding if encoding in _NATIVE else _BY_DEPTH.get(depth)
    if not pa.types.is_struct(leaf) or leaf.get_field_index("x") < 0 or native is None:
        raise QueryError(f"property {name!r} is {kind}, not a geometry")
    geometry_type, expected = _NATIVE[native]
    if depth != expected:
        raise QueryError(f"property {name!r} is {kind}, not a GeoArrow {native}")
    if column.offset:
        column = pa.concat_arrays([column])  # a compact copy: offsets start at 0
    offsets = []
    values = column
    for _ in range(depth):
        offsets.append(np.asarray(values.offsets))
        values = values.values
    xy = np.column_stack(
        [pc.struct_field(values, axis).to_numpy(zero_copy_only=False) for axis in ("x", "y")]
    )
    out = np.asarray(shapely.from_ragged_array(geometry_type, xy, tuple(reversed(offsets)) or None))
    if column.null_count:
        out[column.is_null().to_numpy(zero_copy_only=False)] = None
    return out


def shapes_of_table(table: pa.Table, column: str) -> Any:
    """:func:`shapes` of ``table[column]``, with the encoding its GeoParquet metadata gives."""
    return shapes(table[column], encoding_of(table.schema, column), name=column)

"""GeoParquet geometry columns: what the ``geo`` metadata says about them, and their
values as shapely geometries in any encoding.

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

from dafab_static.arrays import one_array
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


# CRSs whose GeoParquet coordinates are longitude, latitude in degrees (GeoParquet always
# stores x = longitude, whatever the CRS's own axis order).
_LONLAT = {"OGC:CRS84", "OGC:CRS84h", "EPSG:4326", "EPSG:4979"}
_ABSENT = object()


def _geo(schema: pa.Schema) -> dict[str, Any]:
    """The ``geo`` metadata of ``schema``, or {} when it has none or it is not JSON."""
    try:
        found = json.loads((schema.metadata or {})[b"geo"])
    except (KeyError, TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _column_meta(schema: pa.Schema, column: str | None, key: str) -> Any:
    """``key`` of ``column``'s entry in the ``geo`` metadata, or ``_ABSENT``."""
    columns = _geo(schema).get("columns")
    meta = columns.get(column) if isinstance(columns, dict) else None
    return meta.get(key, _ABSENT) if isinstance(meta, dict) else _ABSENT


def primary_column(schema: pa.Schema) -> str | None:
    """The primary geometry column the ``geo`` metadata names, else ``geometry`` when
    there is one."""
    named = _geo(schema).get("primary_column")
    if isinstance(named, str) and named:
        return named
    return "geometry" if "geometry" in schema.names else None


def column_bbox(schema: pa.Schema, column: str | None) -> tuple[float, float, float, float] | None:
    """The ``bbox`` the ``geo`` metadata gives for ``column``, as (west, south, east, north)
    (a 3D box loses its z); None when it gives none."""
    found = _column_meta(schema, column, "bbox")
    if not isinstance(found, list) or len(found) not in (4, 6):
        return None
    half = len(found) // 2
    return (found[0], found[1], found[half], found[half + 1])


def encoding_of(schema: pa.Schema, column: str) -> str | None:
    """The GeoParquet ``encoding`` of ``column`` (lower case), or None when not given."""
    found = _column_meta(schema, column, "encoding")
    return None if found is _ABSENT else str(found).lower()


def crs_code(crs: dict[str, Any]) -> str | None:
    """``AUTHORITY:CODE`` of a PROJJSON CRS that has an ``id``; else None."""
    ident = crs.get("id")
    if isinstance(ident, dict) and ident.get("authority") and ident.get("code"):
        return f"{ident['authority']}:{ident['code']}"
    return None


def foreign_crs(schema: pa.Schema, column: str | None) -> str | None:
    """The name of ``column``'s CRS when the ``geo`` metadata gives one whose coordinates
    are not longitude/latitude (spatial filters, in CRS84, cannot apply to it); else None.
    No ``crs`` means OGC:CRS84; a null one (unknown) is assumed to be longitude/latitude."""
    crs = _column_meta(schema, column, "crs")
    if crs is _ABSENT or crs is None:
        return None
    if not isinstance(crs, dict):  # not PROJJSON, as GeoParquet asks; read as a name
        return None if str(crs) in _LONLAT else str(crs)
    code = crs_code(crs)
    if code in _LONLAT:
        return None
    return code or str(crs.get("name", "an unnamed CRS"))


def crs_of(schema: pa.Schema, column: str) -> Any:
    """``column``'s CRS for geopandas: ``AUTHORITY:CODE`` or the PROJJSON itself; OGC:CRS84
    when the metadata gives none (the GeoParquet default, and always so for STAC) or a
    longitude/latitude one; None when it says the CRS is unknown."""
    crs = _column_meta(schema, column, "crs")
    if crs is _ABSENT:
        return "OGC:CRS84"
    if not isinstance(crs, dict):
        return crs
    code = crs_code(crs)
    return "OGC:CRS84" if code in _LONLAT else (code or crs)


def shapes(column: pa.Array, encoding: str | None = None, *, name: str = "geometry") -> np.ndarray:
    """The geometries of ``column`` as a numpy array of shapely objects (None where null).

    Raises QueryError naming ``name`` when the column holds no geometry encoding.
    """
    column = one_array(column)
    kind = column.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return np.asarray(shapely.from_wkb(column.to_numpy(zero_copy_only=False)))
    depth, leaf = 0, kind
    while pa.types.is_list(leaf) or pa.types.is_large_list(leaf):
        depth, leaf = depth + 1, leaf.value_type
    native = encoding if encoding in _NATIVE else _BY_DEPTH.get(depth)
    xy_fields = pa.types.is_struct(leaf) and min(leaf.get_field_index(a) for a in "xy") >= 0
    if not xy_fields or native is None:
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

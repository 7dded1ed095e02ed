"""Result rows as GeoJSON Features: STAC items from stac-geoparquet rows, or plain Features.

Rows may be projected by ``fields``; what stac-geoparquet's converter needs and a projection
removed is padded in, converted, then taken out again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import shapely

from dafab_static import index_items
from dafab_static.search.geometry import primary_column, shapes_of_table

# Parquet timestamps come back with microseconds: see _short_time.
_TIMES = ("datetime", "start_datetime", "end_datetime", "created", "updated")
_NOT_PROPERTIES = {
    "type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "links", "assets",
    "collection",
}  # fmt: skip
_PAD = "dafab:pad"


def _short_time(value: str) -> str:
    """``...10:30:31.000000Z`` → ``...10:30:31Z``, ``...31.024000Z`` → ``...31.024Z``: the
    spellings STAC items use (seconds, milliseconds, microseconds), for the same instant."""
    head, dot, fraction = value[:-1].rpartition(".")
    if not dot or len(fraction) != 6:
        return value
    if fraction == "000000":
        return f"{head}Z"
    return f"{head}.{fraction[:3]}Z" if fraction.endswith("000") else value


def geometry_name(schema: pa.Schema, given: str | None) -> str:
    """The geometry column: the one asked for, else GeoParquet's primary, else "geometry"."""
    return given or primary_column(schema) or "geometry"


def features(table: pa.Table, geometry_column: str | None) -> Iterator[dict[str, Any]]:
    """The rows of ``table`` as GeoJSON Features: STAC items for stac-geoparquet rows
    (without padding, timestamps spelled as items spell them), else plain Features whose
    properties are the other columns."""
    names = table.column_names
    if "stac_version" in names and "type" in names:
        # stac-geoparquet's converter needs a bbox column and at least one property column;
        # a Fields projection may leave neither. Pad, convert, then drop the padding.
        padded = "bbox" not in names
        zeros = pa.array(np.zeros(table.num_rows))
        if padded:
            bbox = pa.StructArray.from_arrays([zeros] * 4, ["xmin", "ymin", "xmax", "ymax"])
            table = table.append_column("bbox", bbox)
        no_properties = set(names) <= _NOT_PROPERTIES
        if no_properties:
            table = table.append_column(_PAD, zeros)
        for batch in table.to_batches():
            for item in index_items.to_items(index_items.modern(batch)):
                if padded:
                    item.pop("bbox", None)
                if no_properties:
                    item["properties"].pop(_PAD, None)
                props = item.get("properties", {})
                if "datetime" not in names and props.get("datetime", 0) is None:
                    del props["datetime"]  # projected away by Fields, not null
                for key in _TIMES:
                    value = props.get(key)
                    if type(value) is str and value.endswith("000Z"):
                        props[key] = _short_time(value)
                yield item
        return
    # Plain GeoParquet: the other columns are the feature's properties.
    geometry = geometry_name(table.schema, geometry_column)
    geoms: list[Any] = [None] * table.num_rows
    if geometry in names:
        shapes = shapes_of_table(table, geometry)
        geoms = [orjson.loads(g) if g is not None else None for g in shapely.to_geojson(shapes)]
        table = table.drop_columns([geometry])
    for row, geom in zip(table.to_pylist(), geoms, strict=True):
        feature: dict[str, Any] = {"type": "Feature", "geometry": geom, "properties": row}
        if "id" in row:
            feature["id"] = row.pop("id")
        yield feature

"""What search reads from a GeoParquet ``geo`` metadata: primary column, encoding, CRS."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest

from dafab_static.search import geometry

MERCATOR = {"type": "ProjectedCRS", "name": "WGS 84 / Pseudo-Mercator",
            "id": {"authority": "EPSG", "code": 3857}}  # fmt: skip


def _schema(geo: Any, names: tuple[str, ...] = ("geom",)) -> pa.Schema:
    fields = [pa.field(n, pa.binary()) for n in names]
    return pa.schema(fields, metadata=None if geo is None else {"geo": json.dumps(geo)})


@pytest.mark.parametrize(
    ("crs", "foreign", "for_geopandas"),
    [
        ("absent", None, "OGC:CRS84"),  # GeoParquet's default
        (None, None, None),  # unknown: assumed longitude/latitude, and said so to geopandas
        ({"id": {"authority": "OGC", "code": "CRS84"}}, None, "OGC:CRS84"),
        ({"id": {"authority": "EPSG", "code": 4326}}, None, "OGC:CRS84"),  # x = lon in GeoParquet
        (MERCATOR, "EPSG:3857", "EPSG:3857"),
        ({"type": "ProjectedCRS", "name": "Local grid"}, "Local grid", None),
        ("EPSG:32631", "EPSG:32631", "EPSG:32631"),  # a name, not PROJJSON
    ],
)
def test_crs(crs: Any, foreign: str | None, for_geopandas: Any) -> None:
    column: dict[str, Any] = {"encoding": "WKB"}
    if crs != "absent":
        column["crs"] = crs
    schema = _schema({"version": "1.1.0", "primary_column": "geom", "columns": {"geom": column}})
    assert geometry.foreign_crs(schema, "geom") == foreign
    expected = crs if for_geopandas is None and isinstance(crs, dict) else for_geopandas
    assert geometry.crs_of(schema, "geom") == expected


def test_primary_column_and_encoding() -> None:
    geo = {"version": "1.1.0", "primary_column": "geom", "columns": {"geom": {"encoding": "Point"}}}
    schema = _schema(geo)
    assert geometry.primary_column(schema) == "geom"
    assert geometry.encoding_of(schema, "geom") == "point"
    assert geometry.encoding_of(schema, "other") is None
    # No metadata, or metadata that is not JSON: a column named geometry, else none.
    assert geometry.primary_column(_schema(None, ("geometry",))) == "geometry"
    assert geometry.primary_column(_schema(None)) is None
    broken = pa.schema([pa.field("geometry", pa.binary())], metadata={"geo": "{not json"})
    assert geometry.primary_column(broken) == "geometry"
    assert geometry.foreign_crs(broken, "geometry") is None

"""GeoParquet 1.1's native GeoArrow encodings: searched and returned like WKB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dafab_static import QueryError, search

XY = pa.struct([("x", pa.float64()), ("y", pa.float64())])


def _xy(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"x": x, "y": y} for x, y in pairs]


def _write(path: Path, geometry: pa.Array, encoding: str | None) -> str:
    table = pa.table({"id": [f"f{i}" for i in range(len(geometry))], "geometry": geometry})
    column: dict[str, Any] = {"encoding": encoding} if encoding else {"encoding": "WKB"}
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    metadata = {"geo": json.dumps(geo)} if encoding else None
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return str(path)


def _ids(path: str, cql2: str) -> list[str]:
    return [f["id"] for f in search(path, filter=cql2)]


def test_points_with_a_null(tmp_path: Path) -> None:
    points = pa.array([*_xy((0, 0)), None, *_xy((5, 5))], XY)
    path = _write(tmp_path / "points.parquet", points, "point")
    assert _ids(path, "S_INTERSECTS(geometry, BBOX(4, 4, 6, 6))") == ["f2"]
    assert _ids(path, "geometry IS NULL") == ["f1"]
    features = {f["id"]: f["geometry"] for f in search(path)}
    assert features == {
        "f0": {"type": "Point", "coordinates": [0.0, 0.0]},
        "f1": None,
        "f2": {"type": "Point", "coordinates": [5.0, 5.0]},
    }


def test_polygons_keep_their_holes(tmp_path: Path) -> None:
    outer = _xy((4, 4), (6, 4), (6, 6), (4, 6), (4, 4))
    hole = _xy((4.5, 4.5), (5.5, 4.5), (5.5, 5.5), (4.5, 5.5), (4.5, 4.5))
    square = _xy((0, 0), (1, 0), (1, 1), (0, 1), (0, 0))
    polygons = pa.array([[square], [outer, hole]], pa.list_(pa.list_(XY)))
    path = _write(tmp_path / "polygons.parquet", polygons, "polygon")
    assert _ids(path, "S_INTERSECTS(geometry, POINT(5 5))") == []  # in the hole
    assert _ids(path, "S_INTERSECTS(geometry, POINT(4.2 4.2))") == ["f1"]
    assert _ids(path, "S_WITHIN(geometry, BBOX(-1, -1, 2, 2))") == ["f0"]


def test_the_metadata_tells_a_multipoint_from_a_linestring(tmp_path: Path) -> None:
    lists = pa.array([_xy((0, 0), (10, 10))], pa.list_(XY))
    as_points = _write(tmp_path / "multipoint.parquet", lists, "multipoint")
    assert _ids(as_points, "S_INTERSECTS(geometry, POINT(5 5))") == []  # two points only
    assert next(iter(search(as_points)))["geometry"]["type"] == "MultiPoint"
    unlabelled = _write(tmp_path / "plain.parquet", lists, None)
    assert _ids(unlabelled, "S_INTERSECTS(geometry, POINT(5 5))") == ["f0"]  # a line


def test_multipolygons_sliced_into_row_groups(tmp_path: Path) -> None:
    def box(x: float, y: float) -> list[list[dict[str, float]]]:
        return [_xy((x, y), (x + 1, y), (x + 1, y + 1), (x, y + 1), (x, y))]

    rows = [[box(i, 0), box(i, 10)] for i in range(10)]
    multipolygons = pa.array(rows, pa.list_(pa.list_(pa.list_(XY))))
    path = tmp_path / "multipolygons.parquet"
    table = pa.table({"id": [f"f{i}" for i in range(10)], "geometry": multipolygons})
    column = {"geometry": {"encoding": "multipolygon"}}
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": column}
    pq.write_table(table.replace_schema_metadata({"geo": json.dumps(geo)}), path, row_group_size=3)
    assert _ids(str(path), "S_INTERSECTS(geometry, POINT(7.5 10.5))") == ["f7"]


def test_a_list_that_is_no_geometry_is_a_query_error(tmp_path: Path) -> None:
    path = tmp_path / "tags.parquet"
    pq.write_table(pa.table({"id": ["a"], "geometry": [["x", "y"]]}), path)
    with pytest.raises(QueryError, match=r"'geometry' is list<element: string>, not a geometry"):
        search(str(path), filter="S_INTERSECTS(geometry, POINT(0 0))").count()


def test_a_struct_without_y_is_no_geometry(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    xs = pa.array([{"x": 1.0}], pa.struct([("x", pa.float64())]))
    pq.write_table(pa.table({"id": ["a"], "geometry": xs}), path)
    with pytest.raises(QueryError, match=r"'geometry' is struct<x: double>, not a geometry"):
        search(str(path), filter="S_INTERSECTS(geometry, POINT(0 0))").count()

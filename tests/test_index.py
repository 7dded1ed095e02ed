from __future__ import annotations

import copy
import io
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from dafab_static import arrow_schemas, index, index_items
from tests.padding import drop_padding


def _item(i: int, lon: float, lat: float, *, kind: str = "Polygon") -> dict[str, Any]:
    d = 0.01
    ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
    geometry: dict[str, Any] = {"type": "Polygon", "coordinates": [ring]}
    if kind == "MultiPolygon":
        geometry = {"type": "MultiPolygon", "coordinates": [[ring]]}
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": f"item-{i}",
        "collection": "c",
        "geometry": geometry,
        "bbox": [lon, lat, lon + d, lat + d],
        "properties": {"datetime": f"2024-07-{1 + i % 28:02d}T10:00:00Z", "eo:cloud_cover": i},
        "links": [],
        "assets": {"data": {"href": f"https://x/{i}.tif", "roles": ["data"]}},
    }


def test_hilbert_curve_visits_neighbouring_cells() -> None:
    n = 4
    xs, ys = np.meshgrid(np.arange(1 << n), np.arange(1 << n))
    x, y = xs.ravel(), ys.ravel()
    keys = index.hilbert_key((x + 0.5) / (1 << n) * 360 - 180, (y + 0.5) / (1 << n) * 180 - 90, n)
    assert sorted(keys.tolist()) == list(range(1 << (2 * n)))
    order = np.argsort(keys)
    steps = np.abs(np.diff(x[order])) + np.abs(np.diff(y[order]))
    assert set(steps.tolist()) == {1}


@pytest.mark.parametrize(("flavor", "byte_order"), [("iso", 1), ("iso", 0), ("extended", 0)])
def test_geometry_types_name_z_per_type(flavor: str, byte_order: int) -> None:
    import shapely

    square = shapely.box(0, 0, 1, 1)
    geometries = [shapely.Point(1, 2, 3), square, shapely.Point(5, 6),
                  shapely.MultiPolygon([square]), shapely.box(2, 2, 3, 3)]  # fmt: skip
    wkb = shapely.to_wkb(geometries, flavor=flavor, byte_order=byte_order).tolist()
    table = pa.table({"geometry": pa.array([*wkb, None], pa.binary())})
    assert index.geometry_types(table) == ["MultiPolygon", "Point", "Point Z", "Polygon"]
    polygon_z = shapely.Polygon([(0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 0, 1)])
    only_z = pa.table({"geometry": shapely.to_wkb([polygon_z], flavor=flavor).tolist()})
    assert index.geometry_types(only_z) == ["Polygon Z"]
    assert index.geometry_types(pa.table({"geometry": pa.array([None], pa.binary())})) == []


def test_rows_are_in_hilbert_order_and_metadata_follows_the_specs() -> None:
    rng = np.random.default_rng(1)
    items = [
        _item(i, float(rng.uniform(-170, 170)), float(rng.uniform(-80, 80))) for i in range(200)
    ]
    items[3] = _item(3, 10.0, 10.0, kind="MultiPolygon")
    table = index.to_table(items)
    data, info = index.encode(table, {"id": "c", "title": "C"}, path="index/c/part.parquet")
    pf = pq.ParquetFile(io.BytesIO(data))
    meta = pf.schema_arrow.metadata
    geo = json.loads(meta[b"geo"])
    assert geo["version"] == "1.1.0"
    col = geo["columns"]["geometry"]
    assert col["geometry_types"] == ["MultiPolygon", "Polygon"]
    assert col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    assert col["bbox"] == pytest.approx(list(info.bbox))
    stac = json.loads(meta[b"stac-geoparquet"])
    assert stac["version"] == "1.0.0"  # what the stac-geoparquet metadata schema allows
    assert stac["collections"] == {"c": {"id": "c", "title": "C"}}
    read = pf.read()
    centres = [
        ((b["xmin"] + b["xmax"]) / 2, (b["ymin"] + b["ymax"]) / 2) for b in read["bbox"].to_pylist()
    ]
    keys = index.hilbert_key(np.array([c[0] for c in centres]), np.array([c[1] for c in centres]))
    assert np.all(np.diff(keys) >= 0)
    assert info.rows == 200
    assert info.start_datetime == "2024-07-01T10:00:00Z"
    assert info.end_datetime == "2024-07-28T10:00:00Z"
    assert info.bytes == len(data)
    assert info.checksum.startswith("1220") and len(info.checksum) == 68


def test_encoding_is_deterministic() -> None:
    items = [_item(i, i * 1.0, i * 0.5) for i in range(50)]
    a, _ = index.encode(index.to_table(items), {"id": "c"}, path="p")
    b, _ = index.encode(index.to_table(items), {"id": "c"}, path="p")
    assert a == b


def test_only_repeating_columns_are_dictionary_encoded() -> None:
    """ids, geometries, bboxes, times, embeddings and hrefs rarely repeat: as dictionaries
    (Parquet falls back only past 1 MB) they were slower to write and read, and larger."""
    items = [_item(i, i * 1.0, i * 0.5) for i in range(50)]
    for i, it in enumerate(items):
        it["properties"]["platform"] = "sentinel-2a"
        it["properties"]["emb:m"] = [float(i)] * 4
        it["assets"] = {"data": {"href": f"s3://b/{i}.tif", "type": "image/tiff"}}
    data, _ = index.encode(index.to_table(items), {"id": "c"}, path="p")
    group = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0)
    encodings = {
        group.column(j).path_in_schema: group.column(j).encodings for j in range(group.num_columns)
    }
    plain = ["id", "geometry", "bbox.xmin", "datetime", "emb:m.list.element", "assets.data.href"]
    for name in plain:
        assert "RLE_DICTIONARY" not in encodings[name], name
    for name in ("platform", "assets.data.type", "type", "collection"):
        assert "RLE_DICTIONARY" in encodings[name], name
    assert index.dictionary_columns(pa.schema([("m", pa.map_(pa.string(), pa.int64()))])) == [
        "m.key_value.key", "m.key_value.value"]  # fmt: skip


def test_conform_adds_missing_columns_as_nulls() -> None:
    t1 = index.to_table([_item(1, 0, 0)])
    extra = _item(2, 1, 1)
    extra["properties"]["platform"] = "sentinel-2a"
    t2 = index.to_table([extra])
    unified = arrow_schemas.unify([t1.schema, t2.schema])
    out = arrow_schemas.conform(t1, unified)
    assert out.schema.names == unified.names
    assert out["platform"].to_pylist() == [None]


def test_manifest_lists_paths_relative_to_itself() -> None:
    part = index.PartitionInfo(
        "index/c/year=2024/month=07/items.parquet",
        3,
        (0, 1, 2, 3),
        "2024-07-01T00:00:00Z",
        "2024-07-02T00:00:00Z",
        10,
        "1220ab",
    )
    doc = json.loads(index.manifest("c", [part], base="index/c"))
    assert doc["rows"] == 3 and doc["bytes"] == 10
    assert doc["partitions"][0]["path"] == "year=2024/month=07/items.parquet"
    assert doc["partitions"][0]["bbox"] == [0, 1, 2, 3]


def test_antimeridian_item_widens_the_file_bbox_to_all_longitudes() -> None:
    item = _item(1, 179.5, 10)
    item["bbox"] = [179.5, 10.0, -179.5, 10.01]
    _, info = index.encode(index.to_table([item, _item(2, 170, 5)]), {"id": "c"}, path="p")
    assert info.bbox == (-180.0, 5.0, 180.0, 10.01)


def test_to_table_equals_stac_geoparquets_own_conversion() -> None:
    from stac_geoparquet.arrow import parse_stac_items_to_arrow

    items = [_item(i, i * 0.7, i * 0.3) for i in range(40)]
    items[1]["stac_extensions"] = ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"]
    items[5]["properties"]["proj:geometry"] = items[5]["geometry"]
    items[6]["assets"]["data"]["proj:geometry"] = items[6]["geometry"]
    ours = index.to_table(items)
    theirs = parse_stac_items_to_arrow(items).read_all()
    assert ours.equals(theirs.take(index.hilbert_order(theirs)))
    assert items[5]["properties"]["proj:geometry"]["type"] == "Polygon"  # inputs untouched


def test_core_columns_have_the_types_the_specs_name() -> None:
    """Integer bboxes and items that all declare no extension: bbox stays double (GeoParquet
    covering), stac_extensions a list of strings, not what Arrow infers from the JSON."""
    items = [_item(i, 10, 45) for i in range(3)]
    for item in items:
        item["bbox"] = [10, 45, 11, 46]
        item["geometry"]["coordinates"] = [[[10, 45], [11, 45], [11, 46], [10, 46], [10, 45]]]
    table = index.to_table(items)
    assert table.schema.field("bbox").type == pa.struct(
        [(name, pa.float64()) for name in ("xmin", "ymin", "xmax", "ymax")]
    )
    assert table.schema.field("stac_extensions").type == pa.list_(pa.string())
    assert table["bbox"].to_pylist()[0] == {"xmin": 10.0, "ymin": 45.0, "xmax": 11.0, "ymax": 46.0}


def test_to_items_equals_stac_geoparquets_own_reader() -> None:
    from stac_geoparquet.arrow import stac_table_to_items

    items = [_item(i, i * 0.7, i * 0.3) for i in range(30)]
    for it in items:
        it["properties"]["proj:geometry"] = it["geometry"]
        it["assets"]["data"]["proj:geometry"] = it["geometry"]
    items[9]["assets"]["extra"] = {"href": "https://x/e.tif", "roles": ["data"]}
    table = index.to_table(items)
    ours = [it for batch in table.to_batches() for it in index_items.to_items(batch)]
    assert ours == [drop_padding(it) for it in stac_table_to_items(table)]
    assert {it["id"] for it in ours} == {it["id"] for it in items}
    # Padding is gone: only item 9 ever had the "extra" asset.
    assert [it["id"] for it in ours if "extra" in it["assets"]] == ["item-9"]


def test_to_items_handles_proj_geometry_on_some_rows_only() -> None:
    # stac-geoparquet 0.8's own reader raises AttributeError on the null rows here.
    items = [_item(i, i * 0.7, i * 0.3) for i in range(3)]
    items[1]["properties"]["proj:geometry"] = items[1]["geometry"]
    back = index_items.to_items(index.to_table(items).to_batches()[0])
    by_id = {it["id"]: it for it in back}
    assert by_id["item-1"]["properties"]["proj:geometry"] == items[1]["geometry"]
    assert "proj:geometry" not in by_id["item-0"]["properties"]


def test_to_items_round_trips_real_sentinel2_rows(shared_data) -> None:  # type: ignore[no-untyped-def]
    from stac_geoparquet.arrow import stac_table_to_items

    table = pq.read_table(shared_data / "stac-items" / "pc-sentinel-2-l2a-1000.parquet").slice(
        0, 200
    )
    ours = [it for batch in table.to_batches() for it in index_items.to_items(batch)]
    assert ours == [drop_padding(it) for it in stac_table_to_items(table)]
    assert len(ours) == 200


def test_to_items_drops_padding_at_every_depth_of_a_sliced_batch() -> None:
    """Nulls a column adds (fields other rows have) go; values items had stay. Sliced
    batches (a search's row selection) and lists that are null on some rows included."""
    items = [_item(i, i * 0.7, i * 0.3) for i in range(6)]
    items[1]["assets"]["data"]["eo:bands"] = [{"name": "b1"}, {"name": "b2", "gsd": 10.0}]
    items[2]["assets"]["data"]["eo:bands"] = [{"name": "b3", "center_wavelength": 0.49}]
    items[3]["links"] = [{"rel": "via", "href": "https://x/3", "title": "three"}]
    items[4]["links"] = [{"rel": "via", "href": "https://x/4"}]
    items[4]["assets"]["thumb"] = {"href": "https://x/t.png"}
    del items[5]["properties"]["datetime"]
    span = {"start_datetime": "2024-07-01T00:00:00Z", "end_datetime": "2024-07-02T00:00:00Z"}
    items[5]["properties"].update(span)
    table = index.to_table(items)
    expected = {it["id"]: it for it in items}
    expected["item-5"]["properties"]["datetime"] = None  # an interval stands in
    for start in range(len(items)):
        batch = table.slice(start).combine_chunks().to_batches()[0]
        for got in index_items.to_items(batch):
            want = expected[got["id"]]
            assert got["assets"] == want["assets"]
            assert got["links"] == want["links"]
            # Parquet keeps microseconds: the same instants, spelled longer.
            props = {
                k: v.replace(".000000Z", "Z") if isinstance(v, str) else v
                for k, v in got["properties"].items()
            }
            assert props == want["properties"]


def test_proj_geometry_is_declared_as_stac_geoparquet_declares_it() -> None:
    from stac_geoparquet.arrow._to_parquet import create_parquet_metadata

    items = [_item(i, i * 0.7, i * 0.3) for i in range(3)]
    items[1]["properties"]["proj:geometry"] = items[1]["geometry"]
    table = index.to_table(items)
    data, _ = index.encode(table, {"id": "c"}, path="p")
    geo = json.loads(pq.ParquetFile(io.BytesIO(data)).schema_arrow.metadata[b"geo"])
    theirs = json.loads(create_parquet_metadata(table.schema, schema_version="1.1.0")[b"geo"])
    assert geo["columns"]["proj:geometry"] == theirs["columns"]["proj:geometry"]
    assert geo["columns"]["proj:geometry"]["crs"] is None  # per-row CRSs: unknown, not CRS84
    assert geo["primary_column"] == "geometry"
    # Without the column, no declaration.
    plain, _ = index.encode(index.to_table(items[:1]), {"id": "c"}, path="p")
    assert (
        "proj:geometry"
        not in json.loads(pq.ParquetFile(io.BytesIO(plain)).schema_arrow.metadata[b"geo"])[
            "columns"
        ]
    )


_FRESH_READ = """
import sys

import pyarrow.parquet as pq

from dafab_static import index_items

table = pq.read_table(sys.argv[1])
ours = [it for batch in table.to_batches() for it in index_items.to_items(batch)]
print("stac_geoparquet" in sys.modules, "pystac" in sys.modules)
from stac_geoparquet.arrow import stac_table_to_items  # noqa: E402

sys.path.insert(0, sys.argv[2])
from tests.padding import drop_padding  # noqa: E402

print(ours == [drop_padding(it) for it in stac_table_to_items(table)])
"""


def test_reading_stac_geoparquet_does_not_import_the_package(tmp_path: Any) -> None:
    """The conversions load from stac-geoparquet's file, without its pandas-heavy package
    init, and give what its own reader gives."""
    import subprocess
    import sys
    from pathlib import Path

    items = [_item(i, i * 0.7, i * 0.3) for i in range(30)]
    path = tmp_path / "items.parquet"
    pq.write_table(index.to_table(items), path)
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", _FRESH_READ, str(path), repo],
                         capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert out.stdout.split() == ["False", "False", "True"]


def test_conversions_fall_back_to_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    index_items._from_arrow.cache_clear()
    monkeypatch.delitem(sys.modules, "stac_geoparquet")  # as in a process that never read it
    try:
        assert index_items._from_arrow().__name__ == "dafab_static._stac_geoparquet_from_arrow"
        index_items._from_arrow.cache_clear()
        monkeypatch.setattr("os.path.isfile", lambda path: False)  # a release moved the file
        assert index_items._from_arrow().__name__ == "stac_geoparquet.arrow._from_arrow"
    finally:
        index_items._from_arrow.cache_clear()


def test_bboxes_are_widened_to_cover_their_geometry() -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}
    items = [
        {"id": "ok", "geometry": square, "bbox": [0.0, 0.0, 2.0, 2.0]},
        {"id": "short", "geometry": square, "bbox": [0.5, 0.0, 1.5, 2.0]},
        {"id": "3d", "geometry": square, "bbox": [0.0, 0.5, -5.0, 2.0, 1.5, 9.0]},
        {"id": "rounded", "geometry": square, "bbox": [1e-9, 0.0, 2.0, 2.0]},
        # crosses the antimeridian: longitudes wrap, only latitudes are checked
        {"id": "wrap", "geometry": square, "bbox": [179.0, 0.0, -179.0, 1.0]},
    ]
    geometries = index.parse_geometries([it["geometry"] for it in items])
    widened = index.cover_geometries(items, geometries)
    assert [items[i]["id"] for i in widened] == ["short", "3d", "wrap"]
    assert items[1]["bbox"] == [0.0, 0.0, 2.0, 2.0]
    assert items[2]["bbox"] == [0.0, 0.0, -5.0, 2.0, 2.0, 9.0]  # z kept
    # within rounding: widened too, without a warning (the covering must contain it)
    assert items[3]["bbox"] == [0.0, 0.0, 2.0, 2.0]
    assert items[4]["bbox"] == [179.0, 0.0, -179.0, 2.0]


def test_rings_are_oriented_by_the_right_hand_rule_in_json_and_wkb() -> None:
    """RFC 7946 3.1.6: exterior rings counterclockwise, holes clockwise. Only the order of
    the positions changes; a right polygon, a point and a line are left as they are."""
    clockwise = [[0, 0], [0, 2], [2, 2], [2, 0], [0, 0]]
    hole_ccw = [[0.5, 0.5], [1.5, 0.5], [1.5, 1.5], [0.5, 1.5], [0.5, 0.5]]
    right = [[0, 0, 5], [1, 0, 5], [1, 1, 5], [0, 1, 5], [0, 0, 5]]
    items = copy.deepcopy(
        [
            {"geometry": {"type": "Polygon", "coordinates": [clockwise, hole_ccw]}},
            {"geometry": {"type": "MultiPolygon", "coordinates": [[right], [clockwise]]}},
            {"geometry": {"type": "Polygon", "coordinates": [right]}},
            {"geometry": {"type": "Point", "coordinates": [1, 1]}},
            {"geometry": {"type": "LineString", "coordinates": clockwise}},
        ]
    )
    geometries = index.parse_geometries([it["geometry"] for it in items])
    assert index.orient_rings(items, geometries) == [0, 1]
    assert items[0]["geometry"]["coordinates"] == [clockwise[::-1], hole_ccw[::-1]]
    assert items[1]["geometry"]["coordinates"] == [[right], [clockwise[::-1]]]
    assert items[2]["geometry"]["coordinates"] == [right]
    assert items[4]["geometry"]["coordinates"] == clockwise
    for item, geometry in zip(items, geometries, strict=True):
        # the WKB the index writes holds what the JSON says, position for position
        assert shapely.equals_exact(geometry, shapely.from_geojson(json.dumps(item["geometry"])),
                                    tolerance=0)  # fmt: skip
    assert index.orient_rings(items, geometries) == []

"""SOURCE forms: catalog roots, any stac-geoparquet file/folder/glob, plain GeoParquet."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from dafab_static import InputError, QueryError, StorageError, index, search
from tests.cli.runner import cli
from tests.search.conftest import ids


def test_catalog_root_as_folder_file_and_file_url(catalog: Path) -> None:
    expected = ids(search(str(catalog), filter="eo:cloud_cover < 5"))
    assert len(expected) == 5 + 5 + 3  # gen 0..4, other 100..104, span/dateline 200..202
    assert ids(search(str(catalog / "catalog.json"), filter="eo:cloud_cover < 5")) == expected


def test_index_folder_and_glob(catalog: Path) -> None:
    folder = catalog / "index" / "gen"
    assert search(str(folder)).count() == 40 + 4  # gen items plus span, dateline, cloudless
    glob = str(catalog / "index" / "*" / "year=2024" / "month=07" / "*.parquet")
    july = ids(search(glob))
    assert "dateline" in july and "gen-0000001" in july and "span-september" not in july


def test_folder_listing_skips_hidden_and_underscore_names(catalog: Path, tmp_path: Path) -> None:
    # What pyarrow's dataset discovery skips: a writer's temporary or staging files.
    folder = tmp_path / "index"
    shutil.copytree(catalog / "index" / "gen", folder)
    first = sorted(folder.rglob("*.parquet"))[0]
    (folder / "_staging").mkdir()
    shutil.copy(first, folder / "_staging" / "items.parquet")
    shutil.copy(first, first.parent / ".items.parquet.tmp.parquet")
    assert search(str(folder)).count() == 40 + 4


def test_files_written_by_stac_geoparquet_and_rustac(
    tmp_path: Path, items: list[dict[str, Any]]
) -> None:
    import rustac
    import stac_geoparquet.arrow

    plain = [copy.deepcopy(it) for it in items if it["collection"] == "gen"]
    sg = tmp_path / "stac-geoparquet.parquet"
    stac_geoparquet.arrow.to_parquet(stac_geoparquet.arrow.parse_stac_items_to_arrow(plain), sg)
    rs = tmp_path / "rustac.parquet"
    import asyncio

    async def write() -> None:
        await rustac.write(str(rs), plain)

    asyncio.run(write())
    for path in (sg, rs):
        got = ids(search(str(path), bbox=[10.0, 45.0, 10.3, 45.05], filter="eo:cloud_cover >= 1"))
        assert got == {"gen-0000001", "gen-0000002", "gen-0000003"}, path.name


def test_plain_geoparquet_with_a_named_geometry_column(tmp_path: Path) -> None:
    points = shapely.points([[0, 0], [5, 5], [10, 10]])
    table = pa.table(
        {
            "name": ["a", "b", "c"],
            "depth": [1.5, 20.0, 300.0],
            "geom": pa.array(shapely.to_wkb(points).tolist(), pa.binary()),
        }
    )
    path = tmp_path / "plain.parquet"
    pq.write_table(table, path)
    result = search(str(path), geometry_column="geom", bbox=[4, 4, 11, 11], filter="depth > 10")
    features = list(result)
    assert [f["properties"]["name"] for f in features] == ["b", "c"]
    assert features[0]["geometry"] == {"type": "Point", "coordinates": [5.0, 5.0]}
    for name in ("geom", "geometry"):  # the column's own name, or the CQL2 "geometry"
        at_origin = search(
            str(path), geometry_column="geom", filter=f"S_INTERSECTS({name}, POINT(0 0))"
        )
        assert [f["properties"]["name"] for f in at_origin] == ["a"]


_MERCATOR = {"name": "WGS 84 / Pseudo-Mercator", "id": {"authority": "EPSG", "code": 3857}}


def _geoparquet(path: Path, columns: dict[str, Any], geometry: str, crs: Any = "absent") -> str:
    """Write ``columns`` as GeoParquet whose primary geometry is the WKB column
    ``geometry``, with ``crs`` in its metadata (left out when "absent"); return the path."""
    meta: dict[str, Any] = {"encoding": "WKB"}
    if crs != "absent":
        meta["crs"] = crs
    geo = {"version": "1.1.0", "primary_column": geometry, "columns": {geometry: meta}}
    pq.write_table(pa.table(columns).replace_schema_metadata({"geo": json.dumps(geo)}), path)
    return str(path)


def test_plain_geoparquet_output_uses_the_geo_metadata_geometry(tmp_path: Path) -> None:
    """The ``geo`` metadata names the geometry column (no ``geometry_column`` given): it is
    the feature's GeoJSON geometry; another binary column is base64 text in JSON output."""
    points = shapely.points([[0, 0], [5, 5]])
    columns = {"fid": [1, 2], "checksum": [b"\x00\xff", b"ok"], "geom": shapely.to_wkb(points)}
    path = _geoparquet(tmp_path / "plain.parquet", columns, "geom")
    features = list(search(path, filter="S_INTERSECTS(geom, POINT(5 5))"))
    assert features == [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [5.0, 5.0]},
            "properties": {"fid": 2, "checksum": b"ok"},
        }
    ]
    out = tmp_path / "out.ndjson"
    run = cli("search", path, "--format", "ndjson", "-o", str(out))
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [f["geometry"]["coordinates"] for f in lines] == [[0.0, 0.0], [5.0, 5.0]]
    assert [f["properties"]["checksum"] for f in lines] == ["AP8=", "b2s="]
    # No id column: --format ids says so, where it printed nothing and succeeded.
    ids_run = cli("search", path, "--format", "ids")
    assert ids_run.returncode == 1 and ids_run.stdout == ""
    assert "--format ids: the matching features have no id" in ids_run.stderr
    assert "Traceback" not in ids_run.stderr


def test_a_file_in_a_projected_crs_refuses_spatial_filters(tmp_path: Path) -> None:
    """CQL2 geometries and the bbox parameter are CRS84: against metres they would match
    nothing, silently. Filters without geometry still work."""
    points = shapely.points([[0, 0], [556597.45, 557305.26]])  # (0, 0) and (5°, 5°) in metres
    columns = {"id": ["a", "b"], "geometry": shapely.to_wkb(points)}
    path = _geoparquet(tmp_path / "mercator.parquet", columns, "geometry", _MERCATOR)
    for spatial in (
        {"bbox": [4, 4, 6, 6]},
        {"filter": "id = 'b' OR S_INTERSECTS(geometry, POINT(5 5))"},
    ):
        with pytest.raises(QueryError, match=r"mercator.parquet: its geometries are in EPSG:3857"):
            search(path, **spatial).count()
    assert ids(search(path, filter="id = 'b'")) == {"b"}
    # EPSG:4326 is longitude/latitude in GeoParquet: spatial filters apply.
    epsg4326 = {"id": {"authority": "EPSG", "code": 4326}}
    lonlat = _geoparquet(tmp_path / "lonlat.parquet", columns, "geometry", epsg4326)
    assert ids(search(lonlat, bbox=[-1, -1, 1, 1])) == {"a"}


def test_geodataframe_of_plain_geoparquet_keeps_its_geometry_column_and_crs(
    tmp_path: Path,
) -> None:
    geopandas = pytest.importorskip("geopandas", reason="the optional [geo] extra is not installed")
    points = shapely.points([[1000.0, 2000.0]])
    columns = {"fid": [7], "geom": shapely.to_wkb(points)}
    path = _geoparquet(tmp_path / "plain.parquet", columns, "geom", _MERCATOR)
    frame = search(path).to_geodataframe()
    assert isinstance(frame, geopandas.GeoDataFrame)
    assert frame.crs.to_epsg() == 3857  # not relabelled CRS84
    assert list(frame.columns) == ["fid", "geometry"]
    assert frame.geometry.iloc[0].equals(points[0])


def test_missing_and_unreadable_sources(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        search(str(tmp_path / "nope.parquet"))
    with pytest.raises(StorageError, match="cannot read the catalog"):
        search(str(tmp_path / "nowhere"))
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "catalog.json").write_text(
        json.dumps(
            {"type": "Catalog", "id": "x", "description": "x", "stac_version": "1.1.0", "links": []}
        )
    )
    with pytest.raises(InputError, match="no stac-geoparquet index found"):
        search(str(tmp_path / "cat"))
    with pytest.raises(InputError, match="matches no Parquet file"):
        search(str(tmp_path / "*.parquet"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(QueryError, match=r"bad\.parquet: not a Parquet file"):
        search(str(tmp_path / "bad.parquet")).count()
    with pytest.raises(InputError, match="a web server cannot be listed"):
        search("http://127.0.0.1:9/index/*.parquet")
    with pytest.raises(StorageError, match=r"127\.0\.0\.1:9"):
        search("http://127.0.0.1:9/catalog.json")


def test_row_group_statistics_prune(tmp_path: Path) -> None:
    """A file of many row groups, rows in spatial order: a small bbox decodes few of them."""
    import stac_geoparquet.arrow

    from dafab_static.search.files import CACHE
    from tests.builds.generate import item

    table = stac_geoparquet.arrow.parse_stac_items_to_arrow([item(i) for i in range(400)])
    table = pa.Table.from_batches(list(table))
    # GeoParquet 1.1 metadata with the file bbox, which says no item crosses the antimeridian.
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"],
                                 "bbox": [10.0, 45.0, 19.95, 45.35]}},
    }  # fmt: skip
    table = table.replace_schema_metadata({"geo": json.dumps(geo)})
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=20)  # 20 groups, each 20 consecutive items
    assert pq.ParquetFile(path).metadata.num_row_groups == 20

    def cost(**query: object) -> tuple[int, int]:
        CACHE.clear()
        result = search(str(path), **query)  # type: ignore[arg-type]
        return result.count(), result.stats.bytes

    # Items 0..99 lie on one row of longitudes (lat 45.0); the box holds items 0 and 1 only.
    assert ids(search(str(path), bbox=[10.0, 45.0, 10.12, 45.04])) == {"gen-0000000", "gen-0000001"}
    # Bytes beyond the footer: an id no row group can hold reads the footer alone.
    footer = cost(ids=["zzz"])[1]
    # Wide: a triangle over every item (a rectangle around an item's bbox needs no geometry
    # decoded at all, see cql2/spatial.py), so every group's geometries are read.
    triangle = {"type": "Polygon", "coordinates": [[[0, 0], [90, 0], [0, 90], [0, 0]]]}
    corner, wide = cost(bbox=[10.0, 45.0, 10.12, 45.04]), cost(intersects=triangle)
    assert (corner[0], wide[0]) == (2, 400)
    assert corner[1] - footer < (wide[1] - footer) / 10  # 1 row group of 20
    # Ranges on any column prune too: only one group holds ids >= gen-0000380.
    few = cost(filter="eo:cloud_cover < 5 AND id >= 'gen-0000380'")
    many = cost(filter="eo:cloud_cover < 5 AND id >= 'gen'")
    assert (few[0], many[0]) == (0, 20)
    assert few[1] - footer < (many[1] - footer) / 10


def test_foreign_file_with_an_item_across_the_antimeridian(
    tmp_path: Path, items: list[dict[str, Any]]
) -> None:
    """No GeoParquet bbox says whether some item crosses: longitudes must not prune blindly."""
    import stac_geoparquet.arrow

    table = pa.Table.from_batches(
        list(stac_geoparquet.arrow.parse_stac_items_to_arrow(copy.deepcopy(items)))
    )
    path = tmp_path / "foreign.parquet"
    pq.write_table(table, path, row_group_size=8)
    assert ids(search(str(path), bbox=[-179.9, -17, -179.8, -16])) == {"dateline"}
    assert ids(search(str(path), bbox=[179.8, -17, -179.8, -16.9])) == {"dateline"}


def test_a_pandas_era_stac_geoparquet_file(tmp_path: Path, items: list[dict[str, Any]]) -> None:
    """stac-geoparquet before 0.6 wrote ``bbox`` as a list and a pandas index column (its
    own test file ``naip.parquet`` is one): searches return its items, bbox as STAC's
    array, and no pandas column (item output raised an AssertionError, a traceback)."""
    import stac_geoparquet.arrow

    plain = [copy.deepcopy(it) for it in items if it["collection"] == "gen"][:5]
    table = stac_geoparquet.arrow.parse_stac_items_to_arrow(plain).read_all()
    bbox = table["bbox"].combine_chunks()
    as_list = pa.array([list(box.values()) for box in bbox.to_pylist()], pa.list_(pa.float64()))
    table = table.set_column(table.schema.get_field_index("bbox"), "bbox", as_list)
    table = table.append_column("__index_level_0__", pa.array(range(table.num_rows)))
    path = tmp_path / "old.parquet"
    pq.write_table(table, path)
    found = {it["id"]: it for it in search(str(path), sortby="id", limit=5)}
    assert set(found) == {it["id"] for it in plain}
    for it in plain:
        assert found[it["id"]]["bbox"] == it["bbox"]
        assert "__index_level_0__" not in found[it["id"]]["properties"]


def test_a_rectangle_around_whole_bboxes_decodes_no_geometry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A geometry lies within its bbox: inside a rectangle literal (the bbox parameter) it
    intersects it, and only rows on the rectangle's edge need their WKB decoded; an empty
    or null geometry (its WKB's length tells) intersects nothing, whatever its bbox."""
    from dafab_static.search import geometry
    from tests.builds.generate import item

    items = [item(i) for i in range(400)]
    items[5]["geometry"] = {"type": "MultiPolygon", "coordinates": []}  # bbox kept
    path = tmp_path / "items.parquet"
    pq.write_table(index.to_table(items), path, row_group_size=50)
    decoded: list[int] = []
    original = geometry.shapes

    def spy(column: Any, *args: Any, **kwargs: Any) -> Any:
        decoded.append(len(column))
        return original(column, *args, **kwargs)

    monkeypatch.setattr(geometry, "shapes", spy)
    found = {it["id"] for it in search(str(path), bbox=[0, 0, 90, 90])}
    assert found == {it["id"] for it in items} - {"gen-0000005"}
    assert sum(decoded) == 1  # the empty one, to learn it is empty
    # On the edge: lon 10.0..10.05 per item; a box ending at 10.02 cuts the first column of
    # items, whose geometries are then tested (and match: they reach into the box).
    decoded.clear()
    edge = {it["id"] for it in search(str(path), bbox=[0, 0, 10.02, 90])}
    assert edge == {f"gen-{i:07d}" for i in range(0, 400, 100)}
    assert 4 <= sum(decoded) < 40

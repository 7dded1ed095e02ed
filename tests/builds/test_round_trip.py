"""The indexes round-trip: stac-geoparquet, rustac and DuckDB read them back, and the items
equal the JSON ones in the tree (timestamps compared as instants)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pyarrow.parquet as pq
import pytest

import dafab_static
from dafab_static.agreement import digest
from dafab_static.index_items import to_items
from tests.padding import drop_padding

from .crawl import crawl, file_reader
from .generate import item, write_ndjson

# The stac-geoparquet metadata JSON Schema, json-schema/metadata.json of
# https://github.com/radiantearth/stac-geoparquet-spec (MIT, © Tom Augspurger), at f5ef88e:
# its constraints, without the descriptions.
STAC_GEOPARQUET_METADATA_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "version": {"type": "string", "const": "1.0.0"},
        "collections": {"type": "object", "additionalProperties": {"type": "object"}},
        "collection": {"type": "object", "deprecated": True},
    },
    "required": ["version"],
}


def _tree_items(dest: Path) -> dict[str, dict[str, bytes]]:
    by_collection: dict[str, dict[str, bytes]] = {}
    for doc in crawl((dest / "catalog.json").as_uri(), file_reader).values():
        if doc["type"] == "Feature":
            by_collection.setdefault(doc["collection"], {})[doc["id"]] = digest(doc)
    return by_collection


@pytest.fixture(scope="module", params=["sample", "naip-1000"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("rt") / "cat"
    if request.param == "sample":
        report = dafab_static.build([], str(dest), sample=True)
    else:
        data = request.getfixturevalue("shared_data")
        report = dafab_static.build([str(data / "stac-items" / "pc-naip-1000.ndjson")], str(dest))
    assert report.ok, report.summary()
    return dest


def _files(dest: Path, collection: str) -> list[str]:
    return sorted(str(p) for p in (dest / "index" / collection).rglob("*.parquet"))


def _compare(tree: dict[str, bytes], items: list[dict[str, Any]]) -> None:
    back = {it["id"]: digest(drop_padding(it)) for it in items}
    assert sorted(back) == sorted(tree)
    assert back == tree


def test_stac_geoparquet_reads_items_back(built: Path) -> None:
    from stac_geoparquet.arrow import stac_table_to_items

    for collection, tree in _tree_items(built).items():
        items = [
            it for f in _files(built, collection) for it in stac_table_to_items(pq.read_table(f))
        ]
        _compare(tree, items)


def test_rustac_reads_items_back(built: Path) -> None:
    rustac = pytest.importorskip("rustac", reason="rustac is a test extra")
    for collection, tree in _tree_items(built).items():
        items = [it for f in _files(built, collection) for it in rustac.read_sync(f)["features"]]
        _compare(tree, items)


def test_duckdb_reads_the_dataset_with_hive_partitions(built: Path) -> None:
    duckdb = pytest.importorskip("duckdb", reason="duckdb is a test extra")
    for collection, tree in _tree_items(built).items():
        glob = str(built / "index" / collection / "**" / "*.parquet")
        con = duckdb.connect()
        rows = con.sql(
            "SELECT count(*), count(DISTINCT id), min(year), max(month) "
            f"FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
        ).fetchone()
        assert rows is not None and rows[0] == rows[1] == len(tree)
        table = con.sql(
            f"SELECT * EXCLUDE (year, month) FROM read_parquet('{glob}', hive_partitioning = true)"
        ).arrow()
        if hasattr(table, "read_all"):
            table = table.read_all()
        _compare(tree, [it for batch in table.to_batches() for it in to_items(batch)])
        bbox = con.sql(f"SELECT min(bbox.xmin) FROM read_parquet('{glob}')").fetchone()
        assert bbox is not None and -180 <= bbox[0] <= 180


def test_geoparquet_metadata_is_readable_by_pyarrow_dataset(built: Path) -> None:
    import pyarrow.dataset as ds

    for collection, tree in _tree_items(built).items():
        dataset = ds.dataset(
            str(built / "index" / collection), format="parquet", partitioning="hive"
        )
        assert dataset.count_rows() == len(tree)
        assert {"year", "month", "geometry", "bbox", "id", "datetime"} <= set(dataset.schema.names)


def test_each_index_file_embeds_its_valid_collection(built: Path) -> None:
    """stac-geoparquet `collections` metadata holds a whole Collection: valid against the
    STAC schema, with the extent of the Collection that the tree publishes; the metadata
    itself is valid against the stac-geoparquet metadata schema."""
    from dafab_static.validator import validate_object

    published = {
        doc["id"]: doc
        for doc in crawl((built / "catalog.json").as_uri(), file_reader).values()
        if doc["type"] == "Collection"
    }
    assert published
    for collection, doc in published.items():
        for path in _files(built, collection):
            meta = json.loads(pq.read_schema(path).metadata[b"stac-geoparquet"])
            jsonschema.validate(meta, STAC_GEOPARQUET_METADATA_SCHEMA)
            assert meta["version"] == "1.0.0"
            assert list(meta["collections"]) == [collection]
            embedded = meta["collections"][collection]
            assert embedded["id"] == collection and embedded["type"] == "Collection"
            assert embedded["extent"] == doc["extent"]
            assert embedded["links"] == []
            assert validate_object(embedded, href=path) == []


def test_embedded_extent_covers_ranges_antimeridian_and_3d_boxes(tmp_path: Path) -> None:
    """The extent known before writing (from the spool) equals the one computed from the
    written partitions, for the awkward cases: a start/end range reaching past `datetime`,
    an item across the antimeridian, a 3D bbox."""
    ranged = item(0, month=3)
    ranged["properties"].update(
        start_datetime="2024-02-20T00:00:00.5Z", end_datetime="2024-05-01T02:00:00Z"
    )
    crossing = item(1, month=3)
    crossing["bbox"] = [179.5, -17.0, -179.5, -16.0]
    three_d = item(2, month=5)
    three_d["bbox"] = [10.0, 45.0, -5.0, 10.1, 45.1, 20.0]
    source = write_ndjson(tmp_path / "items.ndjson", [ranged, crossing, three_d])
    dest = tmp_path / "cat"
    report = dafab_static.build([str(source)], str(dest))
    assert report.ok, report.summary()
    doc = json.loads((dest / "sensors" / "sentinel-2" / "gen.json").read_text())
    assert doc["extent"] == {
        # 10°E eastwards across the antimeridian to 179.5°W: 169.5° of longitude, where
        # -180..10.1 would take 190.1° (RFC 7946 §5.2 writes it with west > east)
        "spatial": {"bbox": [[10.0, -17.0, -179.5, 45.1]]},
        "temporal": {"interval": [["2024-02-20T00:00:00.500000Z", "2024-05-01T02:00:00Z"]]},
    }
    for path in _files(dest, "gen"):
        meta = json.loads(pq.read_schema(path).metadata[b"stac-geoparquet"])
        assert meta["collections"]["gen"]["extent"] == doc["extent"]


def test_extent_holds_every_item_to_the_last_digit_and_fraction(tmp_path: Path) -> None:
    """STAC's first extent holds every item. Rounded to the nearest 7th decimal, an edge at
    41.39830504322914 became 41.398305, 5 mm short; and times compared as text put
    '23:59:59.5Z' before '23:59:59Z' when the two ends fell in one second."""
    on_the_second = item(0, month=7, day=31, lat=30.0)
    on_the_second["properties"]["datetime"] = "2024-07-31T23:59:59Z"
    ranged = item(1, month=6)
    ranged["properties"].update(start_datetime="2024-06-01T00:00:00Z",
                                end_datetime="2024-07-31T23:59:59.5Z")  # fmt: skip
    x, y = 10.123456789, 41.39830504322914
    box = [x - 0.05, y - 0.05, x, y]
    ranged["bbox"] = box
    ranged["geometry"] = {"type": "Polygon", "coordinates": [[
        [box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]],
        [box[0], box[1]]]]}  # fmt: skip
    source = write_ndjson(tmp_path / "items.ndjson", [on_the_second, ranged])
    dest = tmp_path / "cat"
    assert dafab_static.build([str(source)], str(dest)).ok
    doc = json.loads((dest / "sensors" / "sentinel-2" / "gen.json").read_text())
    assert doc["extent"]["temporal"]["interval"] == [
        ["2024-06-01T00:00:00Z", "2024-07-31T23:59:59.500000Z"]]  # fmt: skip
    west, south, east, north = doc["extent"]["spatial"]["bbox"][0]
    assert (west, north) == (10.0, 41.3983051)  # outward: never inside an item
    for it in (on_the_second, ranged):
        b = it["bbox"]
        assert west <= b[0] and south <= b[1] and b[2] <= east and b[3] <= north


def test_collection_ids_that_end_in_json_are_built_beside_their_stems(tmp_path: Path) -> None:
    """Collections ``a`` and ``a.json`` (and ``catalog.json``, and a platform called
    ``catalog.json``) are all valid ids; their folders clashed with the documents of the
    others, and the whole build failed naming a staging path."""
    items = []
    for cid in ("a", "a.json", "catalog.json", "Catalog"):
        for i in range(2):
            one = item(i, collection=cid, item_id=f"{cid}-{i}")
            if cid == "Catalog":
                one["properties"]["platform"] = "catalog.json"
            items.append(one)
    source = write_ndjson(tmp_path / "items.ndjson", items)
    dest = tmp_path / "cat"
    report = dafab_static.build([str(source)], str(dest))
    assert report.ok and report.collections == {"a": 2, "a.json": 2, "catalog.json": 2,
                                                "Catalog": 2}, report.summary()  # fmt: skip
    assert dafab_static.validate(str(dest)).ok
    found = crawl((dest / "catalog.json").as_uri(), file_reader).values()
    assert sorted(o["id"] for o in found if o["type"] == "Feature") == sorted(
        i["id"] for i in items
    )
    assert sum(o["type"] == "Collection" for o in found) == 4


def test_embedded_extent_leaves_out_items_that_failed_validation(tmp_path: Path) -> None:
    """An item spooled but then rejected by schema validation (a cloud cover of 150 %) is
    not in the published extent, nor in the one its month's file embeds."""
    good = [item(i, month=3) for i in range(3)]
    bad = item(9, month=3, lon=100.0)
    bad["stac_extensions"] = ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"]
    bad["properties"].update(
        start_datetime="2024-03-01T00:00:00Z", end_datetime="2024-12-02T10:00:00Z"
    )
    bad["properties"]["eo:cloud_cover"] = 150
    source = write_ndjson(tmp_path / "items.ndjson", [*good, bad])
    dest = tmp_path / "cat"
    report = dafab_static.build([str(source)], str(dest))
    assert report.items == 3 and len(report.skipped) == 1
    assert "eo:cloud_cover" in report.skipped[0]
    doc = json.loads((dest / "sensors" / "sentinel-2" / "gen.json").read_text())
    assert doc["extent"]["temporal"]["interval"][0][1] == "2024-03-01T02:00:00Z"
    assert doc["extent"]["spatial"]["bbox"][0][2] < 100
    (path,) = _files(dest, "gen")
    meta = json.loads(pq.read_schema(path).metadata[b"stac-geoparquet"])
    assert meta["collections"]["gen"]["extent"] == doc["extent"]
    manifest = json.loads((dest / "index" / "gen" / "_partitions.json").read_text())
    assert manifest["partitions"][0]["bytes"] == Path(path).stat().st_size
    checked = dafab_static.validate(str(dest))  # checksums and tree/index agreement too
    assert checked.ok, checked.summary()


def test_a_minimal_item_with_nanoseconds_round_trips(tmp_path: Path) -> None:
    """The least a STAC item may be (no stac_extensions, no collection, no assets) with a
    timestamp finer than the index can hold: it builds, validates, and the tree and the
    index hold the same instant, cut to the microsecond."""
    minimal = {
        "type": "Feature", "stac_version": "1.1.0", "id": "bare",
        "geometry": {"type": "Point", "coordinates": [1.0, 2.0]}, "bbox": [1.0, 2.0, 1.0, 2.0],
        "properties": {"datetime": "2020-01-01T00:00:00.123456789Z"}, "links": [], "assets": {},
    }  # fmt: skip
    dest = tmp_path / "cat"
    report = dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", [minimal]))], str(dest))
    assert report.ok and report.items == 1, report.summary()
    assert dafab_static.validate(str(dest)).ok
    (tree,) = [d for d in crawl((dest / "catalog.json").as_uri(), file_reader).values()
               if d["type"] == "Feature"]  # fmt: skip
    (back,) = list(dafab_static.search(str(dest)))
    assert back["properties"]["datetime"] == "2020-01-01T00:00:00.123456Z"
    assert "stac_extensions" not in back and "stac_extensions" not in tree
    assert tree["properties"] == back["properties"]
    assert _tree_items(dest) == {"unassigned": {"bare": digest(back)}}


def test_a_bbox_short_of_its_geometry_is_widened_and_searchable(tmp_path: Path) -> None:
    """Real hub items (the Planetary Computer's 3DEP lidar) carry a bbox that misses part of
    the footprint: the build widens it, says so once, and search finds the item by a
    point of its geometry outside the bbox it came with."""
    items = [item(i) for i in range(3)]
    items[1]["bbox"] = [10.11, 45.0, 10.14, 45.05]  # geometry spans 10.1 .. 10.15
    dest = tmp_path / "cat"
    report = dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", items))], str(dest))
    assert report.ok, report.summary()
    (warning,) = report.warnings
    assert "item 'gen-0000001': bbox did not contain the geometry; widened" in warning
    assert dafab_static.validate(str(dest)).ok  # the tree and the index hold the same bbox
    point = {"type": "Point", "coordinates": [10.105, 45.02]}
    assert [it["id"] for it in dafab_static.search(str(dest), intersects=point)] == ["gen-0000001"]
    (tree,) = [d for d in crawl((dest / "catalog.json").as_uri(), file_reader).values()
               if d.get("id") == "gen-0000001"]  # fmt: skip
    assert tree["bbox"] == [10.1, 45.0, 10.15, 45.05]


def test_foreign_top_level_members_stay_in_the_json_and_out_of_the_index(
    tmp_path: Path,
) -> None:
    """RFC 7946 allows foreign members. stac-geoparquet reads every non-STAC column back as
    a property, so a top-level ``title`` replaced the item's own ``properties.title`` in
    the index, and the build's own ``validate`` then failed the catalog."""
    foreign = item(1)
    foreign["title"] = "foreign member"
    foreign["properties"]["title"] = "item title"
    dest = tmp_path / "cat"
    report = dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", [foreign]))], str(dest))
    assert report.ok and any("(title)" in w for w in report.warnings), report.warnings
    (tree,) = [d for d in crawl((dest / "catalog.json").as_uri(), file_reader).values()
               if d["type"] == "Feature"]  # fmt: skip
    assert tree["title"] == "foreign member"
    assert tree["properties"]["title"] == "item title"
    (row,) = to_items(pq.read_table(_files(dest, "gen")[0]).to_batches()[0])
    assert "title" not in row and row["properties"]["title"] == "item title"
    assert dafab_static.validate(str(dest)).ok


def test_local_paths_are_published_as_file_uris(tmp_path: Path) -> None:
    """A bare '/data/x.ndjson' is a relative reference: with --base-url a client resolved
    the source's via link to https://host/data/x.ndjson. Published as file:// URIs, they
    still name the files, spaces and all."""
    from urllib.parse import unquote, urlsplit

    folder = tmp_path / "in put"
    folder.mkdir()
    local = item(1)
    local["assets"]["data"]["href"] = str(folder / "scene 1.tif")
    source = write_ndjson(folder / "items.ndjson", [local])
    dest = tmp_path / "cat"
    options = dafab_static.BuildOptions(base_url="https://example.com/stac")
    assert dafab_static.build([str(source)], str(dest), options=options).ok
    (tree,) = [d for d in crawl((dest / "catalog.json").as_uri(), file_reader).values()
               if d["type"] == "Feature"]  # fmt: skip
    (via,) = [link for link in tree["links"] if link["rel"] == "via"]
    assert via["href"] == source.as_uri()
    asset = tree["assets"]["data"]["href"]
    assert asset.startswith("file:///") and unquote(urlsplit(asset).path) == str(
        folder / "scene 1.tif"
    )
    assert dafab_static.validate(str(dest)).ok

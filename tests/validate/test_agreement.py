"""validate checks that the tree and the stac-geoparquet index agree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import dafab_static
from tests.builds.generate import item, write_ndjson


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    src = write_ndjson(tmp_path / "in.ndjson", [item(i, collection="agree") for i in range(20)])
    dest = tmp_path / "cat"
    assert dafab_static.build([str(src)], str(dest)).ok
    return dest


def _rules(dest: Path) -> list[tuple[str, str]]:
    return [(p.rule, p.message) for p in dafab_static.validate(str(dest)).problems]


def test_untouched_catalog_agrees(catalog: Path) -> None:
    assert _rules(catalog) == []


def test_a_month_whose_items_all_have_empty_assets_agrees(tmp_path: Path) -> None:
    """Its Parquet ``assets`` column is of the null type: validate failed with a traceback
    ("'DataType' object is not iterable") reading it back."""
    items = [item(0, collection="agree", month=1), item(1, collection="agree", month=2)]
    items[0]["assets"] = {}
    dest = tmp_path / "cat"
    assert dafab_static.build([str(write_ndjson(tmp_path / "in.ndjson", items))], str(dest)).ok
    assert _rules(dest) == []


def test_4_and_6_number_bboxes_in_two_months_of_a_collection_read_back(tmp_path: Path) -> None:
    """The collection's bbox struct has z, null in the 2-D month: stac-geoparquet's
    conversion failed on those nulls, so search raised a traceback and validate called the
    file unreadable. (Within one month the minority is set aside, as for any type clash.)"""
    items = [item(i, collection="agree", month=m) for i, m in enumerate((1, 2))]
    items[0]["bbox"] = [*items[0]["bbox"][:2], 0.0, *items[0]["bbox"][2:], 5.0]
    dest = tmp_path / "cat"
    assert dafab_static.build([str(write_ndjson(tmp_path / "in.ndjson", items))], str(dest)).ok
    assert _rules(dest) == []
    found = {it["id"]: it["bbox"] for it in dafab_static.search(str(dest))}
    assert found == {it["id"]: it["bbox"] for it in items}


def test_an_empty_part_of_a_multipolygon_is_dropped_in_tree_and_index(tmp_path: Path) -> None:
    """The index's WKB read the empty part back as [[]]: validate found the tree and the
    index disagreeing on a catalog the build had just published."""
    one = item(0, collection="agree")
    polygon = one["geometry"]["coordinates"]
    one["geometry"] = {"type": "MultiPolygon", "coordinates": [polygon, []]}
    dest = tmp_path / "cat"
    assert dafab_static.build([str(write_ndjson(tmp_path / "in.ndjson", [one]))], str(dest)).ok
    assert _rules(dest) == []
    (found,) = dafab_static.search(str(dest))
    assert found["geometry"] == {"type": "MultiPolygon", "coordinates": [polygon]}


def test_edited_item_is_reported_by_id_file_and_field(catalog: Path) -> None:
    """The collection counts it; the item's own file and the first field that differs are
    named too (the JSON path the README promises; only the Collection and '$' were)."""
    path = next(catalog.rglob("gen-0000007.json"))
    doc = json.loads(path.read_text())
    doc["properties"]["eo:cloud_cover"] = 99.5
    path.write_text(json.dumps(doc))
    assert _rules(catalog) == [
        ("dafab:tree-index-agreement",
         "collection 'agree': 1 item differs between tree and index: 'gen-0000007'"),
        ("dafab:tree-index-agreement", "item 'gen-0000007' differs between tree and index at "
         "$.properties['eo:cloud_cover']: 99.5 in the tree, 7 in the index"),
    ]  # fmt: skip
    problem = dafab_static.validate(str(catalog)).problems[-1]
    assert problem.href == str(path)


def test_item_missing_from_index_and_tampered_file(catalog: Path) -> None:
    part = next(catalog.rglob("items.parquet"))
    table = pq.read_table(part)
    keep = table.filter(pc.not_equal(table["id"], "gen-0000003"))
    pq.write_table(keep, part)
    rules = _rules(catalog)
    assert (
        "dafab:tree-index-agreement",
        "collection 'agree': 1 item in the tree but not in the index: 'gen-0000003'",
    ) in rules
    assert sum(r == "dafab:index-manifest" for r, _ in rules) == 3  # bytes, checksum, rows


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_partition_is_a_problem_not_a_traceback(catalog: Path, damage: str) -> None:
    part = next(catalog.rglob("items.parquet"))
    data = part.read_bytes()
    part.write_bytes(b"garbage\n" if damage == "garbage" else data[: len(data) // 2])
    rules = _rules(catalog)
    assert "dafab:index-readable" in {r for r, _ in rules}, rules
    (message,) = [m for r, m in rules if r == "dafab:index-readable"]
    assert message.startswith("not readable: ")
    assert any(r == "dafab:tree-index-agreement" for r, _ in rules)  # its items are missing


def test_what_parquet_cannot_keep_is_no_disagreement(tmp_path: Path) -> None:
    """Real hubs write integer coordinates (WKB has doubles only), ``0`` beside ``12.5`` in one
    field (a double column) and explicit nulls (``"proj:epsg": null``, read back as absent):
    the same items to JSON, so the tree and the index agree. A changed value still counts."""
    items = [item(i, collection="agree") for i in range(3)]
    items[0]["geometry"]["coordinates"] = [[[10, 45], [11, 45], [11, 46], [10, 46], [10, 45]]]
    items[0]["bbox"] = [10, 45, 11, 46]
    items[1]["properties"]["eo:cloud_cover"] = 0
    items[2]["properties"]["eo:cloud_cover"] = 12.5
    items[2]["properties"]["proj:epsg"] = None
    items[2]["properties"]["custom:settings"] = {}  # Parquet has no struct without fields
    src = write_ndjson(tmp_path / "in.ndjson", items)
    dest = tmp_path / "cat"
    assert dafab_static.build([str(src)], str(dest)).ok
    assert _rules(dest) == []
    path = next(dest.rglob("gen-0000001.json"))
    doc = json.loads(path.read_text())
    doc["properties"]["eo:cloud_cover"] = 1  # 0 -> 1: a real change
    path.write_text(json.dumps(doc))
    assert _rules(dest) == [
        ("dafab:tree-index-agreement",
         "collection 'agree': 1 item differs between tree and index: 'gen-0000001'"),
        ("dafab:tree-index-agreement", "item 'gen-0000001' differs between tree and index at "
         "$.properties['eo:cloud_cover']: 1 in the tree, 0 in the index"),
    ]  # fmt: skip


def test_real_hub_items_agree(shared_data: Path, tmp_path: Path) -> None:
    """stac-geoparquet's own sample items (Planetary Computer: integer coordinates, explicit
    nulls, 12 collections) and the STAC spec examples: built, then validated clean."""
    items = shared_data / "stac-items"
    sources = [str(items / "stac-geoparquet-samples"), str(items / "stac-spec-examples")]
    dest = tmp_path / "cat"
    dafab_static.build(sources, str(dest))  # the spec examples repeat ids: skipped, published
    report = dafab_static.validate(str(dest))
    assert [p for p in report.problems if p.severity == "error"] == []


def test_a_manifest_or_geo_metadata_that_would_hide_rows_is_reported(catalog: Path) -> None:
    """Clients prune by the manifest's bbox and time range and by the file's geo metadata,
    without reading rows: one that is too small, or a file the manifest does not list (a
    glob reader takes its rows too), is a problem even when bytes and checksum match."""
    manifest = next(catalog.rglob("_partitions.json"))
    doc = json.loads(manifest.read_text())
    line = doc["partitions"][0]
    line["bbox"] = [0, 0, 1, 1]
    line["end_datetime"] = line["start_datetime"]
    manifest.write_text(json.dumps(doc))
    part = manifest.parent / line["path"]
    shutil.copy(part, part.with_name("extra.parquet"))
    table = pq.read_table(part)
    geo = json.loads(table.schema.metadata[b"geo"])
    geo["columns"]["geometry"]["geometry_types"] = ["Point"]
    geo["columns"]["geometry"]["bbox"] = [0, 0, 1, 1]
    metadata = {**table.schema.metadata, b"geo": json.dumps(geo).encode()}
    pq.write_table(table.replace_schema_metadata(metadata), part.with_name("geo.parquet"))
    part.with_name("geo.parquet").replace(part)
    messages = _rules(catalog)
    expected = {
        ("dafab:index-manifest", "a Parquet file in the index folder that the partitions "
         "manifest does not list"),
        ("dafab:index-geo-metadata", "geo geometry_types ['Point'] are not the rows' ['Polygon']"),
    }  # fmt: skip
    assert expected <= set(messages), messages
    rows_bbox = "[10.0, 45.0, 11.95, 45.05]"  # 20 items, 0.1 degree apart, 0.05 wide
    assert {m for _, m in messages} >= {
        f"manifest bbox [0, 0, 1, 1] does not cover the rows' bbox {rows_bbox}",
        f"geo bbox [0, 0, 1, 1] does not cover the rows' bbox {rows_bbox}",
    }, messages
    assert any(m.startswith("manifest time range ") for _, m in messages), messages


def test_manifest_summaries_that_would_hide_rows_are_reported(catalog: Path) -> None:
    """``search`` skips a collection's files by the summaries in its manifest: a value or a
    range they leave out would hide those items from every search."""
    manifest = next(catalog.rglob("_partitions.json"))
    doc = json.loads(manifest.read_text())
    assert doc["summaries"]["platform"] == ["sentinel-2a"]
    assert doc["summaries"]["eo:cloud_cover"] == sorted(range(20), key=str)  # few: listed
    doc["summaries"]["platform"] = ["landsat-9"]
    doc["summaries"]["eo:cloud_cover"] = {"minimum": 0, "maximum": 10}
    manifest.write_text(json.dumps(doc))
    messages = {m for rule, m in _rules(catalog) if rule == "dafab:index-manifest"}
    assert messages == {
        "manifest summaries list no 'sentinel-2a' for 'platform'; the rows hold it",
        "manifest summaries give 'eo:cloud_cover' 0..10; the rows hold 0..19",
    }


def test_properties_named_as_top_level_fields_stay_in_the_json_only(tmp_path: Path) -> None:
    """stac-geoparquet lifts properties beside the top-level fields, so one named ``id`` or
    ``collection`` cannot have a column: the build says so once, the item JSON keeps it,
    and the tree and the index still agree."""
    items = [item(i, collection="shadow") for i in range(3)]
    items[1]["properties"].update({"id": "inner", "collection": "other"})
    dest = tmp_path / "cat"
    report = dafab_static.build([str(write_ndjson(tmp_path / "in.ndjson", items))], str(dest))
    assert report.ok and len(report.warnings) == 1
    assert report.warnings[0].endswith(
        "item 'gen-0000001': properties named as top-level fields cannot be stac-geoparquet "
        "columns; kept in the item JSON, left out of the index (collection, id)"
    )
    stored = json.loads(next(dest.rglob("gen-0000001.json")).read_text())
    assert (stored["properties"]["id"], stored["properties"]["collection"]) == ("inner", "other")
    assert _rules(dest) == []


def test_an_id_held_twice_in_the_index_and_wrong_manifest_totals_are_reported(
    catalog: Path,
) -> None:
    """A partition listed twice (copied under another month, its manifest line correct)
    passed, and search then returned its items twice; totals that are not the sum of the
    partitions passed, and info reported them."""
    manifest = next(catalog.rglob("_partitions.json"))
    doc = json.loads(manifest.read_text())
    line = doc["partitions"][0]
    copy = manifest.parent / "year=2023" / "month=01" / "items.parquet"
    copy.parent.mkdir(parents=True)
    shutil.copy(manifest.parent / line["path"], copy)
    doc["partitions"].append({**line, "path": "year=2023/month=01/items.parquet"})
    manifest.write_text(json.dumps(doc))
    rules = _rules(catalog)
    duplicates = [m for r, m in rules if r == "dafab:index-duplicate-id"]
    assert len(duplicates) == 20 and "'gen-0000000' is held more than once" in duplicates[0]
    assert ("dafab:index-manifest", "manifest gives rows 20; its partitions add up to 40") in rules
    doc["partitions"].pop()
    copy.unlink()
    doc["rows"], doc["bytes"] = 5000, 1
    manifest.write_text(json.dumps(doc))
    assert {m for r, m in _rules(catalog) if r == "dafab:index-manifest"} == {
        "manifest gives rows 5000; its partitions add up to 20",
        f"manifest gives bytes 1; its partitions add up to {line['bytes']}",
    }


def test_a_manifest_of_another_collection_or_leading_out_of_the_index_is_reported(
    catalog: Path,
) -> None:
    """A manifest naming another collection, a partition moved under another month's Hive
    folder (DuckDB and pyarrow read year/month from it), and a path leading out of the
    index (which validate read) all passed."""
    manifest = next(catalog.rglob("_partitions.json"))
    doc = json.loads(manifest.read_text())
    line = doc["partitions"][0]
    moved = manifest.parent / "year=1999" / "month=12" / "items.parquet"
    moved.parent.mkdir(parents=True)
    (manifest.parent / line["path"]).rename(moved)
    line["path"] = "year=1999/month=12/items.parquet"
    doc["collection"] = "other"
    doc["partitions"].append({**line, "path": "../../../../etc/hostname"})
    manifest.write_text(json.dumps(doc))
    rules = _rules(catalog)
    messages = {m for r, m in rules if r == "dafab:index-manifest"}
    assert "manifest is of collection 'other', not 'agree'" in messages
    assert any(
        m.startswith(
            "partitions[0]: year=1999/month=12/items.parquet is filed under "
            "1999-12, but its items span 2024-07"
        )
        for m in messages
    ), messages
    assert "partitions[1] path '../../../../etc/hostname' leads out of the index folder" in messages
    assert not any(r == "dafab:index-readable" for r, _ in rules), rules  # not read

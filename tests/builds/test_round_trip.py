"""The indexes round-trip: stac-geoparquet, rustac and DuckDB read them back, and the items
equal the JSON ones in the tree (timestamps compared as instants)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import dafab_static
from dafab_static.agreement import digest
from dafab_static.index import to_items
from tests.padding import drop_padding

from .crawl import crawl, file_reader


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

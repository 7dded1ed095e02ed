"""The same search over S3 and over HTTP range requests, reading only what it needs."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

import dafab_static
from dafab_static import search
from dafab_static.search.files import CACHE
from tests.builds.generate import write_ndjson
from tests.search.conftest import ids

QUERY = {"bbox": [10.0, 45.0, 10.35, 45.2], "datetime": "2024-07", "filter": "eo:cloud_cover < 30"}


def _index_bytes(catalog: Path) -> int:
    return sum(p.stat().st_size for p in (catalog / "index").rglob("*.parquet"))


def test_http_range_requests(catalog: Path, range_http_server: tuple[str, Path]) -> None:
    base, directory = range_http_server
    shutil.copytree(catalog, directory / "http-catalog")
    local = ids(search(str(catalog), **QUERY))  # type: ignore[arg-type]
    # gen-0000001 is the July item in the box; span-may-july touches its north edge and its
    # interval reaches into July; cloudless touches it too but has no cloud cover (null).
    assert local == {"gen-0000001", "span-may-july"}
    CACHE.clear()
    result = search(f"{base}/http-catalog/catalog.json", **QUERY)  # type: ignore[arg-type]
    assert ids(result) == local
    # Only July partitions are touched, and only their footers and needed column chunks.
    assert 0 < result.stats.bytes < _index_bytes(catalog) / 2
    assert result.stats.requests <= 12


def test_s3_round_trip(s3_bucket: str, tmp_path: Path, items: list[dict[str, Any]]) -> None:
    source = write_ndjson(tmp_path / "items.ndjson", copy.deepcopy(items))
    url = f"s3://{s3_bucket}/cat"
    dafab_static.build([str(source)], url, options=dafab_static.BuildOptions(quiet=True))
    local_dir = tmp_path / "local"
    dafab_static.build([str(source)], str(local_dir), options=dafab_static.BuildOptions(quiet=True))
    CACHE.clear()
    remote = search(url, **QUERY)  # type: ignore[arg-type]
    assert ids(remote) == ids(search(str(local_dir), **QUERY))  # type: ignore[arg-type]
    assert remote.stats.requests > 0
    sorted_remote = [it["id"] for it in search(url, sortby="-eo:cloud_cover,id", limit=4)]
    sorted_local = [it["id"] for it in search(str(local_dir), sortby="-eo:cloud_cover,id", limit=4)]
    assert sorted_remote == sorted_local


@pytest.mark.parametrize("glob", ["index/gen/**/*.parquet"])
def test_s3_parquet_glob(s3_bucket: str, catalog: Path, glob: str) -> None:
    store = dafab_static.open_store(f"s3://{s3_bucket}/raw")
    for path in (catalog / "index").rglob("*.parquet"):
        store.put(str(path.relative_to(catalog)), path.read_bytes())
    got = search(f"s3://{s3_bucket}/raw/index/gen/*/*/items.parquet", filter="eo:cloud_cover < 3")
    assert ids(got) == ids(search(str(catalog / "index" / "gen"), filter="eo:cloud_cover < 3"))


@pytest.mark.parametrize("change", ["fewer", "more"])
def test_a_partition_changed_since_the_build_fails_alike_local_and_remote(
    catalog: Path, range_http_server: tuple[str, Path], tmp_path: Path, change: str
) -> None:
    """A partition rewritten after its manifest: locally its new rows were returned, over
    HTTP the footer was sought at the old size ("not a Parquet file"). Now both say what
    is wrong, and that validate compares them."""
    import pyarrow.parquet as pq

    base, directory = range_http_server
    changed = directory / tmp_path.name
    shutil.copytree(catalog, changed)
    part = sorted((changed / "index").rglob("*.parquet"))[0]
    table = pq.read_table(part)
    import pyarrow as pa

    rows = table.slice(0, table.num_rows - 1) if change == "fewer" else pa.concat_tables(
        [table, table])  # fmt: skip
    pq.write_table(rows, part)
    message = r"not the Parquet file its partitions manifest lists \(\d+ bytes; .*validate"
    for source in (str(changed), f"{base}/{tmp_path.name}/catalog.json"):
        CACHE.clear()
        with pytest.raises(dafab_static.QueryError, match=message):
            list(search(source))

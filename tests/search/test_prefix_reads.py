"""Pass 2 decodes a row group only up to its last wanted row; the results stay the same."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dafab_static
from dafab_static.search import parquet
from tests.builds.generate import item, write_ndjson


def test_a_prefix_equals_the_first_rows_of_the_whole_group() -> None:
    table = pa.table({
        "id": [f"i{k}" for k in range(5000)],
        "assets": [{"data": {"href": f"s3://b/{k}.tif", "roles": ["data"]}} for k in range(5000)],
    })  # fmt: skip
    buffer = io.BytesIO()
    # Small pages, so that the prefix ends in the middle of a column chunk.
    pq.write_table(table, buffer, row_group_size=5000, data_page_size=1024)
    reader = parquet.Reader(pa.BufferReader(buffer.getvalue()))
    whole = reader.read_row_group(0, ["id", "assets"])
    for stop in (1, 7, 1024, 4999):
        head = reader.read_row_group(0, ["id", "assets"], stop=stop)
        assert head.num_rows == stop
        assert head.equals(whole.slice(0, stop))
    assert reader.read_row_group(0, ["id"], stop=5000).equals(whole.select(["id"]))


ITEMS = [item(i, day=1 + i % 28) for i in range(2000)]


def _truth(query: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The items a query must return, from the inputs (no search code involved)."""
    out = {}
    for it in ITEMS:
        if "ids" in query and it["id"] not in query["ids"]:
            continue
        if "bbox" in query:
            w, s, e, n = query["bbox"]
            x0, y0, x1, y1 = it["bbox"]
            if x0 > e or x1 < w or y0 > n or y1 < s:
                continue
        if "filter" in query and not it["properties"]["eo:cloud_cover"] > 30:
            continue
        out[it["id"]] = it
    return out


@pytest.fixture(scope="module")
def one_group(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 items of one month: one row group, in Hilbert order."""
    root = tmp_path_factory.mktemp("prefix")
    source = write_ndjson(root / "items.ndjson", ITEMS)
    out = root / "catalog"
    assert dafab_static.build([str(source)], str(out)).ok
    return out


@pytest.mark.parametrize(
    "query",
    [
        {"bbox": [10.0, 45.0, 10.3, 45.2]},
        {"bbox": [19.0, 46.5, 20.0, 47.0]},
        {"bbox": [14.0, 46.0, 14.2, 46.1], "filter": "eo:cloud_cover > 30"},
        {"ids": ["gen-0000000", "gen-0001999"]},
    ],
)
def test_results_equal_a_full_read(
    one_group: Path, query: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    read = parquet.Reader.read_row_group
    prefixes: list[tuple[int, int]] = []

    def spy(self: parquet.Reader, index: int, columns: Any, *, stop: int | None = None) -> Any:
        table = read(self, index, columns, stop=stop)
        if stop is not None and stop < self.metadata.row_group(index).num_rows:
            prefixes.append((stop, self.metadata.row_group(index).num_rows))
        return table

    monkeypatch.setattr(parquet.Reader, "read_row_group", spy)
    found = list(dafab_static.search(str(one_group), **query))

    def whole(self: parquet.Reader, index: int, columns: Any, *, stop: int | None = None) -> Any:
        return read(self, index, columns).slice(0, stop)  # every row decoded, then cut

    monkeypatch.setattr(parquet.Reader, "read_row_group", whole)
    expected = list(dafab_static.search(str(one_group), **query))
    assert found and found == expected
    truth = _truth(query)
    assert sorted(it["id"] for it in found) == sorted(truth)
    for it in found:  # assets and links are pass-2 columns: the prefix read gives them
        assert it["assets"] == truth[it["id"]]["assets"]
        assert it["properties"] == truth[it["id"]]["properties"]
        assert [link["rel"] for link in it["links"]] == ["root", "parent", "collection", "via"]
    assert prefixes, "the search never read a prefix: the test would not see a wrong one"

"""Collections that give one field different types (both valid STAC): ``nodata`` 0 in one,
``"nan"`` in another. Items keep their own values; one Arrow table reads the field as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dafab_static
from dafab_static import arrow_schemas
from dafab_static.errors import QueryError
from tests.builds.generate import item, write_ndjson
from tests.cli.runner import cli


def _items() -> list[dict[str, Any]]:
    items = []
    for i in range(12):
        # Interleaved in time, so a sort by datetime alternates between the collections.
        it = item(i, collection="counts" if i % 2 else "ratios", month=7, day=1 + i)
        nodata: Any = 0 if i % 2 else "nan"
        it["assets"]["data"]["raster:bands"] = [{"nodata": nodata, "data_type": "float32"}]
        items.append(it)
    items[0]["properties"]["datetime"] = "2024-07-01T00:00:00.024Z"  # milliseconds
    items[2]["properties"]["datetime"] = "2024-07-03T02:00:00.123456Z"  # microseconds
    return items


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    source = write_ndjson(root / "items.ndjson", _items())
    out = root / "catalog"
    report = dafab_static.build(
        [str(source)], str(out), options=dafab_static.BuildOptions(quiet=True)
    )
    assert report.ok, report.summary()
    return out


def _nodata(it: dict[str, Any]) -> Any:
    return it["assets"]["data"]["raster:bands"][0]["nodata"]


@pytest.mark.parametrize(
    "sortby", ["-datetime", "+id", [{"field": "properties.datetime", "direction": "asc"}]]
)
def test_sorted_items_keep_their_own_types(catalog: Path, sortby: Any) -> None:
    found = list(dafab_static.search(str(catalog), sortby=sortby))
    expected = {it["id"]: it for it in _items()}
    assert len(found) == len(expected)
    for it in found:
        assert _nodata(it) == _nodata(expected[it["id"]])
        assert type(_nodata(it)) is type(_nodata(expected[it["id"]]))
    times = [it["properties"]["datetime"] for it in found]
    if sortby == "-datetime":
        assert times == sorted(times, reverse=True)
        assert {it["collection"] for it in found[:2]} == {"counts", "ratios"}


def test_datetimes_keep_their_spelling(catalog: Path) -> None:
    found = {it["id"]: it["properties"]["datetime"] for it in dafab_static.search(str(catalog))}
    assert found["gen-0000000"] == "2024-07-01T00:00:00.024Z"
    assert found["gen-0000002"] == "2024-07-03T02:00:00.123456Z"
    assert found["gen-0000001"] == "2024-07-02T01:00:00Z"


def test_one_table_reads_the_conflicting_field_as_text(catalog: Path) -> None:
    table = dafab_static.search(str(catalog), sortby="id").to_arrow()
    assert table.num_rows == 12
    bands = table["assets"].combine_chunks().field("data").field("raster:bands")
    nodata = bands.values.field("nodata")
    assert nodata.type == pa.string()
    assert sorted(set(nodata.to_pylist())) == ["0", "nan"]


def test_cli_sorts_and_writes_parquet_across_collections(catalog: Path, tmp_path: Path) -> None:
    run = cli("search", str(catalog), "--sortby", "-datetime", "--format", "ids")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == "gen-0000011"
    out = tmp_path / "all.parquet"
    run = cli("search", str(catalog), "--format", "parquet", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert pq.read_table(out).num_rows == 12


@pytest.mark.parametrize("limit", [None, 2])
def test_a_sort_key_typed_differently_by_two_collections_sorts_as_text(
    tmp_path: Path, limit: int | None
) -> None:
    """``level`` is a number in one collection and text in the other: the sort compares it
    as text, as the results' one table holds it (it raised ArrowTypeError, a traceback)."""
    values = {"c1": [1, 20], "c2": ["x", "10"]}
    items = [
        {**item(n, collection=cid, day=1 + n)}
        for n, cid in enumerate(cid for cid in values for _ in range(2))
    ]
    for it, value in zip(items, [v for vs in values.values() for v in vs], strict=True):
        it["properties"]["level"] = value
    dest = tmp_path / "cat"
    dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", items))], str(dest))
    found = list(dafab_static.search(str(dest), sortby="level", limit=limit))
    assert [it["properties"]["level"] for it in found] == [1, "10", 20, "x"][:limit]
    backwards = dafab_static.search(str(dest), sortby="-level", limit=limit)
    assert [it["properties"]["level"] for it in backwards] == ["x", 20, "10", 1][:limit]


def test_unify_names_the_conflicting_field() -> None:
    left = pa.schema([("a", pa.struct([("b", pa.list_(pa.struct([("n", pa.int64())])))]))])
    right = pa.schema([("a", pa.struct([("b", pa.list_(pa.struct([("n", pa.string())])))]))])
    with pytest.raises(
        arrow_schemas.SchemaConflict, match=r"field 'a.b\[\].n' is int64 in one file"
    ):
        arrow_schemas.unify([left, right])
    merged = arrow_schemas.unify([left, right], conflicts="string")
    assert merged.field("a").type.field("b").type.value_type.field("n").type == pa.string()
    # Numbers still widen rather than becoming text.
    wide = arrow_schemas.unify([pa.schema([("x", pa.int64())]), pa.schema([("x", pa.float64())])])
    assert wide.field("x").type == pa.float64()


def test_a_struct_against_a_scalar_cannot_form_one_table() -> None:
    from dafab_static.search.tables import concat

    a = pa.table({"v": pa.array([{"k": 1}])})
    b = pa.table({"v": pa.array(["text"])})
    with pytest.raises(QueryError, match="cannot form one Arrow table: field 'v'"):
        concat([a, b])

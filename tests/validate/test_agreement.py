"""validate checks that the tree and the stac-geoparquet index agree."""

from __future__ import annotations

import json
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


def test_edited_item_is_reported_by_id(catalog: Path) -> None:
    path = next(catalog.rglob("gen-0000007.json"))
    doc = json.loads(path.read_text())
    doc["properties"]["eo:cloud_cover"] = 99.5
    path.write_text(json.dumps(doc))
    assert _rules(catalog) == [
        ("dafab:tree-index-agreement",
         "collection 'agree': 1 items differ between tree and index: 'gen-0000007'"),
    ]  # fmt: skip


def test_item_missing_from_index_and_tampered_file(catalog: Path) -> None:
    part = next(catalog.rglob("items.parquet"))
    table = pq.read_table(part)
    keep = table.filter(pc.not_equal(table["id"], "gen-0000003"))
    pq.write_table(keep, part)
    rules = _rules(catalog)
    assert (
        "dafab:tree-index-agreement",
        "collection 'agree': 1 items in the tree but not in the index: 'gen-0000003'",
    ) in rules
    assert sum(r == "dafab:index-manifest" for r, _ in rules) == 3  # bytes, checksum, rows

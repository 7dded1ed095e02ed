"""A property whose every file the summaries prune is still a known property."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dafab_static
from dafab_static.errors import QueryError


def _item(i: int, collection: str, extra: dict[str, float]) -> dict[str, object]:
    return {
        "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [],
        "id": f"{collection}-{i}", "collection": collection, "bbox": [i, 0, i + 0.5, 0.5],
        "geometry": {"type": "Polygon", "coordinates": [[[i, 0], [i + 0.5, 0], [i + 0.5, 0.5],
                                                          [i, 0.5], [i, 0]]]},
        "properties": {"datetime": f"2024-0{1 + i % 3}-01T00:00:00Z", **extra},
        "links": [], "assets": {},
    }  # fmt: skip


def test_a_name_only_pruned_files_have_is_known(tmp_path: Path) -> None:
    items = [_item(i, "alpha", {"test:x": i / 10}) for i in range(6)]
    items += [_item(i, "beta", {}) for i in range(6)]
    source = tmp_path / "items.ndjson"
    source.write_text("\n".join(json.dumps(i) for i in items))
    catalog = tmp_path / "catalog"
    assert dafab_static.build([str(source)], str(catalog)).ok
    # alpha's summaries say test:x <= 0.5: both of its files are pruned, beta's lack it.
    assert list(dafab_static.search(str(catalog), filter="test:x > 5")) == []
    assert sorted(i["id"] for i in dafab_static.search(str(catalog), filter="test:x >= 0.4")) == [
        "alpha-4", "alpha-5"]  # fmt: skip
    with pytest.raises(QueryError, match=r"unknown property 'test:y'.*did you mean 'test:x'"):
        list(dafab_static.search(str(catalog), filter="test:y > 5"))


def test_a_users_collection_summaries_never_prune(tmp_path: Path) -> None:
    """A user's Collection keeps its summaries, but they are informative only (Planetary
    Computer's say ``sentinel-2`` where its items say ``Sentinel 2``): only the summaries
    that the build computed from the rows may skip files, and the queryables' enum lists
    what the items hold."""
    items = [_item(i, "alpha", {"constellation": "Sentinel 2", "test:x": 1.0}) for i in range(6)]
    source = tmp_path / "items.ndjson"
    source.write_text("\n".join(json.dumps(i) for i in items))
    given = {
        "type": "Collection", "stac_version": "1.1.0", "id": "alpha", "description": "d",
        "license": "CC-BY-4.0", "links": [],
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [[None, None]]}},
        "summaries": {"constellation": ["sentinel-2"], "test:x": {"minimum": 5, "maximum": 9}},
    }  # fmt: skip
    collection = tmp_path / "alpha.json"
    collection.write_text(json.dumps(given))
    catalog = tmp_path / "catalog"
    options = dafab_static.BuildOptions(collections=(str(collection),))
    assert dafab_static.build([str(source)], str(catalog), options=options).ok

    doc = json.loads(next(catalog.rglob("alpha.json")).read_text())
    assert doc["summaries"] == given["summaries"]  # the user's document, as given
    found = dafab_static.search(str(catalog), filter="constellation = 'Sentinel 2'")
    assert found.count() == 6
    assert dafab_static.search(str(catalog), filter="test:x < 2").count() == 6
    assert dafab_static.search(str(catalog), filter="constellation = 'sentinel-2'").count() == 0
    queryables = json.loads(next(catalog.rglob("alpha/queryables.json")).read_text())
    assert queryables["properties"]["constellation"]["enum"] == ["Sentinel 2"]

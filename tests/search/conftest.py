"""A small built catalog with items whose answers are known, shared by the search tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

import dafab_static
from tests.builds.generate import item, write_ndjson


def catalog_items() -> list[dict[str, Any]]:
    """60 items in two collections over three months, plus edge cases:

    - ``span-*`` have start/end_datetime intervals (one crosses a month boundary);
    - ``dateline`` crosses the antimeridian;
    - ``cloudless`` has no eo:cloud_cover (sorts last, is null in filters).
    """
    items = [item(i, month=6 + i % 3, day=1 + i % 28) for i in range(40)]
    items += [item(100 + i, collection="other", month=7, day=10, lon=-70.0) for i in range(16)]
    for it in items[40:]:
        it["properties"]["platform"] = "landsat-9"
    span = item(200, month=5, day=20, item_id="span-may-july")
    span["properties"].update(
        {"start_datetime": "2024-05-20T00:00:00Z", "end_datetime": "2024-07-05T00:00:00Z"}
    )
    span2 = item(201, month=9, day=1, item_id="span-september")
    span2["properties"].update(
        {"start_datetime": "2024-09-01T00:00:00Z", "end_datetime": "2024-09-30T00:00:00Z"}
    )
    dateline = item(202, month=7, day=15, item_id="dateline")
    dateline["geometry"] = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[179.5, -17.0], [180.0, -17.0], [180.0, -16.5], [179.5, -16.5], [179.5, -17.0]]],
            [[[-180.0, -17.0], [-179.5, -17.0], [-179.5, -16.5], [-180.0, -16.5], [-180.0, -17.0]]],
        ],
    }
    dateline["bbox"] = [179.5, -17.0, -179.5, -16.5]
    cloudless = item(203, month=7, day=2, item_id="cloudless")
    del cloudless["properties"]["eo:cloud_cover"]
    return [*items, span, span2, dateline, cloudless]


@pytest.fixture(scope="session")
def items() -> list[dict[str, Any]]:
    return catalog_items()


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory, items: list[dict[str, Any]]) -> Path:
    """The built catalog folder (tree + indexes)."""
    root = tmp_path_factory.mktemp("search")
    source = write_ndjson(root / "items.ndjson", copy.deepcopy(items))
    out = root / "catalog"
    report = dafab_static.build(
        [str(source)], str(out), options=dafab_static.BuildOptions(quiet=True)
    )
    assert report.ok, report.summary()
    return out


def ids(result: Any) -> set[str]:
    return {it["id"] for it in result}

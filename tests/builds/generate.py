"""Generated STAC items for tests: real-looking, many, and cheap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def item(
    i: int,
    *,
    collection: str = "gen",
    month: int = 7,
    day: int = 1,
    lon: float = 10.0,
    lat: float = 45.0,
    item_id: str | None = None,
) -> dict[str, Any]:
    """A small valid STAC 1.1.0 item."""
    d = 0.05
    x, y = lon + (i % 100) * 0.1, lat + (i // 100 % 50) * 0.1
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": item_id if item_id is not None else f"gen-{i:07d}",
        "collection": collection,
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]],
        },
        "bbox": [x, y, x + d, y + d],
        "properties": {
            "datetime": f"2024-{month:02d}-{day:02d}T{i % 24:02d}:00:00Z",
            "platform": "sentinel-2a",
            "eo:cloud_cover": i % 100,
        },
        "links": [],
        "assets": {
            "data": {
                "href": f"https://example.com/{i}.tif",
                "type": "image/tiff",
                "roles": ["data"],
            }
        },
    }


def write_ndjson(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(it) + "\n" for it in items))
    return path

"""A seeded set of 300 STAC items for the CQL2 differential tests.

Two collections, every value type CQL2 can filter on: ints, floats, strings with mixed case,
accents, quotes, ``%`` and ``_``; booleans; nulls and missing properties; string and int
arrays; instants (``datetime``) and intervals (``start_datetime``/``end_datetime``, some with
``datetime`` null); and every geometry type a STAC item may have, a few near or across the
antimeridian.

Coordinates sit on a 0.5° grid so that literal geometries in :mod:`tests.cql2.filters` can
touch, cross and equal item geometries exactly. Item times avoid the 1st and the 28th-31st
of every month, so that a DATE literal on those days means the same whether an
implementation reads it as the day's first instant or as the whole day (CQL2 1.0 §7.8.1
leaves the granularity to the implementation).
"""

from __future__ import annotations

import datetime as _dt
import json
import random
from pathlib import Path
from typing import Any

SEED = 20240917
OPTICAL = "cql2-optical"
RADAR = "cql2-radar"
N_OPTICAL = 200
N_RADAR = 100

OPTICAL_PLATFORMS = {
    "sentinel-2a": ("S2A", ["msi"]),
    "sentinel-2b": ("S2B", ["msi"]),
    "landsat-8": ("LC08", ["oli", "tirs"]),
    "landsat-9": ("LC09", ["oli", "tirs"]),
}
RADAR_PLATFORMS = {"sentinel-1a": ("S1A", ["c-sar"]), "sentinel-1b": ("S1B", ["c-sar"])}
PLATFORMS = tuple(OPTICAL_PLATFORMS) + tuple(RADAR_PLATFORMS)
INSTRUMENTS = ("msi", "oli", "tirs", "c-sar")
# Full case folding turns "ß" into "ss" (CASEI, CQL2 1.0 §7.3); every accent here decomposes
# under Unicode NFD, so accent stripping (ACCENTI) has one answer.
CITIES = (
    "Zürich",
    "ZÜRICH",
    "zurich",
    "Zurich",
    "São Paulo",
    "SAO PAULO",
    "Straße",
    "STRASSE",
    "Montréal",
    "montreal",
    "Kraków",
    "KRAKOW",
    "Köln",
    "l'Aquila",
    "L'AQUILA",
    "100% Pure",
    "snake_case",
    "snakeXcase",
    "Besançon",
    "Ärhus",
)
TAGS = ("water", "urban", "forest", "snow", "cloud", "crop")
BANDS = (1, 2, 3, 4, 5, 8, 11, 12)
POLARIZATIONS = ("VV", "VH", "HH", "HV")
TEMPORAL = ("datetime", "start_datetime", "end_datetime")
# Four months across a new year: few index partitions (fast searches), one year boundary.
MONTHS = ((2024, 11), (2024, 12), (2025, 1), (2025, 2))
SAFE_DAYS = range(2, 28)  # see the module docstring
# The main area (0..12 E, 40..50 N) and one across the antimeridian (Fiji, 178 E..178 W).
MAIN_X, MAIN_Y = (0.0, 12.0), (40.0, 50.0)
FIJI_Y = (-20.0, -12.0)


def items(seed: int = SEED) -> list[dict[str, Any]]:
    """All items, optical then radar; the same list for the same seed."""
    rng = random.Random(seed)
    return [_optical(i, rng) for i in range(N_OPTICAL)] + [_radar(i, rng) for i in range(N_RADAR)]


def write_ndjson(path: Path, seed: int = SEED) -> Path:
    """Write :func:`items` as newline-delimited JSON; return ``path``."""
    lines = (json.dumps(it, ensure_ascii=False) + "\n" for it in items(seed))
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _instant(rng: random.Random) -> _dt.datetime:
    year, month = rng.choice(MONTHS)
    return _dt.datetime(
        year,
        month,
        rng.choice(SAFE_DAYS),
        rng.randrange(24),
        rng.randrange(60),
        rng.randrange(60),
        tzinfo=_dt.timezone.utc,
    )


def _iso(t: _dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _optical(i: int, rng: random.Random) -> dict[str, Any]:
    platform = rng.choice(tuple(OPTICAL_PLATFORMS))
    code, instruments = OPTICAL_PLATFORMS[platform]
    t = _instant(rng)
    props: dict[str, Any] = {
        "datetime": _iso(t),
        "platform": platform,
        "instruments": list(instruments),
        "eo:cloud_cover": round(rng.uniform(0, 100), 2),
        "dafab:rank": rng.randrange(100),
        "dafab:score": round(rng.uniform(-50, 50), 3),
        "dafab:city": rng.choice(CITIES),
        "dafab:flag": rng.choice((True, False)),
        "dafab:tags": rng.sample(TAGS, rng.randint(0, 3)),
        "dafab:bands": sorted(rng.sample(BANDS, rng.randint(1, 4))),
    }
    # Nulls and missing properties: CQL2 treats both as NULL.
    for key in ("eo:cloud_cover", "dafab:city", "dafab:flag", "dafab:tags", "dafab:score"):
        if rng.random() < 0.08:
            if rng.random() < 0.5:
                props[key] = None
            else:
                del props[key]
    item_id = f"{code}_{t:%Y%m%d}_{i:03d}"
    return _item(item_id, OPTICAL, _geometry(i, rng), props)


def _radar(i: int, rng: random.Random) -> dict[str, Any]:
    platform = rng.choice(tuple(RADAR_PLATFORMS))
    code, instruments = RADAR_PLATFORMS[platform]
    start = _instant(rng)
    end = start + _dt.timedelta(days=rng.randint(1, 40), hours=rng.randrange(24))
    while end.day not in SAFE_DAYS:
        end += _dt.timedelta(days=3)
    if i < 8:
        # Intervals that share an end with a neighbour, so T_MEETS/T_STARTS/... have matches.
        start = _dt.datetime(2024, 12, 5 + i % 4, tzinfo=_dt.timezone.utc)
        end = _dt.datetime(2024, 12, 9 + i // 2, tzinfo=_dt.timezone.utc)
    props: dict[str, Any] = {
        # STAC: datetime may be null when start_datetime and end_datetime are given.
        "datetime": None if i % 2 else _iso(start + (end - start) / 2),
        "start_datetime": _iso(start),
        "end_datetime": _iso(end),
        "platform": platform,
        "instruments": list(instruments),
        "dafab:rank": rng.randrange(100),
        "dafab:score": round(rng.uniform(-50, 50), 3),
        "sar:polarizations": rng.sample(POLARIZATIONS, rng.randint(1, 2)),
    }
    if rng.random() < 0.5:
        props["dafab:city"] = rng.choice(CITIES)
    if rng.random() < 0.3:
        props["dafab:flag"] = rng.random() < 0.5
    item_id = f"{code}_{start:%Y%m%d}_{i:03d}"
    return _item(item_id, RADAR, _geometry(N_OPTICAL + i, rng), props)


def _item(
    item_id: str, collection: str, geometry: dict[str, Any], props: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": collection,
        "geometry": geometry,
        "bbox": _bbox(geometry),
        "properties": props,
        "links": [],
        "assets": {
            "data": {
                "href": f"https://example.com/{collection}/{item_id}.tif",
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
            }
        },
    }


def _grid(rng: random.Random, lo: float, hi: float) -> float:
    return lo + 0.5 * rng.randrange(int((hi - lo) * 2))


def _box(x: float, y: float, w: float, h: float) -> list[list[float]]:
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]


def _geometry(i: int, rng: random.Random) -> dict[str, Any]:
    if i % 20 == 19:
        return _antimeridian(i // 20, rng)
    x, y = _grid(rng, *MAIN_X), _grid(rng, *MAIN_Y)
    w, h = 0.5 * rng.randint(1, 6), 0.5 * rng.randint(1, 6)
    kind = i % 10
    if kind in (0, 1, 2):
        return {"type": "Polygon", "coordinates": [_box(x, y, w, h)]}
    if kind == 3:
        outer, hole = _box(x, y, w + 1, h + 1), _box(x + 0.5, y + 0.5, w, h)
        return {"type": "Polygon", "coordinates": [outer, hole[::-1]]}
    if kind == 4:
        return {"type": "Point", "coordinates": [x, y]}
    if kind == 5:
        return {"type": "LineString", "coordinates": [[x, y], [x + w, y + h], [x + w, y]]}
    if kind == 6:
        return {"type": "MultiPoint", "coordinates": [[x, y], [x + w, y + h]]}
    if kind == 7:
        lines = [[[x, y], [x + w, y]], [[x, y + h], [x + w, y + h]]]
        return {"type": "MultiLineString", "coordinates": lines}
    if kind == 8:
        polys = [[_box(x, y, w, h)], [_box(x + w + 0.5, y, 0.5, 0.5)]]
        return {"type": "MultiPolygon", "coordinates": polys}
    # STAC's item schema takes GeoJSON's Geometry, which has no GeometryCollection (the build
    # rejects one); GEOMETRYCOLLECTION literals are still used in the filters.
    return {"type": "Polygon", "coordinates": [_box(x, y, 0.5, 0.5)]}


def _antimeridian(k: int, rng: random.Random) -> dict[str, Any]:
    y = _grid(rng, FIJI_Y[0], FIJI_Y[1] - 3)
    kind = k % 5
    if kind == 0:  # across: split at 180 as RFC 7946 §3.1.9 asks
        w = 0.5 * rng.randint(1, 3)
        polys = [[_box(180 - w, y, w, 1.0)], [_box(-180, y, w, 1.0)]]
        return {"type": "MultiPolygon", "coordinates": polys}
    if kind == 1:  # across, as lines
        lines = [[[179.0, y], [180.0, y + 0.5]], [[-180.0, y + 0.5], [-179.0, y + 1]]]
        return {"type": "MultiLineString", "coordinates": lines}
    if kind == 2:
        return {"type": "Polygon", "coordinates": [_box(178.5, y, 1.0, 1.5)]}
    if kind == 3:
        return {"type": "Polygon", "coordinates": [_box(-179.5, y, 1.0, 1.5)]}
    return {"type": "Point", "coordinates": [179.5, y]}


def _points(coords: Any) -> list[list[float]]:
    if isinstance(coords[0], (int, float)):
        return [coords]
    return [p for c in coords for p in _points(c)]


def _bbox(geometry: dict[str, Any]) -> list[float]:
    pts = _points(geometry["coordinates"])
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    east = [x for x in xs if x > 0]
    west = [x for x in xs if x <= 0]
    if east and west and min(east) > 90 and max(west) < -90:
        # Across the antimeridian: RFC 7946 §5.2 bbox with west > east.
        return [min(east), min(ys), max(west), max(ys)]
    return [min(xs), min(ys), max(xs), max(ys)]

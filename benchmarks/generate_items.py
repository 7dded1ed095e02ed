"""Generate N STAC items as ndjson by replicating the 10k real NAIP items over the globe and
over 2015-2026.

Item ``i`` is template ``i % 10000`` (the real items of ``pc-naip-10000.parquet``, in file
order) in replica ``k = i // 10000``:

* **id**: ``f"{template_id}-{k:07d}"``, so ids are unique.
* **space**: replica 0 keeps its real place (Colorado); replica ``k`` moves the whole set by
  one (lon, lat) offset taken from a low-discrepancy sequence, so replicas cover the globe.
  Offsets keep every vertex within +-176 lon and +-85 lat, so geometries stay valid polygons
  (a rigid shift never crosses the antimeridian). ``geometry``, ``bbox`` and
  ``proj:centroid`` move; projected ``proj:*`` values (UTM metres) are left as they are.
* **time**: item ``i`` falls in month ``i % 144`` of 2015-01 .. 2026-12 and on day
  ``1 + (i // 144) % 28``, keeping the template's time of day; ``naip:year`` follows. Any
  prefix of the stream (the 10k slice included) therefore spans all 144 months.

The output is written line by line (never all in memory) to ``DIR/naip-gen-{N}.ndjson``, via a
temporary file renamed at the end, and reused when it already exists with a ``.done`` marker.

Usage::

    python benchmarks/generate_items.py 1000000 --workdir /tmp/dafab-bench
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
NAIP_10K = REPO.parent / "shared" / "data" / "stac-items" / "pc-naip-10000.parquet"
FIRST_YEAR, LAST_YEAR = 2015, 2026
MONTHS = (LAST_YEAR - FIRST_YEAR + 1) * 12
# Centre of replica k stays in this box; the 10k NAIP set spans ~7.2 x 4.2 degrees, so
# every vertex stays inside +-180 / +-85.
LON_SPAN, LAT_SPAN = 172.0, 80.0
_PHI1, _PHI2 = 0.7548776662466927, 0.5698402909980532  # R2 sequence (Roberts 2018)


def load_templates(path: Path = NAIP_10K) -> list[dict[str, Any]]:
    """The real items, as plain dicts, in file order."""
    if not path.exists():
        sys.exit(f"error: {path} is missing; the benchmarks need ../shared/data/stac-items/")
    import pyarrow.parquet as pq
    from stac_geoparquet.arrow import stac_table_to_items

    return list(stac_table_to_items(pq.read_table(path)))


def _centre(items: list[dict[str, Any]]) -> tuple[float, float]:
    xmin = min(it["bbox"][0] for it in items)
    ymin = min(it["bbox"][1] for it in items)
    xmax = max(it["bbox"][2] for it in items)
    ymax = max(it["bbox"][3] for it in items)
    return (xmin + xmax) / 2, (ymin + ymax) / 2


def replica_offset(k: int, centre: tuple[float, float]) -> tuple[float, float]:
    """(dlon, dlat) of replica ``k``; replica 0 stays where the real items are."""
    if k == 0:
        return 0.0, 0.0
    u = (0.5 + _PHI1 * k) % 1.0
    v = (0.5 + _PHI2 * k) % 1.0
    lon = -LON_SPAN + 2 * LON_SPAN * u
    lat = -LAT_SPAN + 2 * LAT_SPAN * v
    return lon - centre[0], lat - centre[1]


def _shift_coords(coords: Any, dlon: float, dlat: float) -> Any:
    if coords and isinstance(coords[0], (int, float)):
        return [round(coords[0] + dlon, 6), round(coords[1] + dlat, 6), *coords[2:]]
    return [_shift_coords(c, dlon, dlat) for c in coords]


def make_item(
    template: dict[str, Any], i: int, *, replica: int, centre: tuple[float, float]
) -> dict[str, Any]:
    """Item ``i`` of the generated stream, from replica ``replica`` of ``template``."""
    k = replica
    dlon, dlat = replica_offset(k, centre)
    slot = i % MONTHS
    year, month = FIRST_YEAR + slot // 12, slot % 12 + 1
    day = 1 + (i // MONTHS) % 28
    # stac_table_to_items gives null for a property that other rows of the file have and this
    # one lacks (the Parquet schema is their union); the source items had no such key.
    props = {key: value for key, value in template["properties"].items() if value is not None}
    clock = props["datetime"][10:]  # "T16:00:00.000Z"
    props["datetime"] = f"{year:04d}-{month:02d}-{day:02d}{clock}"
    if "naip:year" in props:
        props["naip:year"] = f"{year:04d}"
    if isinstance(props.get("proj:centroid"), dict):
        c = props["proj:centroid"]
        props["proj:centroid"] = {
            "lat": round(c["lat"] + dlat, 6),
            "lon": round(c["lon"] + dlon, 6),
        }
    geom = template["geometry"]
    x0, y0, x1, y1 = template["bbox"]
    return {
        **template,
        "id": f"{template['id']}-{k:07d}",
        "bbox": [
            round(x0 + dlon, 6),
            round(y0 + dlat, 6),
            round(x1 + dlon, 6),
            round(y1 + dlat, 6),
        ],
        "geometry": {
            "type": geom["type"],
            "coordinates": _shift_coords(geom["coordinates"], dlon, dlat),
        },
        "properties": props,
    }


def generate(count: int, templates: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Items 0 .. count-1 of the stream, one at a time."""
    centre = _centre(templates)
    n = len(templates)
    for i in range(count):
        yield make_item(templates[i % n], i, replica=i // n, centre=centre)


def ensure(count: int, workdir: Path, *, quiet: bool = False) -> Path:
    """Path of the generated ndjson of ``count`` items, generating it unless cached."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"naip-gen-{count}.ndjson"
    done = out.with_name(out.name + ".done")
    if out.exists() and done.exists() and done.read_text().strip() == str(out.stat().st_size):
        return out
    templates = load_templates()
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    started = time.perf_counter()
    with open(tmp, "wb", buffering=1 << 20) as f:
        for n, item in enumerate(generate(count, templates), 1):
            f.write(orjson.dumps(item))
            f.write(b"\n")
            if not quiet and n % 100_000 == 0:
                print(f"  generated {n} items ({time.perf_counter() - started:.0f} s)", flush=True)
    os.replace(tmp, out)
    done.write_text(str(out.stat().st_size))
    if not quiet:
        size = out.stat().st_size / 1e9
        print(f"  wrote {out} ({size:.2f} GB) in {time.perf_counter() - started:.1f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, help="number of items")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dafab-bench"))
    args = parser.parse_args()
    print(ensure(args.count, args.workdir))


if __name__ == "__main__":
    main()

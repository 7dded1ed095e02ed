"""Generate N STAC items as stac-geoparquet for the search benchmark, by replicating the real
Sentinel-2, Landsat and NAIP items over the globe and over 2015-2026.

The three real sets of ``../shared/data/stac-items/`` (1,000 Sentinel-2 L2A, 100 Landsat C2 L2
and 10,000 NAIP items, all around Colorado) are the templates. Collection ``c`` gets
``share * N`` items (NAIP 60 %, Sentinel-2 30 %, Landsat 10 %); its item ``i`` is template
``i % n_c`` in replica ``k = i // n_c``:

* **id**: ``f"{template_id}-{k:05d}"``, so ids are unique and keep their real prefixes
  (``S2B_MSIL2A_...``, ``LC09_L2SP_...``, ``co_m_...``) for ``LIKE`` queries.
* **space**: replica 0 keeps its real place; replica ``k`` moves the whole template set by one
  (lon, lat) offset of ``generate_items.replica_offset`` (an R2 low-discrepancy sequence,
  the same offsets for the three collections), so replicas cover the globe and every
  vertex stays within +-180 lon and +-85 lat: polygons stay valid and never cross the
  antimeridian. ``geometry`` (WKB), ``bbox`` and NAIP's ``proj:centroid`` move; projected
  ``proj:*`` values stay.
* **time**: item ``i`` falls in month ``i % 144`` of 2015-01 .. 2026-12, on day
  ``1 + (i // 144) % 28``, at a whole second of the day drawn from a generator seeded by
  (collection, replica): near-unique datetimes, so ``sortby datetime`` has few ties.
  ``naip:year`` follows.
* **properties**: every real column is kept with its real values (``platform``,
  ``eo:cloud_cover``, ``proj:epsg``, ``s2:mgrs_tile``, ``naip:state``, ...), so property
  queries select realistic fractions.

The work is vectorised with pyarrow and shapely (about a second per 100k items). Output:
``DIR/search-input-{N}/{collection}.parquet`` (one file per collection, since their schemas
differ) and ``generated.json`` beside them (counts, seed and 10 seeded sample ids), reused
when the ``.done`` marker is present.

Usage::

    python benchmarks/generate_search_items.py 1000000 --workdir /tmp/dafab-bench-search
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_items import FIRST_YEAR, MONTHS, replica_offset

REPO = Path(__file__).resolve().parents[1]
STAC_ITEMS = REPO.parent / "shared" / "data" / "stac-items"
SEED = 20261125
SAMPLE_IDS = 10
ROW_GROUP = 16_384


@dataclass(frozen=True)
class Source:
    collection: str
    file: str
    share: float


SOURCES = (
    Source("naip", "pc-naip-10000.parquet", 0.6),
    Source("sentinel-2-l2a", "pc-sentinel-2-l2a-1000.parquet", 0.3),
    Source("landsat-c2-l2", "pc-landsat-c2-l2-100.parquet", 0.1),
)


def counts(total: int) -> dict[str, int]:
    """Items per collection; the last collection takes the rounding remainder."""
    out = {s.collection: int(total * s.share) for s in SOURCES[:-1]}
    out[SOURCES[-1].collection] = total - sum(out.values())
    return out


def _centre(bbox: pa.StructArray) -> tuple[float, float]:
    xmin, xmax = pc.min(bbox.field("xmin")).as_py(), pc.max(bbox.field("xmax")).as_py()
    ymin, ymax = pc.min(bbox.field("ymin")).as_py(), pc.max(bbox.field("ymax")).as_py()
    return (xmin + xmax) / 2, (ymin + ymax) / 2


def _datetimes(first: int, n: int, seed: list[int]) -> np.ndarray:
    """Datetimes (ms since epoch) of stream items ``first .. first + n - 1``."""
    i = np.arange(first, first + n, dtype=np.int64)
    slot = i % MONTHS
    years = FIRST_YEAR + slot // 12
    months = slot % 12
    month_start = (
        ((years - 1970) * 12 + months)
        .astype("datetime64[M]")
        .astype("datetime64[D]")
        .astype(np.int64)
    )
    day = (i // MONTHS) % 28
    second = np.random.default_rng(seed).integers(0, 86_400, size=n)
    return ((month_start + day) * 86_400 + second) * 1000


def _shift_struct(col: pa.Array, offsets: dict[str, float]) -> pa.StructArray:
    """A struct column with ``offsets[field]`` added to those fields (nulls kept)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    fields = [col.type.field(i) for i in range(col.type.num_fields)]
    arrays = [
        pc.add(col.field(f.name), offsets[f.name]) if f.name in offsets else col.field(f.name)
        for f in fields
    ]
    return pa.StructArray.from_arrays(arrays, fields=fields, mask=col.is_null())


def replica(
    templates: pa.Table,
    geometries: np.ndarray,
    k: int,
    *,
    rows: int,
    centre: tuple[float, float],
    seed: list[int],
) -> pa.Table:
    """Replica ``k`` of the templates (its first ``rows`` rows), as a stac-geoparquet table."""
    table = templates.slice(0, rows)
    n = len(templates)
    dlon, dlat = replica_offset(k, centre)
    columns: dict[str, Any] = {}
    columns["id"] = pc.binary_join_element_wise(table["id"], pa.scalar(f"-{k:05d}"), "")
    moved = shapely.transform(geometries[:rows], lambda xy: xy + np.array([dlon, dlat]))
    columns["geometry"] = pa.array(shapely.to_wkb(moved), pa.binary())
    columns["bbox"] = _shift_struct(
        table["bbox"], {"xmin": dlon, "xmax": dlon, "ymin": dlat, "ymax": dlat}
    )
    ms = _datetimes(k * n, rows, seed)
    columns["datetime"] = pa.array(ms, pa.timestamp("ms", tz="UTC")).cast(table["datetime"].type)
    if "naip:year" in table.column_names:
        years = ms.astype("datetime64[ms]").astype("datetime64[Y]").astype(np.int64) + 1970
        columns["naip:year"] = pa.array(years.astype(str))
    if "proj:centroid" in table.column_names:
        columns["proj:centroid"] = _shift_struct(table["proj:centroid"], {"lon": dlon, "lat": dlat})
    arrays = [
        columns[f.name].cast(f.type) if f.name in columns else table[f.name] for f in table.schema
    ]
    return pa.table(arrays, schema=table.schema)


def write_collection(source: Source, count: int, out: Path, *, quiet: bool) -> list[str]:
    """Write ``count`` items of one collection to ``out``; returns seeded sample ids."""
    templates = pq.read_table(STAC_ITEMS / source.file)
    geometries = shapely.from_wkb(templates["geometry"].to_numpy(zero_copy_only=False))
    centre = _centre(templates["bbox"].combine_chunks())
    n = len(templates)
    replicas = math.ceil(count / n)
    salt = SOURCES.index(source)
    started = time.perf_counter()
    pending: list[pa.Table] = []
    with pq.ParquetWriter(out, templates.schema, compression="zstd") as writer:
        for k in range(replicas):
            rows = min(n, count - k * n)
            pending.append(
                replica(templates, geometries, k, rows=rows, centre=centre, seed=[SEED, salt, k])
            )
            # Landsat has 100 templates: gather replicas into row groups of a useful size.
            if sum(len(t) for t in pending) >= ROW_GROUP or k == replicas - 1:
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP)
                pending = []
            if not quiet and (k + 1) % max(1, replicas // 5) == 0:
                done, seconds = k * n + rows, time.perf_counter() - started
                print(
                    f"  {source.collection}: {done}/{count} ({seconds:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    rng = np.random.default_rng([SEED, salt, 10**6])
    picks = rng.choice(count, size=min(count, SAMPLE_IDS), replace=False)
    ids = templates["id"].to_pylist()
    return [f"{ids[i % n]}-{i // n:05d}" for i in sorted(picks.tolist())]


def ensure(total: int, workdir: Path, *, quiet: bool = False) -> Path:
    """Folder of the generated input of ``total`` items, generating it unless cached."""
    out = workdir / f"search-input-{total}"
    if (out / ".done").exists():
        return out
    missing = [s.file for s in SOURCES if not (STAC_ITEMS / s.file).exists()]
    if missing:
        sys.exit(f"error: {STAC_ITEMS} lacks {missing}; the benchmark needs ../shared/data/")
    tmp = workdir / f".search-input-{total}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.perf_counter()
    per = counts(total)
    samples: dict[str, list[str]] = {}
    for source in SOURCES:
        path = tmp / f"{source.collection}.parquet"
        samples[source.collection] = write_collection(
            source, per[source.collection], path, quiet=quiet
        )
    seconds = round(time.perf_counter() - started, 1)
    rng = np.random.default_rng([SEED, 99])
    pool = [i for ids in samples.values() for i in ids]
    facts = {
        "items": total,
        "collections": per,
        "seed": SEED,
        "sample_ids": sorted(rng.choice(pool, size=SAMPLE_IDS, replace=False).tolist()),
        "bytes": {p.name: p.stat().st_size for p in sorted(tmp.glob("*.parquet"))},
        "generate_s": seconds,
    }
    (tmp / "generated.json").write_text(json.dumps(facts, indent=2) + "\n")
    (tmp / ".done").write_text("")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    if not quiet:
        size = sum(facts["bytes"].values()) / 1e6
        print(f"  wrote {out} ({size:.0f} MB) in {seconds} s", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, help="number of items (all collections)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dafab-bench-search"))
    args = parser.parse_args()
    print(ensure(args.count, args.workdir))


if __name__ == "__main__":
    main()

"""Index alone: dafab-static's stac-geoparquet writer against stac-geoparquet's own.

The items are loaded once as dicts (outside the timing). Then, best of ``--repeat`` each:

* ours: ``dafab_static.index.to_table(items)`` + ``dafab_static.index.encode(table,
  {"id": "naip"}, path="x")``, the whole collection as one partition, bytes written to a file;
* stac-geoparquet: ``stac_geoparquet.arrow.parse_stac_items_to_parquet(items,
  output_path=...)``.

Prints one JSON object.

Usage::

    python benchmarks/index_write.py SRC.parquet WORKDIR [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import pyarrow.parquet as pq
    from stac_geoparquet.arrow import parse_stac_items_to_parquet, stac_table_to_items

    from dafab_static import index

    items = list(stac_table_to_items(pq.read_table(args.src)))
    args.workdir.mkdir(parents=True, exist_ok=True)
    ours_path = args.workdir / "ours.parquet"
    theirs_path = args.workdir / "stac-geoparquet.parquet"

    def ours() -> None:
        table = index.to_table(items)
        data, _ = index.encode(table, {"id": "naip"}, path="x")
        ours_path.write_bytes(data)

    def theirs() -> None:
        parse_stac_items_to_parquet(items, output_path=theirs_path)

    times: dict[str, list[float]] = {"ours": [], "stac_geoparquet": []}
    for _ in range(args.repeat):
        for name, fn in (("ours", ours), ("stac_geoparquet", theirs)):
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    result = {
        "items": len(items),
        "repeat": args.repeat,
        "ours_s": round(min(times["ours"]), 3),
        "stac_geoparquet_s": round(min(times["stac_geoparquet"]), 3),
        "ours_all_s": [round(t, 3) for t in times["ours"]],
        "stac_geoparquet_all_s": [round(t, 3) for t in times["stac_geoparquet"]],
        "ours_bytes": os.path.getsize(ours_path),
        "stac_geoparquet_bytes": os.path.getsize(theirs_path),
        "ours_rows": pq.read_metadata(ours_path).num_rows,
        "stac_geoparquet_rows": pq.read_metadata(theirs_path).num_rows,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

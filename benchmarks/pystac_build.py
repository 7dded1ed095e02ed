"""The pystac peer: the same 10k items to a self-contained static catalog with pystac.

Reads the stac-geoparquet file with ``stac_geoparquet.arrow.stac_table_to_items`` (the same
input work as dafab-static's build), makes a ``pystac.Item`` of each, puts them in one
``pystac.Collection`` (id ``naip``, extent from the items) under a ``pystac.Catalog``, then
``normalize_hrefs(dest)`` and ``save(CatalogType.SELF_CONTAINED)``.

Prints one JSON object with the seconds of each phase (in-process, after imports).

Usage::

    python benchmarks/pystac_build.py SRC.parquet DEST [--drop-foreign-links]
"""

from __future__ import annotations

import argparse
import json
import time

_HIERARCHICAL = {"self", "root", "parent", "child", "collection", "item", "items"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("dest")
    parser.add_argument(
        "--drop-foreign-links",
        action="store_true",
        help="drop the items' non-hierarchical links with absolute hrefs (NAIP's `preview`): "
        "pystac's save walks the whole tree for each of them (Link.get_href calls "
        "root.target_in_hierarchy), which makes the save quadratic in the item count",
    )
    args = parser.parse_args()
    src, dest = args.src, args.dest
    import pyarrow.parquet as pq
    import pystac
    from stac_geoparquet.arrow import stac_table_to_items

    t0 = time.perf_counter()
    dicts = list(stac_table_to_items(pq.read_table(src)))
    if args.drop_foreign_links:
        for d in dicts:
            d["links"] = [ln for ln in d["links"] if ln["rel"] in _HIERARCHICAL]
    t1 = time.perf_counter()
    items = [pystac.Item.from_dict(d) for d in dicts]
    t2 = time.perf_counter()
    catalog = pystac.Catalog(id="pystac-bench", description="pystac peer of dafab-static")
    collection = pystac.Collection(
        id="naip",
        description="NAIP items (benchmark)",
        extent=pystac.Extent.from_items(items),
        license="proprietary",
    )
    catalog.add_child(collection)
    collection.add_items(items)
    catalog.normalize_hrefs(dest)
    t3 = time.perf_counter()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    t4 = time.perf_counter()
    print(
        json.dumps(
            {
                "items": len(items),
                "read_s": round(t1 - t0, 3),
                "from_dict_s": round(t2 - t1, 3),
                "assemble_s": round(t3 - t2, 3),
                "save_s": round(t4 - t3, 3),
                "seconds": round(t4 - t0, 3),
            }
        )
    )


if __name__ == "__main__":
    main()

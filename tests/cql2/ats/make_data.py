"""Make the GeoParquet files of the OGC CQL2 conformance data from its GeoPackage.

Run once by hand; the output is committed beside this script. The source is
``tests/samples/data/ne110m4cql2.gpkg`` of https://github.com/raif-s-naffah/ogc-cql2
(Apache-2.0): the Natural Earth 1:110m layers (public domain) as prepared for the CQL2 1.0
Abstract Test Suite and served by https://demo.ldproxy.net/cql2test. Needs pyogrio
(GDAL)::

    python tests/cql2/ats/make_data.py path/to/ne110m4cql2.gpkg

Column types are kept as the GeoPackage declares them (DATE → date32, DATETIME →
timestamp UTC, BOOLEAN → bool); geometries stay the GeoPackage's WKB, in a column named
``geom`` as the predicates name it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pyogrio
import shapely

LAYERS = {
    "countries": "ne_110m_admin_0_countries",
    "places": "ne_110m_populated_places_simple",
    "rivers": "ne_110m_rivers_lake_centerlines",
}
HERE = Path(__file__).parent


def convert(gpkg: Path, layer: str, out: Path) -> None:
    meta, table = pyogrio.read_arrow(gpkg, layer=layer, return_fids=True)
    table = table.rename_columns(["fid" if n == "OGC_FID" else n for n in table.column_names])
    geoms = shapely.from_wkb(table["geom"].to_numpy(zero_copy_only=False))
    geo = {
        "version": "1.1.0",
        "primary_column": "geom",
        "columns": {
            "geom": {
                "encoding": "WKB",
                "geometry_types": sorted({g.geom_type for g in geoms}),
                "bbox": list(shapely.total_bounds(geoms)),
            }
        },
    }
    order = ["fid"] + [n for n in table.column_names if n != "fid"]
    table = table.select(order)
    table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    pq.write_table(table, out, compression="zstd", compression_level=19)
    print(out, table.num_rows, out.stat().st_size, meta.get("geometry_type"))


if __name__ == "__main__":
    source = Path(sys.argv[1])
    for name, layer in LAYERS.items():
        convert(source, layer, HERE / f"{name}.parquet")

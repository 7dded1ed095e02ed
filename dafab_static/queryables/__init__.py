"""Queryables: the item fields a CQL2 filter can use, as a JSON Schema.

The document the STAC API Filter extension and OGC API Features Part 3 serve at
``/queryables`` and ``/collections/{id}/queryables``. Here it comes from a stac-geoparquet
Arrow schema, so it lists exactly the columns a search can push a filter into. Titles,
descriptions and bounds come from the vendored STAC and extension schemas (never fetched),
enums and ranges from the Collection's ``summaries``.

The build writes one per collection and one for the whole catalog (see
:func:`collection_path`); :func:`queryables` reads them back through their links, or computes
them from a ``collection-mirror`` index, or from a bare Parquet file, when there are none.

- :mod:`._document`: Arrow schema → queryables, merging, :func:`property_type`;
- :mod:`._vendored`: field definitions found in the vendored JSON Schemas;
- :mod:`._read`: :func:`queryables` of a catalog, collection or index, wherever it is.
"""

from dafab_static.queryables._document import (
    CATALOG_PATH,
    DIALECT,
    GEOMETRY_REF,
    MEDIA_TYPE,
    REL,
    collection_path,
    merge_queryables,
    property_type,
    queryables_for_schema,
)
from dafab_static.queryables._read import queryables

__all__ = [
    "CATALOG_PATH",
    "DIALECT",
    "GEOMETRY_REF",
    "MEDIA_TYPE",
    "REL",
    "collection_path",
    "merge_queryables",
    "property_type",
    "queryables",
    "queryables_for_schema",
]

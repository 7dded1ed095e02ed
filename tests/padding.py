"""Items that other converters (stac-geoparquet, rustac, DuckDB) read back from Parquet,
without the nulls a columnar file pads them with, so they compare with the JSON items.

The rule is the one ``dafab_static.index_items.to_items`` applies itself: no nulls in properties,
links or assets, except a ``datetime`` that a start/end interval replaces.
"""

from __future__ import annotations

from typing import Any


def drop_padding(item: dict[str, Any]) -> dict[str, Any]:
    """Remove the padding nulls of ``item`` in place; returns it for chaining."""
    for key in ("properties", "links", "assets"):
        if key in item:
            _drop_nulls(item[key])
    props = item.get("properties")
    if isinstance(props, dict) and "datetime" not in props:
        props["datetime"] = None
    return item


def _drop_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return
    for child in children:
        _drop_nulls(child)

"""Collections: extents and summaries computed from their items, in Arrow, one partition at
a time, so a collection of a million items costs a few small accumulators.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dafab_static.bbox_union import BoxUnion, corners
from dafab_static.spool import parse_time

STAC_VERSION = "1.1.0"
# A string property with more distinct values than this is an identifier, not a category
# worth summarising (e.g. s2:granule_id), so it gets no summary.
MAX_DISTINCT = 32
_NOT_SUMMARISED = {
    "id", "type", "stac_version", "stac_extensions", "geometry", "bbox", "links", "assets",
    "collection", "datetime", "start_datetime", "end_datetime", "created", "updated",
    "title", "description", "proj:bbox", "proj:shape", "proj:transform", "proj:geometry",
    "proj:centroid", "proj:projjson", "proj:wkt2", "eo:bands", "raster:bands", "bands",
}  # fmt: skip


@dataclass
class CollectionStats:
    """Running extent and summaries of one collection's items."""

    collection_id: str
    count: int = 0
    boxes: BoxUnion = field(default_factory=BoxUnion)
    start: str | None = None
    end: str | None = None
    #: Per property, every value while they are few (None: too many, or not all listable).
    categories: dict[str, set[Any] | None] = field(default_factory=dict)
    #: Per property, [min, max] of its numbers (None: some partition holds other values).
    ranges: dict[str, list[Any] | None] = field(default_factory=dict)
    extensions: set[str] = field(default_factory=set)

    def add(self, table: pa.Table, start: str, end: str) -> None:
        """Fold one partition (a stac-geoparquet table) into the running figures."""
        self.count += table.num_rows
        bbox = table["bbox"]
        self.boxes.add_columns(*(pc.struct_field(bbox, k).to_numpy()
                                 for k in ("xmin", "ymin", "xmax", "ymax")))  # fmt: skip
        self._widen(start, end)
        if "stac_extensions" in table.column_names:  # optional: items may declare none
            for ext in pc.unique(pc.list_flatten(table["stac_extensions"])).to_pylist():
                self.extensions.add(ext)
        for name in table.column_names:
            if name in _NOT_SUMMARISED:
                continue
            self._summarise(name, table[name])

    def add_item(self, item: Mapping[str, Any]) -> None:
        """Fold one item's bbox and time range into the extent, not its summaries: for a
        Collection written beside items one by one (``pipeline run``)."""
        self.count += 1
        if (box := corners(item.get("bbox"))) is not None:
            self.boxes.add(box)
        props = item.get("properties") or {}
        instant = props.get("datetime")
        self._widen(props.get("start_datetime") or instant, props.get("end_datetime") or instant)

    def merge(self, other: CollectionStats) -> None:
        """Fold another partial result (e.g. from a worker process) into this one."""
        self.count += other.count
        self.boxes.update(other.boxes)
        self._widen(other.start, other.end)
        self.extensions |= other.extensions
        for name, values in other.categories.items():
            seen = self.categories.get(name, set())
            if seen is None or values is None:
                self.categories[name] = None
                continue
            seen |= values
            self.categories[name] = seen if len(seen) <= MAX_DISTINCT else None
        for name, bounds in other.ranges.items():
            self._bound(name, bounds)

    def _widen(self, start: str | None, end: str | None) -> None:
        """Widen the time range to hold ``start``/``end``, compared as instants: as text,
        '23:59:59.5Z' sorts before '23:59:59Z' ('.' < 'Z'), and the extent ended early."""
        if start is not None and (self.start is None or parse_time(start) < parse_time(self.start)):
            self.start = start
        if end is not None and (self.end is None or parse_time(end) > parse_time(self.end)):
            self.end = end

    def _summarise(self, name: str, column: pa.ChunkedArray) -> None:
        kind = column.type
        if pa.types.is_null(kind):
            return  # no value in this partition: nothing to list or bound
        if pa.types.is_list(kind) and pa.types.is_string(kind.value_type):
            column = pc.list_flatten(column)
            kind = column.type
        categorical = pa.types.is_string(kind) or pa.types.is_boolean(kind)
        if categorical or pa.types.is_integer(kind):
            # Integers are often codes (proj:epsg, sat:relative_orbit): listed while few.
            seen = self.categories.get(name, set())
            if seen is not None:
                seen.update(v for v in pc.unique(column).to_pylist() if v is not None)
                self.categories[name] = seen if len(seen) <= MAX_DISTINCT else None
        else:
            # A list must hold every value: a partition whose values are not listed (floats
            # in one month, integers in another) ends the list, and a search that prunes
            # files by it (`eo:cloud_cover = 20.5`) would skip the month that matches.
            self.categories[name] = None
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            self.ranges[name] = None  # likewise, a range must bound every value
            return
        if name in self.ranges and self.ranges[name] is None:
            return
        lo, hi = pc.min_max(column).values()
        if lo.as_py() is None:
            return
        self._bound(name, [lo.as_py(), hi.as_py()])

    def _bound(self, name: str, bounds: list[Any] | None) -> None:
        old = self.ranges.get(name, bounds)
        if old is None or bounds is None:
            self.ranges[name] = None
        else:
            self.ranges[name] = [min(old[0], bounds[0]), max(old[1], bounds[1])]

    def summaries(self) -> dict[str, Any]:
        """STAC summaries: sorted value lists for categories, range objects for numbers."""
        out: dict[str, Any] = {}
        for name, values in sorted(self.categories.items()):
            if values:
                out[name] = sorted(values, key=str)
        for name, bounds in sorted(self.ranges.items()):
            if name not in out and bounds is not None:
                out[name] = {"minimum": bounds[0], "maximum": bounds[1]}
        return dict(sorted(out.items()))

    def extent(self) -> dict[str, Any]:
        """STAC 1.1 extent: exactly one overall bbox (never two) and one interval. The bbox
        crosses the antimeridian (west > east) where that holds the items most tightly."""
        bbox = (self.boxes.bbox() if self.count else None) or [-180.0, -90.0, 180.0, 90.0]
        west, south, east, north = bbox
        edges = [_outward(west, -1), _outward(south, -1), _outward(east, 1), _outward(north, 1)]
        return {
            "spatial": {"bbox": [edges]},
            "temporal": {"interval": [[self.start, self.end]]},
        }


def _outward(value: float, direction: int) -> float:
    """``value`` to 7 decimals (1 cm), rounded away from the box's inside (``direction``
    -1 for west and south, 1 for east and north): rounded to the nearest, the extent missed
    items by up to 5 mm, and STAC's overall extent must hold every item."""
    rounded = round(value, 7)
    if (rounded - value) * direction < 0:
        rounded = round(rounded + direction * 1e-7, 7)
    return rounded


def make_collection(
    stats: CollectionStats,
    *,
    given: dict[str, Any] | None,
    assets: dict[str, Any],
) -> dict[str, Any]:
    """The Collection document: the user's or a crawled one if given, else a generated one;
    extent always recomputed from the items, summaries computed where none were given.

    Structural links are replaced by :func:`dafab_static.tree.collection_document`.
    """
    if given:
        doc = {k: v for k, v in given.items() if k not in ("links", "extent")}
        doc.setdefault("summaries", stats.summaries())
        links = list(given.get("links", []))
    else:
        doc = {
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "stac_extensions": [],
            "id": stats.collection_id,
            "title": stats.collection_id,
            "description": f"{stats.collection_id}: items gathered by dafab-static.",
            "license": "other",
            "summaries": stats.summaries(),
        }
        links = []
    doc["type"] = "Collection"
    doc["extent"] = stats.extent()
    doc["links"] = links
    doc["assets"] = {**doc.get("assets", {}), **assets}
    return doc


def file_collection(
    collection_id: str,
    *,
    given: dict[str, Any] | None,
    bbox: list[float] | None,
    start: str | None,
    end: str | None,
) -> dict[str, Any]:
    """The Collection that each of the collection's index files embeds, as stac-geoparquet
    1.1.0 ``collections`` metadata, so that a file alone is self-describing.

    It is a valid Collection with the extent of all the collection's items, which the spool
    knows before any file is written. It has no links (they are relative to the tree, so they
    would be wrong inside a file), and no summaries unless the user gave them: ours are
    computed while the files are being written.
    """
    boxes = BoxUnion.of(bbox) if bbox else BoxUnion()
    stats = CollectionStats(collection_id, count=1, boxes=boxes, start=start, end=end)
    doc = make_collection(stats, given=given, assets={})
    doc["links"] = []
    for key in ("summaries", "assets"):
        if not doc.get(key):
            doc.pop(key, None)
    return doc

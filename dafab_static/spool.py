"""Phase 1 of a build: check each incoming item and spool it to disk by (collection, month).

Only counts and a few facts per collection stay in memory, so ingest memory is flat in the
number of items; the counts let phase 2 plan each month's split before writing any item.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from dafab_static import layout
from dafab_static.errors import InputError

# Bytes of spooled JSON lines held before appending them to their month files.
_FLUSH_BYTES = 1 << 22
#: Collection of items that name none (and no --collection was given).
UNASSIGNED = "unassigned"


class Entry(NamedTuple):
    """One checked item as the spool keeps it: its JSON line and the facts its counts need.

    Made by :func:`prepare`, a pure function of the item, so that it can run in a reader
    process (:mod:`dafab_static.ingest.striped`); :meth:`Spool.add` then only checks the id
    is new and counts the entry.
    """

    collection: str
    item_id: str
    source: str
    key: bytes  # a 12-byte digest of (collection, id): duplicates are found by it
    month: tuple[int, int]  # (year, month) it is filed under
    day: str  # "DD" and "DD/HH" within the month, as layout.plan_split counts them
    hour: str
    bbox: tuple[float, float, float, float] | None  # for the extent; None when malformed
    start: _dt.datetime  # aware UTC: the item's time range, for the extent
    end: _dt.datetime
    platform: str  # where its collection goes, if it is the collection's first item
    derived: bool
    line: bytes


def prepare(item: dict[str, Any], source: str, collection: str | None = None) -> Entry:
    """Check one item for the spool and serialise it; ``collection`` overrides its own.

    Raises:
        InputError: naming ``source`` and the item for an unusable id or collection id,
            a missing or malformed datetime, or a missing geometry.
    """
    item_id = layout.check_id(item.get("id"), what="item", source=source)
    where = f"{source}: item {item_id!r}"
    cid = collection or item.get("collection") or UNASSIGNED
    layout.check_id(cid, what="collection", source=where)
    when = item_time(item, where)
    if not isinstance(item.get("geometry"), dict):
        raise InputError(f"{where}: has no geometry; every indexed item needs a footprint")
    if "bbox" not in item:
        import shapely.geometry

        item["bbox"] = list(shapely.geometry.shape(item["geometry"]).bounds)
    item["collection"] = cid
    props = item["properties"]
    # Derived products link to their sources; model cards (MLM items) are products of the
    # catalog too, not of a sensor.
    derived = any(ln.get("rel") == "derived_from" for ln in item.get("links", [])) or (
        "mlm:name" in props
    )
    start, end = _time_range(props, when)
    key = hashlib.blake2b(f"{cid}\0{item_id}".encode(), digest_size=12).digest()
    day = f"{when.day:02d}"
    return Entry(
        cid, item_id, source, key, (when.year, when.month), day, f"{day}/{when.hour:02d}",
        _box(item.get("bbox")), start, end,
        layout.platform_slug(cid, props), derived, orjson.dumps(item) + b"\n",
    )  # fmt: skip


def _box(box: Any) -> tuple[float, float, float, float] | None:
    """An item's bbox as (west, south, east, north) for the extent, as
    :func:`dafab_static.index.time_range` and the file bbox read it from a partition: a
    west > east (antimeridian) box covers every longitude. A malformed bbox is not counted
    here: the writer's validation reports it."""
    if not (isinstance(box, list) and len(box) in (4, 6) and all(map(_is_number, box))):
        return None
    west, south = box[0], box[1]
    east, north = (box[3], box[4]) if len(box) == 6 else (box[2], box[3])
    return (-180.0, south, 180.0, north) if west > east else (west, south, east, north)


def _time_range(props: dict[str, Any], when: _dt.datetime) -> tuple[_dt.datetime, _dt.datetime]:
    """From the earliest ``datetime``/``start_datetime`` to the latest
    ``datetime``/``end_datetime``, aware."""
    start = end = _aware(when)
    # `when` is `datetime`, else `start_datetime` (item_time): parse only the others.
    for key in ("start_datetime", "end_datetime") if props.get("datetime") else ("end_datetime",):
        if (text := props.get(key)) and isinstance(text, str):
            try:
                value = _aware(parse_time(text))
            except ValueError:  # reported by the partition writer, which reads it too
                continue
            start, end = min(start, value), max(end, value)
    return start, end


@dataclass
class CollectionCounts:
    """Where a collection goes and how many items each month, day and hour holds."""

    place: layout.CollectionPlace
    months: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    days: dict[tuple[int, int], dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    hours: dict[tuple[int, int], dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    #: Running extent of the items, known before any month is written, so each index file
    #: can embed a whole Collection (see :meth:`extent`).
    bbox: list[float] = field(default_factory=lambda: [math.inf, math.inf, -math.inf, -math.inf])
    start: _dt.datetime | None = None
    end: _dt.datetime | None = None

    def count(self, entry: Entry) -> None:
        """Fold one entry into the counts and the running extent."""
        if (box := entry.bbox) is not None:
            b = self.bbox
            b[0], b[1] = min(b[0], box[0]), min(b[1], box[1])
            b[2], b[3] = max(b[2], box[2]), max(b[3], box[3])
        if self.start is None or entry.start < self.start:
            self.start = entry.start
        if self.end is None or entry.end > self.end:
            self.end = entry.end
        month = entry.month
        self.months[month] += 1
        days, hours = self.days[month], self.hours[month]
        days[entry.day] = days.get(entry.day, 0) + 1
        hours[entry.hour] = hours.get(entry.hour, 0) + 1

    def extent(self) -> tuple[list[float], str | None, str | None]:
        """The bbox and RFC 3339 start and end of every item spooled so far."""
        text = [None if t is None else format_time(t) for t in (self.start, self.end)]
        return list(self.bbox), text[0], text[1]

    def split(self, year: int, month: int, *, max_children: int) -> layout.Split:
        """How to split one month so no catalog lists more than ``max_children`` links."""
        key = (year, month)
        return layout.plan_split(
            self.months[key], self.days[key], self.hours[key], max_children=max_children
        )


class Spool:
    """Checked items, one JSON line each, in a file per (collection, month)."""

    def __init__(self, folder: Path, *, collection: str | None = None) -> None:
        self.folder = folder
        self.collection = collection
        self.counts: dict[str, CollectionCounts] = {}
        # 12-byte digests, not the ids: 1M (collection, id) pairs in ~60 MB instead of ~150.
        self._seen: set[bytes] = set()
        self._buffers: dict[tuple[str, int, int], list[bytes]] = defaultdict(list)
        self._buffered = 0

    def accept(self, item: dict[str, Any], source: str) -> None:
        """Check one item and spool it (:func:`prepare`, then :meth:`add`).

        Raises:
            InputError: as :func:`prepare` and :meth:`add`.
        """
        self.add(prepare(item, source, self.collection))

    def add(self, entry: Entry) -> None:
        """Spool one prepared item, unless its id is already in its collection.

        Raises:
            InputError: naming its source and id for a duplicate id within its collection
                (the first one is kept).
        """
        cid = entry.collection
        if entry.key in self._seen:
            raise InputError(
                f"{entry.source}: item {entry.item_id!r}: duplicate id in collection {cid!r}; "
                "the first one is kept"
            )
        self._seen.add(entry.key)
        counts = self.counts.get(cid)
        if counts is None:
            place = layout.place_collection(cid, platform=entry.platform, derived=entry.derived)
            counts = self.counts[cid] = CollectionCounts(place)
        counts.count(entry)
        self._buffers[(cid, *entry.month)].append(entry.line)
        self._buffered += len(entry.line)
        if self._buffered > _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Append buffered lines to their month files."""
        for (cid, year, month), lines in self._buffers.items():
            with open(self.path(cid, year, month), "ab") as f:
                f.writelines(lines)
        self._buffers.clear()
        self._buffered = 0

    def path(self, cid: str, year: int, month: int) -> Path:
        """The spool file of one collection's month."""
        return self.folder / f"{layout.segment(cid)}.{year:04d}-{month:02d}.ndjson"

    @property
    def total(self) -> int:
        """Items accepted so far."""
        return sum(sum(c.months.values()) for c in self.counts.values())


def read_month(path: str | Path) -> list[dict[str, Any]]:
    """A spooled month's items, in time then id order (deterministic catalogs)."""
    with open(path, "rb") as f:
        items = [orjson.loads(line) for line in f]
    items.sort(key=lambda it: (time_key(it), it["id"]))
    return items


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def time_key(item: dict[str, Any]) -> str:
    """The RFC 3339 text an item is filed under: ``datetime``, else ``start_datetime``."""
    props = item.get("properties", {})
    return str(props.get("datetime") or props.get("start_datetime"))


def parse_time(text: str) -> _dt.datetime:
    """Parse RFC 3339 (``Z`` or offsets) to an aware UTC datetime (naive stays naive)."""
    value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return value.astimezone(_dt.timezone.utc) if value.tzinfo else value


def format_time(value: _dt.datetime) -> str:
    """An aware UTC datetime as the index writes instants (``isoformat`` with ``Z``): the
    partitions' time ranges and the Collection extents that the spool computes ahead."""
    return value.isoformat().replace("+00:00", "Z")


def _aware(value: _dt.datetime) -> _dt.datetime:
    """``parse_time`` keeps a naive time naive; the extent reads it as UTC, as Arrow does."""
    return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)


def item_time(item: dict[str, Any], where: str) -> _dt.datetime:
    """The time an item is filed under.

    Raises:
        InputError: when the item has no properties, no datetime (nor ``start_datetime``),
            or one that is not RFC 3339.
    """
    props = item.get("properties")
    if not isinstance(props, dict):
        raise InputError(f"{where}: has no properties object")
    text = props.get("datetime") or props.get("start_datetime")
    if not text:
        raise InputError(f"{where}: has no datetime (nor start_datetime/end_datetime)")
    try:
        return parse_time(str(text))
    except ValueError:
        raise InputError(f"{where}: datetime {text!r} is not RFC 3339") from None

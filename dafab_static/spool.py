"""Phase 1 of a build: spool checked items to disk by (collection, month), and count them.

Items arrive ready (:mod:`dafab_static.entries`: one by one, or in batches that reader
processes packed). Only counts and a few facts per collection stay in memory, so ingest
memory is flat in the number of items; the counts let phase 2 plan each month's split
before writing any item.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from dafab_static import layout
from dafab_static.bbox_union import BoxUnion
from dafab_static.errors import InputError

if TYPE_CHECKING:
    from dafab_static.entries import Entry, Packed

# Bytes of spooled JSON lines held before appending them to their month files.
_FLUSH_BYTES = 1 << 22
#: Collection of items that name none (and no --collection was given).
UNASSIGNED = "unassigned"


@dataclass
class CollectionCounts:
    """Where a collection goes and how many items each month, day and hour holds."""

    place: layout.CollectionPlace
    months: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    days: dict[tuple[int, int], dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    hours: dict[tuple[int, int], dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    #: Running extent of the items, known before any month is written, so each index file
    #: can embed a whole Collection (see :meth:`extent`).
    boxes: BoxUnion = field(default_factory=BoxUnion)
    start: _dt.datetime | None = None
    end: _dt.datetime | None = None

    @classmethod
    def of(cls, entry: Entry) -> CollectionCounts:
        """Empty counts for the collection of ``entry``, placed as its first item says."""
        place = layout.place_collection(
            entry.collection, platform=entry.platform, derived=entry.derived
        )
        return cls(place)

    def count(self, entry: Entry) -> None:
        """Fold one entry into the counts and the running extent."""
        if (box := entry.bbox) is not None:
            self.boxes.add(box)
        if self.start is None or entry.start < self.start:
            self.start = entry.start
        if self.end is None or entry.end > self.end:
            self.end = entry.end
        month = entry.month
        self.months[month] += 1
        days, hours = self.days[month], self.hours[month]
        days[entry.day] = days.get(entry.day, 0) + 1
        hours[entry.hour] = hours.get(entry.hour, 0) + 1

    def merge(self, other: CollectionCounts) -> None:
        """Add the counts and extent of ``other`` (a batch's tally) to these."""
        self.boxes.update(other.boxes)
        if other.start is not None and (self.start is None or other.start < self.start):
            self.start = other.start
        if other.end is not None and (self.end is None or other.end > self.end):
            self.end = other.end
        for month, count in other.months.items():
            self.months[month] += count
            _add_counts(self.days[month], other.days[month])
            _add_counts(self.hours[month], other.hours[month])

    def uncount(self, month: tuple[int, int], day: str, hour: str) -> None:
        """Take one item back out of the counts (a duplicate found after its batch's tally
        was made). The extent stays: the partition writer narrows it to what it writes."""
        self.months[month] -= 1
        for counts, key in ((self.days[month], day), (self.hours[month], hour)):
            counts[key] -= 1
            if not counts[key]:
                del counts[key]
        if not self.months[month]:
            del self.months[month], self.days[month], self.hours[month]

    def extent(self) -> tuple[list[float] | None, str | None, str | None]:
        """The bbox (None before any item) and RFC 3339 start and end of every item
        spooled so far."""
        text = [None if t is None else format_time(t) for t in (self.start, self.end)]
        return self.boxes.bbox(), text[0], text[1]

    def split(self, year: int, month: int, *, max_children: int) -> layout.Split:
        """How to split one month so no catalog lists more than ``max_children`` links."""
        key = (year, month)
        return layout.plan_split(
            self.months[key], self.days[key], self.hours[key], max_children=max_children
        )


def _duplicate(source: str, item_id: str, collection: str) -> InputError:
    return InputError(
        f"{source}: item {item_id!r}: duplicate id in collection {collection!r} "
        "(an item read earlier has it)"
    )


def _add_counts(mine: dict[str, int], theirs: dict[str, int]) -> None:
    for key, count in theirs.items():
        mine[key] = mine.get(key, 0) + count


class Spool:
    """Checked items, one JSON line each, in a file per (collection, month)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counts: dict[str, CollectionCounts] = {}
        # 12-byte digests, not the ids: 1M (collection, id) pairs in ~60 MB instead of ~150.
        self._seen: set[bytes] = set()
        self._buffers: dict[tuple[str, int, int], list[bytes]] = defaultdict(list)
        self._buffered = 0
        self._packed: Packed | None = None  # the batch whose ids add_packed is checking
        self._dropped: list[int] = []  # and its duplicates

    def add(self, entry: Entry) -> None:
        """Spool one prepared item, unless its id is already in its collection.

        Raises:
            InputError: naming its source and id for a duplicate id within its collection
                (the first one is kept).
        """
        cid = entry.collection
        if entry.key in self._seen:
            raise _duplicate(entry.source, entry.item_id, cid)
        self._seen.add(entry.key)
        counts = self.counts.get(cid)
        if counts is None:
            counts = self.counts[cid] = CollectionCounts.of(entry)
        counts.count(entry)
        self._buffers[(cid, *entry.month)].append(entry.line)
        self._buffered += len(entry.line)
        if self._buffered > _FLUSH_BYTES:
            self.flush()

    def add_packed(self, packed: Packed, index: int) -> None:
        """Spool the ``index``-th item of a batch that a reader process packed (:func:`pack`),
        unless its id is already in its collection.

        Only the id is checked here, item by item, in input order; the batch's lines and
        counts are taken in one go once the next batch comes (or at :meth:`flush`).

        Raises:
            InputError: as :meth:`add`, for a duplicate id.
        """
        if packed is not self._packed:
            self._take_packed()
            self._packed = packed
        key = packed.keys[index]
        if key in self._seen:
            self._dropped.append(index)
            cid = packed.groups[packed.group_of[index]][0]
            raise _duplicate(packed.sources[index], packed.ids[index], cid)
        self._seen.add(key)

    def _take_packed(self) -> None:
        """Take the lines and counts of the packed batch whose ids were all checked."""
        packed, dropped = self._packed, self._dropped
        if packed is None:
            return
        self._packed, self._dropped = None, []
        lost = set(dropped)
        for cid, tally in packed.tallies.items():
            if cid in self.counts:
                self.counts[cid].merge(tally)
            else:
                self.counts[cid] = tally
        for index in dropped:  # rare: duplicates of earlier items
            group = packed.groups[packed.group_of[index]]
            self.counts[group[0]].uncount(group[1:], packed.days[index], packed.hours[index])
        for number, (cid, year, month) in enumerate(packed.groups):
            blob = packed.blobs[number]
            if lost:
                blob = b"".join(line for i, line in packed.lines(number) if i not in lost)
                if not blob:
                    continue
            self._buffers[(cid, year, month)].append(blob)
            self._buffered += len(blob)
        for cid in [cid for cid, counts in self.counts.items() if not counts.months]:
            del self.counts[cid]  # every item of it was a duplicate
        if self._buffered > _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Append buffered lines to their month files."""
        self._take_packed()
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


def aware(value: _dt.datetime) -> _dt.datetime:
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
        if _LEAP_SECOND.search(str(text)):  # RFC 3339 allows second 60 (its section 5.7)
            raise InputError(
                f"{where}: datetime {text!r} is a leap second, which stac-geoparquet's "
                "timestamps (POSIX time) cannot hold"
            ) from None
        raise InputError(f"{where}: datetime {text!r} is not RFC 3339") from None


_LEAP_SECOND = re.compile(r"T\d\d:\d\d:60(\.\d+)?(Z|[+-]\d\d:\d\d)$", re.IGNORECASE)

"""Items made ready for the spool: checked, serialised and counted, one by one or by batch.

:func:`prepare` is a pure function of an item, so it runs where the item is read: in the
build's process, or in the reader processes of a large file
(:mod:`dafab_static.ingest.striped`), which also :func:`pack` each batch so the build's
process only checks ids (:meth:`dafab_static.spool.Spool.add_packed`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from dafab_static import layout
from dafab_static.bbox_union import corners
from dafab_static.errors import InputError
from dafab_static.spool import UNASSIGNED, CollectionCounts, aware, item_time, parse_time


class Entry(NamedTuple):
    """One checked item as the spool keeps it: its JSON line and the facts its counts need.

    Made by :func:`prepare`, a pure function of the item, so that it can run in a reader
    process (:mod:`dafab_static.ingest.striped`); ``Spool.add`` then only checks the id is
    new and counts the entry.
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
    if not _has_position(item["geometry"]):
        # RFC 7946 lets an empty geometry stand for none; the index would read it back as
        # another empty shape ('coordinates': [[]]), and the tree and index disagreed.
        raise InputError(f"{where}: its geometry is empty; every indexed item needs a footprint")
    _drop_empty_parts(item["geometry"])
    if "bbox" not in item:
        import shapely.errors
        import shapely.geometry

        try:
            item["bbox"] = list(shapely.geometry.shape(item["geometry"]).bounds)
        except (ValueError, TypeError, IndexError, KeyError, shapely.errors.ShapelyError) as e:
            raise InputError(f"{where}: has no bbox, and its geometry gives none: {e}") from None
    item["collection"] = cid
    props = item["properties"]
    # Derived products link to their sources; model cards (MLM items) are products of the
    # catalog too, not of a sensor.
    derived = any(ln.get("rel") == "derived_from" for ln in item.get("links", [])) or (
        "mlm:name" in props
    )
    start, end = _time_range(props, when)
    _check_order(props, where)
    key = hashlib.blake2b(f"{cid}\0{item_id}".encode(), digest_size=12).digest()
    day = f"{when.day:02d}"
    try:
        line = orjson.dumps(item) + b"\n"
    except orjson.JSONEncodeError as e:  # 255 levels deep: "Recursion limit reached"
        raise InputError(f"{where}: cannot be written as JSON ({e})") from None
    return Entry(
        cid, item_id, source, key, (when.year, when.month), day, f"{day}/{when.hour:02d}",
        corners(item.get("bbox")), start, end,
        _platform(cid, props.get("constellation"), props.get("platform")), derived, line,
    )  # fmt: skip


def _has_position(geometry: dict[str, Any]) -> bool:
    """Whether a GeoJSON geometry holds at least one position (it stops at the first)."""
    if geometry.get("type") == "GeometryCollection":
        members = geometry.get("geometries")
        return isinstance(members, list) and any(
            isinstance(g, dict) and _has_position(g) for g in members
        )
    return _holds_position(geometry.get("coordinates"))


def _drop_empty_parts(geometry: dict[str, Any]) -> None:
    """Drop the empty members of a Multi* geometry (``[[[...]]], []]``), which hold no
    point: the index's WKB reads one back as ``[[]]``, and the tree and index disagreed."""
    parts = geometry.get("coordinates")
    if not (str(geometry.get("type")).startswith("Multi") and isinstance(parts, list)):
        return
    if not all(_holds_position(part) for part in parts):
        geometry["coordinates"] = [part for part in parts if _holds_position(part)]


def _holds_position(coordinates: Any) -> bool:
    if not isinstance(coordinates, list) or not coordinates:
        return False
    if not isinstance(coordinates[0], list):
        return True  # a position
    return any(_holds_position(c) for c in coordinates)


def _platform(collection: str, constellation: Any, platform: Any) -> str:
    """:func:`layout.platform_slug`, remembered: items of a collection mostly share it."""
    if isinstance(constellation, (str, type(None))) and isinstance(platform, (str, type(None))):
        return _platform_of(collection, constellation, platform)
    return layout.platform_slug(collection, {"constellation": constellation, "platform": platform})


@functools.lru_cache(maxsize=1024)
def _platform_of(collection: str, constellation: str | None, platform: str | None) -> str:
    return layout.platform_slug(collection, {"constellation": constellation, "platform": platform})


def _time_range(props: dict[str, Any], when: _dt.datetime) -> tuple[_dt.datetime, _dt.datetime]:
    """From the earliest ``datetime``/``start_datetime`` to the latest
    ``datetime``/``end_datetime``, aware."""
    start = end = aware(when)
    # `when` is `datetime`, else `start_datetime` (item_time): parse only the others.
    for key in ("start_datetime", "end_datetime") if props.get("datetime") else ("end_datetime",):
        if (text := props.get(key)) and isinstance(text, str):
            try:
                value = aware(parse_time(text))
            except ValueError:  # reported by the partition writer, which reads it too
                continue
            start, end = min(start, value), max(end, value)
    return start, end


def _check_order(props: dict[str, Any], where: str) -> None:
    """STAC's range: ``end_datetime`` not before ``start_datetime`` (its schema cannot say
    so; published, the partitions manifest spanned 2024 to 2023 and validate failed).

    Raises:
        InputError: naming both values.
    """
    first, last = props.get("start_datetime"), props.get("end_datetime")
    if not (isinstance(first, str) and isinstance(last, str)):
        return
    try:
        if aware(parse_time(last)) >= aware(parse_time(first)):
            return
    except ValueError:  # reported by the partition writer, which reads them too
        return
    raise InputError(f"{where}: end_datetime {last!r} is before start_datetime {first!r}")


@dataclass(frozen=True)
class Packed:
    """A batch of entries as a reader process sends it (:func:`pack`): their lines joined
    per (collection, month), their counts tallied per collection, and per entry only what
    ``Spool.add_packed`` needs to check its id, in lists that pickle fast."""

    keys: list[bytes]
    ids: list[str]
    sources: list[str]
    group_of: list[int]  # each entry's (collection, month) group, an index into groups
    days: list[str]
    hours: list[str]
    groups: list[tuple[str, int, int]]
    blobs: list[bytes]  # each group's lines, in entry order
    lengths: list[int]  # each entry's line length, to cut a duplicate out of its blob
    tallies: dict[str, CollectionCounts]

    def lines(self, group: int) -> Iterator[tuple[int, bytes]]:
        """The entries of one group and their lines."""
        blob, at = self.blobs[group], 0
        for index, number in enumerate(self.group_of):
            if number == group:
                yield index, blob[at : at + self.lengths[index]]
                at += self.lengths[index]


def pack(entries: list[Entry]) -> Packed:
    """Pack one batch of entries to be sent from a reader process (:class:`Packed`)."""
    numbers: dict[tuple[str, int, int], int] = {}
    lines: list[list[bytes]] = []
    tallies: dict[str, CollectionCounts] = {}
    group_of = []
    for entry in entries:
        group = (entry.collection, *entry.month)
        number = numbers.get(group)
        if number is None:
            number = numbers[group] = len(lines)
            lines.append([])
        lines[number].append(entry.line)
        group_of.append(number)
        tally = tallies.get(entry.collection)
        if tally is None:
            tally = tallies[entry.collection] = CollectionCounts.of(entry)
        tally.count(entry)
    return Packed(
        [e.key for e in entries], [e.item_id for e in entries], [e.source for e in entries],
        group_of, [e.day for e in entries], [e.hour for e in entries], list(numbers),
        [b"".join(group) for group in lines], [len(e.line) for e in entries], tallies,
    )  # fmt: skip


@dataclass(frozen=True)
class Preparer:
    """The spool's steps that reader processes run (``ingest.stac.Prepare``): check and
    serialise each item (:func:`prepare`), then pack each batch (:func:`pack`)."""

    collection: str | None = None

    def item(self, data: dict[str, Any], source: str) -> Entry:
        return prepare(data, source, self.collection)

    def batch(self, values: list[Entry]) -> Packed:
        return pack(values)

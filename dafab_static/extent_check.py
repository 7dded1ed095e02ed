"""Whether each Collection's extent covers the items that name it, for ``validate``.

A Collection's first spatial bbox and first temporal interval describe all of its data (STAC
Collection spec, "Extent Object"); clients (STAC Browser's map, ``info``, a search that
prunes by collection) trust them, so an extent that leaves items out hides them. One
warning per Collection, with the count and a first example, as the spec words it as a
description rather than a rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dafab_static.bbox_union import corners
from dafab_static.spool import aware, parse_time
from dafab_static.validator import Problem

RULE = "dafab:extent"


@dataclass
class _Extent:
    href: str
    box: tuple[float, float, float, float] | None
    start: Any  # aware datetime, or None for an open end
    end: Any
    outside: int = 0
    example: str = ""


@dataclass
class ExtentCheck:
    """Collects Collection extents and the items outside them during a crawl (a crawl
    reaches a Collection before the items it links)."""

    extents: dict[str, _Extent] = field(default_factory=dict)

    def collection(self, href: str, obj: dict[str, Any]) -> None:
        """Record the overall extent of a Collection (ignored when malformed: the schema
        reports that)."""
        cid = obj.get("id")
        extent = obj.get("extent")
        if not isinstance(cid, str) or not isinstance(extent, dict):
            return
        try:
            box = corners(extent["spatial"]["bbox"][0])
            start, end = (_instant(t) for t in extent["temporal"]["interval"][0])
        except (KeyError, IndexError, TypeError, ValueError):
            return
        self.extents.setdefault(cid, _Extent(href, box, start, end))

    def item(self, href: str, obj: dict[str, Any]) -> None:
        """Count an item that its Collection's extent leaves out."""
        extent = self.extents.get(str(obj.get("collection")))
        if extent is None:
            return
        why = _outside(extent, obj)
        if why:
            extent.outside += 1
            extent.example = extent.example or f"{obj.get('id')!r} ({href}): {why}"

    def problems(self) -> list[Problem]:
        """One warning per Collection whose extent leaves items out."""
        return [
            Problem(e.href, "$.extent", RULE, _message(e), "warning")
            for e in self.extents.values()
            if e.outside
        ]


def _message(extent: _Extent) -> str:
    items = "1 item" if extent.outside == 1 else f"{extent.outside} items"
    return f"the extent does not cover {items} naming this collection, e.g. {extent.example}"


def _outside(extent: _Extent, item: dict[str, Any]) -> str | None:
    """How ``item`` lies outside ``extent``, or None."""
    box = corners(item.get("bbox"))
    if extent.box is not None and box is not None and not _covers(extent.box, box):
        return f"bbox {list(box)} outside {list(extent.box)}"
    props = item.get("properties")
    if not isinstance(props, dict):
        return None
    try:
        times = [_instant(props.get(k)) for k in ("datetime", "start_datetime", "end_datetime")]
    except ValueError:
        return None  # the schema reports a malformed timestamp
    known = [t for t in times if t is not None]
    if not known:
        return None
    first, last = min(known), max(known)
    if (extent.start is not None and first < extent.start) or (
        extent.end is not None and last > extent.end
    ):
        return f"time {first.isoformat()} to {last.isoformat()} outside the interval"
    return None


def _covers(outer: tuple[float, ...], inner: tuple[float, ...]) -> bool:
    """Whether box ``outer`` holds box ``inner``; either may cross the antimeridian (west
    greater than east), as RFC 7946 5.2 draws such boxes."""
    if not (outer[1] <= inner[1] and inner[3] <= outer[3]):
        return False
    return _span_covers(outer[0], outer[2], inner[0], inner[2])


def _span_covers(west: float, east: float, w: float, e: float) -> bool:
    """Whether the longitude span west..east (eastward, wrapping at 180) holds w..e."""
    if west <= east and w <= e:
        return west <= w and e <= east
    if west <= east:  # the inner span wraps, the outer does not: only the whole globe holds it
        return west <= -180 and east >= 180
    if w <= e:  # the outer wraps: the inner lies in one of its two parts
        return w >= west or e <= east
    return w >= west and e <= east  # both wrap


def _instant(value: Any) -> Any:
    """An RFC 3339 text as an aware datetime; None for null (an open end, or no value)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(value)
    return aware(parse_time(value))

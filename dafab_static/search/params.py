"""STAC API Item Search parameters, checked once at the edge and turned into CQL2 nodes.

Every parameter error is a QueryError that names the parameter and the value, because a
typo in a bbox or a date must never come back as a silently empty result.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pygeofilter import ast

from dafab_static.cql2 import nodes, parse
from dafab_static.errors import QueryError

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


@dataclass(frozen=True)
class SortKey:
    """One ``sortby`` key: a property and its direction."""

    field: str
    ascending: bool = True


@dataclass(frozen=True)
class Fields:
    """The Fields extension: top-level item members or ``properties.*`` to keep or drop.

    Not ``given``: whole items. Given, the extension's semantics: the members kept are the
    default set (``DEFAULT_FIELDS``, so that an item stays valid) and ``include``, minus
    ``exclude``; with ``everything`` (the JSON form with no ``include`` member at all, its
    rule 3), every member minus ``exclude``. A name both included and excluded is included
    (rule 6): ``exclude`` never holds one. An excluded name with included paths inside it
    is ``narrowed`` instead: it keeps those paths alone (rule 5.1). ``exact`` (internal)
    keeps ``include`` alone, without the default set: ``--format ids`` reads the id column
    only.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    given: bool = True
    exact: bool = False
    everything: bool = False
    narrowed: tuple[str, ...] = ()

    def keeps(self, member: str) -> bool:
        """Whether items keep the top-level ``member`` (``assets``, ``links``) whole."""
        if not self.given:
            return True
        if member in self.exclude:
            return False
        return member in self.include or (
            not self.exact and (self.everything or member in DEFAULT_FIELDS)
        )

    @property
    def nested_include(self) -> dict[tuple[str, ...], tuple[tuple[str, ...], ...]]:
        """Included paths inside a member that is not kept whole (``properties.nest.b``,
        ``assets.data.href`` with ``exact``): member path → the paths inside it to keep.
        Parquet reads the member's whole column; the rest of it is dropped from the items,
        where ``nest`` came back whole, whatever part of it was asked for."""
        if not self.given or self.everything:
            return {}
        out: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for name in self.include:
            parts = tuple(name.split("."))
            within = [n for n in self.narrowed if name.startswith(n + ".")]
            if within:  # inside an excluded field: that field keeps the included paths
                depth = len(max(within, key=len).split("."))
            else:
                depth = 2 if parts[0] == "properties" else 1
            member, inner = parts[:depth], parts[depth:]
            if inner and (within or not self._whole(member)):
                out.setdefault(member, []).append(inner)
        return {member: tuple(paths) for member, paths in out.items()}

    def _whole(self, member: tuple[str, ...]) -> bool:
        name = ".".join(member)
        if name in self.include or (member[0] == "properties" and "properties" in self.include):
            return True
        return not self.exact and name in DEFAULT_FIELDS

    @property
    def nested_exclude(self) -> tuple[tuple[str, ...], ...]:
        """Excluded paths inside a member (``assets.data.type``): the member is kept and only
        that path dropped (rule 5.2), from the items, since Parquet reads whole columns."""
        return tuple(tuple(name.split(".")) for name in self.exclude if "." in name)


#: The Fields extension's default set (its "Include/Exclude Semantics", 1), with the
#: interval ends, which an item whose ``datetime`` is null needs to stay valid.
DEFAULT_FIELDS = (
    "id", "type", "geometry", "bbox", "links", "assets",
    "properties.datetime", "properties.start_datetime", "properties.end_datetime",
)  # fmt: skip
#: What a search returns without the Fields extension: whole items.
WHOLE_ITEMS = Fields(given=False)


#: Names of CRS84 (WGS 84, longitude then latitude) that ``filter-crs`` accepts.
CRS84_URIS = (
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "https://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "urn:ogc:def:crs:OGC:1.3:CRS84",
)


@dataclass(frozen=True)
class Request:
    """A validated search: the CQL2 conjuncts plus what shapes the output."""

    conjuncts: tuple[Any, ...] = ()
    time: tuple[dt.datetime | None, dt.datetime | None] | None = None
    collections: frozenset[str] | None = None
    sortby: tuple[SortKey, ...] = ()
    limit: int | None = None
    fields: Fields = WHOLE_ITEMS


def request(
    *,
    ids: Sequence[str] | str | None = None,
    collections: Sequence[str] | str | None = None,
    bbox: Sequence[float] | str | None = None,
    intersects: Mapping[str, Any] | str | None = None,
    datetime: str | None = None,
    filter: str | Mapping[str, Any] | None = None,
    filter_lang: str | None = None,
    filter_crs: str | None = None,
    sortby: Sequence[str | Mapping[str, str]] | str | None = None,
    limit: int | None = None,
    fields: Sequence[str] | Mapping[str, Sequence[str]] | str | None = None,
) -> Request:
    """Check STAC API Item Search parameters and express them as CQL2 conjuncts.

    Raises QueryError naming the parameter, e.g. ``bbox: south 50 is north of north 40``.
    """
    if filter_crs is not None and filter_crs not in CRS84_URIS:
        # The Filter extension's filter-crs: CRS84 is the one every implementation must
        # support, and the only one here (literals are checked as longitude, latitude).
        raise QueryError(
            f"filter-crs: only CRS84 ({CRS84_URIS[0]}) is supported, not {filter_crs!r}"
        )
    conjuncts: list[Any] = []
    id_list = _strings(ids, "ids")
    if id_list is not None:
        conjuncts.append(ast.In(ast.Attribute("id"), list(id_list), False))
    collection_list = _strings(collections, "collections")
    if collection_list is not None:
        conjuncts.append(ast.In(ast.Attribute("collection"), list(collection_list), False))
    if bbox is not None:
        conjuncts.append(ast.GeometryIntersects(ast.Attribute("geometry"), parse_bbox(bbox)))
        if len(heights := [float(v) for v in _listed(bbox, "bbox")]) == 6:
            conjuncts.append(nodes.Elevation(heights[2], heights[5]))
    if intersects is not None:
        conjuncts.append(
            ast.GeometryIntersects(ast.Attribute("geometry"), parse_intersects(intersects))
        )
    if bbox is not None and intersects is not None:
        raise QueryError("bbox and intersects: give one or the other, not both")
    time = parse_datetime(datetime) if datetime is not None else None
    if filter is not None and filter != "":
        conjuncts.append(
            parse(dict(filter) if isinstance(filter, Mapping) else filter, filter_lang)
        )
    elif filter_lang is not None and filter_lang not in ("cql2-text", "cql2-json"):
        raise QueryError(f"filter-lang must be cql2-text or cql2-json, not {filter_lang!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise QueryError(f"limit must be a positive integer, not {limit!r}")
    return Request(
        conjuncts=tuple(conjuncts),
        time=time,
        collections=frozenset(collection_list) if collection_list is not None else None,
        sortby=parse_sortby(sortby),
        # A limit past any index (10**20) is no limit; Arrow slices take 64-bit lengths.
        limit=None if limit is not None and limit >= 2**62 else limit,
        fields=parse_fields(fields),
    )


def _listed(value: Any, name: str) -> list[Any]:
    """A parameter given as comma-separated text or as a list, as a list; anything else (a
    number, a mapping) is a QueryError naming the parameter, not a Python TypeError."""
    if isinstance(value, str):
        return value.split(",")
    if isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes):
        return list(value)
    raise QueryError(f"{name}: expected comma-separated text or a list, not {value!r}")


def _strings(value: Sequence[str] | str | None, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = _listed(value, name)
    if not all(isinstance(v, str) for v in items):
        raise QueryError(f"{name}: expected strings, not {value!r}")
    # Comma-separated text is trimmed ("a, b"); a list's entries are ids as they are: an
    # id is never changed, and " a" is an id of its own.
    if isinstance(value, str):
        items = [v.strip() for v in items]
    cleaned = tuple(v for v in items if v.strip())
    if not cleaned:
        raise QueryError(f"{name}: give at least one value")
    return cleaned


def parse_bbox(value: Sequence[float] | str) -> nodes.Envelope:
    """A STAC API bbox (4 or 6 numbers, or their comma-separated text) as an Envelope.

    West may exceed east: the box then crosses the antimeridian (STAC API, RFC 7946 §5.2).
    """
    raw = _listed(value, "bbox")
    try:
        numbers = [float(v) for v in raw]
    except (TypeError, ValueError):
        raise QueryError(f"bbox: {value!r} is not a list of numbers") from None
    if len(numbers) not in (4, 6):
        raise QueryError(f"bbox: expected 4 or 6 numbers, got {len(numbers)} ({value!r})")
    half = len(numbers) // 2
    west, south, east, north = numbers[0], numbers[1], numbers[half], numbers[half + 1]
    for name, lon in (("west", west), ("east", east)):
        if not -180 <= lon <= 180:
            raise QueryError(f"bbox: {name} {lon} is outside [-180, 180]")
    for name, lat in (("south", south), ("north", north)):
        if not -90 <= lat <= 90:
            raise QueryError(f"bbox: {name} {lat} is outside [-90, 90]")
    if south > north:
        raise QueryError(f"bbox: south {south} is north of north {north}")
    if half == 3 and numbers[2] > numbers[5]:
        raise QueryError(f"bbox: lowest elevation {numbers[2]} is above highest {numbers[5]}")
    return nodes.Envelope(west, east, south, north)


def parse_intersects(value: Mapping[str, Any] | str) -> nodes.Geometry:
    """A GeoJSON geometry (dict or JSON text) for the ``intersects`` parameter."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise QueryError(f"intersects: not GeoJSON ({error.msg})") from None
    if not isinstance(value, Mapping):
        raise QueryError("intersects: expected a GeoJSON geometry object")
    if value.get("type") == "Feature":
        value = value.get("geometry") or {}
    try:
        geometry = nodes.geometry(dict(value))
        from dafab_static.cql2 import spatial

        spatial.literal(geometry)
    except (KeyError, TypeError, ValueError, QueryError) as error:
        raise QueryError(f"intersects: not a valid GeoJSON geometry ({error})") from None
    return geometry


def parse_datetime(value: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The STAC API ``datetime``: an instant or an interval, both ends inclusive.

    ``..`` or an empty string opens an end. Partial dates (``2020``, ``2020-05``,
    ``2020-05-17``) cover their whole period, so ``datetime=2020-05`` is all of May.
    """
    if not isinstance(value, str):
        raise QueryError(f"datetime: expected text such as 2024-07 or 2024-01-01/.., not {value!r}")
    text = value.strip()
    if not text:
        raise QueryError("datetime: empty value")
    if "/" in text:
        parts = text.split("/")
        if len(parts) != 2:
            raise QueryError(f"datetime: {value!r} has more than one '/'")
        start = _bound(parts[0], value, end=False)
        end = _bound(parts[1], value, end=True)
        if start is None and end is None:
            raise QueryError(f"datetime: {value!r} is open at both ends")
        if start is not None and end is not None and start > end:
            raise QueryError(f"datetime: start {parts[0]} is after end {parts[1]}")
        return start, end
    if text == "..":
        raise QueryError("datetime: '..' alone is not an instant")
    return _bound(text, value, end=False), _bound(text, value, end=True)


def _bound(text: str, whole: str, *, end: bool) -> dt.datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    match = _PARTIAL.match(text)
    try:
        if match:
            year = int(match[1])
            month = int(match[2] or (12 if end else 1))
            last = calendar.monthrange(year, month)[1] if 1 <= month <= 12 else 31
            day = int(match[3] or (last if end else 1))
            start = dt.datetime(year, month, day, tzinfo=dt.timezone.utc)
            return start + dt.timedelta(days=1, microseconds=-1) if end else start
        return nodes.timestamp(text, where="datetime")
    except (ValueError, QueryError):
        raise QueryError(
            f"datetime: {text!r} in {whole!r} is not an RFC 3339 date-time or a date "
            "(YYYY, YYYY-MM, YYYY-MM-DD)"
        ) from None


def parse_sortby(value: Sequence[str | Mapping[str, str]] | str | None) -> tuple[SortKey, ...]:
    """``sortby`` as text (``-eo:cloud_cover,+datetime``), a list of such, or STAC API objects."""
    if value is None:
        return ()
    items = _listed(value, "sortby")
    keys = []
    for item in items:
        if isinstance(item, Mapping):
            name = str(item.get("field", ""))
            direction = str(item.get("direction", "asc")).lower()
            if direction not in ("asc", "desc"):
                raise QueryError(f"sortby: direction of {name!r} must be asc or desc")
            ascending = direction == "asc"
        else:
            text = str(item).strip()
            ascending = not text.startswith("-")
            name = text.lstrip("+- ")
        if not name:
            raise QueryError(f"sortby: empty field in {value!r}")
        keys.append(SortKey(name, ascending))
    return tuple(keys)


def parse_fields(value: Sequence[str] | Mapping[str, Sequence[str]] | str | None) -> Fields:
    """The Fields extension as ``id,-assets`` text, a list, or ``{"include":..,"exclude":..}``.

    None means whole items; anything else, even empty, the extension's semantics
    (:class:`Fields`)."""
    if value is None:
        return WHOLE_ITEMS
    if isinstance(value, Mapping):
        include_, exclude_ = (
            _listed(value.get(k) or [], f"fields.{k}") for k in ("include", "exclude")
        )
        if not all(isinstance(i, str) for i in (*include_, *exclude_)):
            raise QueryError(f"fields: names must be text, not {value!r}")
        # No "include" member at all (not null, not empty): every field but the excluded.
        everything = "include" not in value and bool(exclude_)
        return _fields(include_, exclude_, everything=everything)
    items = _listed(value, "fields")
    if not all(isinstance(i, str) for i in items):
        raise QueryError(f"fields: names must be text, not {value!r}")
    include, exclude = [], []
    for item in (i.strip() for i in items):
        if item.startswith("-"):
            exclude.append(item[1:])
        elif item:
            include.append(item.lstrip("+"))
    return _fields(include, exclude)


def _fields(include: Sequence[str], exclude: Sequence[str], *, everything: bool = False) -> Fields:
    kept = set(include)
    # "The most specific path should be honored first": an excluded field with an included
    # path inside it keeps that path alone (rule 5.1, "a.b" in include, "a" in exclude).
    narrowed = tuple(
        e for e in exclude if e not in kept and any(i.startswith(e + ".") for i in include)
    )
    dropped = tuple(e for e in exclude if e not in kept and e not in narrowed)
    return Fields(tuple(include), dropped, everything=everything, narrowed=narrowed)

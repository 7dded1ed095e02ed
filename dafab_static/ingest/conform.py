"""Make one STAC object read from another hub fit for the build, or say why it is not.

The checks and rewrites here run per item, in the build process or in a striped reader
(:mod:`~dafab_static.ingest.striped`): the members whose structure the build reads, STAC
versions older than 1.0.0 (migrated by pystac), timestamps not spelled in RFC 3339 UTC, and
links and hrefs, which must keep working once the item is written elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dafab_static.derive.products import format_datetime
from dafab_static.errors import InputError
from dafab_static.ingest._fetch import SCHEME, absolute
from dafab_static.media_types import GEOJSON, JSON
from dafab_static.spool import parse_time
from dafab_static.tree import STRUCTURAL_RELS

OnNotice = Callable[[str], None]

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)(-\S+)?")
#: The timestamps extension's fields: stac-geoparquet stores them as timestamps too, so a
#: value that is no instant ('2024-07-11') fails the whole month's index, extension or not.
_EXTENSION_TIMESTAMPS = ("expires", "published", "unpublished")
#: Common-metadata timestamps, which STAC 1.1 wants in RFC 3339, in UTC, and the above.
_TIMESTAMPS = ("datetime", "start_datetime", "end_datetime", "created", "updated",
               *_EXTENSION_TIMESTAMPS)  # fmt: skip
# At most microseconds: the index stores timestamps in them, and the tree and the index must
# hold the same instant.
_RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)")


def upgrade(data: dict[str, Any], where: str, what: str, on_notice: OnNotice) -> dict[str, Any]:
    """Migrate STAC older than 1.0.0 with pystac; keep 1.0.x and 1.1.x as they are.

    Args:
        data: The item or collection as read.
        where: Its source, to start messages with.
        what: ``item ID`` or ``collection ID``, for messages.
        on_notice: Told of a migration, or of a version newer than the build knows.

    Raises:
        InputError: the version is not a version, or pystac cannot migrate it.
    """
    version = data["stac_version"]
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise InputError(f"{where}: {what}: stac_version {version!r} is not a version")
    number = (int(match[1]), int(match[2]), int(match[3]))
    if number >= (1, 0, 0) and not (number == (1, 0, 0) and match[4]):
        if number >= (1, 2, 0):
            on_notice(f"{where}: {what} is STAC {version}, newer than 1.1; read as is")
        return data
    import pystac
    from pystac.serialization import identify_stac_object, migrate_to_latest

    try:
        migrated = migrate_to_latest(data, identify_stac_object(data))
    except (pystac.STACError, pystac.STACTypeError, AttributeError, IndexError, KeyError,
            TypeError, ValueError) as e:  # fmt: skip
        raise InputError(f"{where}: {what}: cannot migrate from STAC {version}: {e}") from None
    new = migrated["stac_version"]
    on_notice(f"{where}: {what} migrated from STAC {version} to {new}")
    return migrated


def check_members(data: dict[str, Any], where: str) -> None:
    """The members the build reads the structure of: ``links`` an array of objects, ``assets``
    an object of objects, ``stac_extensions`` an array of strings. Anything else would not be
    STAC, and would fail deep in the build; other fields are left to schema validation.

    Raises:
        InputError: naming the item and the member.
    """
    what = f"{where}: item {data['id']}"
    links = data.get("links", [])
    if not isinstance(links, list) or not all(isinstance(link, dict) for link in links):
        raise InputError(f"{what}: 'links' is not an array of link objects")
    assets = data.get("assets", {})
    if not isinstance(assets, dict) or not all(isinstance(a, dict) for a in assets.values()):
        raise InputError(f"{what}: 'assets' is not an object of asset objects")
    extensions = data.get("stac_extensions", [])
    if not isinstance(extensions, list) or not all(isinstance(e, str) for e in extensions):
        raise InputError(f"{what}: 'stac_extensions' is not an array of schema URLs")


def check_extension_times(properties: dict[str, Any], where: str) -> None:
    """Refuse an item whose ``expires``, ``published`` or ``unpublished`` is not an
    RFC 3339 instant (after :func:`respell_times`).

    The STAC schemas check them only where an item declares the timestamps extension, but
    stac-geoparquet converts these columns to timestamps whatever it declares: one date
    alone stopped the whole build with a message about types. Now that item is skipped,
    and the message names the field.
    """
    for key in _EXTENSION_TIMESTAMPS:
        value = properties.get(key)
        if value is not None and not (isinstance(value, str) and _RFC3339_UTC.fullmatch(value)):
            raise InputError(
                f"{where}: {key} {value!r} is not an RFC 3339 date-time with an offset "
                "(the timestamps extension's fields are instants, and the index stores them "
                "as timestamps)"
            )


def respell_times(properties: dict[str, Any]) -> tuple[str, str] | None:
    """Rewrite, in place, timestamps that name an exact instant but are not RFC 3339 UTC, as
    RFC 3339 UTC; return the first (old, new) spelling, or None if none changed.

    Real hubs publish such items: the Planetary Computer's Sentinel-1 RTC items carry
    ``'2024-04-19 04:58:39.219741+00:00'`` (Python's ``str`` of a datetime, a space for the
    ``T``), and STAC 1.1's schema rejects them, with every other offset than ``+00:00``.
    The instant is kept exactly, but for fractions finer than a microsecond, which are cut
    to the microsecond: stac-geoparquet's timestamps hold no more, and the tree and the
    index must agree. A date alone or a time without an offset is left as it is, for
    validation to report, as which instant it means would be a guess.
    """
    first = None
    for key in _TIMESTAMPS:
        text = properties.get(key)
        if not isinstance(text, str) or len(text) < 19 or _RFC3339_UTC.fullmatch(text):
            continue
        try:
            value = parse_time(text)
        except ValueError:
            continue
        if value.tzinfo is None:
            continue
        properties[key] = format_datetime(value)
        first = first or (text, properties[key])
    return first


def rewrite(data: dict[str, Any], loc: str, media: str, *, source: bool = True) -> None:
    """Drop structural links, make hrefs absolute, add one ``via`` link to the source
    (with ``source``, and unless the object already has its Source link)."""
    via = {"rel": "via", "href": loc, "type": media}
    links: list[Any] = []
    for link in data.get("links") or ():
        if isinstance(link, dict) and link.get("rel") in STRUCTURAL_RELS:
            href = link.get("href")
            if link["rel"] == "self" and isinstance(href, str) and SCHEME.match(href):
                via = {"rel": "via", "href": href, "type": GEOJSON}
                if data.get("type") == "Collection":
                    via["type"] = JSON
            continue
        if isinstance(link, dict):
            # stac-geoparquet gives null for a field another row has; null is not a STAC string.
            if None in link.values():
                link = {key: value for key, value in link.items() if value is not None}
            if isinstance(link.get("href"), str):
                link["href"] = absolute(link["href"], loc)
        links.append(link)
    if source and not any(
        isinstance(link, dict) and link.get("rel") == "via" and link.get("href") == via["href"]
        for link in links
    ):
        links.append({**via, "title": "Source"})
    data["links"] = links
    assets = data.get("assets")
    for asset in assets.values() if isinstance(assets, dict) else ():
        if isinstance(asset, dict) and isinstance(asset.get("href"), str):
            asset["href"] = absolute(asset["href"], loc)

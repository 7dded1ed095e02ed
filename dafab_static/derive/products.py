"""What product names and metadata tags say: acquisition time, platform, collection, tile.

Pure parsing of strings. Conventions recognised:

- Sentinel-2 SAFE product names (ESA "Sentinel-2 Products Specification Document",
  compact naming): ``S2B_MSIL2A_20240715T175911_N0510_R041_T13SDA_20240716T012345``;
  the first timestamp is the datatake sensing start, the last the product discriminator.
  The Planetary Computer drops the ``_Nxxxx`` baseline from its ids; both forms match.
- Landsat Collection 1/2 product ids (USGS Landsat Collection 2 Level-1 and Level-2 data
  format control books): ``LC09_L2SP_042034_20240712_20240713_02_T1``, and the Planetary
  Computer's ids, which drop the processing date (``LC09_L2SP_089090_20240417_02_T1``).
- Landsat pre-collection scene ids: ``LC80200392015216LGN00`` (sensor, satellite,
  WRS path/row, year, day of year, ground station, version).
- Element 84 Earth Search Sentinel-2 ids, the folder names of the ``sentinel-cogs`` bucket on
  AWS, which holds a file per band (``B04.tif``): ``S2B_32TNS_20240710_0_L2A`` (satellite,
  MGRS tile, sensing date, sequence, level).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dafab_static.derive.sensors import platform_for

_UTC = _dt.timezone.utc
#: GDAL writes the epoch when it cannot parse an acquisition time; never a real one.
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)


@dataclass(frozen=True)
class Product:
    """Facts carried by a product name.

    Attributes:
        id: The product id as found (``LC09_L2SP_042034_20240712_20240713_02_T1``).
        datetime: Acquisition time in UTC (midnight when the name has only a date).
        platform: STAC platform (``sentinel-2b``, ``landsat-9``).
        constellation: ``sentinel-2`` or ``landsat``.
        instruments: STAC instruments (``("msi",)``, ``("oli", "tirs")``).
        collection: Collection id following the Planetary Computer's spelling.
        mgrs_tile: Sentinel-2 MGRS tile (``13SDA``), else None.
        wrs_path: Landsat WRS-2 path, else None.
        wrs_row: Landsat WRS-2 row, else None.
    """

    id: str
    datetime: _dt.datetime
    platform: str
    constellation: str
    instruments: tuple[str, ...]
    collection: str
    mgrs_tile: str | None = None
    wrs_path: int | None = None
    wrs_row: int | None = None


_S2 = re.compile(
    r"(?<![A-Za-z0-9])(?P<sat>S2[A-D])_MSI(?P<level>L1C|L2A)_(?P<start>\d{8}T\d{6})"
    r"(?:_N\d{4})?_R(?P<orbit>\d{3})_T(?P<tile>\d{2}[C-X][A-Z]{2})_\d{8}T\d{6}(?!\d)"
)
_S2_EARTH_SEARCH = re.compile(
    r"(?<![A-Za-z0-9])(?P<sat>S2[A-D])_(?P<tile>\d{2}[C-X][A-Z]{2})_(?P<date>\d{8})_\d+_"
    r"(?P<level>L1C|L2A)(?![A-Za-z0-9])"
)
_LANDSAT = re.compile(
    r"(?<![A-Za-z0-9])L(?P<sensor>[COTEM])(?P<sat>0[1-9])_(?P<level>L1TP|L1GT|L1GS|L2SP|L2SR)_"
    r"(?P<path>\d{3})(?P<row>\d{3})_(?P<date>\d{8})(?:_\d{8})?_(?P<number>\d{2})_(?:T1|T2|RT)"
    r"(?![A-Za-z0-9])"
)
_LANDSAT_SCENE = re.compile(
    r"(?<![A-Za-z0-9])L(?P<sensor>[COTEM])(?P<sat>[1-9])(?P<path>\d{3})(?P<row>\d{3})"
    r"(?P<year>\d{4})(?P<doy>\d{3})[A-Z]{3}\d{2}(?![A-Za-z0-9])"
)
_TIMESTAMP = re.compile(
    r"^(\d{4})[-:]?(\d{2})[-:]?(\d{2})"
    r"(?:[T ](\d{2}):?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|UTC|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)

#: Tags naming the acquisition time, most specific first (matched case-insensitively).
#: ACQUISITIONDATETIME is GDAL's IMAGERY domain; DATATAKE_1_DATATAKE_SENSING_START and
#: PRODUCT_START_TIME come from GDAL's SENTINEL2 driver; DATE_ACQUIRED (+ SCENE_CENTER_TIME)
#: from Landsat MTL files.
ACQUISITION_TAGS = (
    "ACQUISITIONDATETIME",
    "ACQUISITION_DATETIME",
    "DATATAKE_1_DATATAKE_SENSING_START",
    "SENSING_TIME",
    "PRODUCT_START_TIME",
    "DATE_ACQUIRED",
    "ACQUISITION_DATE",
)
#: Tags naming the satellite.
PLATFORM_TAGS = ("SATELLITEID", "SPACECRAFT_ID", "SPACECRAFT_NAME", "PLATFORM", "SATELLITE")


def parse_product_name(text: str) -> Product | None:
    """Find a Sentinel-2 or Landsat product id in ``text`` and read what it encodes.

    Args:
        text: A file stem, folder name or any string that may contain a product id.

    Returns:
        The first product found, or None.

    Raises:
        Nothing: a string that is no product id gives None.

    Example:
        >>> p = parse_product_name("S2B_MSIL2A_20240715T175911_N0510_R041_T13SDA_20240716T012345")
        >>> p.datetime.isoformat(), p.platform, p.collection, p.mgrs_tile
        ('2024-07-15T17:59:11+00:00', 'sentinel-2b', 'sentinel-2-l2a', '13SDA')
    """
    for pattern, when, layout in ((_S2, "start", "%Y%m%dT%H%M%S"),
                                  (_S2_EARTH_SEARCH, "date", "%Y%m%d")):  # fmt: skip
        match = pattern.search(text)
        if match and (when_ := _strptime(match[when], layout)) is not None:
            return Product(
                id=match.group(0),
                datetime=when_,
                platform=f"sentinel-2{match['sat'][-1].lower()}",
                constellation="sentinel-2",
                instruments=("msi",),
                collection=f"sentinel-2-{match['level'].lower()}",
                mgrs_tile=match["tile"],
            )
    match = _LANDSAT.search(text)
    if match and (when_ := _strptime(match["date"], "%Y%m%d")) is not None:
        platform = f"landsat-{int(match['sat'])}"
        return Product(
            id=match.group(0),
            datetime=when_,
            platform=platform,
            constellation="landsat",
            instruments=_landsat_instruments(match["sensor"], int(match["sat"])),
            collection=f"landsat-c{int(match['number'])}-{match['level'][:2].lower()}",
            wrs_path=int(match["path"]),
            wrs_row=int(match["row"]),
        )
    match = _LANDSAT_SCENE.search(text)
    if match and (when_ := _strptime(f"{match['year']}{match['doy']}", "%Y%j")) is not None:
        return Product(
            id=match.group(0),
            datetime=when_,
            platform=f"landsat-{match['sat']}",
            constellation="landsat",
            instruments=_landsat_instruments(match["sensor"], int(match["sat"])),
            # USGS retired pre-collection ids; they have no STAC collection of their own.
            collection="landsat-pre-collection",
            wrs_path=int(match["path"]),
            wrs_row=int(match["row"]),
        )
    return None


def _strptime(text: str, layout: str) -> _dt.datetime | None:
    """The UTC time ``text`` spells in ``layout``, or None for an impossible one (month 13,
    February 30, day of year 000 or 400, year 0000): such a name is no product id, and
    one badly named file ended the whole build in a traceback."""
    try:
        value = _dt.datetime.strptime(text, layout).replace(tzinfo=_UTC)
    except ValueError:
        return None
    if "%j" in layout and value.strftime("%j") != text[-3:]:
        return None  # day 366 of a common year: strptime rolls over into the next
    return value


_S2_BASELINE = re.compile(r"_MSI(?:L1C|L2A)_\d{8}T\d{6}_N(\d{2})(\d{2})_")
_S2_BAND = re.compile(r"b(?:0?[1-9]|1[0-2]|8a)", re.IGNORECASE)
_LANDSAT_SR_BAND = re.compile(r"sr_b[1-7]", re.IGNORECASE)


def reflectance_convention(text: str, label: str) -> tuple[float, float] | None:
    """``(scale, offset)`` from a band's digital numbers to reflectance that the product
    named in ``text`` documents, for a band file that carries neither tags nor metadata.

    * Sentinel-2 L1C and L2A: reflectance = (DN + offset) / 10000, where the offset is -1000
      from processing baseline 04.00 on (ESA, "Sentinel-2 products specification document",
      S2-PDGS-TAS-DI-PSD, BOA_ADD_OFFSET / RADIO_ADD_OFFSET) and 0 before it. A name
      without its baseline (``_N0510_``) gives None: the offset is then unknown.
    * Landsat Collection 2 Level-2 surface reflectance (``SR_B1`` to ``SR_B7``):
      DN x 0.0000275 - 0.2 (USGS, Landsat 8-9 Collection 2 Level 2 Science Product Guide).

    A normalised difference cancels a scale, never an offset: NDVI of raw Sentinel-2 L2A
    numbers of baseline 05.10 read 0.56 where the reflectances give 0.82.

    Example:
        >>> reflectance_convention("S2B_MSIL2A_20240715T175911_N0510_R041_T13SDA_20240716T012345", "B04")
        (0.0001, -0.1)
        >>> reflectance_convention("LC09_L2SP_042034_20240712_20240713_02_T1_SR_B4.TIF", "SR_B4")
        (2.75e-05, -0.2)
    """  # noqa: E501
    product = parse_product_name(text)
    if product is None:
        return None
    if product.constellation == "sentinel-2":
        baseline = _S2_BASELINE.search(product.id)
        if baseline is None or not _S2_BAND.fullmatch(label):
            return None
        return 1e-4, -0.1 if int(baseline[1]) >= 4 else 0.0
    if product.collection == "landsat-c2-l2" and _LANDSAT_SR_BAND.fullmatch(label):
        return 2.75e-5, -0.2
    return None


def find_product(names: Iterable[str]) -> Product | None:
    """Return the product of the first name (stem first, then parent folders) that has one.

    Args:
        names: File stem, then parent folder names, nearest first.

    Raises:
        Nothing: None when no name holds a product id.

    Example:
        >>> find_product(["l8_B2", "landsat8-LC80200392015216LGN00", "rasters"]).id
        'LC80200392015216LGN00'
    """
    for name in names:
        product = parse_product_name(name)
        if product is not None:
            return product
    return None


def parse_timestamp(text: str) -> _dt.datetime | None:
    """Parse a metadata time stamp into an aware UTC datetime, or None when it is not one.

    Accepts ISO 8601 / RFC 3339 (``2015-08-04T16:19:21.7900000Z``), the TIFF form
    ``2024:07:15 10:30:31``, compact ``20240715T103031`` and dates alone. Naive values are
    taken as UTC; fractions past microseconds are truncated. GDAL's "could not parse"
    value (the Unix epoch) counts as no time.

    Args:
        text: The tag value.

    Raises:
        Nothing: text that is no time stamp (or an impossible date) gives None.

    Example:
        >>> parse_timestamp("2024:07:15 10:30:31").isoformat()
        '2024-07-15T10:30:31+00:00'
    """
    match = _TIMESTAMP.match(text.strip().strip('"'))
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        value = _dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=_zone(zone),
        )
        value = value.astimezone(_UTC)
    except (ValueError, OverflowError):  # no such date, or out of range once in UTC
        return None
    # Only the epoch itself is GDAL's placeholder: earlier times are real (1960s imagery).
    return None if value == _EPOCH else value


def acquisition_datetime(tags: Mapping[str, str]) -> _dt.datetime | None:
    """Read the acquisition time from raster tags (see ``ACQUISITION_TAGS``), or None.

    ``DATE_ACQUIRED`` is combined with ``SCENE_CENTER_TIME`` when both are present, as in
    Landsat MTL metadata. Unparseable values are skipped.

    Args:
        tags: Dataset tags of the default and ``IMAGERY`` domains, merged.

    Raises:
        Nothing: None when no tag holds a usable time.

    Example:
        >>> acquisition_datetime({"DATE_ACQUIRED": "2015-08-04",
        ...                       "SCENE_CENTER_TIME": '"16:19:21.7900000Z"'}).isoformat()
        '2015-08-04T16:19:21.790000+00:00'
    """
    upper = {key.upper(): value for key, value in tags.items()}
    for key in ACQUISITION_TAGS:
        value = upper.get(key)
        if not value:
            continue
        if key == "DATE_ACQUIRED" and upper.get("SCENE_CENTER_TIME"):
            value = f"{value.strip()}T{upper['SCENE_CENTER_TIME'].strip().strip(chr(34))}"
        parsed = parse_timestamp(value)
        if parsed is not None:
            return parsed
    return None


def creation_datetime(tags: Mapping[str, str]) -> _dt.datetime | None:
    """Read ``TIFFTAG_DATETIME``, which TIFF 6.0 defines as the image's creation time.

    Used only when no acquisition tag and no product name gives a time: for many products
    it is the processing time, not the acquisition.

    Args:
        tags: Dataset tags.

    Raises:
        Nothing: None when the tag is absent or unparseable.

    Example:
        >>> creation_datetime({"TIFFTAG_DATETIME": "2019:03:02 11:00:00"}).year
        2019
    """
    value = tags.get("TIFFTAG_DATETIME")
    return parse_timestamp(value) if value else None


def tag_platform(tags: Mapping[str, str]) -> str | None:
    """Read a recognised STAC platform from satellite-name tags (``PLATFORM_TAGS``).

    Args:
        tags: Dataset tags (keys matched case-insensitively).

    Raises:
        Nothing: None when no tag names a platform of ``sensors.PLATFORMS``.

    Example:
        >>> tag_platform({"SATELLITEID": "LANDSAT_8"})
        'landsat-8'
    """
    upper = {key.upper(): value for key, value in tags.items()}
    for key in PLATFORM_TAGS:
        value = upper.get(key)
        platform = platform_for(value) if value else None
        if platform is not None:
            return platform
    return None


def format_datetime(value: _dt.datetime) -> str:
    """Format a datetime as RFC 3339 in UTC with ``Z`` (no trailing zero fraction).

    Args:
        value: Aware datetime; a naive one is taken as UTC.

    Raises:
        Nothing.

    Example:
        >>> format_datetime(_dt.datetime(2015, 8, 4, 16, 19, 21, 790000, tzinfo=_UTC))
        '2015-08-04T16:19:21.79Z'
    """
    utc = value.astimezone(_UTC) if value.tzinfo else value.replace(tzinfo=_UTC)
    # isoformat, not strftime("%Y"): glibc writes the year 999 as "999", not RFC 3339's "0999".
    text = utc.replace(microsecond=0, tzinfo=None).isoformat()
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _landsat_instruments(sensor: str, satellite: int) -> tuple[str, ...]:
    if sensor == "C":
        return ("oli", "tirs")
    if sensor == "O":
        return ("oli",)
    if sensor == "E":
        return ("etm+",)
    if sensor == "M":
        return ("mss",)
    # "T" is TIRS-only on Landsat 8/9 and the Thematic Mapper on Landsat 4/5.
    return ("tirs",) if satellite >= 8 else ("tm",)


def _zone(text: str | None) -> _dt.tzinfo:
    if text is None or text.upper() in ("Z", "UTC"):
        return _UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    if int(digits[2:]) > 59:
        raise ValueError(f"offset minutes {digits[2:]} (RFC 3339: 00-59)")
    return _dt.timezone(sign * _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))

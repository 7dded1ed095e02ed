"""Spectral bands of the sensors we recognise, and how a band label maps to one of them.

Pure tables: ``eo:bands`` entries come from here, keyed by instrument. A label such as
``"B04"``, ``"B4"``, ``"SR_B4"`` or GDAL's ``"B4, central wavelength 665 nm"`` finds its band;
the eo ``name`` written is the label's canonical spelling for that product family
(Sentinel-2 ``B04``/``B8A``; Landsat ``B4`` for Level-1, ``SR_B4``/``ST_B10`` for Level-2).

Sources of the numbers (wavelengths in micrometres):

- Sentinel-2 MSI: ESA Sentinel-2 MSI user guide (SentiWiki "S2 Mission", spectral bands
  table, from the spectral response functions COPE-GSEG-EOPG-TN-15-0007), Sentinel-2A
  central wavelength and bandwidth. Sentinel-2B/C differ by at most a few nm in the
  visible and near infrared (B12: 15 nm); one table serves the constellation.
- Landsat: USGS "What are the band designations for the Landsat satellites?" (band ranges
  in micrometres). The table keeps the published range; centre = midpoint and
  full width at half maximum = range width, as the STAC eo extension's examples do.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class SpectralBand:
    """One band of a sensor, as the STAC eo extension v1.1.0 describes it.

    Attributes:
        name: Canonical band name (``"B04"``, ``"B4"``).
        common_name: eo common name (``"red"``), or None where eo has none (S2 B09 is
            ``nir09``; every band here has one).
        center_wavelength: Micrometres.
        full_width_half_max: Micrometres.
    """

    name: str
    common_name: str | None
    center_wavelength: float
    full_width_half_max: float

    def eo_band(self, name: str | None = None) -> dict[str, Any]:
        """Return the ``eo:bands`` object of this band, named ``name`` when given.

        Raises:
            Nothing.

        Example:
            >>> band_for(("msi",), "B4").eo_band()["center_wavelength"]
            0.6646
        """
        out: dict[str, Any] = {"name": name or self.name}
        if self.common_name:
            out["common_name"] = self.common_name
        out["center_wavelength"] = self.center_wavelength
        out["full_width_half_max"] = self.full_width_half_max
        return out


@dataclass(frozen=True)
class Platform:
    """What a platform name implies: its constellation and instruments."""

    constellation: str
    instruments: tuple[str, ...]


def _nm(number: str, common: str, center_nm: float, width_nm: float) -> SpectralBand:
    name = "B8A" if number == "8A" else f"B{int(number):02d}"
    return SpectralBand(name, common, round(center_nm / 1000, 5), round(width_nm / 1000, 5))


def _um(number: str, common: str, low: float, high: float) -> SpectralBand:
    return SpectralBand(f"B{number}", common, round((low + high) / 2, 4), round(high - low, 4))


# Sentinel-2A MSI, ESA spectral bands table: (band, common name, centre nm, bandwidth nm).
_MSI = (
    _nm("1", "coastal", 442.7, 21),
    _nm("2", "blue", 492.4, 66),
    _nm("3", "green", 559.8, 36),
    _nm("4", "red", 664.6, 31),
    _nm("5", "rededge", 704.1, 15),
    _nm("6", "rededge", 740.5, 15),
    _nm("7", "rededge", 782.8, 20),
    _nm("8", "nir", 832.8, 106),
    _nm("8A", "nir08", 864.7, 21),
    _nm("9", "nir09", 945.1, 20),
    _nm("10", "cirrus", 1373.5, 31),
    _nm("11", "swir16", 1613.7, 91),
    _nm("12", "swir22", 2202.4, 175),
)

# USGS band designations: (band, common name, low um, high um).
_OLI = (
    _um("1", "coastal", 0.43, 0.45),
    _um("2", "blue", 0.45, 0.51),
    _um("3", "green", 0.53, 0.59),
    _um("4", "red", 0.64, 0.67),
    _um("5", "nir08", 0.85, 0.88),
    _um("6", "swir16", 1.57, 1.65),
    _um("7", "swir22", 2.11, 2.29),
    _um("8", "pan", 0.50, 0.68),
    _um("9", "cirrus", 1.36, 1.38),
)
_TIRS = (
    _um("10", "lwir11", 10.60, 11.19),
    _um("11", "lwir12", 11.50, 12.51),
)
_ETM = (
    _um("1", "blue", 0.45, 0.52),
    _um("2", "green", 0.52, 0.60),
    _um("3", "red", 0.63, 0.69),
    _um("4", "nir", 0.77, 0.90),
    _um("5", "swir16", 1.55, 1.75),
    _um("6", "lwir", 10.40, 12.50),
    _um("7", "swir22", 2.09, 2.35),
    _um("8", "pan", 0.52, 0.90),
)
_TM = (
    _um("1", "blue", 0.45, 0.52),
    _um("2", "green", 0.52, 0.60),
    _um("3", "red", 0.63, 0.69),
    _um("4", "nir", 0.76, 0.90),
    _um("5", "swir16", 1.55, 1.75),
    _um("6", "lwir", 10.40, 12.50),
    _um("7", "swir22", 2.08, 2.35),
)


def _by_number(bands: Iterable[SpectralBand]) -> Mapping[str, SpectralBand]:
    return MappingProxyType({b.name[1:].lstrip("0"): b for b in bands})


#: Bands per instrument, keyed by band number as written in labels ("4", "10", "8A").
INSTRUMENT_BANDS: Mapping[str, Mapping[str, SpectralBand]] = MappingProxyType(
    {
        "msi": _by_number(_MSI),
        "oli": _by_number(_OLI),
        "tirs": _by_number(_TIRS),
        "etm+": _by_number(_ETM),
        "tm": _by_number(_TM),
    }
)

_S2 = Platform("sentinel-2", ("msi",))
_OLI_TIRS = Platform("landsat", ("oli", "tirs"))

#: Platforms we recognise (STAC common metadata spelling: lower case, hyphenated).
PLATFORMS: Mapping[str, Platform] = MappingProxyType(
    {
        "sentinel-2a": _S2,
        "sentinel-2b": _S2,
        "sentinel-2c": _S2,
        "sentinel-2d": _S2,
        "landsat-9": _OLI_TIRS,
        "landsat-8": _OLI_TIRS,
        "landsat-7": Platform("landsat", ("etm+",)),
        "landsat-5": Platform("landsat", ("tm",)),
        "landsat-4": Platform("landsat", ("tm",)),
    }
)

# "B04", "b4", "SR_B4", "ST_B10", "B8A", and GDAL's "B4, central wavelength 665 nm".
_LABEL = re.compile(r"^(?:(SR|ST)_)?B0*(8A|\d{1,2})(?![0-9A-Z])", re.IGNORECASE)
# A band suffix at the end of a file stem: "..._B04", "..._SR_B4", "..._B8A_10m", "l8_B2".
_STEM_LABEL = re.compile(r"(?:^|_)((?:SR_|ST_)?B(?:8A|\d{1,2}))(?:_\d{2}m)?$", re.IGNORECASE)
# The part of a scene a per-file name ends in: a band, or a quality or auxiliary layer that
# USGS (Landsat Collection 1/2, pre-collection) and ESA (Sentinel-2 L2A) ship beside the bands.
_SCENE_PART = re.compile(
    r"(?:^|_)((?:SR_|ST_)?B(?:8A|\d{1,2})|(?:SR_|ST_)?QA(?:_[A-Z]+)*|BQA"
    r"|ST_(?:TRAD|URAD|DRAD|ATRAN|EMIS|EMSD|CDIST)|SCL|AOT|WVP|TCI|(?:L[12][AC]_)?PVI)"
    r"(?:_\d{2}m)?$",
    re.IGNORECASE,
)


def band_for(instruments: Iterable[str], label: str) -> SpectralBand | None:
    """Find the spectral band that ``label`` names on one of ``instruments``.

    Args:
        instruments: STAC instrument names (``("oli", "tirs")``).
        label: A band description, band name tag or file-name suffix.

    Returns:
        The band, named as ``label`` spells it canonically (``SR_B4`` stays ``SR_B4``,
        ``B4`` becomes ``B04`` on Sentinel-2), or None when the label names no band of them.

    Raises:
        Nothing: unknown labels and instruments give None.

    Example:
        >>> band = band_for(("oli", "tirs"), "SR_B5")
        >>> band.name, band.common_name, band.center_wavelength
        ('SR_B5', 'nir08', 0.865)
    """
    match = _LABEL.match(label.strip())
    if match is None:
        return None
    prefix, number = match.group(1), match.group(2).upper()
    for instrument in instruments:
        band = INSTRUMENT_BANDS.get(instrument, {}).get(number)
        if band is None:
            continue
        if instrument == "msi":
            return band if prefix is None else None
        name = f"{prefix.upper()}_{band.name}" if prefix else band.name
        return dataclasses.replace(band, name=name)
    return None


def eo_bands(instruments: Iterable[str], labels: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Build the ``eo:bands`` list of a raster whose band ``i`` is known by ``labels[i]``.

    Each band takes the first label that names a band of ``instruments``; a band none of
    whose labels does keeps its first label as ``name`` (``{}`` without one), so that the
    list stays aligned with the raster's bands.

    Args:
        instruments: STAC instruments of the raster (empty when the sensor is unknown).
        labels: Per band: descriptions, band-name tags, a file-name suffix.

    Returns:
        The list, or ``[]`` when no band at all is recognised (then eo says nothing).

    Raises:
        Nothing.

    Example:
        >>> [b["common_name"] for b in eo_bands(("msi",), [["B04"], ["B08"]])]
        ['red', 'nir']
    """
    instruments = tuple(instruments)
    found: list[dict[str, Any]] = []
    for names in labels:
        spectral = next((b for b in (band_for(instruments, n) for n in names) if b), None)
        if spectral is not None:
            found.append(spectral.eo_band())
        else:
            found.append({"name": names[0]} if names else {})
    return found if any("center_wavelength" in band for band in found) else []


def stem_band_label(stem: str) -> str | None:
    """Return the band label at the end of a per-band file name, if any.

    Args:
        stem: File name without its suffix.

    Raises:
        Nothing: None when the stem ends in no band label.

    Example:
        >>> stem_band_label("LC09_L2SP_042034_20240712_20240713_02_T1_SR_B4")
        'SR_B4'
        >>> stem_band_label("T32TNS_20240715T103031_B8A_20m")
        'B8A'
    """
    match = _STEM_LABEL.search(stem)
    return match.group(1) if match else None


def scene_part(stem: str) -> tuple[str, str] | None:
    """Split a per-file name into the scene it belongs to and the part of it the file holds.

    USGS ships a Landsat scene as one GeoTIFF per band and quality layer, all named after the
    product; such files are read together as one Item (see ``ingest.rasters.read_scene_files``).

    Args:
        stem: File name without its suffix.

    Raises:
        Nothing: None when the stem ends in no band or layer label.

    Example:
        >>> scene_part("LC09_L2SP_042034_20240712_20240713_02_T1_QA_PIXEL")
        ('LC09_L2SP_042034_20240712_20240713_02_T1', 'QA_PIXEL')
        >>> scene_part("l8_BQA")
        ('l8', 'BQA')
        >>> scene_part("T32TNS_20240715T103031_B8A_20m")
        ('T32TNS_20240715T103031', 'B8A')
        >>> scene_part("L2A_PVI")  # Earth Search's preview, beside B04.tif
        ('', 'L2A_PVI')
    """
    match = _SCENE_PART.search(stem)
    return (stem[: match.start()], match.group(1)) if match else None


def platform_for(text: str) -> str | None:
    """Normalise a satellite name from metadata to a STAC platform we recognise.

    Accepts GDAL's ``SATELLITEID`` values (``LANDSAT_8``, ``Sentinel-2A``), USGS
    ``SPACECRAFT_ID`` and short forms (``S2B``, ``landsat8``).

    Args:
        text: The satellite name as found.

    Raises:
        Nothing: None for satellites not in ``PLATFORMS``.

    Example:
        >>> platform_for("LANDSAT_8"), platform_for("S2B"), platform_for("SPOT 6")
        ('landsat-8', 'sentinel-2b', None)
    """
    key = re.sub(r"[\s_]+", "-", text.strip().lower())
    match = re.fullmatch(r"landsat-?(\d)", key)
    if match:
        key = f"landsat-{match.group(1)}"
    match = re.fullmatch(r"(?:sentinel-?2|s2)-?([a-d])", key)
    if match:
        key = f"sentinel-2{match.group(1)}"
    return key if key in PLATFORMS else None

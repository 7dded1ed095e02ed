"""Sentinel-2 SAFE metadata: the product's ``MTD_MSIL2A.xml`` (or ``MTD_MSIL1C.xml``) and the
granule's ``MTD_TL.xml``, which ESA ships beside the JPEG 2000 bands.

They hold what the band files do not: the sensing time to the millisecond, cloud cover, the
mean sun angles, and how digital numbers become reflectance (``QUANTIFICATION_VALUE`` and,
from processing baseline 04.00, a per-band ``ADD_OFFSET`` of -1000). Parsing is pure;
``ingest.rasters`` reads the files. Element names are matched without their XML namespace,
which differs between product types and baselines.
"""

from __future__ import annotations

import datetime as _dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from dafab_static.derive.products import parse_timestamp

#: Bands whose numbers are reflectance (not SCL classes, AOT or water vapour).
REFLECTANCE_BANDS = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip


@dataclass(frozen=True)
class SafeMetadata:
    """What a SAFE's metadata files say about its scene.

    Attributes:
        datetime: The granule's ``SENSING_TIME``, in UTC.
        cloud_cover: ``Cloud_Coverage_Assessment`` (or ``CLOUDY_PIXEL_PERCENTAGE``), percent.
        sun_azimuth: Mean sun azimuth, degrees clockwise from north.
        sun_elevation: Mean sun elevation (90 minus the mean zenith angle), degrees.
        scales: Per reflectance band (``B04``): ``(scale, offset)`` to reflectance.
    """

    datetime: _dt.datetime | None = None
    cloud_cover: float | None = None
    sun_azimuth: float | None = None
    sun_elevation: float | None = None
    scales: dict[str, tuple[float, float]] = field(default_factory=dict)

    def rescaling(self, label: str) -> tuple[float, float, str] | None:
        """``(scale, offset, unit)`` from the band file ``label``'s numbers to reflectance
        (unit ``""``), as :meth:`dafab_static.derive.mtl.Mtl.rescaling`; None for others."""
        found = self.scales.get(label.upper())
        return (*found, "") if found else None


def parse_safe(product_xml: str | None, granule_xml: str | None) -> SafeMetadata:
    """Read a SAFE's product and granule metadata (either may be missing).

    Raises:
        Nothing: XML that does not parse, or values that are not numbers, give no field.

    Example:
        >>> product = '''<Level-2A_User_Product><General_Info><Product_Image_Characteristics>
        ...   <QUANTIFICATION_VALUES_LIST>
        ...     <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
        ...   </QUANTIFICATION_VALUES_LIST>
        ...   <BOA_ADD_OFFSET_VALUES_LIST><BOA_ADD_OFFSET band_id="3">-1000</BOA_ADD_OFFSET>
        ...   </BOA_ADD_OFFSET_VALUES_LIST>
        ...   <Spectral_Information_List>
        ...     <Spectral_Information bandId="3" physicalBand="B4"/>
        ...   </Spectral_Information_List>
        ... </Product_Image_Characteristics></General_Info></Level-2A_User_Product>'''
        >>> parse_safe(product, None).rescaling("B04")
        (0.0001, -0.1, '')
    """
    product, granule = _parse(product_xml), _parse(granule_xml)
    cloud = _percent(_text(product, "Cloud_Coverage_Assessment")) if product is not None else None
    sensing = _text(granule, "SENSING_TIME") if granule is not None else None
    azimuth = elevation = None
    if granule is not None:
        if cloud is None:
            cloud = _percent(_text(granule, "CLOUDY_PIXEL_PERCENTAGE"))
        sun = next((e for e in granule.iter() if _local(e.tag) == "Mean_Sun_Angle"), None)
        if sun is not None:
            zenith, azimuth = (
                _number(_text(sun, "ZENITH_ANGLE")),
                _number(_text(sun, "AZIMUTH_ANGLE")),
            )
            elevation = None if zenith is None else round(90.0 - zenith, 8)
            azimuth = azimuth if azimuth is not None and 0 <= azimuth < 360 else None
    return SafeMetadata(
        datetime=parse_timestamp(sensing) if sensing else None,
        cloud_cover=cloud,
        sun_azimuth=azimuth,
        sun_elevation=elevation,
        scales=_rescaling(product) if product is not None else {},
    )


def _rescaling(root: ET.Element) -> dict[str, tuple[float, float]]:
    """Reflectance = (DN + offset) / quantification, per band: as scale and offset."""
    quantification = _number(
        _text(root, "BOA_QUANTIFICATION_VALUE") or _text(root, "QUANTIFICATION_VALUE")
    )
    if not quantification:
        return {}
    names = {
        e.get("bandId"): _band_name(e.get("physicalBand") or "")
        for e in root.iter()
        if _local(e.tag) == "Spectral_Information"
    }
    offsets = {
        e.get("band_id"): _number(e.text)
        for e in root.iter()
        if _local(e.tag) in ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET")
    }
    out = {}
    for band_id, name in names.items():
        if name in REFLECTANCE_BANDS:
            offset = offsets.get(band_id) or 0.0
            out[name] = (1.0 / quantification, offset / quantification)
    if not names:  # no band list: one rescaling for every reflectance band
        out = {name: (1.0 / quantification, 0.0) for name in REFLECTANCE_BANDS}
    return out


def _band_name(physical: str) -> str:
    """``B4`` → ``B04``, ``B8A`` → ``B8A``: the names of the band files."""
    if physical[1:].isdigit():
        return f"B{int(physical[1:]):02d}"
    return physical


def _parse(text: str | None) -> ET.Element | None:
    if not text:
        return None
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(root: ET.Element, name: str) -> str | None:
    for element in root.iter():
        if _local(element.tag) == name and element.text and element.text.strip():
            return element.text.strip()
    return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _percent(text: str | None) -> float | None:
    value = _number(text)
    return value if value is not None and 0 <= value <= 100 else None

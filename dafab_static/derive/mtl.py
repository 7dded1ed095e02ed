"""Landsat MTL metadata: the ``<product>_MTL.txt`` file USGS ships beside a scene's bands.

It holds what the band files do not: the scene-centre time, cloud cover, sun angles and, per
band, the rescaling from digital numbers to reflectance (or, for Collection 2 Level-2 surface
temperature, to kelvin). Parsing is pure; ``ingest.rasters`` reads the file.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field

from dafab_static.derive.products import acquisition_datetime

#: ``KEY = VALUE`` lines, nested in ``GROUP = NAME`` ... ``END_GROUP = NAME``.
_LINE = re.compile(r"^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$")
# Groups that hold each kind of rescaling, by product level: Level-2 surface reflectance and
# temperature (Collection 2), then Level-1 top-of-atmosphere (Collection 1 and 2, and the
# pre-collection "RADIOMETRIC_RESCALING").
_SURFACE: tuple[str, ...] = ("LEVEL2_SURFACE_REFLECTANCE_PARAMETERS",)
_TEMPERATURE: tuple[str, ...] = ("LEVEL2_SURFACE_TEMPERATURE_PARAMETERS",)
_TOA: tuple[str, ...] = ("LEVEL1_RADIOMETRIC_RESCALING", "RADIOMETRIC_RESCALING")
_BAND = re.compile(r"^(?:(SR|ST)_)?B0*(\d{1,2})$", re.IGNORECASE)


@dataclass(frozen=True)
class Mtl:
    """What an MTL file says about its scene.

    Attributes:
        groups: Every ``KEY = VALUE`` of the file (quotes removed), by group name.
        datetime: Acquisition time: ``DATE_ACQUIRED`` with ``SCENE_CENTER_TIME``, in UTC.
        cloud_cover: ``CLOUD_COVER`` in percent, None when USGS gives -1 (not computed).
        sun_azimuth: ``SUN_AZIMUTH`` in degrees, clockwise from north.
        sun_elevation: ``SUN_ELEVATION`` in degrees above the horizon.
    """

    groups: dict[str, dict[str, str]] = field(default_factory=dict)
    datetime: _dt.datetime | None = None
    cloud_cover: float | None = None
    sun_azimuth: float | None = None
    sun_elevation: float | None = None

    def rescaling(self, label: str) -> tuple[float, float, str] | None:
        """``(scale, offset, unit)`` that turn the band file ``label``'s numbers into
        reflectance (unit ``""``) or, for ``ST_B10``, kelvin; None when the MTL has none.
        Level-1 top-of-atmosphere reflectance is corrected for the sun's elevation when the
        MTL gives it.

        Example:
            >>> mtl = parse_mtl('''GROUP = RADIOMETRIC_RESCALING
            ...   REFLECTANCE_MULT_BAND_4 = 2.0000E-05
            ...   REFLECTANCE_ADD_BAND_4 = -0.100000
            ... END_GROUP = RADIOMETRIC_RESCALING''')
            >>> mtl.rescaling("B4")
            (2e-05, -0.1, '')
        """
        match = _BAND.match(label)
        if match is None:
            return None
        level, band = (match[1] or "").upper(), match[2]
        if level == "ST":
            kind, groups, unit = "TEMPERATURE", _TEMPERATURE, "kelvin"
            keys = (f"{kind}_MULT_BAND_ST_B{band}", f"{kind}_ADD_BAND_ST_B{band}")
        else:
            groups, unit = (_SURFACE if level == "SR" else _TOA), ""
            keys = (f"REFLECTANCE_MULT_BAND_{band}", f"REFLECTANCE_ADD_BAND_{band}")
        for name in groups:
            values = self.groups.get(name, {})
            scale, offset = _number(values.get(keys[0])), _number(values.get(keys[1]))
            if scale is not None and offset is not None:
                if groups is _TOA and self.sun_elevation is not None and self.sun_elevation > 0:
                    # MULT x DN + ADD is TOA reflectance "without correction for solar angle"
                    # (USGS Landsat 8 Data Users Handbook, 5.1): divided by the sine of the
                    # sun's elevation it is the reflectance (blue of a 65° scene read 10 %
                    # low; Fmask's thresholds are absolute).
                    sine = math.sin(math.radians(self.sun_elevation))
                    scale, offset = scale / sine, offset / sine
                return scale, offset, unit
        return None


def parse_mtl(text: str) -> Mtl:
    """Read an MTL file's text (Landsat Collection 1, 2 and pre-collection).

    Lines that are not ``KEY = VALUE`` are skipped; values that do not parse are left out of
    the derived fields, never guessed.

    Example:
        >>> mtl = parse_mtl('''GROUP = L1_METADATA_FILE
        ...   GROUP = PRODUCT_METADATA
        ...     DATE_ACQUIRED = 2015-08-04
        ...     SCENE_CENTER_TIME = "16:19:21.7917421Z"
        ...   END_GROUP = PRODUCT_METADATA
        ...   GROUP = IMAGE_ATTRIBUTES
        ...     CLOUD_COVER = 11.08
        ...   END_GROUP = IMAGE_ATTRIBUTES
        ... END_GROUP = L1_METADATA_FILE''')
        >>> mtl.datetime.isoformat(), mtl.cloud_cover
        ('2015-08-04T16:19:21.791742+00:00', 11.08)
    """
    groups: dict[str, dict[str, str]] = {}
    stack: list[str] = []
    flat: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        key, value = match[1], match[2].strip('"')
        if key == "GROUP":
            stack.append(value)
        elif key == "END_GROUP":
            if stack:
                stack.pop()
        else:
            groups.setdefault(stack[-1] if stack else "", {})[key] = value
            flat.setdefault(key, value)
    cloud = _number(flat.get("CLOUD_COVER"))
    return Mtl(
        groups=groups,
        datetime=acquisition_datetime(
            {k: flat[k] for k in ("DATE_ACQUIRED", "SCENE_CENTER_TIME") if k in flat}
        ),
        cloud_cover=cloud if cloud is not None and 0 <= cloud <= 100 else None,
        sun_azimuth=_number(flat.get("SUN_AZIMUTH")),
        sun_elevation=_number(flat.get("SUN_ELEVATION")),
    )


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None

"""A rule-based land-cover map from spectral indices, its class fractions and STAC classes.

Pure torch on whatever device the bands are on. The rules are the published index
thresholds, applied per pixel in a fixed precedence (highest first):

1. ``nodata`` (0): invalid pixels.
2. ``cloud`` (6): the given cloud mask; a cloud hides whatever is under it.
3. ``snow-ice`` (5): NDSI = (green - swir16) / (green + swir16) > 0.4 with NIR > 0.11 and
   green > 0.1 (SNOMAP: Hall, Riggs & Salomonson 1995, RSE 54:127-140; NDSI after Dozier
   1989, RSE 28:9-22; the NIR test keeps water out, the green test dark targets). Before
   water because snow has NDWI ~0.05 and MNDWI ~0.8, both "water". Needs swir16.
4. ``water`` (1): NDWI = (green - nir) / (green + nir) > 0 (McFeeters 1996, IJRS
   17:1425-1432) and, with swir16, also MNDWI = (green - swir16) / (green + swir16) > 0
   (Xu 2006, IJRS 27:3025-3033), which removes the built-up and soil noise NDWI admits.
   Before vegetation: turbid or algal water can pass NDVI > 0.3 while still greener than NIR.
5. ``vegetation`` (2): NDVI = (nir - red) / (nir + red) > 0.3 (Rouse et al. 1974, NASA
   SP-351). Choice of 0.3: Sobrino, Jiménez-Muñoz & Paolini 2004 (RSE 90:434-440) take
   NDVI < 0.2 as bare soil and > 0.5 as full cover; 0.3 is a third of the way in that linear
   mix, i.e. about one third vegetation cover.
6. ``built-up`` (4): NDBI = (swir16 - nir) / (swir16 + nir) > 0 and NDVI < 0.2 (Zha, Gao &
   Ni 2003, IJRS 24:583-594), and NDBI - NDVI > 0 (He et al. 2010, Remote Sensing Letters
   1:213-221): dry bare soil also has NDBI > 0 and NDVI < 0.2, and this difference is what
   separates the two. Needs swir16.
7. ``bare`` (3): everything else that is valid.

Without swir16 there is no snow-ice or built-up class (they fall into water/bare); the
``available`` tuple of :class:`LandCover` records what could be decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from dafab_static.derive.cloud import normalized_difference, reflectance_bands
from dafab_static.errors import InputError


class CoverClass(NamedTuple):
    """One land-cover class: raster value, STAC ``name`` (``^[0-9A-Za-z-_]+$``), text, colour."""

    value: int
    name: str
    description: str
    color_hint: str


#: Colours follow Dynamic World's palette (Brown et al. 2022, Scientific Data 9:251).
CLASSES = (
    CoverClass(0, "nodata", "No data", "000000"),
    CoverClass(1, "water", "Open water (NDWI > 0; and MNDWI > 0 with SWIR1)", "419BDF"),
    CoverClass(2, "vegetation", "Vegetation (NDVI > 0.3)", "397D49"),
    CoverClass(3, "bare", "Bare or sparsely vegetated ground (no other rule)", "A59B8F"),
    CoverClass(4, "built-up", "Built-up (NDBI > 0, NDVI < 0.2, NDBI > NDVI)", "C4281B"),
    CoverClass(5, "snow-ice", "Snow and ice (NDSI > 0.4, NIR > 0.11, green > 0.1)", "B39FE1"),
    CoverClass(6, "cloud", "Cloud (from the cloud mask)", "FFFFFF"),
)
NODATA, WATER, VEGETATION, BARE, BUILT_UP, SNOW_ICE, CLOUD = range(7)
_NAMES = {c.value: c.name for c in CLASSES}


@dataclass(frozen=True)
class LandCover:
    """A land-cover map.

    Attributes:
        classes: (H, W) uint8 class values of :data:`CLASSES`.
        available: Names of the classes these bands (and cloud mask) could decide.
    """

    classes: torch.Tensor
    available: tuple[str, ...]


def classify(
    refl: Mapping[str, torch.Tensor], valid: torch.Tensor, cloud: torch.Tensor | None = None
) -> LandCover:
    """Classify each pixel with the index rules of this module's docstring.

    Args:
        refl: Surface reflectance per STAC common band name, each (H, W); green, red and
            nir are required, swir16 enables snow-ice, built-up and MNDWI.
        valid: (H, W) bool, True where the pixel holds data.
        cloud: (H, W) bool cloud mask (e.g. ``cloud_mask(...).cloud``), or None.

    Returns:
        A :class:`LandCover` on ``valid``'s device.

    Raises:
        InputError: when green, red or nir is missing, or a band's or ``cloud``'s shape
            differs from ``valid``'s.

    Example:
        >>> water = {"green": torch.full((2, 2), .05), "red": torch.full((2, 2), .03),
        ...          "nir": torch.full((2, 2), .015)}
        >>> lc = classify(water, torch.ones(2, 2, dtype=torch.bool))
        >>> (lc.classes.tolist(), lc.available)
        ([[1, 1], [1, 1]], ('nodata', 'water', 'vegetation', 'bare'))
    """
    bands = reflectance_bands(refl, valid, required=("green", "red", "nir"))
    if cloud is not None and cloud.shape != valid.shape:
        raise InputError(
            f"cloud: shape {tuple(cloud.shape)} differs from valid's {tuple(valid.shape)}"
        )
    green, red, nir = bands["green"], bands["red"], bands["nir"]
    swir16 = bands.get("swir16")
    ndvi = normalized_difference(nir, red)
    water = normalized_difference(green, nir) > 0
    out = torch.full(valid.shape, BARE, dtype=torch.uint8, device=valid.device)
    available = ["nodata", "water", "vegetation", "bare"]
    snow = None
    if swir16 is not None:
        ndbi = normalized_difference(swir16, nir)
        out[(ndbi > 0) & (ndvi < 0.2) & (ndbi - ndvi > 0)] = BUILT_UP
        water &= normalized_difference(green, swir16) > 0
        snow = (normalized_difference(green, swir16) > 0.4) & (nir > 0.11) & (green > 0.1)
        available += ["built-up", "snow-ice"]
    out[ndvi > 0.3] = VEGETATION
    out[water] = WATER
    if snow is not None:
        out[snow] = SNOW_ICE
    if cloud is not None:
        out[cloud.to(device=valid.device, dtype=torch.bool)] = CLOUD
        available.append("cloud")
    out[~valid] = NODATA
    return LandCover(classes=out, available=tuple(available))


def class_counts(classes: torch.Tensor, valid: torch.Tensor) -> dict[str, int]:
    """Pixels per class name: valid pixels by class, ``nodata`` = the invalid pixels.

    Example:
        >>> class_counts(torch.tensor([[1, 2], [0, 2]], dtype=torch.uint8),
        ...              torch.tensor([[True, True], [False, True]]))["vegetation"]
        2
    """
    binned = torch.bincount(classes[valid].long().flatten(), minlength=len(CLASSES))
    counts = {name: int(binned[value]) for value, name in _NAMES.items() if value < len(binned)}
    counts["nodata"] = int((~valid).sum())
    return counts


def fractions(classes: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
    """Percent of the valid pixels in each class (every class but ``nodata``).

    The values sum to 100 within float error (all 0.0 when no pixel is valid).

    Example:
        >>> fractions(torch.tensor([[1, 2, 2, 2]], dtype=torch.uint8),
        ...           torch.ones(1, 4, dtype=torch.bool))["vegetation"]
        75.0
    """
    counts = class_counts(classes, valid)
    total = int(valid.sum())
    return {
        c.name: (100.0 * counts[c.name] / total if total else 0.0)
        for c in CLASSES
        if c.value != NODATA
    }


def classification_classes(
    fractions: Mapping[str, float], counts: Mapping[str, int]
) -> list[dict[str, Any]]:
    """STAC classification extension class objects for the land-cover raster band.

    Fields: ``value``, ``name``, ``description``, ``color_hint`` (hex without ``#``),
    ``count`` and, except for ``nodata`` (which has ``nodata: true``), ``percentage``
    (of valid pixels, rounded to 4 decimals). ``value``/``description`` satisfy
    classification v1.1.0's class object, ``name``/``nodata``/``percentage``/``count`` v2.0.0's.

    Args:
        fractions: :func:`fractions`' output.
        counts: :func:`class_counts`' output.

    Example:
        >>> classification_classes({"water": 100.0}, {"water": 4})[1]["percentage"]
        100.0
    """
    objects = []
    for c in CLASSES:
        obj: dict[str, Any] = {
            "value": c.value,
            "name": c.name,
            "description": c.description,
            "color_hint": c.color_hint,
            "count": int(counts.get(c.name, 0)),
        }
        if c.value == NODATA:
            obj["nodata"] = True
        else:
            obj["percentage"] = round(float(fractions.get(c.name, 0.0)), 4)
        objects.append(obj)
    return objects

"""Cloud and cloud-shadow masks from surface reflectance (their comparison with producers'
QA layers is :mod:`dafab_static.derive.qa_reference`).

Pure torch on whatever device the bands are on: no file I/O, no Python loop over pixels.

The cloud layer is Fmask's *potential cloud pixel* (PCP) layer: Zhu & Woodcock 2012,
"Object-based cloud and cloud shadow detection in Landsat imagery", Remote Sensing of
Environment 118:83-94, eqs. 1-4 and 6, in the form without a thermal band that Zhu, Wang &
Woodcock 2015 (RSE 159:269-277) and Qiu, Zhu & He 2019 (Fmask 4.0, RSE 231:111205) use for
Sentinel-2. Fmask's second pass (clear-sky probabilities, temperature) and its object
matching of shadows to clouds are not reproduced: what is here is the per-pixel screening
plus Fmask's potential shadow layer and morphology.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dafab_static.derive.morphology import FILL_PASSES, dilate, fill_holes
from dafab_static.errors import InputError

#: Bands without which no test can run (whiteness and HOT need the visible, shadow the NIR).
REQUIRED_BANDS = ("blue", "green", "red", "nir")
#: Fmask dilates clouds and shadows by 3 pixels (``cldpix``/``sdpix`` defaults of Fmask 3.x-4.0).
DILATION_PX = 3
#: Potential shadow is kept within this many pixels of a cloud when no sun angle is given.
SHADOW_DISTANCE_PX = 100
#: Cloud heights searched for shadows, metres (Zhu & Woodcock 2012: 200 m to 12 km).
CLOUD_HEIGHT_M = (200.0, 12_000.0)
#: Sun-direction shadow search uses at most this many cloud copies along the shadow line.
MAX_SHADOW_STEPS = 64


@dataclass(frozen=True)
class CloudMask:
    """Boolean cloud and shadow layers of one scene (a pixel is never both).

    Attributes:
        cloud: (H, W) bool, True on cloud.
        shadow: (H, W) bool, True on cloud shadow (never where ``cloud`` is).
        tests: Names of the tests that made the mask, given the bands present.
    """

    cloud: torch.Tensor
    shadow: torch.Tensor
    tests: tuple[str, ...]


def cloud_mask(
    refl: Mapping[str, torch.Tensor],
    valid: torch.Tensor,
    *,
    cloud_dilation: int = DILATION_PX,
    shadow_dilation: int = DILATION_PX,
    shadow_distance: int = SHADOW_DISTANCE_PX,
    remove_isolated: bool = True,
    sun_azimuth: float | None = None,
    sun_elevation: float | None = None,
    pixel_size: float | None = None,
    grid: tuple[float, float, float, float] | None = None,
    cloud_height: tuple[float, float] = CLOUD_HEIGHT_M,
    fill_passes: int = FILL_PASSES,
) -> CloudMask:
    """Screen clouds and cloud shadows with Fmask's per-pixel tests.

    Cloud = AND of the tests whose bands are present (``tests`` names them):

    - ``basic`` (eq. 1 without BT): swir22 > 0.03, NDSI < 0.8, NDVI < 0.8 (needs swir16+swir22);
    - ``brightness`` in its place without SWIR: red > 0.07, Sen2Cor's lowest cloud
      reflectance (Main-Knorn et al. 2017, Proc. SPIE 10427, cloud step 1);
    - ``whiteness`` (eq. 2): sum |vis - mean(vis)| / mean(vis) < 0.7;
    - ``hot`` (eq. 3; haze-optimised transform of Zhang, Guindon & Cihlar 2002, RSE
      82:173-187): blue - 0.5 red - 0.08 > 0;
    - ``nir_swir`` (eq. 4): nir / swir16 > 0.75 (needs swir16);
    - ``cirrus`` (OR-ed in, Zhu et al. 2015; normalised by the 2nd percentile of non-cloud
      pixels as in Fmask 4.0): cirrus > 0.01 (needs cirrus).

    Shadow = flood-fill(NIR) - NIR > 0.02 (eq. 19; with swir16 the smaller of the NIR and
    SWIR1 differences, as Fmask 3.3+), outside Fmask's water test (eq. 5) and cloud, and
    within reach of a cloud: along the sun's shadow line for ``cloud_height`` when sun angles
    and ``pixel_size`` are given (``shadow_line``), else within ``shadow_distance`` pixels
    (``shadow_near``). The fill's boundary is the 17.5th percentile of clear-land NIR, as
    in Zhu & Woodcock 2012. Invalid pixels are never cloud or shadow.

    Args:
        refl: Surface reflectance per STAC common band name, each (H, W), on one device.
        valid: (H, W) bool, True where the pixel holds data.
        cloud_dilation: Square dilation of the cloud layer, pixels (Fmask: 3).
        shadow_dilation: Square dilation of the shadow layer, pixels (Fmask: 3).
        shadow_distance: Shadow search radius around clouds without sun geometry, pixels.
        remove_isolated: Drop cloud and shadow pixels with no 8-neighbour of their kind.
        sun_azimuth: Degrees clockwise from north (STAC ``view:sun_azimuth``).
        sun_elevation: Degrees above the horizon (``view:sun_elevation``).
        pixel_size: Ground sampling distance in metres of a north-up grid; or ``grid``.
        grid: The ``(a, b, d, e)`` terms of the grid's affine transform, in metres (a
            projected CRS whose y runs north): the shadow line then follows a south-up or
            rotated grid too, where a north-up assumption cast shadows the wrong way.
        cloud_height: (lowest, highest) cloud height searched, metres.
        fill_passes: Cap on the flood fill's sweep passes (see :func:`fill_holes`).

    Returns:
        A :class:`CloudMask` on ``valid``'s device.

    Raises:
        InputError: when a required band is missing, a band's shape differs from ``valid``,
            or the sun geometry is incomplete or below the horizon.

    Example:
        >>> b = {k: torch.full((8, 8), 0.55) for k in ("blue", "green", "red", "nir")}
        >>> m = cloud_mask(b, torch.ones(8, 8, dtype=torch.bool), cloud_dilation=0)
        >>> (int(m.cloud.sum()), m.tests[:3])
        (64, ('brightness', 'whiteness', 'hot'))
    """
    bands = reflectance_bands(refl, valid, required=REQUIRED_BANDS)
    sun = None
    if sun_azimuth is not None or sun_elevation is not None:
        if grid is None and pixel_size is not None:
            grid = (pixel_size, 0.0, 0.0, -pixel_size)
        sun = _shadow_offsets(sun_azimuth, sun_elevation, grid, cloud_height)
    blue, green, red, nir = (bands[k] for k in REQUIRED_BANDS)
    swir16, swir22, cirrus = bands.get("swir16"), bands.get("swir22"), bands.get("cirrus")
    ndvi = normalized_difference(nir, red)
    tests: list[str] = []
    pcp = valid.clone()
    if swir16 is not None and swir22 is not None:
        ndsi = normalized_difference(green, swir16)
        pcp &= (swir22 > 0.03) & (ndsi < 0.8) & (ndvi < 0.8)
        tests.append("basic")
    else:
        pcp &= red > 0.07
        tests.append("brightness")
    mean_vis = (blue + green + red) / 3
    spread = (blue - mean_vis).abs() + (green - mean_vis).abs() + (red - mean_vis).abs()
    pcp &= spread < 0.7 * mean_vis  # eq. 2 multiplied through: no division by a dark mean
    pcp &= blue - 0.5 * red - 0.08 > 0
    tests += ["whiteness", "hot"]
    if swir16 is not None:
        pcp &= nir > 0.75 * swir16  # eq. 4 multiplied through (swir16 >= 0)
        tests.append("nir_swir")
    if cirrus is not None:
        clear = valid & ~pcp
        low = _percentile(cirrus[clear if bool(clear.any()) else valid], 0.02)
        pcp |= valid & (cirrus - low > 0.01)
        tests.append("cirrus")
    if remove_isolated:
        pcp = _drop_isolated(pcp)

    # Eq. 5: Fmask's water test keeps lakes (dark, a NIR basin) out of the shadow layer.
    water = ((ndvi < 0.01) & (nir < 0.11)) | ((ndvi < 0.1) & (nir < 0.05))
    land = valid & ~water & ~pcp
    seeds = ~valid
    background = _percentile(nir[land if bool(land.any()) else valid], 0.175)
    darkening = fill_holes(torch.where(valid, nir, background), seeds, fill_passes) - nir
    tests.append("flood_fill_nir")
    if swir16 is not None:
        background = _percentile(swir16[land if bool(land.any()) else valid], 0.175)
        filled = fill_holes(torch.where(valid, swir16, background), seeds, fill_passes)
        darkening = torch.minimum(darkening, filled - swir16)
        tests.append("flood_fill_swir16")
    if sun is not None:
        reach = _shadow_line(pcp, *sun)
        tests.append("shadow_line")
    else:
        reach = dilate(pcp, shadow_distance)
        tests.append("shadow_near")
    shadow = valid & ~water & ~pcp & reach & (darkening > 0.02)
    if remove_isolated:
        shadow = _drop_isolated(shadow)
    cloud = dilate(pcp, cloud_dilation) & valid
    shadow = dilate(shadow, shadow_dilation) & valid & ~cloud
    return CloudMask(cloud=cloud, shadow=shadow, tests=tuple(tests))


def cloud_cover(mask: CloudMask, valid: torch.Tensor) -> float:
    """Percent (0-100) of valid pixels that are cloud: STAC ``eo:cloud_cover`` semantics.

    Args:
        mask: A cloud mask.
        valid: (H, W) bool, the denominator's pixels.

    Returns:
        The percentage; 0.0 when no pixel is valid.

    Example:
        >>> v = torch.ones(2, 2, dtype=torch.bool)
        >>> cloud_cover(CloudMask(v.triu(), v & False, ()), v)
        75.0
    """
    return _percent(mask.cloud, valid)


def shadow_cover(mask: CloudMask, valid: torch.Tensor) -> float:
    """Percent (0-100) of valid pixels that are cloud shadow; 0.0 when none is valid.

    Example:
        >>> v = torch.ones(2, 2, dtype=torch.bool)
        >>> shadow_cover(CloudMask(v & False, v.tril(-1), ()), v)
        25.0
    """
    return _percent(mask.shadow, valid)


def normalized_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(a - b) / (a + b) of reflectances, in [-1, 1]; 0 where the sum is 0 (dark no-data
    pixels stay finite).

    Negative reflectance is clipped to 0 first: ESA's L2A offset (-0.1 since baseline 04.00)
    leaves dark water slightly below zero, where a sum near 0 blew the ratio up to hundreds
    (NDVI -321) and flipped the sign of every threshold on it.

    Example:
        >>> normalized_difference(torch.tensor([0.75, 0.0, 0.01]),
        ...                       torch.tensor([0.25, 0.0, -0.002])).tolist()
        [0.5, 0.0, 1.0]
    """
    a = a.clamp(min=0)
    b = b.clamp(min=0)
    total = a + b
    return torch.where(total != 0, (a - b) / torch.where(total != 0, total, 1.0), 0.0)


def reflectance_bands(
    refl: Mapping[str, torch.Tensor], valid: torch.Tensor, *, required: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """Check bands against ``valid`` and return them as float32 on ``valid``'s device.

    Raises:
        InputError: naming the missing bands, or the band whose shape differs from ``valid``.

    Example:
        >>> sorted(reflectance_bands({"red": torch.zeros(2, 2)}, torch.ones(2, 2).bool(),
        ...                          required=("red",)))
        ['red']
    """
    if valid.ndim != 2 or valid.dtype != torch.bool:
        raise InputError(
            f"valid: expected a 2-D bool tensor, got {valid.dtype} {tuple(valid.shape)}"
        )
    missing = [name for name in required if name not in refl]
    if missing:
        raise InputError(f"refl lacks band(s) {', '.join(missing)} (has {', '.join(sorted(refl))})")
    bands = {}
    for name, band in refl.items():
        if band.shape != valid.shape:
            raise InputError(
                f"band {name!r}: shape {tuple(band.shape)} differs from "
                f"valid's {tuple(valid.shape)}"
            )
        bands[name] = band.to(device=valid.device, dtype=torch.float32)
    return bands


def _shift(mask: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Move a mask by (rows, cols) pixels, False where nothing moved in."""
    height, width = mask.shape
    out = torch.zeros_like(mask)
    if abs(rows) >= height or abs(cols) >= width:
        return out
    out[max(rows, 0) : height + min(rows, 0), max(cols, 0) : width + min(cols, 0)] = mask[
        max(-rows, 0) : height + min(-rows, 0), max(-cols, 0) : width + min(-cols, 0)
    ]
    return out


def _shadow_offsets(
    azimuth: float | None,
    elevation: float | None,
    grid: tuple[float, float, float, float] | None,
    heights: tuple[float, float],
) -> tuple[float, float, float, float]:
    """(rows, cols) of a unit shadow step and the (nearest, farthest) shadow distance, px."""
    for name, value in (("view:sun_azimuth", azimuth), ("view:sun_elevation", elevation)):
        # They come from item JSON, which may hold anything.
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InputError(f"{name} {value!r}: not a number")
    if azimuth is None or elevation is None or grid is None:
        raise InputError(
            "sun_azimuth, sun_elevation and a positive pixel_size (or the grid) must be given "
            f"together (got {azimuth}, {elevation}, {grid})"
        )
    if not 0 < elevation <= 90:
        raise InputError(f"sun_elevation {elevation}: the sun must be above the horizon")
    a, b, d, e = grid
    det = a * e - b * d
    if not math.isfinite(det) or det == 0:
        raise InputError(f"grid {grid}: not an invertible transform")
    # Shadows fall opposite the sun: east and north components of one metre of shadow,
    # then into (columns, rows) through the inverse of the grid's linear part.
    east, north = -math.sin(math.radians(azimuth)), -math.cos(math.radians(azimuth))
    right, down = (e * east - b * north) / det, (-d * east + a * north) / det
    per_metre = math.hypot(right, down)  # pixels per metre of shadow on the ground
    low, high = (h / math.tan(math.radians(elevation)) * per_metre for h in heights)
    return down / per_metre, right / per_metre, low, high


def _shadow_line(
    cloud: torch.Tensor, down: float, right: float, low: float, high: float
) -> torch.Tensor:
    """Union of the cloud mask moved away from the sun, ``low`` to ``high`` pixels.

    Fmask projects each cloud object along the sun direction (Zhu & Woodcock 2012);
    here every cloud pixel is projected at once, for at most ``MAX_SHADOW_STEPS`` heights,
    and the union is dilated by half a step so the line has no gaps.
    """
    high = min(high, float(sum(cloud.shape)))  # farther shadows fall off the raster
    low = min(low, high)
    steps = max(1, min(MAX_SHADOW_STEPS, math.ceil(high - low) + 1))
    stride = (high - low) / max(steps - 1, 1)
    reach = torch.zeros_like(cloud)
    for k in range(steps):
        distance = low + k * stride
        reach |= _shift(cloud, round(distance * down), round(distance * right))
    return dilate(reach, math.ceil(stride / 2))


def _drop_isolated(mask: torch.Tensor) -> torch.Tensor:
    """Clear True pixels with no True 8-neighbour."""
    counts = F.avg_pool2d(mask[None, None].float(), 3, 1, 1, count_include_pad=True)[0, 0] * 9
    return mask & (counts.round() > 1)


def _percentile(values: torch.Tensor, q: float) -> torch.Tensor:
    """The ``q`` quantile by rank (``kthvalue``: exact, deterministic, no size limit)."""
    if values.numel() == 0:
        return torch.zeros((), device=values.device)
    k = min(values.numel(), max(1, math.ceil(q * values.numel())))
    return values.flatten().kthvalue(k).values


def _percent(layer: torch.Tensor, valid: torch.Tensor) -> float:
    total = int(valid.sum())
    return 100.0 * int((layer & valid).sum()) / total if total else 0.0

"""Per-band statistics for the raster extension, from an array and its validity mask.

Pure: the caller reads the pixels (often a decimated read, see ``ingest/rasters.py``) and
passes them in, so the numbers are a function of the array alone.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

#: Significant digits kept for floating statistics: enough for any sensor's radiometry, few
#: enough that the last-ulp differences between numpy builds (SIMD summation order) do not
#: change the bytes of a catalog.
SIGNIFICANT_DIGITS = 10


def band_statistics(
    values: npt.NDArray[np.generic], valid: npt.NDArray[np.bool_] | None = None
) -> dict[str, float]:
    """Compute ``raster:bands[].statistics`` over the valid pixels of one band.

    A pixel counts when ``valid`` is true there (all pixels when ``valid`` is None) and its
    value is finite (NaN and infinities never count, whatever the mask says).

    Args:
        values: Array of one band (any real dtype; complex bands have no statistics).
        valid: Boolean array of the same shape; True where the pixel holds data.

    Returns:
        ``{"minimum", "maximum", "mean", "stddev", "valid_percent"}``; with no valid pixel,
        only ``{"valid_percent": 0.0}``. Integer bands keep integer minimum and maximum
        (floats beyond 2^53).
        ``stddev`` is the population standard deviation. Floats keep 10 significant digits.

    Raises:
        ValueError: when ``valid`` and ``values`` differ in shape (a caller bug, not input).

    Example:
        >>> band_statistics(np.array([[1, 2], [3, 0]]), np.array([[1, 1], [1, 0]], bool))
        {'minimum': 1, 'maximum': 3, 'mean': 2.0, 'stddev': 0.8164965809, 'valid_percent': 75.0}
    """
    if valid is not None and valid.shape != values.shape:
        raise ValueError(f"mask shape {valid.shape} differs from band shape {values.shape}")
    ok = np.ones(values.shape, dtype=bool) if valid is None else valid.astype(bool, copy=False)
    if np.issubdtype(values.dtype, np.floating):
        ok = ok & np.isfinite(values)
    total = values.size
    count = int(np.count_nonzero(ok))
    percent = _round(100.0 * count / total) if total else 0.0
    if count == 0:
        return {"valid_percent": percent}
    data = values[ok]
    as_float = data.astype(np.float64, copy=False)
    mean = float(as_float.mean())
    stddev = float(np.sqrt(np.mean(np.square(as_float - mean))))
    return {
        "minimum": _number(data.min()),
        "maximum": _number(data.max()),
        "mean": _round(mean),
        "stddev": _round(stddev),
        "valid_percent": percent,
    }


#: Integers a double holds exactly (I-JSON, RFC 7493 §2.2: beyond, JSON numbers stop being
#: interoperable).
EXACT_INTEGERS = 2**53


def _number(value: np.generic) -> float:
    """Keep integers exact (``int`` is a JSON number too) where a double holds them, and
    round floats. A 64-bit band's minimum beyond 2^53 is a float: as an integer it broke
    the month's index column whenever another band had float statistics (Arrow refuses to
    round it into the double column), and 2^64 - 1 fits no Parquet integer at all."""
    if isinstance(value, np.integer) and abs(int(value)) <= EXACT_INTEGERS:
        return int(value)
    return _round(float(value))


def _round(value: float) -> float:
    if value == 0.0 or not math.isfinite(value):
        return value
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")

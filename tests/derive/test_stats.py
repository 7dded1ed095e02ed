"""Band statistics on known arrays: exact values, masks, NaN, empty bands."""

from __future__ import annotations

import numpy as np
import pytest

from dafab_static.derive.stats import band_statistics


def test_exact_values_over_valid_pixels() -> None:
    values = np.array([[1, 2, 3], [4, 0, 0]], dtype=np.uint16)
    valid = values != 0
    assert band_statistics(values, valid) == {
        "minimum": 1,
        "maximum": 4,
        "mean": 2.5,
        "stddev": 1.118033989,
        "valid_percent": 66.66666667,
    }


def test_integer_bands_keep_integer_extremes() -> None:
    stats = band_statistics(np.array([[-5, 7]], dtype=np.int16))
    assert stats["minimum"] == -5 and isinstance(stats["minimum"], int)
    assert stats["maximum"] == 7 and isinstance(stats["maximum"], int)


def test_64_bit_extremes_beyond_2_53_are_floats() -> None:
    """As integers they broke the month's index beside float statistics, and 2^64 - 1 fits
    no Parquet integer."""
    stats = band_statistics(np.array([[3, 2**63 + 5, 2**64 - 1]], dtype=np.uint64))
    assert stats["minimum"] == 3 and isinstance(stats["minimum"], int)
    assert isinstance(stats["maximum"], float) and stats["maximum"] == pytest.approx(2.0**64)
    edge = band_statistics(np.array([[-(2**53), 2**53]], dtype=np.int64))
    assert (edge["minimum"], edge["maximum"]) == (-(2**53), 2**53)
    assert isinstance(edge["maximum"], int)


def test_nan_and_inf_never_count_even_when_the_mask_says_valid() -> None:
    values = np.array([[np.nan, 0.25, np.inf], [0.75, -np.inf, 0.5]], dtype=np.float32)
    stats = band_statistics(values, np.ones(values.shape, dtype=bool))
    assert stats == {
        "minimum": 0.25,
        "maximum": 0.75,
        "mean": 0.5,
        "stddev": 0.2041241452,
        "valid_percent": 50.0,
    }


def test_no_valid_pixel_gives_only_valid_percent() -> None:
    values = np.zeros((3, 3), dtype=np.uint8)
    assert band_statistics(values, np.zeros((3, 3), dtype=bool)) == {"valid_percent": 0.0}


def test_without_mask_every_pixel_counts() -> None:
    stats = band_statistics(np.arange(10, dtype=np.uint8).reshape(2, 5))
    assert (stats["minimum"], stats["maximum"], stats["mean"]) == (0, 9, 4.5)
    assert stats["valid_percent"] == 100.0


def test_mask_of_another_shape_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="mask shape"):
        band_statistics(np.zeros((2, 2)), np.zeros((3, 3), dtype=bool))

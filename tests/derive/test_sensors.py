"""The sensor band tables and how labels find their band."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dafab_static.derive.sensors import (
    INSTRUMENT_BANDS,
    PLATFORMS,
    band_for,
    eo_bands,
    platform_for,
    stem_band_label,
)

SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "stac-schemas"


@pytest.mark.parametrize(
    ("instruments", "label", "name", "common_name", "center", "fwhm"),
    [
        (("msi",), "B04", "B04", "red", 0.6646, 0.031),
        (("msi",), "B4", "B04", "red", 0.6646, 0.031),
        (("msi",), "b8a", "B8A", "nir08", 0.8647, 0.021),
        (("msi",), "B4, central wavelength 665 nm", "B04", "red", 0.6646, 0.031),
        (("msi",), "B12", "B12", "swir22", 2.2024, 0.175),
        (("oli", "tirs"), "B2", "B2", "blue", 0.48, 0.06),
        (("oli", "tirs"), "SR_B5", "SR_B5", "nir08", 0.865, 0.03),
        (("oli", "tirs"), "ST_B10", "ST_B10", "lwir11", 10.895, 0.59),
        (("etm+",), "SR_B4", "SR_B4", "nir", 0.835, 0.13),
        (("etm+",), "B8", "B8", "pan", 0.71, 0.38),
        (("tm",), "B7", "B7", "swir22", 2.215, 0.27),
    ],
)
def test_band_for(
    instruments: tuple[str, ...],
    label: str,
    name: str,
    common_name: str,
    center: float,
    fwhm: float,
) -> None:
    band = band_for(instruments, label)
    assert band is not None
    assert band.eo_band() == {
        "name": name,
        "common_name": common_name,
        "center_wavelength": center,
        "full_width_half_max": fwhm,
    }


@pytest.mark.parametrize(
    ("instruments", "label"),
    [
        (("msi",), "SR_B4"),  # Sentinel-2 has no Level-2 prefixes
        (("msi",), "B13"),
        (("tm",), "B8"),  # no panchromatic band on TM
        (("oli", "tirs"), "elevation"),
        ((), "B4"),
        (("msi",), "B44"),
    ],
)
def test_labels_without_a_band(instruments: tuple[str, ...], label: str) -> None:
    assert band_for(instruments, label) is None


@pytest.mark.parametrize(
    ("stem", "label"),
    [
        ("l8_B2", "B2"),
        ("LC09_L2SP_042034_20240712_20240713_02_T1_SR_B4", "SR_B4"),
        ("LC09_L2SP_042034_20240712_20240713_02_T1_ST_B10", "ST_B10"),
        ("T32TNS_20240715T103031_B8A_20m", "B8A"),
        ("S2A_MSIL2A_20240715T103031_N0510_R108_T32TNS_20240715T150000_B04", "B04"),
        ("LC09_L2SP_042034_20240712_20240713_02_T1", None),
        ("RGB.byte", None),
        ("ABC", None),
    ],
)
def test_stem_band_label(stem: str, label: str | None) -> None:
    assert stem_band_label(stem) == label


@pytest.mark.parametrize(
    ("text", "platform"),
    [
        ("LANDSAT_8", "landsat-8"),
        ("Landsat-9", "landsat-9"),
        ("Sentinel-2A", "sentinel-2a"),
        ("SENTINEL_2B", "sentinel-2b"),
        ("s2c", "sentinel-2c"),
        ("Sentinel-1A", None),
        ("landsat-3", None),
    ],
)
def test_platform_for(text: str, platform: str | None) -> None:
    assert platform_for(text) == platform


def test_every_platform_has_a_band_table_for_its_instruments() -> None:
    for platform in PLATFORMS.values():
        assert all(i in INSTRUMENT_BANDS for i in platform.instruments), platform


def test_common_names_are_those_of_the_eo_schema() -> None:
    schema = SCHEMAS / "stac-extensions.github.io" / "eo" / "v1.1.0" / "schema.json"
    if not schema.is_file():
        pytest.skip(f"{schema} is absent (vendored schemas live in ../shared/data)")
    text = json.loads(schema.read_text())["definitions"]["bands"]["items"]
    allowed = set(text["properties"]["common_name"]["enum"])
    used = {b.common_name for bands in INSTRUMENT_BANDS.values() for b in bands.values()}
    assert used <= allowed


def test_eo_bands_stay_aligned_with_the_raster_bands() -> None:
    assert eo_bands(("oli", "tirs"), [["SR_B4"], ["QA_PIXEL"], []]) == [
        {"name": "SR_B4", "common_name": "red", "center_wavelength": 0.655,
         "full_width_half_max": 0.03},
        {"name": "QA_PIXEL"},
        {},
    ]  # fmt: skip
    assert eo_bands(("msi",), [["elevation"]]) == []
    assert eo_bands((), [["B04"]]) == []
    # The first label naming a band wins: a description before a file-name suffix.
    assert eo_bands(("msi",), [["B03", "B04"]])[0]["name"] == "B03"

"""Landsat MTL metadata: times, cloud cover, sun angles and band rescaling."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dafab_static.derive.mtl import parse_mtl

# The layout of a Collection 2 Level-2 MTL: Level-1 TOA and Level-2 SR/ST rescaling side by
# side, under the same key names; only the group tells them apart.
C2_L2 = """GROUP = LANDSAT_METADATA_FILE
  GROUP = IMAGE_ATTRIBUTES
    SPACECRAFT_ID = "LANDSAT_9"
    CLOUD_COVER = -1
    SUN_AZIMUTH = 151.2
    SUN_ELEVATION = 41.5
    DATE_ACQUIRED = 2024-09-18
    SCENE_CENTER_TIME = "10:02:43.5312450Z"
  END_GROUP = IMAGE_ATTRIBUTES
  GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS
    REFLECTANCE_MULT_BAND_4 = 2.75E-05
    REFLECTANCE_ADD_BAND_4 = -0.2
  END_GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS
  GROUP = LEVEL2_SURFACE_TEMPERATURE_PARAMETERS
    TEMPERATURE_MULT_BAND_ST_B10 = 0.00341802
    TEMPERATURE_ADD_BAND_ST_B10 = 149.0
  END_GROUP = LEVEL2_SURFACE_TEMPERATURE_PARAMETERS
  GROUP = LEVEL1_RADIOMETRIC_RESCALING
    REFLECTANCE_MULT_BAND_4 = 2.0000E-05
    REFLECTANCE_ADD_BAND_4 = -0.100000
  END_GROUP = LEVEL1_RADIOMETRIC_RESCALING
END_GROUP = LANDSAT_METADATA_FILE
END
"""


def test_collection2_level2_rescaling_by_product_level() -> None:
    mtl = parse_mtl(C2_L2)
    assert mtl.rescaling("SR_B4") == (2.75e-05, -0.2, "")
    # Level-1 TOA is corrected for the sun (41.5° high); surface reflectance never is.
    sine = math.sin(math.radians(41.5))
    assert mtl.rescaling("B4") == pytest.approx((2e-05 / sine, -0.1 / sine, ""))
    assert mtl.rescaling("ST_B10") == (0.00341802, 149.0, "kelvin")
    no_sun = parse_mtl(C2_L2.replace("SUN_ELEVATION = 41.5", ""))
    assert no_sun.rescaling("B4") == (2e-05, -0.1, "")  # left uncorrected, not guessed
    assert mtl.rescaling("SR_B5") is None  # not in the file: nothing guessed
    assert mtl.rescaling("QA_PIXEL") is None
    assert mtl.cloud_cover is None  # USGS's -1: not computed
    assert (mtl.sun_azimuth, mtl.sun_elevation) == (151.2, 41.5)
    assert mtl.datetime is not None
    assert mtl.datetime.isoformat() == "2024-09-18T10:02:43.531245+00:00"


def test_junk_is_skipped_not_guessed() -> None:
    mtl = parse_mtl("not an mtl\nCLOUD_COVER = lots\nEND_GROUP = NOTHING_OPEN\n")
    assert (mtl.cloud_cover, mtl.datetime, mtl.sun_azimuth) == (None, None, None)


def test_real_pre_collection_mtl(shared_data: Path) -> None:
    path = shared_data / "rasters" / "landsat8-LC80200392015216LGN00" / "l8_MTL.txt"
    mtl = parse_mtl(path.read_text())
    assert mtl.datetime is not None
    assert mtl.datetime.isoformat() == "2015-08-04T16:19:21.791742+00:00"
    assert mtl.cloud_cover == 11.08
    assert mtl.sun_azimuth == pytest.approx(115.87210674)
    assert mtl.sun_elevation == pytest.approx(64.74360932)
    # USGS: TOA reflectance = (MULT x DN + ADD) / sin(sun elevation).
    sine = math.sin(math.radians(64.74360932))
    assert [mtl.rescaling(f"B{b}") for b in (2, 5)] == [
        pytest.approx((2e-05 / sine, -0.1 / sine, ""))
    ] * 2

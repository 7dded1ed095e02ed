"""Sentinel-2 SAFE metadata: sensing time, cloud cover, sun angles, reflectance rescaling."""

from __future__ import annotations

from dafab_static.derive.safe import REFLECTANCE_BANDS, parse_safe

L1C_BEFORE_BASELINE_4 = """<n1:Level-1C_User_Product xmlns:n1="urn:x">
  <n1:General_Info><Product_Image_Characteristics>
    <QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>
    <Spectral_Information_List>
      <Spectral_Information bandId="8" physicalBand="B8A"/>
      <Spectral_Information bandId="12" physicalBand="B12"/>
    </Spectral_Information_List>
  </Product_Image_Characteristics></n1:General_Info>
</n1:Level-1C_User_Product>"""


def test_l1c_before_baseline_4_has_no_offset() -> None:
    facts = parse_safe(L1C_BEFORE_BASELINE_4, None)
    assert facts.rescaling("B8A") == (0.0001, 0.0, "")
    assert facts.rescaling("b12") == (0.0001, 0.0, "")
    assert facts.rescaling("B04") is None  # not in the band list
    assert facts.rescaling("SCL") is None
    assert facts.cloud_cover is None and facts.datetime is None


def test_no_band_list_rescales_every_reflectance_band() -> None:
    product = "<p><QUANTIFICATION_VALUE>10000</QUANTIFICATION_VALUE></p>"
    facts = parse_safe(product, None)
    assert [facts.rescaling(b) for b in REFLECTANCE_BANDS] == [(0.0001, 0.0, "")] * 13
    assert facts.rescaling("AOT") is None


def test_granule_only_and_broken_xml() -> None:
    granule = """<t><SENSING_TIME>2020-01-02T03:04:05.678Z</SENSING_TIME>
      <CLOUDY_PIXEL_PERCENTAGE>101</CLOUDY_PIXEL_PERCENTAGE>
      <Mean_Sun_Angle><ZENITH_ANGLE>80</ZENITH_ANGLE><AZIMUTH_ANGLE>400</AZIMUTH_ANGLE>
      </Mean_Sun_Angle></t>"""
    facts = parse_safe("<broken", granule)
    assert facts.datetime is not None
    assert facts.datetime.isoformat() == "2020-01-02T03:04:05.678000+00:00"
    assert facts.cloud_cover is None  # 101 %: not a percentage
    assert (facts.sun_elevation, facts.sun_azimuth) == (10.0, None)  # 400°: not an azimuth
    assert parse_safe(None, None).rescaling("B04") is None

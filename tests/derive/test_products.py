"""Product names, metadata time stamps and satellite tags."""

from __future__ import annotations

import datetime as dt

import pytest

from dafab_static.derive.products import (
    acquisition_datetime,
    creation_datetime,
    find_product,
    format_datetime,
    parse_product_name,
    parse_timestamp,
    tag_platform,
)

UTC = dt.timezone.utc

# name, product id, datetime, platform, instruments, collection, MGRS tile, WRS path/row
NAMES = [
    (
        "S2B_MSIL2A_20240715T175911_N0510_R041_T13SDA_20240716T012345",
        "S2B_MSIL2A_20240715T175911_N0510_R041_T13SDA_20240716T012345",
        dt.datetime(2024, 7, 15, 17, 59, 11, tzinfo=UTC),
        "sentinel-2b", ("msi",), "sentinel-2-l2a", "13SDA", None,
    ),
    (
        "S2A_MSIL1C_20230102T101421_N0509_R022_T32TQM_20230102T121255.SAFE",
        "S2A_MSIL1C_20230102T101421_N0509_R022_T32TQM_20230102T121255",
        dt.datetime(2023, 1, 2, 10, 14, 21, tzinfo=UTC),
        "sentinel-2a", ("msi",), "sentinel-2-l1c", "32TQM", None,
    ),
    (  # the Planetary Computer's ids drop the processing baseline
        "S2B_MSIL2A_20240419T095549_R122_T47XML_20240419T123458",
        "S2B_MSIL2A_20240419T095549_R122_T47XML_20240419T123458",
        dt.datetime(2024, 4, 19, 9, 55, 49, tzinfo=UTC),
        "sentinel-2b", ("msi",), "sentinel-2-l2a", "47XML", None,
    ),
    (
        "LC09_L2SP_042034_20240712_20240713_02_T1",
        "LC09_L2SP_042034_20240712_20240713_02_T1",
        dt.datetime(2024, 7, 12, tzinfo=UTC),
        "landsat-9", ("oli", "tirs"), "landsat-c2-l2", None, (42, 34),
    ),
    (
        "LC08_L1TP_020039_20150804_20200908_02_T1_B4",
        "LC08_L1TP_020039_20150804_20200908_02_T1",
        dt.datetime(2015, 8, 4, tzinfo=UTC),
        "landsat-8", ("oli", "tirs"), "landsat-c2-l1", None, (20, 39),
    ),
    (
        "LE07_L2SP_233062_20210304_20210330_02_T1_SR_B3",
        "LE07_L2SP_233062_20210304_20210330_02_T1",
        dt.datetime(2021, 3, 4, tzinfo=UTC),
        "landsat-7", ("etm+",), "landsat-c2-l2", None, (233, 62),
    ),
    (  # the Planetary Computer's Landsat ids drop the processing date
        "LC09_L2SP_089090_20240417_02_T1",
        "LC09_L2SP_089090_20240417_02_T1",
        dt.datetime(2024, 4, 17, tzinfo=UTC),
        "landsat-9", ("oli", "tirs"), "landsat-c2-l2", None, (89, 90),
    ),
    (
        "landsat8-LC80200392015216LGN00",
        "LC80200392015216LGN00",
        dt.datetime(2015, 8, 4, tzinfo=UTC),  # 2015, day 216
        "landsat-8", ("oli", "tirs"), "landsat-pre-collection", None, (20, 39),
    ),
    (  # Element 84 Earth Search: the folder of a scene's per-band COGs on AWS
        "S2B_32TNS_20240710_0_L2A",
        "S2B_32TNS_20240710_0_L2A",
        dt.datetime(2024, 7, 10, tzinfo=UTC),
        "sentinel-2b", ("msi",), "sentinel-2-l2a", "32TNS", None,
    ),
    (
        "LT50440342011161PAC01",
        "LT50440342011161PAC01",
        dt.datetime(2011, 6, 10, tzinfo=UTC),
        "landsat-5", ("tm",), "landsat-pre-collection", None, (44, 34),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "product_id", "when", "platform", "instruments", "collection", "tile", "wrs"), NAMES
)
def test_product_names(
    name: str,
    product_id: str,
    when: dt.datetime,
    platform: str,
    instruments: tuple[str, ...],
    collection: str,
    tile: str | None,
    wrs: tuple[int, int] | None,
) -> None:
    product = parse_product_name(name)
    assert product is not None
    assert product.id == product_id
    assert product.datetime == when
    assert product.platform == platform
    assert product.instruments == instruments
    assert product.collection == collection
    assert product.mgrs_tile == tile
    assert (product.wrs_path, product.wrs_row) == (wrs or (None, None))
    assert product.constellation == ("sentinel-2" if platform.startswith("sentinel") else "landsat")


@pytest.mark.parametrize(
    "name",
    [
        "RGB.byte",
        "xS2B_MSIL2A_20240715T175911_N0510_R041_T13SDA_20240716T012345",  # glued to a word
        "S2B_MSIL2A_20240715T175911_N0510_R041_T13SDA_2024071",  # cut short
        "LC09_L2SP_042034_20240712_20240713_02_T9",  # no such tier
        "LC80200392015216LGN001",  # trailing digit
        "S2B_32TNS_20240710_0_L3A",  # no such level
        # Impossible dates: such a name is no product id (one ended a build in a traceback).
        "S2A_MSIL2A_20241345T103031_N0510_R108_T32TNS_20240715T150000",
        "S2A_MSIL2A_20240230T103031_N0510_R108_T32TNS_20240715T150000",
        "S2A_MSIL2A_20240715T253031_N0510_R108_T32TNS_20240715T150000",
        "S2B_32TNS_20240231_0_L2A",
        "LC09_L2SP_042034_20241332_20240713_02_T1",
        "LC80200392015000LGN00",  # day of year 000
        "LC80200392015400LGN00",  # day of year 400
        "LC80200392015366LGN00",  # 2015 had 365 days
        "LC80200390000216LGN00",  # year 0000
    ],
)
def test_names_that_are_not_products(name: str) -> None:
    assert parse_product_name(name) is None


def test_a_leap_day_of_year_is_a_product() -> None:
    found = parse_product_name("LC80200392016366LGN00")
    assert found is not None and found.datetime == dt.datetime(2016, 12, 31, tzinfo=UTC)


def test_find_product_prefers_the_nearest_name() -> None:
    found = find_product(
        ["l8_B2", "LC80200392015216LGN00", "LC09_L2SP_042034_20240712_20240713_02_T1"]
    )
    assert found is not None and found.id == "LC80200392015216LGN00"
    assert find_product(["a", "b"]) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-07-15T10:30:31Z", dt.datetime(2024, 7, 15, 10, 30, 31, tzinfo=UTC)),
        ("2024-07-15 10:30:31", dt.datetime(2024, 7, 15, 10, 30, 31, tzinfo=UTC)),
        ("2024:07:15 10:30:31", dt.datetime(2024, 7, 15, 10, 30, 31, tzinfo=UTC)),
        ("20240715T103031", dt.datetime(2024, 7, 15, 10, 30, 31, tzinfo=UTC)),
        ("2024-07-15", dt.datetime(2024, 7, 15, tzinfo=UTC)),
        ("2015-08-04T16:19:21.7900000Z", dt.datetime(2015, 8, 4, 16, 19, 21, 790000, tzinfo=UTC)),
        ("2024-07-15T12:30:31+02:00", dt.datetime(2024, 7, 15, 10, 30, 31, tzinfo=UTC)),
        ('"2024-07-15T10:30:31.5Z"', dt.datetime(2024, 7, 15, 10, 30, 31, 500000, tzinfo=UTC)),
        ("1970-01-01 00:00:00", None),  # GDAL's "could not parse"
        ("1965-03-01T10:00:00Z", dt.datetime(1965, 3, 1, 10, tzinfo=UTC)),  # before it: real
        ("1969-12-31T23:00:00-02:00", dt.datetime(1970, 1, 1, 1, tzinfo=UTC)),
        ("2024-07-15T10:30:31+05:99", None),  # offset minutes 00-59 (RFC 3339)
        ("0001-01-01T00:30:00+01:00", None),  # before year 1 once in UTC
        ("9999-12-31T23:30:00-01:00", None),  # after year 9999 once in UTC
        ("2024-13-45", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_timestamp(text: str, expected: dt.datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_acquisition_tags_in_order_and_case_insensitive() -> None:
    tags = {
        "date_acquired": "2015-08-04",
        "SCENE_CENTER_TIME": '"16:19:21.7900000Z"',
        "TIFFTAG_DATETIME": "2020:01:01 00:00:00",
    }
    assert acquisition_datetime(tags) == dt.datetime(2015, 8, 4, 16, 19, 21, 790000, tzinfo=UTC)
    # GDAL's epoch placeholder is skipped in favour of the next tag.
    tags = {"ACQUISITIONDATETIME": "1970-01-01 00:00:00", "SENSING_TIME": "2024-07-15T10:30:31Z"}
    assert acquisition_datetime(tags) == dt.datetime(2024, 7, 15, 10, 30, 31, tzinfo=UTC)
    assert acquisition_datetime({"TIFFTAG_DATETIME": "2020:01:01 00:00:00"}) is None


def test_creation_datetime_is_the_tiff_tag_only() -> None:
    assert creation_datetime({"TIFFTAG_DATETIME": "2019:03:02 11:00:00"}) == dt.datetime(
        2019, 3, 2, 11, tzinfo=UTC
    )
    assert creation_datetime({"DATE_ACQUIRED": "2019-03-02"}) is None


@pytest.mark.parametrize(
    ("tags", "platform"),
    [
        ({"SATELLITEID": "LANDSAT_8"}, "landsat-8"),
        ({"SPACECRAFT_ID": "LANDSAT_9"}, "landsat-9"),
        ({"spacecraft_name": "Sentinel-2A"}, "sentinel-2a"),
        ({"SATELLITEID": "S2B"}, "sentinel-2b"),
        ({"SATELLITEID": "SPOT 6"}, None),
        ({}, None),
    ],
)
def test_tag_platform(tags: dict[str, str], platform: str | None) -> None:
    assert tag_platform(tags) == platform


def test_format_datetime_is_rfc3339_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    assert format_datetime(dt.datetime(2024, 7, 15, 12, 30, 31, tzinfo=paris)) == (
        "2024-07-15T10:30:31Z"
    )
    assert format_datetime(dt.datetime(2024, 7, 15, 10, 30, 31, 120000, tzinfo=UTC)) == (
        "2024-07-15T10:30:31.12Z"
    )
    assert format_datetime(dt.datetime(2024, 7, 15)) == "2024-07-15T00:00:00Z"
    # four digits of year, as RFC 3339 has it (glibc's strftime wrote "999-06-01")
    assert format_datetime(dt.datetime(999, 6, 1, tzinfo=UTC)) == "0999-06-01T00:00:00Z"

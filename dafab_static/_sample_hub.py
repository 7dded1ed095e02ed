"""Part of the bundled sample: STAC items "as another hub publishes them", built in code.

Modelled on the Planetary Computer's ``sentinel-2-l2a`` and ``landsat-c2-l2`` items (links
to the hub's API, https asset hrefs, eo/proj/sat/view and undeclared ``s2:``/``landsat:``
fields) but on a fictitious hub (``example.org``, RFC 2606), with STAC platform names in
lower case, and without the USGS landsat extension schema, which no offline validator has.
STAC 1.0.0 items use projection v1.1.0 (``proj:epsg``) and eo v1.0.0; 1.1.0 items use
projection v2.0.0 (``proj:code``) and eo v1.1.0, as the two generations of real hubs do.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from affine import Affine
from rasterio.crs import CRS

from dafab_static.derive.footprint import footprint, geometry_bbox
from dafab_static.derive.products import Product, format_datetime, parse_product_name
from dafab_static.derive.sensors import band_for

HUB = "https://stac.earth-hub.example.org/api/v1"
DATA = "https://data.earth-hub.example.org"

_EXTENSIONS = {
    "1.0.0": ("eo/v1.0.0", "projection/v1.1.0", "view/v1.0.0"),
    "1.1.0": ("eo/v1.1.0", "projection/v2.0.0", "view/v1.0.0"),
}
_COG = "image/tiff; application=geotiff; profile=cloud-optimized"
_S2_BANDS = ("B02", "B03", "B04", "B08")
_LANDSAT_BANDS = (("blue", "SR_B2"), ("green", "SR_B3"), ("red", "SR_B4"), ("nir08", "SR_B5"))


def valid_mask(kind: str, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """Return where a synthetic scene holds data.

    ``swath-east``/``swath-west``: a tilted swath edge cuts one side, as on Sentinel-2 tiles
    at the edge of the 290 km swath; ``frame``: a WRS-2 frame rotated 12 degrees (Landsat);
    ``full``: every pixel.

    Example:
        >>> int(valid_mask("frame", (100, 100)).sum())
        6724
    """
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols]
    u, v = (x + 0.5) / cols, (y + 0.5) / rows
    if kind == "swath-east":
        return np.asarray(u < 0.62 + 0.28 * v)
    if kind == "swath-west":
        return np.asarray(u > 0.35 - 0.25 * v)
    if kind == "frame":
        angle = math.radians(12)
        du, dv = u - 0.5, v - 0.5
        along = du * math.cos(angle) + dv * math.sin(angle)
        across = -du * math.sin(angle) + dv * math.cos(angle)
        return np.asarray((np.abs(along) < 0.41) & (np.abs(across) < 0.41))
    return np.ones(shape, dtype=bool)


def items() -> list[dict[str, Any]]:
    """Every hub item, in file order (see :func:`files`)."""
    return [item for _, group in _groups() for item in group]


def files() -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` of each hub file: single items, a FeatureCollection, NDJSON."""
    out = []
    for name, group in _groups():
        if name.endswith(".ndjson"):
            content = b"".join(orjson.dumps(item) + b"\n" for item in group)
        elif len(group) > 1:
            collection = {"type": "FeatureCollection", "features": group}
            content = orjson.dumps(collection, option=orjson.OPT_INDENT_2) + b"\n"
        else:
            content = orjson.dumps(group[0], option=orjson.OPT_INDENT_2) + b"\n"
        out.append((name, content))
    return out


def _groups() -> list[tuple[str, list[dict[str, Any]]]]:
    tns, tms = (499980.0, 5200020.0), (399960.0, 5200020.0)  # MGRS tile corners, zone 32
    wrs_193, wrs_194 = (411585.0, 5292315.0), (295485.0, 5290815.0)  # L2 grid corners
    s2_july = "S2A_MSIL2A_20240705T103031_R108_T32TNS_20240705T160405"
    s2_july_b = "S2B_MSIL2A_20240710T102559_R108_T32TNS_20240710T133112"
    l9_west = "LC09_L2SP_194028_20240709_02_T1"
    page = [
        _landsat("LC09_L2SP_193028_20240702_02_T1", "1.0.0", wrs_193, 7.9, (138.4, 62.0)),
        _landsat("LC08_L2SP_193028_20240710_02_T1", "1.1.0", wrs_193, 41.2, (139.9, 60.9)),
    ]
    lines = [
        _s2("S2A_MSIL2A_20240804T103031_R108_T32TMS_20240804T160405", "1.0.0", tms, "full",
            0.8, (156.3, 55.4)),
        _s2("S2B_MSIL2A_20240809T102559_R108_T32TMS_20240809T133112", "1.1.0", tms, "swath-west",
            64.0, (157.9, 53.8)),
    ]  # fmt: skip
    return [
        (f"{s2_july}.json", [_s2(s2_july, "1.0.0", tns, "swath-east", 12.4, (151.2, 62.1))]),
        (f"{s2_july_b}.json", [_s2(s2_july_b, "1.1.0", tns, "full", 3.1, (149.8, 60.7))]),
        (f"{l9_west}.json", [_landsat(l9_west, "1.1.0", wrs_194, 20.5, (140.1, 61.3))]),
        ("landsat-c2-l2-page.json", page),
        ("sentinel-2-l2a.ndjson", lines),
    ]


def _s2(
    item_id: str,
    version: str,
    origin: tuple[float, float],
    valid: str,
    cloud: float,
    sun: tuple[float, float],
) -> dict[str, Any]:
    product = _product(item_id)
    tile = product.mgrs_tile or ""
    epsg = 32600 + int(tile[:2])
    transform = Affine(10.0, 0.0, origin[0], 0.0, -10.0, origin[1])
    shape = (10980, 10980)
    day = product.datetime.strftime("%Y/%m/%d")
    folder = f"{DATA}/sentinel2-l2/{tile[:2]}/{tile[2]}/{tile[3:]}/{day}/{item_id}.SAFE"
    grid = _grid(version, transform, shape)
    assets: dict[str, Any] = {}
    for name in _S2_BANDS:
        spectral = band_for(("msi",), name)
        assets[name] = {
            "href": f"{folder}/IMG_DATA/R10m/T{tile}_{name}_10m.tif",
            "type": _COG,
            "title": f"Band {name[1:].lstrip('0')} - {spectral.common_name if spectral else ''}",
            "roles": ["data"],
            "gsd": 10.0,
            "eo:bands": [spectral.eo_band()] if spectral else [],
            **grid,
        }
    assets["visual"] = {
        "href": f"{folder}/IMG_DATA/R10m/T{tile}_TCI_10m.tif",
        "type": _COG,
        "title": "True color image",
        "roles": ["visual"],
        **grid,
    }
    assets["product-metadata"] = {
        "href": f"{folder}/MTD_MSIL2A.xml",
        "type": "application/xml",
        "title": "Product metadata",
        "roles": ["metadata"],
    }
    properties = {
        **_common(product, version, epsg, cloud, sun),
        "sat:orbit_state": "descending",
        "sat:relative_orbit": int(item_id.split("_R")[1][:3]),
        "s2:mgrs_tile": tile,
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": "05.10",
    }
    extensions = (*_EXTENSIONS[version], "sat/v1.0.0")
    grid_spec = (transform, shape, epsg, valid)
    return _item(item_id, version, extensions, product, grid_spec, properties, assets)


def _landsat(
    item_id: str,
    version: str,
    origin: tuple[float, float],
    cloud: float,
    sun: tuple[float, float],
) -> dict[str, Any]:
    product = _product(item_id)
    epsg = 32632
    transform = Affine(30.0, 0.0, origin[0], 0.0, -30.0, origin[1])
    shape = (7941, 7821)
    acquired = product.datetime.strftime("%Y%m%d")
    processed = (product.datetime + datetime.timedelta(days=1)).strftime("%Y%m%d")
    full_id = item_id.replace(f"_{acquired}_", f"_{acquired}_{processed}_")
    folder = (
        f"{DATA}/landsat-c2/level-2/standard/oli-tirs/{acquired[:4]}/"
        f"{product.wrs_path:03d}/{product.wrs_row:03d}/{full_id}"
    )
    grid = _grid(version, transform, shape)
    reflectance = {"nodata": 0, "data_type": "uint16", "spatial_resolution": 30,
                   "scale": 2.75e-05, "offset": -0.2}  # fmt: skip
    assets: dict[str, Any] = {}
    for key, name in _LANDSAT_BANDS:
        spectral = band_for(product.instruments, name)
        assets[key] = {
            "href": f"{folder}/{full_id}_{name}.TIF",
            "type": _COG,
            "title": f"{key.capitalize()} Band",
            "roles": ["data", "reflectance"],
            "eo:bands": [spectral.eo_band(f"OLI_{name[3:]}")] if spectral else [],
            "raster:bands": [reflectance],
            **grid,
        }
    assets["qa_pixel"] = {
        "href": f"{folder}/{full_id}_QA_PIXEL.TIF",
        "type": _COG,
        "title": "Pixel Quality Assessment Band",
        "roles": ["cloud", "cloud-shadow", "snow-ice", "water-mask"],
        "raster:bands": [{"unit": "bit index", "nodata": 1, "data_type": "uint16"}],
        **grid,
    }
    assets["mtl.json"] = {
        "href": f"{folder}/{full_id}_MTL.json",
        "type": "application/json",
        "title": "Product Metadata File (json)",
        "roles": ["metadata"],
    }
    doy = product.datetime.timetuple().tm_yday
    sat = item_id[2:4]
    properties = {
        **_common(product, version, epsg, cloud, sun),
        "gsd": 30,
        "description": "Landsat Collection 2 Level-2",
        "view:off_nadir": 0,
        "landsat:wrs_path": f"{product.wrs_path:03d}",
        "landsat:wrs_row": f"{product.wrs_row:03d}",
        "landsat:scene_id": f"LC{int(sat)}{product.wrs_path:03d}{product.wrs_row:03d}"
        f"{product.datetime.year}{doy:03d}LGN00",
        "landsat:correction": "L2SP",
        "landsat:collection_category": "T1",
    }
    extensions = (*_EXTENSIONS[version], "raster/v1.1.0")
    grid_spec = (transform, shape, epsg, "frame")
    return _item(item_id, version, extensions, product, grid_spec, properties, assets)


def _product(item_id: str) -> Product:
    product = parse_product_name(item_id)
    if product is None:  # the ids above are constants: this is a bug, not input
        raise ValueError(f"{item_id}: not a product id")
    return product


def _common(
    product: Product, version: str, epsg: int, cloud: float, sun: tuple[float, float]
) -> dict[str, Any]:
    # Hub time stamps carry milliseconds; names only carry seconds.
    when = format_datetime(product.datetime).replace("Z", ".024Z")
    return {
        "datetime": when,
        "platform": product.platform,
        "constellation": product.constellation,
        "instruments": list(product.instruments),
        "eo:cloud_cover": cloud,
        "view:sun_azimuth": sun[0],
        "view:sun_elevation": sun[1],
        **({"proj:epsg": epsg} if version == "1.0.0" else {"proj:code": f"EPSG:{epsg}"}),
    }


def _grid(version: str, transform: Affine, shape: tuple[int, int]) -> dict[str, Any]:
    rows, cols = shape
    west, north = transform.c, transform.f
    east, south = west + cols * transform.a, north + rows * transform.e
    return {
        "proj:bbox": [west, south, east, north],
        "proj:shape": [rows, cols],
        "proj:transform": [float(v) for v in tuple(transform)[:6]],
    }


def _item(
    item_id: str,
    version: str,
    extensions: tuple[str, ...],
    product: Product,
    grid: tuple[Affine, tuple[int, int], int, str],
    properties: dict[str, Any],
    assets: dict[str, Any],
) -> dict[str, Any]:
    transform, (rows, cols), epsg, valid = grid
    # Trace the footprint on a 64 x 64 grid over the product's full extent.
    mask = valid_mask(valid, (64, 64)).astype(np.uint8)
    coarse = transform @ Affine.scale(cols / 64, rows / 64)
    geometry = footprint(mask, coarse, CRS.from_epsg(epsg))
    collection = product.collection
    api = f"{HUB}/collections/{collection}"
    return {
        "type": "Feature",
        "stac_version": version,
        "stac_extensions": sorted(
            f"https://stac-extensions.github.io/{e}/schema.json" for e in extensions
        ),
        "id": item_id,
        "geometry": geometry,
        "bbox": geometry_bbox(geometry) if geometry else None,
        "properties": properties,
        "links": [
            {"rel": "collection", "type": "application/json", "href": api},
            {"rel": "parent", "type": "application/json", "href": api},
            {"rel": "root", "type": "application/json", "href": f"{HUB}/"},
            {"rel": "self", "type": "application/geo+json", "href": f"{api}/items/{item_id}"},
            {
                "rel": "preview",
                "type": "text/html",
                "title": "Map of item",
                "href": f"{HUB.replace('/api/v1', '')}/map?collection={collection}&item={item_id}",
            },
        ],
        "assets": assets,
        "collection": collection,
    }

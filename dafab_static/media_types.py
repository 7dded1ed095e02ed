"""The media types dafab-static writes and reads, and the ``Content-Type`` of a published file.

One table, so that an asset's ``type``, a link's ``type`` and the header a bucket serves the
file with never disagree.
"""

from __future__ import annotations

import mimetypes
import posixpath

JSON = "application/json"
GEOJSON = "application/geo+json"
NDJSON = "application/x-ndjson"
#: Registered with IANA in 2024; what the stac-geoparquet spec asks for.
PARQUET = "application/vnd.apache.parquet"
GEOTIFF = "image/tiff; application=geotiff"
COG = f"{GEOTIFF}; profile=cloud-optimized"
PNG = "image/png"
JP2 = "image/jp2"
OCTET_STREAM = "application/octet-stream"

_BY_SUFFIX = {
    ".json": JSON, ".geojson": GEOJSON, ".ndjson": NDJSON, ".parquet": PARQUET, ".jp2": JP2,
}  # fmt: skip
# A private table: mimetypes.guess_type() reads /etc/mime.types and the like, which differ
# between machines; the built-in table alone keeps the published headers reproducible.
_BUILT_IN = mimetypes.MimeTypes(filenames=())


def of_path(path: str) -> str:
    """The ``Content-Type`` to publish the file ``path`` with, from its suffix.

    A bucket serves what it was told at PUT time, and S3 defaults to
    ``binary/octet-stream``, which makes a browser download a page instead of showing it.
    """
    suffix = posixpath.splitext(path)[1].lower()
    return _BY_SUFFIX.get(suffix) or _BUILT_IN.guess_type(path)[0] or OCTET_STREAM

"""Where each object of the tree lives: pure functions of their inputs.

The layout::

    catalog.json                                   root Catalog
    sensors/catalog.json                           Catalog of platforms
    sensors/<platform>/catalog.json                Catalog of one platform's collections
    sensors/<platform>/<collection>.json           Collection
    sensors/<platform>/<collection>/<YYYY>/catalog.json
    sensors/<platform>/<collection>/<YYYY>/<MM>/catalog.json
    sensors/<platform>/<collection>/<YYYY>/<MM>/<id>.json          Item
    derived/catalog.json, derived/<collection>.json, ...           derived products
    index/<collection>/year=<YYYY>/month=<MM>/items.parquet        stac-geoparquet
    index/<collection>/_partitions.json                            partitions manifest

A month holding more than ``max_children`` items is split by day (``<MM>/<DD>/``), a day by
hour (``<DD>/<HH>/``), an hour into buckets of ids (``<HH>/b<NN>/``), so that no catalog lists
more than ``max_children`` links. Ids are never changed; characters that are awkward in file
names or URLs are percent-encoded in the path (see :func:`segment`).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass
from urllib.parse import quote

from dafab_static.errors import InputError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_SAFE = re.compile(r"[A-Za-z0-9/_.~=,@-]*")
#: What hrefs leave unescaped. Not "+", which file names keep: S3 reads a "+" in a URL path
#: as a space, a legacy of form encoding, so an object with "+" in its key is reachable over
#: HTTP only as %2B (what the AWS SDKs send); every other server decodes %2B to "+" too.
_HREF_SAFE = "/-_.~=,@"
#: The root catalog, and the marker beside it on every catalog this tool publishes (what
#: the build was; :mod:`dafab_static.publish` writes both).
ROOT = "catalog.json"
RELEASE_MARKER = ".dafab-release.json"


def is_published(folder: str | os.PathLike[str]) -> bool:
    """Whether a local folder is the root of a catalog dafab-static published: its
    ``catalog.json`` and the release marker beside it."""
    return os.path.isfile(os.path.join(folder, RELEASE_MARKER)) and os.path.isfile(
        os.path.join(folder, ROOT)
    )


#: The keys of the assets by which a published Collection links its index and manifest.
MIRROR_ASSET = "geoparquet"
MANIFEST_ASSET = "partitions"
SENSORS = "sensors"
DERIVED = "derived"
INDEX = "index"
# A file name may hold 255 bytes; leave room for ".json" and filesystems that count UTF-16.
_MAX_SEGMENT = 180
#: The file name of every catalog (``catalog.json``), which no item or collection may take.
_CATALOG = "catalog"
# Known families, so that e.g. sentinel-2a/2b/2c items share one platform folder.
_PLATFORM_FAMILIES = (
    ("sentinel-1", "sentinel-1"),
    ("sentinel-2", "sentinel-2"),
    ("sentinel-3", "sentinel-3"),
    ("sentinel-5p", "sentinel-5p"),
    ("landsat", "landsat"),
    ("naip", "naip"),
)


def check_id(
    value: object,
    *,
    what: str,
    source: str,
    fix: str = "ids are never rewritten, so fix the id at its source",
) -> str:
    """Return ``value`` if it is usable as a STAC id and as a path segment.

    ``fix`` ends the messages that say what to do (an option's value is chosen, not fixed
    at a source).

    Raises:
        InputError: for a missing or non-string id, or one holding ``/``, ``\\`` or ``..``,
            which would escape the destination if written as a path, or ``.`` itself.

    Example:
        >>> check_id("S2A_T32TNS", what="item", source="a.json")
        'S2A_T32TNS'
    """
    if not isinstance(value, str) or not value:
        raise InputError(f"{source}: {what} id must be a non-empty string, got {value!r}")
    if "/" in value or "\\" in value or ".." in value:
        raise InputError(
            f"{source}: {what} id {value!r} holds '/', '\\' or '..', which would escape the "
            f"destination; {fix}"
        )
    if _CONTROL.search(value):
        raise InputError(f"{source}: {what} id {value!r} holds control characters")
    if value == ".":
        # As a folder it is the folder above: a collection "." would lay its items and
        # index over its platform's and every collection's.
        raise InputError(f"{source}: {what} id '.' names no folder of its own; {fix}")
    return value


def segment(value: str) -> str:
    """Encode an id as one safe path segment: reversible percent-encoding, length-capped.

    Unreserved URL characters but ``~`` stay as they are; everything else (spaces, ``#``,
    ``?``, ``%``, ``~``, non-ASCII) becomes ``%XX`` of its UTF-8 bytes. Ids too long for a
    file name keep a readable prefix plus ``~`` and a hash of the whole id, so distinct ids
    stay distinct; so does ``catalog`` in any case, the name of the catalogs the tree already
    has in each folder.

    Example:
        >>> segment("my item #1")
        'my%20item%20%231'
    """
    # "~" is escaped too (quote() never does): it marks the hash suffix below, and an id
    # spelled like another's coded form ("catalog~652f...") took that one's path.
    encoded = quote(value, safe="-_.+=,@").replace("~", "%7E")
    if encoded.lower() == _CATALOG:
        # An item or a collection called "catalog" would overwrite the catalog.json beside
        # it (and "Catalog" would on a case-insensitive disk): it takes the hash suffix too.
        return f"{encoded}~{hashlib.sha256(value.encode()).hexdigest()[:16]}"
    if len(encoded) > _MAX_SEGMENT:
        digest = hashlib.sha256(value.encode()).hexdigest()[:16]
        encoded = f"{encoded[: _MAX_SEGMENT - 18].rstrip('%')}~{digest}"
        # never cut through a %XX escape
        head, _, tail = encoded.rpartition("~")
        while len(head) >= 2 and "%" in head[-2:]:
            head = head[:-1]
        encoded = f"{head}~{tail}"
    return encoded


def folder_segment(value: str) -> str:
    """:func:`segment` for a name that is a folder beside JSON documents (a collection's,
    a platform's): one ending in ``.json`` has that dot escaped, or the folder of
    collection ``a.json`` would be the file ``a.json`` of collection ``a`` (and platform
    ``catalog.json`` the catalog of ``sensors/``), and the build failed writing it.

    Example:
        >>> folder_segment("a.json"), folder_segment("a")
        ('a%2Ejson', 'a')
    """
    encoded = segment(value)
    if encoded.lower().endswith(".json"):
        return f"{encoded[:-5]}%2E{encoded[-4:]}"
    return encoded


def href(from_path: str, to_path: str) -> str:
    """Relative URL from the object at ``from_path`` to the one at ``to_path``.

    Paths are storage keys (already-encoded segments); the result is URL-escaped once more
    so that a literal ``%`` in a key survives the trip through HTTP.

    Example:
        >>> href("sensors/catalog.json", "catalog.json")
        '../catalog.json'
    """
    # Keys are normalised relative paths, so a lexical walk does it; posixpath.relpath
    # would consult the working directory (abspath) on every call, 30 µs each.
    src = from_path.split("/")[:-1]
    dst = to_path.split("/")
    common = 0
    for a, b in zip(src, dst, strict=False):
        if a != b:
            break
        common += 1
    rel = "/".join([".."] * (len(src) - common) + dst[common:])
    return rel if _URL_SAFE.fullmatch(rel) else quote(rel, safe=_HREF_SAFE)


def absolute(base_url: str, path: str) -> str:
    """Absolute URL of the object stored at ``path`` below ``base_url``."""
    return f"{base_url}/{quote(path, safe=_HREF_SAFE)}"


def platform_slug(collection_id: str, properties: dict[str, object]) -> str:
    """The platform folder for a collection, from its first item's properties.

    Example:
        >>> platform_slug("sentinel-2-l2a", {"platform": "sentinel-2b"})
        'sentinel-2'
    """
    for value in (properties.get("constellation"), properties.get("platform"), collection_id):
        if isinstance(value, str) and value:
            lowered = value.lower()
            for prefix, family in _PLATFORM_FAMILIES:
                if lowered.startswith(prefix):
                    return family
    for value in (properties.get("constellation"), properties.get("platform")):
        if isinstance(value, str) and value:
            return folder_segment(value.lower().replace(" ", "-"))
    return "unknown-platform"


@dataclass(frozen=True)
class CollectionPlace:
    """Where one collection's Collection document and partitions live."""

    collection_id: str
    branch: str  # "sensors/<platform>" or "derived"

    @property
    def document(self) -> str:
        return f"{self.folder}.json"

    @property
    def folder(self) -> str:
        return f"{self.branch}/{folder_segment(self.collection_id)}"

    @property
    def index_folder(self) -> str:
        return f"{INDEX}/{folder_segment(self.collection_id)}"


def place_collection(collection_id: str, *, platform: str, derived: bool) -> CollectionPlace:
    """Place a collection under ``sensors/<platform>/`` or, for derived products, ``derived/``."""
    branch = DERIVED if derived else f"{SENSORS}/{platform}"
    return CollectionPlace(collection_id, branch)


@dataclass(frozen=True)
class Split:
    """How deep one month is split, decided from item counts before any item is written.

    ``hours_split`` names the days split by hour; ``bucketed`` the hours (``"DD/HH"``) whose
    items are shared out into buckets of at most ``max_children`` (see :func:`buckets`).
    """

    by_day: bool = False
    hours_split: frozenset[str] = frozenset()
    bucketed: frozenset[str] = frozenset()
    max_children: int = 0


def plan_split(
    month_count: int,
    day_counts: dict[str, int],
    hour_counts: dict[str, int],
    *,
    max_children: int,
) -> Split:
    """Decide how to split one month so no catalog lists more than ``max_children`` links.

    ``day_counts`` maps ``"DD"`` and ``hour_counts`` maps ``"DD/HH"`` to item counts.
    """
    if month_count <= max_children:
        return Split()
    days = {d for d, n in day_counts.items() if n > max_children}
    hours = {dh for dh, n in hour_counts.items() if n > max_children}
    return Split(True, frozenset(days), frozenset(hours), max_children)


def partition_path(year: int, month: int, day: int, hour: int, split: Split) -> str:
    """Folder of an item's partition catalog, relative to its collection folder; for an
    hour in ``split.bucketed``, the hour's folder, which :func:`buckets` divides further.

    Example:
        >>> partition_path(2024, 7, 15, 10, Split())
        '2024/07'
    """
    parts = [f"{year:04d}", f"{month:02d}"]
    if split.by_day:
        parts.append(f"{day:02d}")
        if f"{day:02d}" in split.hours_split:
            parts.append(f"{hour:02d}")
    return "/".join(parts)


def buckets(item_ids: list[str], max_children: int) -> dict[str, str]:
    """Share the items of one crowded hour into bucket folders (``b00``, ``b01``...), in
    the order of their ids, at most ``max_children`` items per bucket and ``max_children``
    buckets per folder (``b01/b07`` when one level would hold more): the limit holds
    exactly, which hashing ids into buckets would only make likely.

    Example:
        >>> buckets(["c", "a", "b"], 2)
        {'a': 'b0', 'b': 'b0', 'c': 'b1'}
    """
    count = math.ceil(len(item_ids) / max_children)
    levels, width = 1, len(str(max_children - 1))
    while max_children**levels < count:
        levels += 1
    out = {}
    for rank, item_id in enumerate(sorted(item_ids)):
        index, digits = rank // max_children, []
        for _ in range(levels):
            index, digit = divmod(index, max_children)
            digits.append(f"b{digit:0{width}d}")
        out[item_id] = "/".join(reversed(digits))
    return out


def item_path(place: CollectionPlace, partition: str, item_id: str) -> str:
    """Storage key of an item's JSON document.

    Example:
        >>> item_path(place_collection("c", platform="p", derived=False), "2024/07", "a b")
        'sensors/p/c/2024/07/a%20b.json'
    """
    return f"{place.folder}/{partition}/{segment(item_id)}.json"


def manifest_path(place: CollectionPlace) -> str:
    """Storage key of a collection's partitions manifest.

    Inside the dataset folder but ``_``-prefixed, as Parquet's own ``_metadata`` is, so that
    pyarrow, DuckDB and Spark skip it when they read the folder as a dataset.
    """
    return f"{place.index_folder}/_partitions.json"


def index_path(place: CollectionPlace, year: int, month: int) -> str:
    """Storage key of one stac-geoparquet partition file (Hive-style, for DuckDB/pyarrow)."""
    return f"{place.index_folder}/year={year:04d}/month={month:02d}/items.parquet"


#: Folder, under the catalog root, of the files pipelines derive from each item.
DERIVED_ASSETS = "assets"
#: Folder of a catalog holding the bundled sample's files (its rasters, its hub items).
SAMPLE_FILES = "sample"
#: What ``pipeline run`` writes in its folder: the items, and a marker saying what made them
#: (a build then reads the folder as its items, and publishes its ``assets/`` with them).
PIPELINE_ITEMS = "items.ndjson"
PIPELINE_MARKER = ".dafab-pipeline.json"
#: Folder of the Collection documents that a ``pipeline run`` folder's items link to.
PIPELINE_COLLECTIONS = "collections"


def pipeline_collection_path(collection_id: str) -> str:
    """Key, in a ``pipeline run`` folder, of the Collection its items of ``collection_id``
    link to.

    Example:
        >>> pipeline_collection_path("sentinel-2-l2a")
        'collections/sentinel-2-l2a.json'
    """
    return f"{PIPELINE_COLLECTIONS}/{segment(collection_id)}.json"


def derived_asset_path(collection_id: str, item_id: str, filename: str) -> str:
    """Key of a file a pipeline made for an item: ``assets/<collection>/<item>/<file>``.

    Not beside the item's JSON, whose folder depends on the month split planned only after
    every item is read; the item's asset links to it relatively all the same.

    Example:
        >>> derived_asset_path("sentinel-2-l2a", "S2A_1", "thumbnail.png")
        'assets/sentinel-2-l2a/S2A_1/thumbnail.png'
    """
    return f"{DERIVED_ASSETS}/{segment(collection_id)}/{segment(item_id)}/{filename}"

"""Find the stac-geoparquet files behind a search SOURCE, with what prunes them.

A SOURCE is a catalog root (its Collections' ``collection-mirror`` assets lead to the
indexes, and the partitions manifest gives every file's rows, bbox, time range and size,
so no bucket listing and no footer read is needed to prune), or stac-geoparquet /
GeoParquet files given directly: a file, a folder, a glob, local or ``s3://``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import glob as globbing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dafab_static import crawl, storage
from dafab_static.errors import DafabError, InputError, QueryError, StorageError

_MIRROR = "collection-mirror"


@dataclass(frozen=True)
class IndexFile:
    """One Parquet file to scan, and what is known about it before opening it."""

    url: str
    collection: str | None = None
    rows: int | None = None
    size: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    checksum: str | None = None  # the manifest's multihash: names the content exactly
    # The summaries that the build computed from these very rows (its partitions manifest
    # holds them): exact value lists and ranges, so they can prune. Never a Collection's own
    # summaries: a user's are informative only.
    summaries: dict[str, Any] | None = None


@dataclass(frozen=True)
class Source:
    """The files of a search source; ``catalog`` is the root document when there is one."""

    location: str
    files: tuple[IndexFile, ...]
    catalog: dict[str, Any] | None = None


def resolve(location: str) -> Source:
    """Resolve a SOURCE to its index files.

    Raises InputError when the catalog has no stac-geoparquet index or the path matches no
    Parquet file, and StorageError when it cannot be read; both name the source.
    """
    location = location.rstrip("/") if location not in ("/", "") else location
    if _is_parquet_source(location):
        return Source(location, tuple(parquet_files(location)))
    document_url = _catalog_document(location)
    catalog = _read_json(document_url, what="catalog")
    if catalog.get("type") not in ("Catalog", "Collection"):
        raise InputError(f"{document_url}: not a STAC Catalog or Collection (and not Parquet)")
    found = crawl.collections(document_url, catalog)
    files = [f for collection_url, c in found for f in mirror_files(collection_url, c)]
    if not files:
        raise InputError(
            f"{location}: no stac-geoparquet index found (no Collection has an asset with "
            f"role {_MIRROR!r}); build it with dafab-static, or search the Parquet files directly"
        )
    return Source(location, tuple(files), catalog)


_ROOTS = ("catalog.json", "collection.json")


def _is_parquet_source(location: str) -> bool:
    if location.endswith((".parquet", ".geoparquet", ".pq")) or any(c in location for c in "*?["):
        return True
    if "://" not in location and os.path.isdir(location):
        if not os.access(location, os.R_OK | os.X_OK):
            # Path.exists raised PermissionError inside it: a traceback.
            raise QueryError(f"{location}: cannot read folder: permission denied")
        return not any(os.path.exists(os.path.join(location, name)) for name in _ROOTS)
    return False


def _catalog_document(location: str) -> str:
    if location.endswith(".json"):
        return location
    if "://" not in location and os.path.exists(os.path.join(location, "collection.json")):
        return str(Path(location, "collection.json"))
    return storage.join_href(location + "/", "catalog.json")


def _read_json(url: str, *, what: str) -> dict[str, Any]:
    try:
        return crawl.load(url)
    except StorageError as error:
        raise StorageError(f"cannot read the {what}: {error}") from None  # it names the URL


def mirror_files(url: str, collection: dict[str, Any]) -> list[IndexFile]:
    """The index files of the Collection at ``url``: its ``collection-mirror`` asset, a
    Parquet file or a Hive-partitioned folder listed by its partitions manifest."""
    collection_id = collection.get("id")
    mirrors = crawl.assets_with_role(collection, _MIRROR)
    files: list[IndexFile] = []
    for asset in mirrors:
        href = storage.join_href(url, asset["href"])
        if asset["href"].endswith("/"):
            # A Hive-partitioned folder: its manifest lists the files (a bucket or a web
            # server need not be listable).
            manifest_url = href.rstrip("/") + "/_partitions.json"
            files.extend(_manifest_files(manifest_url, collection_id))
        else:
            files.append(IndexFile(href, collection=collection_id))
    return files


def _manifest_files(url: str, collection_id: str | None) -> list[IndexFile]:
    try:
        manifest = crawl.load_manifest(url)
    except StorageError as error:
        raise StorageError(f"cannot read the partitions manifest: {error}") from None
    summaries = manifest.get("summaries")  # computed from these rows by the build: exact
    if not isinstance(summaries, dict) or not summaries:
        summaries = None
    files = []
    for part in manifest["partitions"]:
        files.append(
            IndexFile(
                url=storage.join_href(url, part["path"]),
                collection=manifest.get("collection", collection_id),
                rows=part.get("rows"),
                size=part.get("bytes"),
                bbox=tuple(part["bbox"]) if part.get("bbox") else None,
                start=_time(part.get("start_datetime")),
                end=_time(part.get("end_datetime")),
                checksum=part.get("checksum"),
                summaries=summaries,
            )
        )
    return files


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def parquet_files(location: str) -> list[IndexFile]:
    """The Parquet files a file, folder or glob names, local or ``s3://`` (an ``http(s)``
    URL names one file: a web server cannot be listed). A folder or prefix is listed
    recursively, skipping names that start with ``_`` or ``.`` as pyarrow's dataset
    discovery does (``_SUCCESS``, ``.tmp`` files of a writer still at work).

    Raises:
        InputError: nothing matches, or a glob names a web server.
        StorageError: an ``s3://`` prefix cannot be listed.
    """
    parts = urlsplit(location)
    if parts.scheme == "s3":
        if not any(c in location for c in "*?[") and location.endswith(".parquet"):
            return [IndexFile(location)]
        return _listed_files(location)
    if parts.scheme in ("http", "https"):
        if any(c in location for c in "*?["):
            raise InputError(
                f"{location}: a web server cannot be listed; name the file or a catalog"
            )
        return [IndexFile(location)]
    if any(c in location for c in "*?["):
        paths = sorted(globbing.glob(location, recursive=True))
    elif Path(location).is_dir():
        top = Path(location)
        paths = sorted(
            str(p) for p in top.rglob("*.parquet") if not _hidden(p.relative_to(top).as_posix())
        )
    else:
        if not Path(location).exists():
            raise InputError(f"{location}: no such file")
        paths = [location]
    files = [IndexFile(p) for p in paths if Path(p).is_file()]
    if not files:
        raise InputError(f"{location}: matches no Parquet file")
    return files


def _hidden(relative: str) -> bool:
    """Whether a path below a listed folder has a part named ``_…`` or ``.…``."""
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def _listed_files(location: str) -> list[IndexFile]:
    """Parquet objects under an ``s3://`` prefix or glob (a glob matches keys under its
    fixed prefix)."""
    wildcard = min((location.find(c) for c in "*?[" if c in location), default=-1)
    prefix = location if wildcard < 0 else location[: location.rfind("/", 0, wildcard) + 1]
    bucket_url = prefix.rstrip("/")
    try:
        store = storage.open_store(bucket_url)
        keys = sorted(store.list(""))
    except DafabError:
        raise
    except Exception as error:  # obstore raises its own types; name the source
        raise StorageError(f"{location}: cannot list ({error})") from None
    urls = [f"{bucket_url}/{key}" for key in keys]
    if wildcard >= 0:
        urls = [u for u in urls if fnmatch.fnmatch(u, location)]
    else:
        urls = [u for u in urls if u.endswith(".parquet") and not _hidden(u[len(prefix) :])]
    if not urls:
        raise InputError(f"{location}: matches no Parquet object")
    return [IndexFile(u) for u in urls]

"""Readers at the edge: rasters and other hubs' STAC items become plain STAC Item dicts.

:func:`iter_records` is the one entry point: it expands each source (file, folder, glob, URL),
sends rasters to :mod:`dafab_static.ingest.rasters` and everything else to
:mod:`dafab_static.ingest.stac`, and yields :class:`Record` objects in input order.
"""

from __future__ import annotations

import datetime as _dt
import glob
import importlib
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, overload

from dafab_static import layout
from dafab_static.derive.sensors import scene_part
from dafab_static.errors import InputError, OptionError
from dafab_static.ingest import stac
from dafab_static.ingest._fetch import SCHEME, is_url, location
from dafab_static.ingest.conform import OnNotice
from dafab_static.ingest.stac import OnError, Prepare, Prepared, Record

__all__ = ["Prepare", "Prepared", "Record", "iter_records"]

_Kind = Literal["raster", "stac"]
_RESOLUTION_FOLDER = re.compile(r"R\d{2}m")
# Folders of a Sentinel-2 SAFE that hold no scene: quality masks and previews (QI_DATA, JPEG
# 2000 files that are not bands), auxiliary data, datastrip metadata, the HTML report.
_SAFE_AUXILIARY = frozenset({"QI_DATA", "AUX_DATA", "DATASTRIP", "HTML", "rep_info"})
# Product metadata in JSON that is not STAC: USGS Landsat Collection 2 MTL files, and the
# tile and product files of the Sentinel-2 archives on AWS (Earth Search, sentinel-s2-l2a).
# Also the documents a static catalog keeps beside its STAC objects: OGC API queryables
# (a JSON Schema) and dafab-static's partitions manifests, met when a walk starts inside a
# published catalog (``build cat/sensors``).
_PRODUCT_JSON = re.compile(
    r"(_MTL|^tileinfo_metadata|^tileInfo|^productInfo|^queryables|^_partitions)\.json$"
)


@overload
def iter_records(
    sources: Iterable[str],
    *,
    datetime: _dt.datetime | None = None,
    on_error: OnError,
    on_notice: OnNotice,
    workers: int = 0,
    prepare: None = None,
    exclude: Iterable[str] = (),
) -> Iterator[Record]: ...


@overload
def iter_records(
    sources: Iterable[str],
    *,
    datetime: _dt.datetime | None = None,
    on_error: OnError,
    on_notice: OnNotice,
    workers: int = 0,
    prepare: Prepare,
    exclude: Iterable[str] = (),
) -> Iterator[Record | Prepared]: ...


def iter_records(
    sources: Iterable[str],
    *,
    datetime: _dt.datetime | None = None,
    on_error: OnError,
    on_notice: OnNotice,
    workers: int = 0,
    prepare: Prepare | None = None,
    exclude: Iterable[str] = (),
) -> Iterator[Record | Prepared]:
    """Stream the items and collections of every source, in a deterministic order.

    Each source is a file, a folder (walked recursively in sorted order, hidden entries
    skipped), a glob, or an ``http(s)://`` URL. Rasters (suffixes in
    ``rasters.RASTER_SUFFIXES``) are read by ``rasters.read_raster`` in a thread pool, yet
    yielded in input order; consecutive rasters of one folder whose names differ only in a
    band or layer label (``..._SR_B4.TIF``, ``..._QA_PIXEL.TIF``) are one scene, read by
    ``rasters.read_scene_files`` as one item (its source: ``folder/prefix*``). JSON, NDJSON
    and stac-geoparquet go to :func:`stac.read`, which decides by content whether a JSON
    document is an item, a list of items or a catalog to crawl. Each document is read once
    per call, however many sources or links reach it. Duplicate ids and unsafe ids are left
    to the caller.

    Args:
        sources: Paths, globs or URLs, as the user gave them.
        datetime: Acquisition time for rasters whose tags and names carry none.
        on_error: Called with each :class:`InputError` (a missing path, an unsupported file
            named explicitly, an unreadable raster, a bad STAC record); reading goes on
            unless it raises.
        on_notice: Called with one line for each warning (a migrated item, a cycle).
        workers: Threads reading rasters, and processes reading a large NDJSON or
            stac-geoparquet file when ``prepare`` is given; 0 means one per CPU.
        prepare: The caller's last steps for each item and batch (:class:`stac.Prepare`).
            With it, large local NDJSON and stac-geoparquet files are read by several
            processes that apply it, and their items come as :class:`Prepared`, in order.
        exclude: Folders a walk does not enter (the build's destination, when it lies
            inside a source folder).

    Raises:
        OptionError: ``workers`` is negative.
        StorageError: a URL cannot be reached.

    Example:
        >>> for record in iter_records(["scenes/", "hub.ndjson"], on_error=print, on_notice=print):
        ...     print(record.kind, record.data["id"], record.source)  # doctest: +SKIP
    """
    if workers < 0:
        raise OptionError(f"workers={workers}: must be 0 (one per CPU) or more")
    size = workers or os.cpu_count() or 1
    seen: set[str] = set()
    pool: ThreadPoolExecutor | None = None
    pending: deque[tuple[str, Future[list[dict[str, Any]]]]] = deque()
    try:
        skip = frozenset(os.path.realpath(folder) for folder in exclude)
        for kind, group, source in _scenes(_expand(sources, on_error, skip)):
            if kind == "stac":
                while pending:
                    yield from _finish(*pending.popleft(), on_error)
                (path,) = group
                yield from stac.read(path, on_error=on_error, on_notice=on_notice, seen=seen,
                                     prepare=prepare, workers=workers)  # fmt: skip
                continue
            group = [path for path in group if path not in seen]
            if not group:
                continue
            seen.update(group)
            if pool is None:
                pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="dafab-raster")
            pending.append((source, pool.submit(_read_rasters, group, datetime)))
            if len(pending) > 2 * size:  # keep the pool busy, memory bounded
                yield from _finish(*pending.popleft(), on_error)
        while pending:
            yield from _finish(*pending.popleft(), on_error)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _read_rasters(group: list[str], datetime: _dt.datetime | None) -> list[dict[str, Any]]:
    """The items of one raster file, or of one scene's per-band files."""
    rasters = _rasters()
    if len(group) == 1:
        return [rasters.read_raster(group[0], datetime=datetime)]
    return list(rasters.read_scene_files(group, datetime=datetime))


def _finish(
    source: str, future: Future[list[dict[str, Any]]], on_error: OnError
) -> Iterator[Record]:
    try:
        items = future.result()
    except InputError as error:
        on_error(error)
        return
    for item in items:
        yield Record("item", item, source if len(items) == 1 else item["assets"]["data"]["href"])


def _scenes(found: Iterable[tuple[_Kind, str]]) -> Iterator[tuple[_Kind, list[str], str]]:
    """Gather the per-band files of one scene: consecutive local rasters of one folder whose
    names differ only in their band or layer label (``derive.sensors.scene_part``). Each
    comes with its source for messages: the file, or ``folder/prefix*`` for a scene."""
    group: list[str] = []
    key: tuple[str, str] | None = None
    for kind, path in found:
        part = None
        if kind == "raster" and not is_url(path):
            split = scene_part(os.path.splitext(os.path.basename(path))[0])
            part = (_scene_folder(path), split[0]) if split else None
        if group and (part is None or part != key):
            yield "raster", group, _source(group, key)
            group, key = [], None
        if part is None:
            yield kind, [path], path
        else:
            group.append(path)
            key = part
    if group:
        yield "raster", group, _source(group, key)


def _scene_folder(path: str) -> str:
    """The folder that holds a scene's band files: a Sentinel-2 L2A granule keeps them in
    ``IMG_DATA/R10m``, ``R20m`` and ``R60m``, one scene across the three."""
    folder = os.path.dirname(path)
    return (
        os.path.dirname(folder)
        if _RESOLUTION_FOLDER.fullmatch(os.path.basename(folder))
        else folder
    )


def _source(group: list[str], key: tuple[str, str] | None) -> str:
    """Where a scene was read, for messages: the file, or the pattern of its band files."""
    if len(group) == 1 or key is None:
        return group[0]
    folder, prefix = key
    return os.path.join(folder, f"{prefix}*")


def _rasters() -> ModuleType:
    # Imported on first use: rasterio is heavy, and STAC-only runs never need it.
    return importlib.import_module("dafab_static.ingest.rasters")


def _classify(path: str) -> _Kind | None:
    name = path.lower()
    if name.endswith(stac.STAC_SUFFIXES):
        return "stac"
    if name.endswith(tuple(suffix.lower() for suffix in _rasters().RASTER_SUFFIXES)):
        return "raster"
    return None


def _expand(
    sources: Iterable[str], on_error: OnError, skip: frozenset[str] = frozenset()
) -> Iterator[tuple[_Kind, str]]:
    """Each source as ``(kind, absolute location)``, folders and globs expanded in order."""
    for source in sources:
        if is_url(source):
            kind = _classify(source.split("?", 1)[0].split("#", 1)[0])
            yield (kind or "stac"), source  # a URL without a suffix is an API answer: JSON
            continue
        path = location(source)
        if SCHEME.match(path):
            on_error(InputError(f"{source}: only local files and http(s) URLs can be read"))
        elif os.path.isdir(path):
            yield from _walk(path, on_error, skip)
        elif os.path.exists(path):
            if (kind := _classify(path)) is not None:
                yield kind, path
            else:
                on_error(InputError(f"{source}: unsupported file type; expected {_expected()}"))
        elif any(char in source for char in "*?["):
            matches = sorted(glob.glob(path, recursive=True))
            if not matches:
                on_error(InputError(f"{source}: no files match"))
            for match in matches:
                if os.path.isdir(match):
                    yield from _walk(match, on_error, skip)
                elif (kind := _classify(match)) is not None:
                    yield kind, match
        else:
            on_error(InputError(f"{source}: no such file or folder"))


def _walk(
    folder: str, on_error: OnError, skip: frozenset[str] = frozenset()
) -> Iterator[tuple[_Kind, str]]:
    """Files under ``folder`` that can be read, sorted; others (``.aux.xml``, ``.md``) skipped,
    as are the JSON metadata files that archives ship beside their band files and that are
    not STAC (``<product>_MTL.json``, Earth Search's ``tileinfo_metadata.json``): found by a
    walk, they would only be reported as bad input. Named explicitly, they still are.

    A catalog that dafab-static published (its release marker beside ``catalog.json``) is
    read as the static catalog it is, from its root: its queryables, partitions manifests
    and stac-geoparquet indexes are not items, and the index rows repeat the tree's. A
    ``pipeline run`` folder is read as its ``items.ndjson``. The folders in ``skip`` (real
    paths) are not entered."""

    def unlistable(error: OSError) -> None:
        on_error(InputError(f"{error.filename}: cannot list folder: {error.strerror}"))

    # Linked folders are walked like the others (rasters are often gathered by symlinks);
    # a folder reached twice, by a loop or two links, is walked once.
    walked: set[str] = set()
    for root, dirs, files in os.walk(folder, onerror=unlistable, followlinks=True):
        real = os.path.realpath(root)
        if real in walked:
            dirs[:] = []
            continue
        walked.add(real)
        if layout.RELEASE_MARKER in files and layout.ROOT in files:
            dirs[:] = []
            yield "stac", os.path.join(root, layout.ROOT)
            continue
        if layout.PIPELINE_MARKER in files and layout.PIPELINE_ITEMS in files:
            dirs[:] = []  # its assets/ are the items' files (masks, thumbnails), not items
            yield "stac", os.path.join(root, layout.PIPELINE_ITEMS)
            continue
        in_safe = any(part.endswith(".SAFE") for part in Path(root).parts)
        dirs[:] = sorted(
            name
            for name in dirs
            if not name.startswith(".")
            and not (in_safe and name in _SAFE_AUXILIARY)
            and not (skip and os.path.realpath(os.path.join(root, name)) in skip)
        )
        found = []
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") or _PRODUCT_JSON.search(name):
                continue
            if (kind := _classify(path)) is not None:
                found.append((kind, path))
        # Catalogs and Collections first: an item file beside its Collection that sorts
        # before it (a1.json, collection.json) was read alone, before the Collection's
        # crawl could claim it, and landed in another collection.
        found.sort(key=lambda entry: not (entry[0] == "stac" and _is_stac_root(entry[1])))
        yield from found


_ROOT_NAMES = ("catalog.json", "collection.json")
_ROOT_TYPE = re.compile(rb'"type"\s*:\s*"(?:Catalog|Collection)"')


def _is_stac_root(path: str) -> bool:
    """Whether a JSON file is a Catalog or Collection: by its name, else by a ``type``
    member in its first 4 KiB (an item file says "Feature" there; a look, not a parse)."""
    if os.path.basename(path).lower() in _ROOT_NAMES:
        return True
    if not path.lower().endswith(".json"):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False  # reported when it is read
    return _ROOT_TYPE.search(head) is not None


def pipeline_folder(source: str) -> Path | None:
    """The ``pipeline run`` folder that a local ``source`` names, as the folder or as its
    ``items.ndjson`` (marked by :data:`layout.PIPELINE_MARKER`); None for anything else."""
    if is_url(source):
        return None
    path = Path(location(source))
    folder = path.parent if path.name == layout.PIPELINE_ITEMS else path
    # os.path, not Path.is_file: an unreadable folder raised PermissionError (a traceback).
    return folder if os.path.isfile(folder / layout.PIPELINE_MARKER) else None


def built_catalog(source: str) -> Path | None:
    """The local catalog that dafab-static built and ``source`` names, as its folder or its
    ``catalog.json`` (its release marker beside the root); None for anything else."""
    if is_url(source):
        return None
    path = Path(location(source))
    folder = path.parent if path.name == layout.ROOT else path
    return folder if layout.is_published(folder) else None


def _expected() -> str:
    rasters = ", ".join(sorted(_rasters().RASTER_SUFFIXES))
    return f"a raster ({rasters}) or STAC ({', '.join(stac.STAC_SUFFIXES)})"

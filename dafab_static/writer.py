"""Phase 2 of a build: spooled months become items, partition catalogs and Parquet files;
then collections, platform catalogs and the root.

A month is the unit of work (:class:`MonthJob` → :class:`MonthResult`), independent of every
other month, so months run in a process pool (:mod:`dafab_static.workers`) when there are
enough items for two cores to pay; results are gathered in order, so the output is the same
either way.
"""

from __future__ import annotations

import io
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import shapely.errors

from dafab_static import _gc, arrow_schemas, index, layout, media_types, type_conflicts
from dafab_static.collections import CollectionStats
from dafab_static.errors import InputError, ValidationError
from dafab_static.publish import Release
from dafab_static.spool import parse_time, read_month, time_key
from dafab_static.storage import file_path
from dafab_static.tree import Linker, catalog_document, dumps, file_uris, item_document

#: Spooled items point at files a pipeline put in the release as ``release:<layout path>``;
#: the writer turns that into a path relative to the item once the item's path is known.
RELEASE_HREF = "release:"


@dataclass(frozen=True)
class MonthJob:
    """Everything needed to write one collection's month, picklable for a worker."""

    collection_id: str
    place: layout.CollectionPlace
    year: int
    month: int
    spool: str
    split: layout.Split
    file_collection: dict[str, Any]
    items: int = 0  #: how many items the spool holds: the pool starts the largest first


@dataclass
class MonthResult:
    """What one month produced."""

    catalog: str | None
    items: int = 0
    info: index.PartitionInfo | None = None
    schema: pa.Schema | None = None
    stats: CollectionStats | None = None
    objects: int = 0
    bytes: int = 0
    rejected: list[str] = field(default_factory=list)
    #: Per kind of warning: the first occurrence in full, and how many objects it concerned.
    warnings: dict[str, tuple[str, int]] = field(default_factory=dict)

    def warn(self, kind: str, line: str) -> None:
        """Count one object warned about ``kind``; ``line`` says it in full the first time."""
        first, count = self.warnings.get(kind, (line, 0))
        self.warnings[kind] = (first, count + 1)


@dataclass(frozen=True)
class WriterConfig:
    """The parts of the build options phase 2 needs, picklable."""

    release: Release
    base_url: str | None
    validate: bool
    strict: bool
    localized: tuple[tuple[str, str], ...] = ()
    derived_assets: bool = False
    #: (local data file, layout path of the item holding it): see Assembly.source_items.
    sources: tuple[tuple[str, str], ...] = ()


class MonthWriter:
    """Writes months; one per process (it holds a compiled validator)."""

    def __init__(self, config: WriterConfig) -> None:
        self.config = config
        self.release = config.release
        self.linker = Linker(config.release.locate, config.base_url)
        self.validator = _validator() if config.validate else None
        self.localized = dict(config.localized)
        self.sources = dict(config.sources)

    def put_catalog(
        self,
        result: MonthResult,
        path: str,
        parent: str,
        cid: str,
        description: str,
        *,
        children: list[tuple[str, str]],
        items: list[str],
    ) -> None:
        doc = catalog_document(
            catalog_id=cid, title=cid, description=description, path=path, parent=parent,
            children=children, items=items, linker=self.linker,
        )  # fmt: skip
        self.check([(path, doc)], result, fatal=True)
        data = dumps(doc)
        self.release.store.put(self.release.locate(path), data)
        result.objects += 1
        result.bytes += len(data)

    def __call__(self, job: MonthJob) -> MonthResult:
        # A month's items are plain dicts, held together: see _gc.paused for the gain.
        with _gc.paused():
            return self._write(job)

    def _write(self, job: MonthJob) -> MonthResult:
        place = job.place
        month_folder = f"{place.folder}/{job.year:04d}/{job.month:02d}"
        result = MonthResult(catalog=f"{month_folder}/catalog.json")
        docs: list[tuple[str, dict[str, Any]]] = []
        placed = []
        crowded: dict[str, list[str]] = defaultdict(list)  # hour folder -> its items' ids
        for item in read_month(job.spool):
            when = parse_time(time_key(item))
            part = layout.partition_path(job.year, job.month, when.day, when.hour, job.split)
            placed.append((item, part))
            if job.split.bucketed and f"{when.day:02d}/{when.hour:02d}" in job.split.bucketed:
                crowded[part].append(item["id"])
        bucket = {
            (part, item_id): f"{part}/{folder}"
            for part, ids in crowded.items()
            for item_id, folder in layout.buckets(ids, job.split.max_children).items()
        }
        for item, part in placed:
            part = bucket.get((part, item["id"]), part)
            path = layout.item_path(place, part, item["id"])
            if self.localized or self.config.derived_assets or self.sources:
                self.localize(item, path)
            file_uris(item)
            doc = item_document(item, path=path, parent=f"{place.folder}/{part}/catalog.json",
                                collection=place.document, linker=self.linker)  # fmt: skip
            docs.append((path, doc))
        docs = self.check(docs, result, fatal=False)
        if not docs:
            result.catalog = None
            return result
        items = [d for _, d in docs]
        try:
            geometries = index.parse_geometries([item["geometry"] for item in items])
        except shapely.errors.GEOSException:
            docs = self._readable_geometries(docs, result)
            if not docs:
                result.catalog = None
                return result
            items = [d for _, d in docs]
            geometries = index.parse_geometries([item["geometry"] for item in items])
        for i, item in enumerate(items):
            if shadowed := index.shadowed_properties(item):
                message = ("properties named as top-level fields cannot be stac-geoparquet "
                           "columns; kept in the item JSON, left out of the index")  # fmt: skip
                where = f"{docs[i][0]}: item {item['id']!r}"
                result.warn(message, f"{where}: {message} ({', '.join(shadowed)})")
        for i, item in enumerate(items):
            if not item.keys() <= index.ITEM_MEMBERS:
                message = ("top-level members beyond STAC's cannot be stac-geoparquet columns "
                           "(they would read back as properties); kept in the item JSON, left "
                           "out of the index")  # fmt: skip
                where = f"{docs[i][0]}: item {item['id']!r}"
                foreign = ", ".join(index.foreign_members(item))
                result.warn(message, f"{where}: {message} ({foreign})")
        for i in index.orient_rings(items, geometries):
            message = "polygon rings against RFC 7946's right-hand rule; reversed"
            result.warn(message, f"{docs[i][0]}: item {items[i]['id']!r}: {message}")
        for i in index.cover_geometries(items, geometries):
            message = "bbox did not contain the geometry; widened to cover it"
            where = f"{docs[i][0]}: item {items[i]['id']!r}"
            result.warn(message, f"{where}: {message} ({items[i]['bbox']})")
        table, docs = self._table(job, docs, geometries, result)
        if table is None:  # every item set aside
            result.catalog = None
            return result
        payload = [(self.release.locate(p), dumps(d)) for p, d in docs]
        result.bytes += self.release.store.put_many(payload, media_type=media_types.GEOJSON)
        result.objects += len(payload)
        members: dict[str, list[str]] = defaultdict(list)
        for path, _ in docs:
            members[path.rsplit("/", 1)[0]].append(path)
        self.partition_catalogs(result, job, month_folder, members)
        ipath = layout.index_path(place, job.year, job.month)
        data, info = index.encode(table, job.file_collection, path=ipath)
        self.release.store.put(self.release.locate(ipath), data)
        result.objects += 1
        result.bytes += len(data)
        vectors = index.encode_vectors(table, parquet=data)
        if vectors is not None:
            self.release.store.put(self.release.locate(index.vectors_path(ipath)), vectors)
            result.objects += 1
            result.bytes += len(vectors)
        result.stats = CollectionStats(job.collection_id)
        result.stats.add(table, info.start_datetime, info.end_datetime)
        result.items, result.info, result.schema = len(docs), info, table.schema
        return result

    def _table(
        self,
        job: MonthJob,
        docs: list[tuple[str, dict[str, Any]]],
        geometries: Any,
        result: MonthResult,
    ) -> tuple[pa.Table | None, list[tuple[str, dict[str, Any]]]]:
        """The month's stac-geoparquet table, and the documents it holds.

        JSON lets one field be a number in one item and text in another (``raster:bands``
        ``nodata`` 0 here, "nan" there, both valid STAC); one Parquet column cannot hold
        both. The items that clash are set aside, each reported naming its input and the
        field (:mod:`dafab_static.type_conflicts`), and the rest published; with
        ``--strict``, or when no clash is found in the JSON, the month fails.
        """
        items = [d for _, d in docs]
        error: Exception | str
        try:
            table = index.to_table(items, geometries)
            if not type_conflicts.too_deep(table.schema):
                return table, docs
            error = f"nested deeper than {type_conflicts.MAX_DEPTH} levels"
        except index.TABLE_ERRORS as e:
            error = e
        aside = type_conflicts.set_aside(items)
        where = f"collection {job.collection_id!r}, {job.year:04d}-{job.month:02d}"
        if not aside:
            raise InputError(f"{where}: items give values of different types ({error})") from None
        for one in aside:
            path, item = docs[one.position]
            line = f"{_source(item) or path}: item {item['id']!r}: {one.reason}"
            if self.config.strict:
                raise InputError(f"{line} ({where}); build such items into separate collections "
                                 "(--collection)")  # fmt: skip
            result.rejected.append(line)
        gone = {one.position for one in aside}
        kept = [i for i in range(len(docs)) if i not in gone]
        docs = [docs[i] for i in kept]
        if not docs:
            return None, docs
        try:
            table = index.to_table([d for _, d in docs], geometries[kept])
        except index.TABLE_ERRORS as e:
            raise InputError(f"{where}: items give values of different types ({e})") from None
        if type_conflicts.too_deep(table.schema):
            raise InputError(f"{where}: items nest deeper than a Parquet column holds")
        return table, docs

    def partition_catalogs(
        self, result: MonthResult, job: MonthJob, month_folder: str, members: dict[str, list[str]]
    ) -> None:
        """Catalogs from the month down to the leaves that hold the items."""
        folders: set[str] = set()
        for leaf in members:
            parts = leaf[len(month_folder) :].strip("/").split("/") if leaf != month_folder else []
            for depth in range(len(parts) + 1):
                folders.add("/".join([month_folder, *parts[:depth]]))
        children: dict[str, list[str]] = defaultdict(list)
        for folder in folders:
            if folder != month_folder:
                children[folder.rsplit("/", 1)[0]].append(folder)
        for folder in sorted(folders):
            parent = f"{folder.rsplit('/', 1)[0]}/catalog.json"
            label = folder[len(job.place.folder) + 1 :].replace("/", "-")
            cid = job.collection_id
            self.put_catalog(
                result, f"{folder}/catalog.json", parent, f"{cid}-{label}",
                f"{cid} items of {label}",
                children=[(f"{c}/catalog.json", c.rsplit("/", 1)[1])
                          for c in sorted(children[folder])],
                items=members.get(folder, []),
            )  # fmt: skip

    def localize(self, item: dict[str, Any], path: str) -> None:
        """Point asset and link hrefs at embedded copies (see :func:`embed`) and at files a
        pipeline wrote into the release (:data:`RELEASE_HREF`), relatively; and a
        ``derived_from`` link to a data file of another item of the build at that item:
        STAC's ``derived_from`` names a STAC entity, not a file."""
        for target in [*item.get("assets", {}).values(), *item.get("links", [])]:
            href = str(target.get("href", ""))
            if href.startswith(RELEASE_HREF):
                key: str | None = href.removeprefix(RELEASE_HREF)
            else:
                file = file_path(href)
                key = self.sources.get(file) if target.get("rel") == "derived_from" else None
                if key:
                    target["type"] = media_types.GEOJSON
                key = key or self.localized.get(file)
            if key:
                target["href"] = layout.href(self.release.locate(path), self.release.locate(key))

    def _readable_geometries(
        self, docs: list[tuple[str, dict[str, Any]]], result: MonthResult
    ) -> list[tuple[str, dict[str, Any]]]:
        """Drop (and report, as :meth:`check` does) items whose geometry GEOS cannot read."""
        from dafab_static.validator import Problem

        bad = index.unreadable_geometries([doc["geometry"] for _, doc in docs])
        for i, reason in bad.items():
            path, doc = docs[i]
            line = _named(Problem(path, "$.geometry", "dafab:geometry", reason), doc)
            if self.config.strict:
                raise InputError(line)
            result.rejected.append(line)
        return [pair for i, pair in enumerate(docs) if i not in bad]

    def check(
        self,
        docs: list[tuple[str, dict[str, Any]]],
        result: MonthResult,
        *,
        fatal: bool,
        given: str | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Drop (and report) documents that fail the STAC schemas; ours must never fail.
        ``given``: where a user gave what the document is made from (a Collection's JSON),
        named as the culprit of a failure instead of the tool."""
        if self.validator is None:
            return docs
        problems = self.validator.validate_many(docs)
        if not problems:
            return docs
        by_path = dict(docs)
        bad: dict[str, int] = {}  # path -> its position in result.rejected
        more: Counter[str] = Counter()
        for problem in problems:
            if fatal:
                if problem.severity == "error" and given is not None:
                    where = f"{given}: {problem.json_path}: {problem.message} [{problem.rule}]"
                    raise ValidationError(f"{where} (the Collection given there)")
                if problem.severity == "error":
                    raise ValidationError(f"internal: generated document failed: {problem}")
                result.warn(problem.message, str(problem))
                continue
            line = _named(problem, by_path.get(problem.href))
            if problem.severity != "error":
                result.warn(problem.message, line)
                continue
            if self.config.strict:
                raise ValidationError(line)
            if problem.href in bad:  # one skipped input, one line: its other problems counted
                more[problem.href] += 1
                continue
            bad[problem.href] = len(result.rejected)
            result.rejected.append(line)
        for path, n in more.items():
            result.rejected[bad[path]] += f" (and {n} more problem{'s' * (n > 1)})"
        return [(p, d) for p, d in docs if p not in bad]


def _named(problem: Any, item: dict[str, Any] | None) -> str:
    """A problem with an input item, said of that item where it came from.

    The document's path is where the item would have been published; it is not published
    when it fails, so the line names the source its ``via`` link records (the file or URL it
    was read from, or the hub's own ``self`` URL) and the item's id instead.
    """
    source = _source(item) if item is not None else None
    if item is None or source is None:
        return str(problem)
    where = f"{source}: item {item['id']!r}: {problem.json_path}"
    return f"{where}: {problem.message} [{problem.rule}]"


def _source(item: dict[str, Any]) -> str | None:
    """The href of the ``via`` link the ingest adds to every foreign item (``conform.rewrite``)."""
    for link in item.get("links") or ():
        if isinstance(link, dict) and link.get("rel") == "via" and link.get("title") == "Source":
            href = link.get("href")
            return file_path(href) if isinstance(href, str) else None
    return None


def embed(release: Release, folder: str, prefix: str) -> tuple[tuple[str, str], ...]:
    """Copy a local folder into the release, so assets and links into it stay reachable after
    the folder is gone (the generated sample lives in a temporary folder).

    Returns:
        ``(absolute local path, layout path)`` pairs for :meth:`MonthWriter.localize`.
    """

    base = Path(os.path.abspath(folder))
    pairs = []
    for path in sorted(base.rglob("*")):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(base).as_posix()}"
            data = path.read_bytes()
            release.store.put(release.locate(key), data, media_type=_json_kind(key, data))
            pairs.append((str(path), key))
    return tuple(pairs)


def _json_kind(key: str, data: bytes) -> str | None:
    """``application/geo+json`` for a ``.json`` file holding a GeoJSON Feature (an Item),
    as the links to it say; None (the type of its suffix) for anything else."""
    if not key.endswith(".json"):
        return None
    import orjson

    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return media_types.GEOJSON if isinstance(doc, dict) and doc.get("type") == "Feature" else None


def _validator() -> Any:
    from dafab_static.validator import Validator

    return Validator()


@dataclass(frozen=True)
class Rewrite:
    """One partition to write again with its collection's dataset schema, picklable."""

    info: index.PartitionInfo
    schema: pa.Schema
    collection: dict[str, Any]


def rewrite_partition(release: Release, job: Rewrite) -> index.PartitionInfo:
    """Read a written partition back and write it with ``job.schema`` and ``job.collection``."""
    import pyarrow.parquet as pq

    path = job.info.path
    table = pq.read_table(io.BytesIO(release.store.get(release.locate(path))))
    data, new = index.encode(arrow_schemas.conform(table, job.schema), job.collection, path=path)
    release.store.put(release.locate(path), data)
    return new


def conform_partitions(
    rewrite: Callable[[list[Rewrite]], list[index.PartitionInfo]],
    collection_id: str,
    parts: list[index.PartitionInfo],
    schemas: list[pa.Schema],
    on_bytes: Callable[[int], None],
    *,
    collection: dict[str, Any],
    force: bool = False,
) -> None:
    """Rewrite partitions whose schema differs, so one dataset schema reads them all; with
    ``force``, rewrite every partition (to embed a corrected ``collection``).

    ``rewrite`` runs :func:`rewrite_partition` over a list of jobs, in a pool or here
    (:meth:`dafab_static.workers.Workers.rewrite`); ``parts`` is updated in place.
    """
    try:
        unified = arrow_schemas.unify(schemas)
    except arrow_schemas.SchemaConflict as e:
        # The same as inside one partition (MonthWriter): JSON allows it, one Parquet column
        # of the collection's dataset cannot hold both. Nothing is published.
        raise InputError(
            f"collection {collection_id!r}: {e} (partitions of different months); one "
            f"Parquet column cannot hold both: build them into separate collections "
            f"(--collection)"
        ) from None
    todo = [i for i, schema in enumerate(schemas)
            if force or not schema.remove_metadata().equals(unified)]  # fmt: skip
    jobs = [Rewrite(parts[i], unified, collection) for i in todo]
    for i, new in zip(todo, rewrite(jobs), strict=True):
        on_bytes(new.bytes - parts[i].bytes)
        parts[i] = new

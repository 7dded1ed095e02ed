"""One pass from sources to a published catalog: static STAC tree + stac-geoparquet indexes.

Two streaming phases keep memory flat in the number of items:

1. **Ingest.** Records flow from :mod:`dafab_static.ingest`; each item is checked (id,
   datetime, duplicates), given its collection, and spooled as one JSON line into a temporary
   file per (collection, month). Only counts and small per-collection facts stay in memory.
2. **Write.** Month by month, items are read back, linked, validated, written as JSON, turned
   into one Hilbert-ordered Parquet partition, and folded into their collection's extent and
   summaries. Catalogs, collections and the root follow; the release is then committed
   atomically (:mod:`dafab_static.publish`).

A month is split by day (and further) when it holds more than ``max_children`` items; the
split is planned from phase 1's counts, so each item's path is known before it is written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from dafab_static import __version__, _gc, arrow_schemas, clock, index, layout
from dafab_static._processes import warm_up
from dafab_static.collections import CollectionStats, file_collection, make_collection
from dafab_static.cql2 import CONFORMANCE as CQL2_CONFORMANCE
from dafab_static.entries import Entry, Preparer
from dafab_static.errors import DafabError, InputError, OptionError, ValidationError
from dafab_static.options import BuildOptions, path_argument, sources_argument
from dafab_static.publish import Release
from dafab_static.queryables import (
    CATALOG_PATH,
    MEDIA_TYPE,
    REL,
    collection_path,
    merge_queryables,
    queryables_for_schema,
)
from dafab_static.report import BuildReport, counted
from dafab_static.spool import UNASSIGNED, Spool
from dafab_static.tree import catalog_document, collection_document, dumps
from dafab_static.workers import WARM_UP_ITEMS, Workers
from dafab_static.writer import (
    RELEASE_HREF,
    MonthJob,
    MonthResult,
    MonthWriter,
    Rewrite,
    WriterConfig,
    conform_partitions,
    embed,
)

if TYPE_CHECKING:
    from dafab_static.ingest import Prepared, Record

ProgressFn = Callable[[str, int, int | None], None]
_SPOOL_FLUSH = 1 << 20


def build(
    sources: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    options: BuildOptions | None = None,
    sample: bool = False,
    progress: ProgressFn | None = None,
) -> BuildReport:
    """Build and atomically publish a catalog from rasters and STAC sources.

    Args:
        sources: Files, folders, globs or URLs of rasters and STAC (items, FeatureCollections,
            ndjson, stac-geoparquet, static catalogs); one, or an iterable of them.
        dest: A local folder or ``s3://bucket/prefix``.
        options: See :class:`~dafab_static.options.BuildOptions`.
        sample: Also build from the bundled sample (generated offline).
        progress: Called as ``progress(stage, done, total)`` while working.

    Returns:
        A :class:`BuildReport`; inputs that were skipped are listed in it.

    Raises:
        InputError: With ``options.strict``, at the first bad input; and when nothing at all
            could be read. Nothing is published then.
        StorageError: When the destination cannot be written.

    Example:
        >>> report = build([], "/tmp/catalog", sample=True)  # doctest: +SKIP
    """
    sources = sources_argument(sources)
    dest = path_argument(dest, "dest")
    if options is not None and not isinstance(options, BuildOptions):
        raise OptionError(f"options={options!r}: expected a dafab_static.BuildOptions")
    if progress is not None and not callable(progress):
        raise OptionError(f"progress={progress!r}: expected a function (stage, done, total)")
    opts = options or BuildOptions()
    started = time.perf_counter()
    report = BuildReport(dest=dest)
    recipe = _load_recipe(opts.pipeline)  # a bad recipe fails before anything is written
    release = Release(dest)
    spool_dir = Path(tempfile.mkdtemp(prefix="dafab-spool-"))
    try:
        with _sample_sources(sample) as sample_folder:
            localized = embed(release, sample_folder.path, "sample") if sample_folder.path else ()
            from dafab_static.ingest import pipeline_folder

            for folder in filter(None, map(pipeline_folder, sources)):
                # Its masks, thumbnails and embeddings are published with its items.
                assets = folder / layout.DERIVED_ASSETS
                localized += embed(release, str(assets), layout.DERIVED_ASSETS)
            run = _Build(opts, release, report, Spool(spool_dir),
                         progress or _quiet, localized, recipe)  # fmt: skip
            srcs = [*sample_folder.sources, *sources]
            run.ingest(srcs)
            if not run.spool.counts:
                raise InputError(_nothing_found(srcs, report.skipped))
            root = run.write()
            if not report.items:  # every item failed validation: nothing worth publishing
                raise InputError(_nothing_found(srcs, report.skipped, valid=True))
            release.commit(root, run.marker())
        report.published = True
    except BaseException:
        release.abort()
        raise
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _load_recipe(path: str | None) -> Any:
    if path is None:
        return None
    from dafab_static.pipeline import load_recipe

    return load_recipe(path)


def _quiet(stage: str, done: int, total: int | None) -> None:
    del stage, done, total


@dataclass(frozen=True)
class _Origin:
    """Where an item came from, for error messages: the shape of an ingest record."""

    source: str


@dataclass(frozen=True)
class _Sample:
    path: str | None = None
    sources: tuple[str, ...] = ()


@contextlib.contextmanager
def _sample_sources(enabled: bool) -> Iterator[_Sample]:
    """Generate the bundled sample in a temporary folder for the duration of a build."""
    if not enabled:
        yield _Sample()
        return
    from dafab_static.sample import write_sample

    folder = tempfile.mkdtemp(prefix="dafab-sample-")
    try:
        manifest = write_sample(folder)
        yield _Sample(folder, tuple(str(p) for p in manifest.sources))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _Build:
    """One build's state across both phases."""

    def __init__(
        self,
        opts: BuildOptions,
        release: Release,
        report: BuildReport,
        spool: Spool,
        progress: ProgressFn,
        localized: tuple[tuple[str, str], ...],
        recipe: Any = None,
    ) -> None:
        self.opts = opts
        self.recipe = recipe
        self.release = release
        self.report = report
        self.spool = spool
        self.progress = progress
        self.given: dict[str, dict[str, Any]] = {}
        self.given_from: dict[str, str] = {}  # where each given Collection was read
        self.config = WriterConfig(release, opts.base_url, opts.validate, opts.strict, localized,
                                   derived_assets=recipe is not None)  # fmt: skip
        self.writer = MonthWriter(self.config)  # catalogs above the months, in this process
        self.preparer = Preparer(opts.collection)  # items for the spool, here or in readers
        self.warned: dict[str, tuple[str, int]] = {}
        #: The Collection each collection's index files embed (see ``file_collection``).
        self.embedded: dict[str, dict[str, Any]] = {}
        self.queryables: list[dict[str, Any]] = []  # one small document per collection

    def problem(self, error: DafabError) -> None:
        if self.opts.strict:
            raise error
        self.report.skipped.append(str(error))

    def notice(self, message: str) -> None:
        self.report.warnings.append(message)

    # -- phase 1 --------------------------------------------------------------------------
    def ingest(self, sources: list[str]) -> None:
        from dafab_static.ingest import iter_records

        for path in self.opts.collections:
            self.given_collection(_read_collection(path), path)
        count = 0
        # Without a pipeline, items can be checked and spooled where they are read: by the
        # processes that read a large file (ingest.striped), which then send packed batches.
        records = iter_records(
            sources,
            datetime=self.opts.datetime,
            on_error=self.problem,
            on_notice=self.notice,
            workers=self.opts.workers,
            prepare=None if self.recipe else self.preparer,
            exclude=[str(self.release.folder)] if self.release.folder else (),
        )
        # Plain STAC dicts, without cycles: the collector would only cost time. A pipeline
        # runs torch and arbitrary steps in this loop, so with one it runs as usual.
        with _gc.paused() if self.recipe is None else contextlib.nullcontext():
            for entry in self.entries(records):
                try:
                    if isinstance(entry, Entry):
                        self.spool.add(entry)
                    else:
                        self.spool.add_packed(entry.batch, entry.index)
                except InputError as e:
                    self.problem(e)
                    continue
                count += 1
                if count % 1000 == 0:
                    self.progress("read", count, None)
                if count == WARM_UP_ITEMS:
                    warm_up(self.opts.workers)
        self.progress("read", count, count)
        self.spool.flush()

    def entries(self, records: Iterator[Record | Prepared]) -> Iterator[Entry | Prepared]:
        """The spool entries of the items (or their places in batches that reader processes
        packed), through the pipeline if there is one; Collections are kept aside, and an
        item that cannot be spooled is a problem."""
        from dafab_static.ingest import Prepared, Record

        if self.recipe is None:
            for record in records:
                if isinstance(record, Prepared):  # made by a reader process
                    yield record
                elif record.kind == "item":
                    yield from self.entry(record.data, record.source)
                else:
                    self.given_collection(record.data, record.source)
            return
        pairs = ((r.data, r) for r in records if isinstance(r, Record) and
                 (r.kind != "collection" or self.given_collection(r.data, r.source)))  # fmt: skip
        for item, record in self.derive(pairs):
            yield from self.entry(item, record.source)

    def entry(self, item: dict[str, Any], source: str) -> Iterator[Entry]:
        """One item's spool entry, or none if it is a problem."""
        try:
            yield self.preparer.item(item, source)
        except InputError as e:
            self.problem(e)

    def given_collection(self, doc: dict[str, Any], source: str) -> bool:
        """Keep a Collection read from the sources; False, so generators can filter on it."""
        cid = layout.check_id(doc.get("id"), what="collection", source=source)
        if cid not in self.given:  # the first definition (--collection-json first) wins
            self.given[cid], self.given_from[cid] = doc, source
        elif doc != self.given[cid]:
            self.notice(
                f"{source}: collection {cid!r} is also defined in {self.given_from[cid]}; "
                "that first definition is used"
            )
        return False

    def derive(
        self, pairs: Iterator[tuple[dict[str, Any], Any]]
    ) -> Iterator[tuple[dict[str, Any], Any]]:
        """Run the recipe over the items it applies to; its files go into the release."""
        from dafab_static.pipeline import Pipeline

        pipeline = Pipeline(self.recipe, put_asset=self.put_derived, device=self.opts.device,
                            strict=self.opts.strict, progress=self.progress,
                            collection=self.opts.collection)  # fmt: skip
        try:
            yield from pipeline.run(pairs)
            origin = _Origin(f"pipeline {self.recipe.source}")
            yield from ((card, origin) for card in pipeline.model_items())
        finally:
            self.report.pipeline = pipeline.report

    def put_derived(self, item: Mapping[str, Any], key: str, asset: Any) -> str:
        """Store a pipeline's file at ``assets/<collection>/<item>/<file>``; the writer makes
        the ``release:`` href relative to the item once its path is known."""
        cid = self.opts.collection or item.get("collection") or UNASSIGNED
        path = layout.derived_asset_path(str(cid), str(item["id"]), asset.filename)
        self.put(path, asset.data)
        return RELEASE_HREF + path

    # -- phase 2 --------------------------------------------------------------------------
    def write(self) -> bytes:
        """Write every collection and the catalogs above them; return the root's bytes."""
        platforms: dict[str, list[tuple[str, str]]] = defaultdict(list)
        derived: list[tuple[str, str]] = []
        jobs = self.month_jobs()
        with Workers(self.config, workers=self.opts.workers, items=self.spool.total,
                     months=len(jobs)) as workers:  # fmt: skip
            results = self.months(jobs, workers)
            for cid in sorted(self.spool.counts):
                place = self.spool.counts[cid].place
                if not self.write_collection(cid, place, results, workers.rewrite):
                    continue
                title = str(self.given.get(cid, {}).get("title") or cid)
                if place.branch == layout.DERIVED:
                    derived.append((place.document, title))
                else:
                    platforms[place.branch].append((place.document, title))
        for cid in sorted(set(self.given) - set(self.spool.counts)):
            # A Collection needs its items for its extents, summaries and index; one that
            # none of the sources fills is reported rather than published hollow.
            self.notice(f"{self.given_from[cid]}: collection {cid!r} has no items; not published")
        self.finish_warnings()
        branches: list[tuple[str, str]] = []
        if platforms:
            sensors = f"{layout.SENSORS}/catalog.json"
            plat_children = []
            for branch in sorted(platforms):
                path = f"{branch}/catalog.json"
                name = branch.rsplit("/", 1)[1]
                self.put_catalog(path, sensors, name, f"Collections of the {name} platform",
                                 children=platforms[branch])  # fmt: skip
                plat_children.append((path, name))
            description = "Catalogs of each sensor platform"
            self.put_catalog(
                sensors, "catalog.json", "sensors", description, children=plat_children
            )
            branches.append((sensors, "sensors"))
        if derived:
            path = f"{layout.DERIVED}/catalog.json"
            self.put_catalog(path, "catalog.json", "derived", "Derived products", children=derived)
            branches.append((path, "derived"))
        root = catalog_document(
            catalog_id="dafab-static", title=self.opts.title,
            description="Unified Earth-observation metadata catalog built by dafab-static.",
            path="catalog.json", parent=None, children=branches, items=[],
            linker=self.writer.linker,
        )  # fmt: skip
        merged = merge_queryables(self.queryables, title=f"Queryables of {self.opts.title}",
                                  id_url=self.absolute(CATALOG_PATH))  # fmt: skip
        self.put(CATALOG_PATH, dumps(merged))
        root["links"].append(self.queryables_link("catalog.json", CATALOG_PATH))
        # The CQL2 conformance classes that dafab-static search passes on this catalog's
        # indexes (OGC's name for such a list). No STAC API class is claimed: the catalog is
        # static, and STAC Browser switches to API mode only for those.
        root["conformsTo"] = list(CQL2_CONFORMANCE)
        self.writer.check([("catalog.json", root)], MonthResult(None), fatal=True)
        data = dumps(root)
        self.report.objects += 1
        self.report.bytes += len(data)
        return data

    def month_jobs(self) -> list[MonthJob]:
        """One job per month of every collection, in collection and time order."""
        jobs = []
        for cid in sorted(self.spool.counts):
            counts = self.spool.counts[cid]
            given: dict[str, Any] = self.given.get(cid) or {}
            bbox, start, end = self.spool.counts[cid].extent()
            embedded = file_collection(cid, given=given or None, bbox=bbox, start=start, end=end)
            self.embedded[cid] = embedded
            for year, month in sorted(counts.months):
                split = counts.split(year, month, max_children=self.opts.max_children)
                jobs.append(MonthJob(cid, counts.place, year, month,
                                     str(self.spool.path(cid, year, month)), split,
                                     embedded, counts.months[(year, month)]))  # fmt: skip
        return jobs

    def months(self, jobs: list[MonthJob], workers: Workers) -> dict[str, list[MonthResult]]:
        """Write every month of every collection (in parallel when it pays)."""
        total, done = self.spool.total, 0
        results: dict[str, list[MonthResult]] = defaultdict(list)
        for job, result in zip(jobs, workers.months(jobs), strict=True):
            results[job.collection_id].append(result)
            self.report.objects += result.objects
            self.report.bytes += result.bytes
            for line in result.rejected:
                self.problem(ValidationError(line))
            for message, (first, count) in result.warnings.items():
                old = self.warned.get(message, (first, 0))
                self.warned[message] = (old[0], old[1] + count)
            done += self.spool.counts[job.collection_id].months[(job.year, job.month)]
            self.progress("write", done, total)
        return results

    def write_collection(
        self,
        cid: str,
        place: layout.CollectionPlace,
        results: dict[str, list[MonthResult]],
        rewrite: Callable[[list[Rewrite]], list[index.PartitionInfo]],
    ) -> bool:
        """Year catalogs, the Collection, its queryables and its partitions manifest; False
        if it is empty."""
        stats = CollectionStats(cid)
        parts: list[index.PartitionInfo] = []
        schemas = []
        years: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for result in results[cid]:
            if result.catalog is None or result.info is None or result.stats is None:
                continue
            stats.merge(result.stats)
            parts.append(result.info)
            schemas.append(result.schema)
            year_folder, month = result.catalog.rsplit("/", 2)[:2]
            years[year_folder].append((result.catalog, f"{year_folder[-4:]}-{month}"))
        if not parts:
            return False
        embedded, stale = self.embedded[cid], self.embedded[cid]["extent"] != stats.extent()
        if stale:
            # Items dropped after spooling (they failed validation) shrank the extent that
            # the files embed: rewrite them with the extent the Collection publishes.
            embedded = {**embedded, "extent": stats.extent()}
        conform_partitions(rewrite, cid, parts, schemas, self._add_bytes,
                           collection=embedded, force=stale)  # fmt: skip
        year_children = []
        for folder in sorted(years):
            year = folder.rsplit("/", 1)[1]
            self.put_catalog(f"{folder}/catalog.json", place.document, f"{cid}-{year}",
                             f"{cid} items of {year}", children=years[folder])  # fmt: skip
            year_children.append((f"{folder}/catalog.json", year))
        doc = make_collection(stats, given=self.given.get(cid), assets=self.index_assets(place))
        doc = collection_document(doc, path=place.document, parent=f"{place.branch}/catalog.json",
                                  children=year_children, linker=self.writer.linker)  # fmt: skip
        queryables_path = collection_path(place.folder)
        # A crawled Collection's own queryables link points at its former API: ours replaces it.
        doc["links"] = [ln for ln in doc["links"] if ln.get("rel") != REL]
        doc["links"].append(self.queryables_link(place.document, queryables_path))
        self.writer.check([(place.document, doc)], MonthResult(None), fatal=True)
        self.put(place.document, dumps(doc))
        queryables = queryables_for_schema(
            arrow_schemas.unify(schemas), collection=doc, extensions=sorted(stats.extensions),
            title=f"Queryables of {doc.get('title') or cid}",
            id_url=self.absolute(queryables_path),
        )  # fmt: skip
        self.put(queryables_path, dumps(queryables))
        self.queryables.append(queryables)
        self.put(layout.manifest_path(place),
                 index.manifest(cid, parts, base=place.index_folder))  # fmt: skip
        self.report.collections[cid] = stats.count
        self.report.items += stats.count
        self.report.partitions += len(parts)
        return True

    def index_assets(self, place: layout.CollectionPlace) -> dict[str, Any]:
        """The Collection's links to its stac-geoparquet mirror and partitions manifest."""
        here = self.release.locate(place.document)
        return {
            "geoparquet": {
                "href": layout.href(here, self.release.locate(place.index_folder)) + "/",
                "type": index.PARQUET_MEDIA_TYPE,
                "title": "stac-geoparquet index (Hive-partitioned by year/month)",
                "description": "One stac-geoparquet 1.1.0 file per year/month partition, rows in "
                "Hilbert order of bbox centres; _partitions.json lists every file.",
                "roles": ["collection-mirror"],
            },
            "partitions": {
                "href": layout.href(here, self.release.locate(layout.manifest_path(place))),
                "type": "application/json",
                "title": "Partitions manifest: path, rows, bbox, time range, bytes, checksum",
                "roles": ["metadata"],
            },
        }

    def queryables_link(self, src: str, dst: str) -> dict[str, str]:
        """The link from the object at ``src`` to the queryables at ``dst``: relative, or
        absolute with a base URL (a STAC API client resolves it like a ``self`` link)."""
        link = self.writer.linker.link(REL, src, dst, kind=MEDIA_TYPE, title="Queryables")
        absolute = self.absolute(dst)
        return {**link, "href": absolute} if absolute else link

    def absolute(self, path: str) -> str | None:
        """The public URL of the object at layout path ``path``, given a base URL."""
        base = self.opts.base_url
        return layout.absolute(base, self.release.locate(path)) if base else None

    def put_catalog(
        self, path: str, parent: str, cid: str, description: str, *, children: list[tuple[str, str]]
    ) -> None:
        scratch = MonthResult(None)
        self.writer.put_catalog(scratch, path, parent, cid, description, children=children,
                                items=[])  # fmt: skip
        self.report.objects += scratch.objects
        self.report.bytes += scratch.bytes

    def put(self, path: str, data: bytes) -> None:
        self.release.store.put(self.release.locate(path), data)
        self.report.objects += 1
        self.report.bytes += len(data)

    def _add_bytes(self, n: int) -> None:
        self.report.bytes += n

    def finish_warnings(self) -> None:
        """One line per distinct schema warning, saying how many objects it concerned."""
        for first, count in self.warned.values():
            more = f" (and {count - 1} more objects)" if count > 1 else ""
            self.report.warnings.append(first + more)

    def marker(self) -> dict[str, object]:
        return {
            "generator": f"dafab-static {__version__}",
            "built": clock.now(),
            "items": self.report.items,
            "collections": dict(sorted(self.report.collections.items())),
        }


def _nothing_found(sources: list[str], skipped: list[str], *, valid: bool = False) -> str:
    """The one line of a build that found no (``valid``) item: with why, since no summary
    follows it."""
    where = ", ".join(sources) if sources else "no sources"
    found = (
        f"no STAC item of {where} passes validation" if valid else f"no STAC items found in {where}"
    )
    if not skipped:
        return found
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"{found}; {counted(len(skipped), 'input')} skipped: {'; '.join(skipped[:3])}{more}"


def _read_collection(path: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except OSError as e:
        raise InputError(f"{path}: cannot read collection ({e.strerror})") from None
    except orjson.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("type") != "Collection":
        raise InputError(f"{path}: not a STAC Collection (type must be 'Collection')")
    return doc

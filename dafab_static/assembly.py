"""Phase 2 of a build: the catalog, written from the spool that :mod:`dafab_static.intake`
filled. Month by month, items are read back, linked, validated, written as JSON, turned into
one Hilbert-ordered Parquet partition, and folded into their collection's extent and
summaries (:mod:`dafab_static.writer`, in worker processes when it pays). The year catalogs,
Collections, their queryables and manifests, the branch catalogs and the root follow here."""

from __future__ import annotations

import dataclasses
import posixpath
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from dafab_static import __version__, _stop, arrow_schemas, clock, index, layout, media_types
from dafab_static.build_run import BuildRun
from dafab_static.collections import CollectionStats, file_collection, make_collection
from dafab_static.cql2 import CONFORMANCE as CQL2_CONFORMANCE
from dafab_static.errors import ValidationError
from dafab_static.queryables import (
    CATALOG_PATH,
    MEDIA_TYPE,
    REL,
    collection_path,
    merge_queryables,
    queryables_for_schema,
)
from dafab_static.tree import catalog_document, collection_document, dumps, file_uris
from dafab_static.workers import Workers
from dafab_static.writer import (
    MonthJob,
    MonthResult,
    MonthWriter,
    Rewrite,
    WriterConfig,
    conform_partitions,
)


class Assembly:
    """Phase 2 of one build: writes every object of the release but the root."""

    def __init__(self, run: BuildRun, config: WriterConfig) -> None:
        self.run = run
        self.config = config
        self.writer = MonthWriter(config)  # catalogs above the months, in this process
        self.warned: dict[str, tuple[str, int]] = {}
        #: The Collection each collection's index files embed (see ``file_collection``).
        self.embedded: dict[str, dict[str, Any]] = {}
        self.queryables: list[dict[str, Any]] = []  # one small document per collection

    def write(self) -> bytes:
        """Write every collection and the catalogs above them; return the root's bytes."""
        run, opts = self.run, self.run.opts
        platforms: dict[str, list[tuple[str, str]]] = defaultdict(list)
        derived: list[tuple[str, str]] = []
        jobs = self.month_jobs()
        if sources := self.source_items():
            self.config = dataclasses.replace(self.config, sources=sources)
        with Workers(self.config, workers=opts.workers, items=run.spool.total,
                     months=len(jobs)) as workers:  # fmt: skip
            results = self.months(jobs, workers)
            for cid in sorted(run.spool.counts):
                place = run.spool.counts[cid].place
                if not self.write_collection(cid, place, results, workers.rewrite):
                    continue
                title = str(run.given.get(cid, {}).get("title") or cid)
                if place.branch == layout.DERIVED:
                    derived.append((place.document, title))
                else:
                    platforms[place.branch].append((place.document, title))
        for cid in sorted(set(run.given) - set(run.spool.counts)):
            # A Collection needs its items for its extents, summaries and index; one that
            # none of the sources fills is reported rather than published hollow.
            run.notice(f"{run.given_from[cid]}: collection {cid!r} has no items; not published")
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
            catalog_id="dafab-static", title=opts.title,
            description="Unified Earth-observation metadata catalog built by dafab-static.",
            path="catalog.json", parent=None, children=branches, items=[],
            linker=self.writer.linker,
        )  # fmt: skip
        merged = merge_queryables(self.queryables, title=f"Queryables of {opts.title}",
                                  id_url=self.schema_id(CATALOG_PATH))  # fmt: skip
        run.put(CATALOG_PATH, dumps(merged), media_type=MEDIA_TYPE)
        root["links"].append(self.queryables_link("catalog.json", CATALOG_PATH))
        # The CQL2 conformance classes that dafab-static search passes on this catalog's
        # indexes (OGC's name for such a list). No STAC API class is claimed: the catalog is
        # static, and STAC Browser switches to API mode only for those.
        root["conformsTo"] = list(CQL2_CONFORMANCE)
        self.writer.check([("catalog.json", root)], MonthResult(None), fatal=True)
        data = dumps(root)
        run.report.objects += 1
        run.report.bytes += len(data)
        return data

    def month_jobs(self) -> list[MonthJob]:
        """One job per month of every collection, in collection and time order."""
        spool, jobs = self.run.spool, []
        for cid in sorted(spool.counts):
            counts = spool.counts[cid]
            given: dict[str, Any] = self.run.given.get(cid) or {}
            bbox, start, end = counts.extent()
            embedded = file_collection(cid, given=given or None, bbox=bbox, start=start, end=end)
            self.embedded[cid] = embedded
            for year, month in sorted(counts.months):
                split = counts.split(year, month, max_children=self.run.opts.max_children)
                jobs.append(MonthJob(cid, counts.place, year, month,
                                     str(spool.path(cid, year, month)), split,
                                     embedded, counts.months[(year, month)]))  # fmt: skip
        return jobs

    def source_items(self) -> tuple[tuple[str, str], ...]:
        """(local data file, layout path of its item) for every data file an item of this
        build holds, so that the month writers can point a ``derived_from`` link to the
        file at that item instead (``MonthWriter.localize``).

        An item in an hour too crowded for one catalog goes into a bucket that only the
        whole hour's ids decide: a link to it keeps pointing at the file.
        """
        spool, max_children = self.run.spool, self.run.opts.max_children
        found = []
        for path, (cid, item_id, (year, month), hour) in self.run.data_files.items():
            counts = spool.counts.get(cid)
            if counts is None or (year, month) not in counts.months:
                continue  # the item did not reach the spool
            split = counts.split(year, month, max_children=max_children)
            if hour in split.bucketed:
                continue
            day, hh = (int(v) for v in hour.split("/"))
            part = layout.partition_path(year, month, day, hh, split)
            found.append((path, layout.item_path(counts.place, part, item_id)))
        return tuple(found)

    def months(self, jobs: list[MonthJob], workers: Workers) -> dict[str, list[MonthResult]]:
        """Write every month of every collection (in parallel when it pays)."""
        run = self.run
        total, done = run.spool.total, 0
        results: dict[str, list[MonthResult]] = defaultdict(list)
        for job, result in zip(jobs, workers.months(jobs), strict=True):
            results[job.collection_id].append(result)
            run.report.objects += result.objects
            run.report.bytes += result.bytes
            for line in result.rejected:
                run.problem(ValidationError(line))
            self.merge_warnings(result)
            _stop.check()  # an interrupt that was lost on the way ends the run here
            done += run.spool.counts[job.collection_id].months[(job.year, job.month)]
            run.progress("write", done, total)
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
        run = self.run
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
        doc = make_collection(stats, given=run.given.get(cid), assets=self.index_assets(place))
        file_uris(doc)
        doc = collection_document(doc, path=place.document, parent=f"{place.branch}/catalog.json",
                                  children=year_children, linker=self.writer.linker)  # fmt: skip
        queryables_path = collection_path(place.folder)
        # A crawled Collection's own queryables link points at its former API: ours replaces it.
        doc["links"] = [ln for ln in doc["links"] if ln.get("rel") != REL]
        doc["links"].append(self.queryables_link(place.document, queryables_path))
        checked = MonthResult(None)
        self.writer.check([(place.document, doc)], checked, fatal=True,
                          given=run.given_from.get(cid))  # fmt: skip
        self.merge_warnings(checked)  # a user Collection's unknown extension, say
        run.put(place.document, dumps(doc))
        summaries = stats.summaries()
        # Enums and ranges from what the items hold: a user's Collection keeps its own
        # summaries, which are informative only, and an enum must not rule out a real value.
        queryables = queryables_for_schema(
            arrow_schemas.unify(schemas), collection={**doc, "summaries": summaries},
            extensions=sorted(stats.extensions),
            title=f"Queryables of {doc.get('title') or cid}",
            id_url=self.schema_id(queryables_path),
        )  # fmt: skip
        run.put(queryables_path, dumps(queryables), media_type=MEDIA_TYPE)
        self.queryables.append(queryables)
        run.put(layout.manifest_path(place), index.manifest(
            cid, parts, base=place.index_folder, summaries=summaries))  # fmt: skip
        run.report.collections[cid] = stats.count
        run.report.items += stats.count
        run.report.partitions += len(parts)
        return True

    def index_assets(self, place: layout.CollectionPlace) -> dict[str, Any]:
        """The Collection's links to its stac-geoparquet mirror and partitions manifest."""
        release = self.run.release
        here = release.locate(place.document)
        return {
            layout.MIRROR_ASSET: {
                "href": layout.href(here, release.locate(place.index_folder)) + "/",
                "type": media_types.PARQUET,
                "title": "stac-geoparquet index (Hive-partitioned by year/month)",
                # No spec version here: the files follow stac-geoparquet 1.1.0 but record
                # "1.0.0", the value its JSON Schema allows (index.STAC_GEOPARQUET_VERSION).
                "description": "One stac-geoparquet file per year/month partition, carrying "
                "this Collection in its metadata, rows in Hilbert order of bbox centres; "
                "_partitions.json lists every file.",
                "roles": ["collection-mirror"],
            },
            layout.MANIFEST_ASSET: {
                "href": layout.href(here, release.locate(layout.manifest_path(place))),
                "type": media_types.JSON,
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
        base = self.run.opts.base_url
        return layout.absolute(base, self.run.release.locate(path)) if base else None

    def schema_id(self, path: str) -> str:
        """The ``$id`` of the queryables document at ``path``: its public URL, given a base
        URL; else its own file name, a relative reference that resolves against wherever
        the document was fetched (OGC API Features Part 3 asks for ``$id``; the tree stays
        relocatable)."""
        return self.absolute(path) or quote(posixpath.basename(path), safe="")

    def put_catalog(
        self, path: str, parent: str, cid: str, description: str, *, children: list[tuple[str, str]]
    ) -> None:
        scratch = MonthResult(None)
        self.writer.put_catalog(scratch, path, parent, cid, description, children=children,
                                items=[])  # fmt: skip
        self.run.report.objects += scratch.objects
        self.run.report.bytes += scratch.bytes

    def _add_bytes(self, n: int) -> None:
        self.run.report.bytes += n

    def merge_warnings(self, result: MonthResult) -> None:
        """Fold the schema warnings of some written documents into the build's."""
        for message, (first, count) in result.warnings.items():
            old = self.warned.get(message, (first, 0))
            self.warned[message] = (old[0], old[1] + count)

    def finish_warnings(self) -> None:
        """One line per distinct schema warning, saying how many objects it concerned."""
        for first, count in self.warned.values():
            more = f" (and {count - 1} more objects)" if count > 1 else ""
            self.run.report.warnings.append(first + more)

    def marker(self) -> dict[str, object]:
        """The release marker's facts: what built it, when, and what it holds."""
        report = self.run.report
        return {
            "generator": f"dafab-static {__version__}",
            "built": clock.now(),
            "items": report.items,
            "collections": dict(sorted(report.collections.items())),
        }

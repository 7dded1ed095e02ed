"""Phase 1 of a build: records from the sources, checked (id, datetime, duplicates), run
through the pipeline when there is one, and spooled as one JSON line per item into a
temporary file per (collection, month). Only counts and small per-collection facts stay in
memory; :mod:`dafab_static.assembly` writes the catalog from the spool."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from dafab_static import _gc, _stop, layout
from dafab_static._processes import warm_up
from dafab_static.build_run import BuildRun
from dafab_static.entries import Entry, Preparer
from dafab_static.errors import InputError
from dafab_static.spool import UNASSIGNED
from dafab_static.workers import WARM_UP_ITEMS
from dafab_static.writer import RELEASE_HREF

if TYPE_CHECKING:
    from dafab_static.ingest import Prepared, Record


@dataclass(frozen=True)
class _Origin:
    """Where an item came from, for error messages: the shape of an ingest record."""

    source: str


class Intake:
    """Phase 1 of one build: fills ``run.spool`` and ``run.given``."""

    def __init__(self, run: BuildRun, recipe: Any = None) -> None:
        self.run = run
        self.recipe = recipe
        self.preparer = Preparer(run.opts.collection)  # items for the spool, here or in readers

    def ingest(self, sources: list[str]) -> None:
        """Read every source into the spool; bad inputs are ``run.problem``\\ s."""
        from dafab_static.ingest import iter_records

        run = self.run
        for path in run.opts.collections:
            self.given_collection(_read_collection(path, run.notice), path)
        count = 0
        # Without a pipeline, items can be checked and spooled where they are read: by the
        # processes that read a large file (ingest.striped), which then send packed batches.
        records = iter_records(
            sources,
            datetime=run.opts.datetime,
            on_error=run.problem,
            on_notice=run.notice,
            workers=run.opts.workers,
            prepare=None if self.recipe else self.preparer,
            exclude=[str(run.release.folder)] if run.release.folder else (),
        )
        # Plain STAC dicts, without cycles: the collector would only cost time. A pipeline
        # runs torch and arbitrary steps in this loop, so with one it runs as usual.
        with _gc.paused() if self.recipe is None else contextlib.nullcontext():
            for entry in self.entries(records):
                try:
                    if isinstance(entry, Entry):
                        run.spool.add(entry)
                    else:
                        run.spool.add_packed(entry.batch, entry.index)
                except InputError as e:
                    run.problem(e)
                    continue
                count += 1
                if count % 1000 == 0:
                    _stop.check()  # an interrupt that was lost on the way ends the run here
                    run.progress("read", count, None)
                if count == WARM_UP_ITEMS:
                    warm_up(run.opts.workers)
        run.progress("read", count, count)
        run.spool.flush()

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
            entry = self.preparer.item(item, source)
        except InputError as e:
            self.run.problem(e)
            return
        for asset in item.get("assets", {}).values():
            href = asset.get("href") if isinstance(asset, dict) else None
            if isinstance(href, str) and os.path.isabs(href):  # a local file
                place = (entry.collection, entry.item_id, entry.month, entry.hour)
                self.run.data_files.setdefault(href, place)
        yield entry

    def given_collection(self, doc: dict[str, Any], source: str) -> bool:
        """Keep a Collection read from the sources; False, so generators can filter on it."""
        run = self.run
        cid = layout.check_id(doc.get("id"), what="collection", source=source)
        if cid not in run.given:  # the first definition (--collection-json first) wins
            run.given[cid], run.given_from[cid] = doc, source
        elif doc != run.given[cid]:
            run.notice(
                f"{source}: collection {cid!r} is also defined in {run.given_from[cid]}; "
                "that first definition is used"
            )
        return False

    def derive(
        self, pairs: Iterator[tuple[dict[str, Any], Any]]
    ) -> Iterator[tuple[dict[str, Any], Any]]:
        """Run the recipe over the items it applies to; its files go into the release."""
        from dafab_static.pipeline import Pipeline

        opts = self.run.opts
        pipeline = Pipeline(self.recipe, put_asset=self.put_derived, device=opts.device,
                            strict=opts.strict, progress=self.run.progress,
                            collection=opts.collection)  # fmt: skip
        try:
            yield from pipeline.run(pairs)
            origin = _Origin(f"pipeline {self.recipe.source}")
            yield from ((card, origin) for card in pipeline.model_items())
        finally:
            self.run.report.pipeline = pipeline.report

    def put_derived(self, item: Mapping[str, Any], key: str, asset: Any) -> str:
        """Store a pipeline's file at ``assets/<collection>/<item>/<file>``; the writer makes
        the ``release:`` href relative to the item once its path is known."""
        cid = self.run.opts.collection or item.get("collection") or UNASSIGNED
        path = layout.derived_asset_path(str(cid), str(item["id"]), asset.filename)
        self.run.put(path, asset.data)
        return RELEASE_HREF + path


def _read_collection(path: str, on_notice: Callable[[str], None]) -> dict[str, Any]:
    """A ``--collection-json`` file, conformed as a Collection read from a source is (its
    relative links and assets were published unchanged, pointing nowhere)."""
    from dafab_static.ingest.stac import conform_collection

    try:
        doc = orjson.loads(Path(path).read_bytes())
    except OSError as e:
        raise InputError(f"{path}: cannot read collection ({e.strerror})") from None
    except orjson.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("type") != "Collection":
        raise InputError(f"{path}: not a STAC Collection (type must be 'Collection')")
    return conform_collection(doc, os.path.abspath(path), on_notice)

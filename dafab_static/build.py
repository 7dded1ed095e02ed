"""One pass from sources to a published catalog: static STAC tree + stac-geoparquet indexes.

Two streaming phases keep memory flat in the number of items:

1. **Intake** (:mod:`dafab_static.intake`). Records flow from :mod:`dafab_static.ingest`; each
   item is checked (id, datetime, duplicates), given its collection, and spooled as one JSON
   line into a temporary file per (collection, month). Only counts and small per-collection
   facts stay in memory.
2. **Assembly** (:mod:`dafab_static.assembly`). Month by month, items are read back, linked,
   validated, written as JSON, turned into one Hilbert-ordered Parquet partition, and folded
   into their collection's extent and summaries. Catalogs, collections and the root follow;
   the release is then committed atomically (:mod:`dafab_static.publish`).

A month is split by day (and further) when it holds more than ``max_children`` items; the
split is planned from phase 1's counts, so each item's path is known before it is written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dafab_static import _stop, layout, scratch
from dafab_static.assembly import Assembly
from dafab_static.build_run import BuildRun, ProgressFn
from dafab_static.errors import InputError, OptionError
from dafab_static.intake import Intake
from dafab_static.options import BuildOptions, path_argument, sources_argument
from dafab_static.publish import Release
from dafab_static.report import BuildReport, nothing_found
from dafab_static.spool import Spool
from dafab_static.writer import WriterConfig, embed


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
    scratch.sweep()  # what killed builds left in $TMPDIR
    spool_dir = scratch.make("dafab-spool-")
    try:
        with _sample_sources(sample) as sample_folder:
            localized: tuple[tuple[str, str], ...] = ()
            if sample_folder.path:
                localized = embed(release, sample_folder.path, layout.SAMPLE_FILES)
            from dafab_static.ingest import built_catalog, pipeline_folder

            for folder in filter(None, map(pipeline_folder, sources)):
                # Its masks, thumbnails and embeddings are published with its items.
                assets = folder / layout.DERIVED_ASSETS
                localized += embed(release, str(assets), layout.DERIVED_ASSETS)
            for folder in filter(None, map(built_catalog, sources)):
                # A catalog read back (`build cat --out cat`): the files it carries go along,
                # or its items' links to them would point into the catalog being replaced.
                for prefix in (layout.DERIVED_ASSETS, layout.SAMPLE_FILES):
                    if (folder / prefix).is_dir():
                        localized += embed(release, str(folder / prefix), prefix)
            report.objects += len(localized)  # copied into the release: counted as written
            report.bytes += sum(os.path.getsize(path) for path, _ in localized)
            run = BuildRun(opts, release, report, Spool(spool_dir), progress or _quiet)
            srcs = [*sample_folder.sources, *sources]
            Intake(run, recipe).ingest(srcs)
            if not run.spool.counts:
                raise InputError(nothing_found(srcs, report.skipped))
            config = WriterConfig(release, opts.base_url, opts.validate, opts.strict, localized,
                                  derived_assets=recipe is not None)  # fmt: skip
            assembly = Assembly(run, config)
            root = assembly.write()
            if not report.items:  # every item failed validation: nothing worth publishing
                raise InputError(nothing_found(srcs, report.skipped, valid=True))
            with _stop.deferred():  # past the commit point, the catalog is published
                release.commit(root, assembly.marker())
                report.published = True
            for line in release.leftovers:
                run.notice(line)
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

    folder = str(scratch.make("dafab-sample-"))
    try:
        manifest = write_sample(folder)
        yield _Sample(folder, tuple(str(p) for p in manifest.sources))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

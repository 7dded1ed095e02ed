"""``dafab-static pipeline run``: a recipe over sources, to a folder of enriched items.

Metadata generation can then run as its own job (on a GPU node) and the catalog be built
later from its output: ``items.ndjson`` is a build source like any other. The folder
appears complete or not at all: everything is written beside it and renamed into place.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from dafab_static import __version__, _stop, layout
from dafab_static.collections import CollectionStats, make_collection
from dafab_static.errors import InputError, OptionError
from dafab_static.media_types import JSON
from dafab_static.pipeline.recipe import Recipe, load_recipe
from dafab_static.pipeline.report import PipelineReport
from dafab_static.pipeline.runner import Pipeline
from dafab_static.pipeline.windows import Asset
from dafab_static.report import nothing_found
from dafab_static.spool import UNASSIGNED
from dafab_static.storage import folder_problem, fresh_sibling


def run(
    recipe: Recipe | str,
    sources: Iterable[str],
    out: str,
    *,
    device: str | None = None,
    workers: int | None = None,
    strict: bool = False,
    datetime: _dt.datetime | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> PipelineReport:
    """Run a recipe over the items of ``sources`` and write them, enriched, to ``out``.

    ``out/items.ndjson`` holds every item read (one per line, those the recipe applies to
    enriched) and ``out/assets/<collection>/<item>/`` the files the steps made; asset
    hrefs are relative to ``items.ndjson``, so the folder can move (from a GPU node to where
    the catalog is built). ``out/.dafab-pipeline.json`` marks the folder: a build given it,
    or its ``items.ndjson``, publishes ``assets/`` with the items.

    Args:
        recipe: A recipe or the path of its TOML file.
        sources: Rasters and STAC sources, as for :func:`dafab_static.build`.
        out: A local folder that does not exist yet, or is empty.
        device, workers, strict: See :class:`~dafab_static.pipeline.runner.Pipeline`.
        datetime: Acquisition time for rasters that carry none.

    Raises:
        OptionError: ``out`` exists and is not empty, or a bad recipe or device.
        InputError: with ``strict``, the first bad input or failing scene; and when no item
            was read at all.

    Example:
        >>> report = run("pipelines/default.toml", ["scenes/"], "derived/")  # doctest: +SKIP
    """
    from dafab_static.ingest import iter_records

    recipe = load_recipe(recipe, option="recipe") if isinstance(recipe, str) else recipe
    sources = list(sources)
    final = Path(out).resolve()
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise OptionError(f"--out {out}: exists and is not an empty folder")

    def put_asset(item: Mapping[str, Any], key: str, asset: Asset) -> str:
        del key  # ``staging`` is set below, before the first scene is read
        cid = str(item.get("collection") or UNASSIGNED)
        path = layout.derived_asset_path(cid, str(item["id"]), asset.filename)
        (staging / path).parent.mkdir(parents=True, exist_ok=True)
        (staging / path).write_bytes(asset.data)
        return path  # relative to items.ndjson: the folder stays whole wherever it goes

    # Checked (device, workers, weights) before anything is written beside --out.
    pipeline = Pipeline(recipe, put_asset=put_asset, device=device, workers=workers,
                        strict=strict, progress=progress)  # fmt: skip
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = fresh_sibling(final, folder=True)
    except OSError as e:
        reason = folder_problem(final.parent, e)
        raise OptionError(f"--out {out}: cannot create the folder there ({reason})") from e
    problems: list[str] = []

    def problem(error: Exception) -> None:
        if strict:
            raise error
        problems.append(str(error))

    collections = _Collections()
    try:
        records = iter_records(sources, datetime=datetime, on_error=problem,
                               on_notice=lambda message: None)  # fmt: skip
        count = 0
        with open(staging / layout.PIPELINE_ITEMS, "wb") as f:
            pairs = ((r.data, None) for r in records if r.kind == "item")
            for item, _ in pipeline.run(pairs):
                f.write(orjson.dumps(collections.link(item)) + b"\n")
                count += 1
            for card in pipeline.model_items():
                f.write(orjson.dumps(collections.link(card)) + b"\n")
        if not count:
            raise InputError(nothing_found(sources, problems))
        collections.write(staging)
        marker = {"generator": f"dafab-static {__version__}", "recipe": recipe.name,
                  "recipe_version": recipe.version, "items": count}  # fmt: skip
        (staging / layout.PIPELINE_MARKER).write_bytes(orjson.dumps(marker))
        _stop.check()
        if final.exists():
            final.rmdir()
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pipeline.report.skipped = list(problems)
    return pipeline.report


class _Collections:
    """The collections the written items name: a minimal Collection each (id, extent) in
    ``collections/``, and a ``rel=collection`` link to it on each item.

    STAC 1.1 allows an item's ``collection`` field only beside a ``collection`` link, and
    requires the field where the link is. Dropping the field instead would lose the
    collection the build files the item under. The build ignores these documents: it reads
    the folder as its ``items.ndjson`` alone and drops structural links on reading, so it
    gathers and describes each collection exactly as it did before they existed.
    """

    def __init__(self) -> None:
        self.stats: dict[str, CollectionStats] = {}

    def link(self, item: dict[str, Any]) -> dict[str, Any]:
        """``item`` with a link to its collection's document, counted in that extent."""
        cid = item.get("collection")
        if not isinstance(cid, str):
            return item
        self.stats.setdefault(cid, CollectionStats(cid)).add_item(item)
        path = layout.pipeline_collection_path(cid)
        link = {"rel": "collection", "href": layout.href(layout.PIPELINE_ITEMS, path),
                "type": JSON, "title": cid}  # fmt: skip
        others = [ln for ln in item.get("links", []) if not _is_collection_link(ln)]
        return {**item, "links": [*others, link]}

    def write(self, folder: Path) -> None:
        """Write one Collection per collection seen into ``folder/collections/``."""
        for cid, stats in sorted(self.stats.items()):
            doc = make_collection(stats, given=None, assets={})
            doc["description"] = (
                f"{cid}: the items of a dafab-static pipeline run (a build describes it in full)"
            )
            for key in ("summaries", "assets"):
                doc.pop(key, None)  # the extent only: nothing summarised yet
            path = folder / layout.pipeline_collection_path(cid)
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def _is_collection_link(link: Any) -> bool:
    return isinstance(link, dict) and link.get("rel") == "collection"

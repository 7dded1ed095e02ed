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
from dafab_static.errors import InputError, OptionError
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

    try:
        records = iter_records(sources, datetime=datetime, on_error=problem,
                               on_notice=lambda message: None)  # fmt: skip
        count = 0
        with open(staging / layout.PIPELINE_ITEMS, "wb") as f:
            pairs = ((r.data, None) for r in records if r.kind == "item")
            for item, _ in pipeline.run(pairs):
                f.write(orjson.dumps(item) + b"\n")
                count += 1
            for card in pipeline.model_items():
                f.write(orjson.dumps(card) + b"\n")
        if not count:
            raise InputError(nothing_found(sources, problems))
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

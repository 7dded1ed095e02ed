"""Run a recipe over items: read scenes in worker processes, compute on the device, merge
what the steps derive into the items, and record provenance.

Reading and computing overlap: up to ``2 * workers`` scenes are read ahead by reader
threads (GDAL reads and decodes without the GIL; see :meth:`Pipeline._pool`) or processes
while the steps run on the device. A scene that fails (unreadable file, missing bands, a
step error) does not stop the run: its item passes through unchanged and the failure is in
the report.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar, Union

from dafab_static import __version__, _processes, clock
from dafab_static.errors import DafabError, InputError, OptionError
from dafab_static.pipeline.cards import model_card
from dafab_static.pipeline.device import choose_device, describe_device
from dafab_static.pipeline.reader import SceneData, band_sources, read_scene
from dafab_static.pipeline.recipe import Recipe
from dafab_static.pipeline.registry import Step, is_builtin
from dafab_static.pipeline.report import PipelineReport
from dafab_static.pipeline.windows import Asset, StepOutput, Windows

if TYPE_CHECKING:
    import torch

PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
#: Where a step's asset goes: ``put_asset(item, key, asset)`` stores it and returns its href.
PutAsset = Callable[[Mapping[str, Any], str, Asset], str]
ProgressFn = Callable[[str, int, int | None], None]
T = TypeVar("T")
_Read = Union["Future[SceneData]", SceneData, Exception]


class Pipeline:
    """A recipe ready to run: steps created and set up on the device once.

    Args:
        recipe: A :class:`~dafab_static.pipeline.recipe.Recipe`.
        put_asset: Stores a step's file for an item and returns the asset's href.
        device: Overrides the recipe's device (``auto``, ``cpu``, ``cuda``, ``mps``).
        workers: Overrides the recipe's readers (threads or processes; 0 reads in this thread).
        strict: Raise at the first failing scene instead of reporting it.
        progress: Called as ``progress("pipeline", scenes done, None)``.
        collection: The collection every item is put in (``--collection``), for matching.
    """

    def __init__(
        self,
        recipe: Recipe,
        *,
        put_asset: PutAsset,
        device: str | None = None,
        workers: int | None = None,
        strict: bool = False,
        progress: ProgressFn | None = None,
        collection: str | None = None,
    ) -> None:
        import torch

        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 0
        ):
            raise OptionError(f"--workers {workers!r}: must be 0 (read in this thread) or more")
        self.recipe = recipe
        self.put_asset = put_asset
        where = "--device" if device else f"{recipe.source} [execution] device"
        self.device = choose_device(device or recipe.execution.device, where=where)
        self.steps: list[Step] = [spec.create() for spec in recipe.steps]
        for n, (spec, step) in enumerate(zip(recipe.steps, self.steps, strict=True), start=1):
            try:
                step.setup(self.device)  # loads weights, opens products: may find them wrong
            except (OptionError, InputError) as e:
                raise type(e)(f"{recipe.source} step {n} ({spec.name}): {e}") from None
            except Exception as e:  # a plugin's own setup code
                if is_builtin(type(step)):
                    raise  # a bug of ours: its traceback is what fixes it
                raise OptionError(f"{recipe.source} step {n} ({spec.name}): the step failed "
                                  f"to start: {type(e).__name__}: {e}") from None  # fmt: skip
        self.reads_pixels = any(s.reads_pixels for s in self.steps)
        configured = recipe.execution.workers if workers is None else workers
        self.workers = (
            max(1, min(4, (os.cpu_count() or 2) - 1)) if configured == "auto" else int(configured)
        )
        self.strict = strict
        self.collection = collection
        self.progress = progress
        self.report = PipelineReport(recipe.name, describe_device(self.device))
        self.autocast = self.device.type == "cuda" and recipe.execution.precision == "auto"
        self.when = clock.now()
        self.torch_version = torch.__version__

    def run(self, pairs: Iterable[tuple[dict[str, Any], T]]) -> Iterator[tuple[dict[str, Any], T]]:
        """Yield every ``(item, tag)``; items the recipe applies to come back enriched.

        ``tag`` travels with its item untouched (the build passes the item's source, for its
        error messages). Items the recipe does not apply to come back at once; the others
        in the order they were read.
        """
        started = time.perf_counter()
        pool = None
        pending: deque[tuple[dict[str, Any], T, _Read]] = deque()
        ahead = max(2, 2 * self.workers)
        try:
            for item, tag in pairs:
                try:
                    wanted = self.wants(item)
                except DafabError as e:  # its band description is malformed: that scene only
                    if self.strict:
                        raise
                    self.report.scenes += 1
                    self.report.failed.append(f"{item.get('id')}: {e}")
                    yield item, tag
                    continue
                if not wanted:
                    yield item, tag
                    continue
                self.report.scenes += 1
                if self.workers and pool is None and self.reads_pixels:
                    pool = self._pool()
                pending.append((item, tag, self._read(item, pool)))
                while len(pending) >= ahead:
                    item, tag, read = pending.popleft()
                    yield self._finish(item, read), tag
            while pending:
                item, tag, read = pending.popleft()
                yield self._finish(item, read), tag
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            self.report.seconds += time.perf_counter() - started

    def wants(self, item: Mapping[str, Any]) -> bool:
        """Whether the recipe applies to ``item``: its collection matches, and its raster
        assets are local files unless the recipe reads remote ones (``assets = "any"``)."""
        if not self.recipe.applies_to(self.collection or item.get("collection")):
            return False
        if self.recipe.assets == "any" or not self.reads_pixels:
            return True
        hrefs = [str(b.href) for b in band_sources(item)[0]]
        if hrefs and all(_is_local(h) for h in hrefs):
            return True
        if hrefs:
            self.report.note("remote raster assets: not read (recipe assets = 'local')", item)
        else:
            self.report.note("no raster band named by eo:bands or bands: nothing to read", item)
        return False

    def _pool(self) -> Executor:
        """Reader threads by default: GDAL releases the GIL while it reads and decodes, and
        a thread hands its arrays over without copying. Measured on 1024 x 1024 x 7 uint16
        COGs: 125 ms a scene with one reader thread, 457 ms with one reader process, which
        pickles 15 MB a scene through a pipe (and pays the process start). Processes stay
        available (``reader = "processes"``) for readers that hold the GIL."""
        processes = self.recipe.execution.reader == "processes"
        if processes and not _processes.main_reloadable():
            # A script read from stdin: no child can re-run it, and every pool would break.
            self.report.note("reader = 'processes' needs a main module on disk: threads read")
            processes = False
        if not processes:
            return ThreadPoolExecutor(self.workers, thread_name_prefix="dafab-reader")
        # Readers get this process's storage variables: GDAL reads s3:// rasters with them.
        return ProcessPoolExecutor(self.workers, mp_context=_processes.context(),
                                   initializer=_processes.init_child,
                                   initargs=_processes.parent_facts())  # fmt: skip

    def _read(self, item: dict[str, Any], pool: Executor | None) -> _Read:
        if not self.reads_pixels:
            return _empty_scene(item)
        ex = self.recipe.execution
        if pool is not None:
            return pool.submit(read_scene, item, max_size=ex.max_size, window=ex.window)
        try:
            return read_scene(item, max_size=ex.max_size, window=ex.window)
        except Exception as e:  # reported per scene, see _finish
            return e

    def _finish(self, item: dict[str, Any], read: _Read) -> dict[str, Any]:
        try:
            scene = read.result() if isinstance(read, Future) else read
            if isinstance(scene, Exception):
                raise scene
            self.report.read_seconds += scene.seconds
            self.report.bytes_read += scene.bytes_read
            item = self.apply(item, scene)
            self.report.processed += 1
        except Exception as e:
            if self.strict:
                raise
            # A bug in one scene must not cost a night's run; the type name keeps it
            # distinguishable from input problems in the summary.
            reason = str(e) if isinstance(e, DafabError) else f"{type(e).__name__}: {e}"
            self.report.failed.append(f"{item.get('id')}: {reason}")
        if self.progress:
            self.progress("pipeline", self.report.processed + len(self.report.failed), None)
        return item

    def apply(self, item: dict[str, Any], scene: SceneData) -> dict[str, Any]:
        """Run every step on one read scene and merge the outputs into a copy of ``item``."""
        import torch

        windows = _windows(item, scene, self.device)
        out = {**item, "properties": dict(item.get("properties", {})),
               "assets": dict(item.get("assets", {}))}  # fmt: skip
        extensions = set(item.get("stac_extensions", []))
        ran = []
        for step in self.steps:
            missing = [b for b in step.requires if not windows.has(b)]
            if missing:
                self.report.note(f"{step.name}: skipped, no {'/'.join(missing)} band", item)
                continue
            if step.needs_reflectance and not scene.reflectance:
                self.report.note(f"{step.name}: skipped, bands are not reflectance", item)
                continue
            started = time.perf_counter()
            with torch.inference_mode(), _autocast(self.autocast and step.autocast):
                result: StepOutput = step(windows)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            spent = time.perf_counter() - started
            self.report.step_seconds[step.name] = self.report.step_seconds.get(step.name, 0) + spent
            windows.layers.update(result.layers)
            out["properties"].update(_json_ready(step.name, result.properties))
            for key, asset in result.assets.items():
                out["assets"][key] = {"href": self.put_asset(out, key, asset), **asset.fields}
            extensions |= result.extensions
            for note in result.notes:
                self.report.note(f"{step.name}: {note}", item)
            ran.append(step)
        if ran:
            self._provenance(out["properties"], ran)
            extensions.add(PROCESSING_SCHEMA)
        out["stac_extensions"] = sorted(extensions)
        return out

    def model_items(self) -> list[dict[str, Any]]:
        """One MLM Item per encoder model the run used: what produced each ``emb:`` vector.

        Model weights made in code (the default encoder) are published beside the card;
        pretrained weights are referenced where the recipe loaded them from.
        """
        items = []
        for step in self.steps:
            card = getattr(step, "model_card", None)
            if card is None or not self.report.processed:
                continue
            fields, artifact = card()
            description = getattr(getattr(step, "encoder", None), "description", "")
            item = model_card(fields, when=self.when, description=description)
            href = (
                self.put_asset(item, "model", artifact) if isinstance(artifact, Asset) else artifact
            )
            item["assets"]["model"] = {"href": href, **item["assets"]["model"]}
            items.append(item)
        return items

    def _provenance(self, properties: dict[str, Any], ran: list[Step]) -> None:
        """processing extension fields: software, version, datetime, device and models."""
        models = [m for step in ran for m in step.models()]
        software = dict(properties.get("processing:software") or {})
        software.update({"dafab-static": __version__, "torch": self.torch_version})
        lineage = (
            f"dafab-static pipeline {self.recipe.name!r} (recipe version {self.recipe.version}) "
            f"on {self.report.device}: steps {', '.join(s.name for s in ran)}"
            + (f"; models {', '.join(models)}" if models else "")
        )
        earlier = properties.get("processing:lineage")
        properties.update({
            "processing:software": software,
            "processing:version": self.recipe.version,
            "processing:datetime": self.when,
            "processing:lineage": f"{earlier}; then {lineage}" if earlier else lineage,
            "dafab:device": self.report.device,
        })  # fmt: skip
        if models:
            properties["dafab:models"] = models


def _json_ready(step: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """``properties`` with numpy and torch scalars and arrays as JSON numbers and lists.

    A step may well return ``red.mean()`` rather than ``float(red.mean())``: writing the
    item then raised "Type is not JSON serializable: Tensor" and lost the whole run.
    Anything else JSON cannot hold fails that scene, naming the step and the property.

    Raises:
        InputError: naming the step, the property and the type.
    """
    import numpy as np
    import orjson
    import torch

    def plain(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().tolist()
        if isinstance(value, (np.ndarray, np.generic)):
            return value.tolist()
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    out = {}
    for key, value in properties.items():
        out[key] = plain(value)
        try:
            orjson.dumps(out[key])
        except TypeError as exc:
            raise InputError(
                f"step {step}: property {key!r} is a {type(value).__name__}, which JSON cannot "
                f"hold ({exc})"
            ) from None
    return out


def _windows(item: Mapping[str, Any], scene: SceneData, device: torch.device) -> Windows:
    """Cut the scene into ``window``-sized tiles on the device (pinned copy on CUDA)."""
    import numpy as np
    import torch
    from affine import Affine

    def to_device(array: Any) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if device.type == "cuda":
            return tensor.pin_memory().to(device, non_blocking=True)
        return tensor.to(device)

    c, rows, cols = scene.pixels.shape
    size = scene.window
    pr, pc = -rows % size, -cols % size

    def tiles(t: torch.Tensor) -> torch.Tensor:
        t = torch.nn.functional.pad(t, (0, pc, 0, pr))
        k = t.shape[0]
        return t.unfold(1, size, size).unfold(2, size, size).permute(1, 2, 0, 3, 4).reshape(
            -1, k, size, size)  # fmt: skip

    origins = tuple((r, col) for r in range(0, rows, size) for col in range(0, cols, size))
    if c:
        # Raw counts travel (uint16: half the bytes); reflectance is made on the device.
        raw = to_device(scene.pixels.astype(np.int32) if scene.pixels.dtype == np.uint32
                        else scene.pixels)  # fmt: skip
        mask = to_device(scene.valid)
        scale = torch.tensor(scene.scales or [1.0] * c, device=device)[:, None, None]
        offset = torch.tensor(scene.offsets or [0.0] * c, device=device)[:, None, None]
        physical = torch.where(mask, raw.to(torch.float32) * scale + offset, 0.0)
        pixels = tiles(physical)
        valid = tiles(mask[None])[:, 0]
        grid = (physical, mask)
    else:
        pixels, valid = torch.zeros((0, 0, size, size)), torch.zeros((0, size, size))
        grid = None
    qa = tiles(to_device(scene.qa)[None])[:, 0] if scene.qa is not None else None
    return Windows(
        item=item, pixels=pixels, valid=valid.bool(), bands=scene.bands, origins=origins,
        shape=(rows, cols), transform=Affine(*scene.transform), crs=scene.crs, qa=qa,
        qa_kind=scene.qa_kind, labels=scene.labels, grid=grid,
    )  # fmt: skip


def _empty_scene(item: Mapping[str, Any]) -> SceneData:
    import numpy as np

    return SceneData(
        item_id=str(item.get("id")), pixels=np.zeros((0, 0, 0), np.float32),
        valid=np.zeros((0, 0), bool), bands=(), labels=(), transform=(1, 0, 0, 0, -1, 0),
        crs="", window=256, reflectance=False,
    )  # fmt: skip


def _autocast(enabled: bool) -> Any:
    import contextlib

    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def run_pipeline(
    recipe: Recipe,
    items: Iterable[dict[str, Any]],
    *,
    put_asset: PutAsset,
    device: str | None = None,
    workers: int | None = None,
    strict: bool = False,
) -> tuple[list[dict[str, Any]], PipelineReport]:
    """Run ``recipe`` over ``items`` and return the enriched items and the report.

    Raises:
        OptionError: a bad device. InputError: with ``strict``, the first failing scene.

    Example:
        >>> items, report = run_pipeline(load_recipe("pipelines/default.toml"), items,
        ...                              put_asset=folder_assets("out"))  # doctest: +SKIP
    """
    pipeline = Pipeline(recipe, put_asset=put_asset, device=device, workers=workers,
                        strict=strict)  # fmt: skip
    enriched = [item for item, _ in pipeline.run((item, None) for item in items)]
    return enriched, pipeline.report


def _is_local(href: str) -> bool:
    return "://" not in href or href.startswith("file://")

"""Pipeline benchmark: scenes/s and MB/s of each step against the raw rasterio read rate of
the same files (the I/O roofline), on the CPU here or on a GPU, with energy where exposed.

Scenes are generated once (Sentinel-2-like COGs: 6 reflective bands and SCL, uint16,
DEFLATE, 512-px tiles) and cached in the workdir. In one run, on the same files:

1. **roofline**: ``rasterio.open(f).read()`` of every band of every scene, one process per
   reader worker as the pipeline uses; MB/s of decoded pixels and scenes/s;
2. **read-only**: the pipeline engine with a step that does nothing (reading, windowing,
   moving to the device): what the engine itself costs above the roofline;
3. each step, end to end (with the steps it depends on), and the whole default recipe:
   wall-clock scenes/s, MB/s and the fraction of the roofline, plus the step's own compute
   time per scene from the run report.

Energy: Intel RAPL (``/sys/class/powercap/intel-rapl:*``) package energy, and on CUDA the
GPU's power from ``nvidia-smi`` sampled every 100 ms; reported as joules per scene, or as
"not exposed".

Usage::

    python benchmarks/bench_pipeline.py --scenes 32 --json benchmarks/pipeline-results.json
    python benchmarks/bench_pipeline.py --device cuda --scenes 256 --size 2048   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
from bench_build import facts  # noqa: E402  (the machine facts shared by the benchmarks)

#: Each measured step, with the steps it needs before it.
STEPS: dict[str, list[dict[str, Any]]] = {
    "indices": [{"name": "indices"}],
    "cloud_mask": [{"name": "cloud_mask"}],
    "land_cover": [{"name": "cloud_mask"}, {"name": "land_cover"}],
    "embedding": [{"name": "embedding"}],
    "embedding_chips": [{"name": "embedding", "chips": True}],
    "thumbnail": [{"name": "thumbnail"}],
    "annotations": [{"name": "cloud_mask"}, {"name": "land_cover"}, {"name": "annotations"}],
}


def generate(folder: Path, scenes: int, size: int) -> list[Path]:
    """Sentinel-2-like COGs with blobs of water, vegetation, soil and cloud (cached), made
    in parallel: one scene a process (a 2048-px scene takes about 5 s to make)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(scenes):
        when = f"2024{1 + k % 12:02d}{1 + k % 28:02d}"
        name = f"S2A_MSIL2A_{when}T103031_N0510_R108_T32TNS_{when}T150000"
        paths.append(folder / f"{name}_{k:04d}.tif")
    todo = [(k, p, size) for k, p in enumerate(paths) if not p.exists()]
    if todo:
        with ProcessPoolExecutor(min(len(todo), os.cpu_count() or 1)) as pool:
            list(pool.map(_make_scene, *zip(*todo, strict=True)))
    return paths


def _make_scene(k: int, path: Path, size: int) -> None:
    import rasterio
    import rasterio.shutil
    from affine import Affine

    spectra = np.array(
        [
            [0.06, 0.05, 0.03, 0.015, 0.01, 0.005],
            [0.03, 0.07, 0.035, 0.38, 0.18, 0.08],
            [0.10, 0.14, 0.18, 0.26, 0.32, 0.28],
            [0.55, 0.56, 0.58, 0.60, 0.45, 0.35],
        ]
    )
    scl_of = np.array([6, 4, 5, 9], np.uint16)
    rng = np.random.default_rng(k)
    coarse = rng.random((9, 9))
    idx = np.linspace(0, 8, size).astype(int)
    field = coarse[idx][:, idx]
    cover = np.digitize(field, [0.3, 0.6, 0.85])
    refl = spectra[cover].transpose(2, 0, 1) + rng.normal(0, 0.005, (6, size, size))
    data = np.empty((7, size, size), np.uint16)
    data[:6] = np.clip(np.rint((refl + 0.1) / 1e-4), 1, 65535)
    data[6] = scl_of[cover]
    profile = {
        "driver": "COG",
        "width": size,
        "height": size,
        "count": 7,
        "dtype": "uint16",
        "crs": "EPSG:32632",
        "transform": Affine(10, 0, 500000, 0, -10, 5100000),
        "nodata": 0,
        "compress": "DEFLATE",
        "blocksize": 512,
    }
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(
        tmp,
        "w",
        **{**profile, "driver": "GTiff", "tiled": True, "blockxsize": 512, "blockysize": 512},
    ) as dst:
        dst.write(data)
        for i, band in enumerate(("B02", "B03", "B04", "B08", "B11", "B12", "SCL"), 1):
            dst.set_band_description(i, band)
        dst.scales = [1e-4] * 6 + [1.0]
        dst.offsets = [-0.1] * 6 + [0.0]

    rasterio.shutil.copy(tmp, path, driver="COG", compress="DEFLATE", blocksize=512)
    tmp.unlink()


def _read_all(path: str) -> int:
    import rasterio

    with rasterio.open(path) as src:
        return int(src.read().nbytes)


def roofline(paths: list[Path], workers: int) -> dict[str, float]:
    """Raw rasterio reads of every band of every file, in ``workers`` processes."""
    started = time.perf_counter()
    if workers:
        with ProcessPoolExecutor(workers) as pool:
            nbytes = sum(pool.map(_read_all, map(str, paths)))
    else:
        nbytes = sum(_read_all(str(p)) for p in paths)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "scenes_per_s": len(paths) / seconds,
        "mb_per_s": nbytes / 1e6 / seconds,
        "bytes": nbytes,
    }


class _Energy:
    """Package energy (RAPL) and GPU power (nvidia-smi) over a block, where exposed."""

    def __init__(self, cuda: bool) -> None:
        self.rapl = sorted(Path("/sys/class/powercap").glob("intel-rapl:*/energy_uj"))
        self.cuda = cuda
        self.samples: list[float] = []

    def __enter__(self) -> _Energy:
        self.start = [int(p.read_text()) for p in self.rapl if os.access(p, os.R_OK)]
        self.stop = threading.Event()
        if self.cuda:
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        self.t0 = time.perf_counter()
        return self

    def _sample(self) -> None:
        while not self.stop.is_set():
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=power.draw", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
            ).stdout.split()
            if out:
                self.samples.append(float(out[0]))
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.stop.set()
        end = [int(p.read_text()) for p in self.rapl if os.access(p, os.R_OK)]
        self.cpu_joules = (sum(end) - sum(self.start)) / 1e6 if end and self.start else None
        self.gpu_joules = statistics.mean(self.samples) * self.seconds if self.samples else None


def run_recipe(
    name: str,
    steps: list[dict[str, Any]],
    items: list[dict[str, Any]],
    device: str,
    workers: int,
    max_size: int,
) -> dict[str, Any]:
    from dafab_static.pipeline import Pipeline, parse_recipe

    recipe = parse_recipe(
        {"pipeline": {"name": name}, "execution": {"max_size": max_size}, "steps": steps}
    )
    pipeline = Pipeline(
        recipe, put_asset=lambda item, key, asset: asset.filename, device=device, workers=workers
    )
    with _Energy(pipeline.device.type == "cuda") as energy:
        for _ in pipeline.run((item, None) for item in items):
            pass
    report = pipeline.report
    if report.failed:
        raise SystemExit(f"{name}: {report.failed[:3]}")
    n = report.processed
    return {
        "scenes": n,
        "seconds": report.seconds,
        "scenes_per_s": n / report.seconds,
        "mb_per_s": report.bytes_read / 1e6 / report.seconds,
        "read_seconds_in_workers": report.read_seconds,
        "step_ms_per_scene": {k: 1000 * v / n for k, v in report.step_seconds.items()},
        "device": report.device,
        "cpu_joules_per_scene": energy.cpu_joules / n if energy.cpu_joules else None,
        "gpu_joules_per_scene": energy.gpu_joules / n if energy.gpu_joules else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=32)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--workers", type=int, default=None, help="reader processes (default: auto)"
    )
    parser.add_argument("--steps", default=",".join([*STEPS, "default"]))
    parser.add_argument(
        "--workdir", default=str(Path(tempfile.gettempdir()) / "dafab-bench-pipeline")
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from dafab_static.ingest.rasters import read_raster
    from dafab_static.pipeline import Pipeline, load_recipe, parse_recipe

    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}", file=sys.stderr)
    paths = generate(Path(args.workdir) / f"{args.size}px", args.scenes, args.size)
    items = [read_raster(str(p)) for p in paths]
    probe = Pipeline(
        parse_recipe({"steps": [{"name": "indices"}]}),
        put_asset=lambda *a: "",
        device=args.device,
        workers=args.workers,
    )
    workers = probe.workers
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            **facts(Path(args.workdir)),
            "device": probe.report.device,
            "reader_workers": workers,
        },
        "scenes": len(paths),
        "size_px": args.size,
    }
    import torch

    torch.manual_seed(0)
    # Warm-up: first calls pay for lazy imports and kernel selection.
    run_recipe(
        "warmup", [{"name": "indices"}, {"name": "embedding"}], items[:2], args.device, 0, args.size
    )
    results["roofline"] = roofline(paths, workers)
    print(
        f"roofline: {results['roofline']['scenes_per_s']:.2f} scenes/s, "
        f"{results['roofline']['mb_per_s']:.1f} MB/s",
        file=sys.stderr,
    )
    rows: dict[str, Any] = {}
    wanted = args.steps.split(",")
    plan = {"read-only": [{"name": "benchmarks.bench_pipeline:Nothing"}]}
    plan.update({k: v for k, v in STEPS.items() if k in wanted})
    if "default" in wanted:
        plan["default"] = [
            {"name": s.name, **s.params} for s in load_recipe(REPO / "pipelines/default.toml").steps
        ]
    for name, steps in plan.items():
        row = run_recipe(name, steps, items, args.device, workers, args.size)
        row["fraction_of_roofline"] = row["scenes_per_s"] / results["roofline"]["scenes_per_s"]
        rows[name] = row
        print(
            f"{name:16s} {row['scenes_per_s']:7.2f} scenes/s {row['mb_per_s']:8.1f} MB/s "
            f"{100 * row['fraction_of_roofline']:5.1f}% of roofline  "
            f"steps ms/scene {_rounded(row['step_ms_per_scene'])}",
            file=sys.stderr,
        )
    results["recipes"] = rows
    text = json.dumps(results, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


def _rounded(values: dict[str, float]) -> str:
    return json.dumps({k: round(v, 1) for k, v in values.items()})


from dafab_static.pipeline import Step, StepOutput, Windows  # noqa: E402


class Nothing(Step):
    """Reads the scene and returns nothing: the engine's own cost above the roofline."""

    def __call__(self, windows: Windows) -> StepOutput:
        return StepOutput()


if __name__ == "__main__":
    main()

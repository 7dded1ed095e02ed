"""CPU/GPU agreement of the default recipe on the pipeline benchmark's scenes.

The README states the tolerance: reductions (means, percentiles, indices) within 1e-4, class
shares and cloud cover within a few pixels' worth of percent, embeddings at cosine >= 0.999
under bfloat16 autocast. ``tests/pipeline/test_known_answers.py`` checks it on one small
synthetic scene; this script measures it on real-sized scenes and reports, per property,
the largest difference seen, so that the stated tolerance can be compared with the figures.

Usage (on a machine with CUDA)::

    python benchmarks/gpu_agreement.py --scenes 8 --size 1024 --json agreement.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
from bench_pipeline import generate  # noqa: E402  (the same scenes as the throughput runs)


def run(items: list[dict[str, Any]], device: str) -> list[dict[str, Any]]:
    from dafab_static.pipeline import load_recipe, run_pipeline

    enriched, report = run_pipeline(
        load_recipe(REPO / "pipelines/default.toml"),
        items,
        put_asset=lambda item, key, asset: asset.filename,
        device=device,
        workers=0,
    )
    if report.failed:
        raise SystemExit(f"{device}: {report.failed[:3]}")
    return enriched


def compare(cpu: list[dict[str, Any]], gpu: list[dict[str, Any]]) -> dict[str, Any]:
    """Largest |cpu - gpu| per numeric property, and the lowest embedding cosine."""
    worst: dict[str, float] = {}
    cosines: dict[str, float] = {}
    for a, b in zip(cpu, gpu, strict=True):
        for key, value in a["properties"].items():
            other = b["properties"].get(key)
            if key.startswith("emb:"):
                u, v = np.asarray(value, np.float64), np.asarray(other, np.float64)
                cos = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
                cosines[key] = min(cosines.get(key, 1.0), cos)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                worst[key] = max(worst.get(key, 0.0), abs(float(value) - float(other)))
    return {"max_abs_difference": dict(sorted(worst.items())), "min_embedding_cosine": cosines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU")
    parser.add_argument(
        "--workdir", default=str(Path(tempfile.gettempdir()) / "dafab-bench-pipeline")
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from dafab_static.ingest.rasters import read_raster

    paths = generate(Path(args.workdir) / f"{args.size}px", args.scenes, args.size)
    items = [read_raster(str(p)) for p in paths]
    cpu = run(items, "cpu")
    gpu = run(items, args.device)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "scenes": len(items),
        "size_px": args.size,
        "devices": [cpu[0]["properties"]["dafab:device"], gpu[0]["properties"]["dafab:device"]],
        **compare(cpu, gpu),
    }
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""Small stac-geoparquet indexes with item embeddings, and the brute-force answer to check
kNN search against."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dafab_static import index
from tests.builds.generate import item

MODEL = "test-model"
COLUMN = f"emb:{MODEL}"
DIM = 64


def embedded_items(n: int = 240, *, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` items in collections ``alpha`` and ``beta`` over June-August 2024, each with a
    random unit vector in ``emb:test-model``, plus:

    - ``twin`` (in ``beta``): item ``gen-0000007``'s vector with a little noise, its
      nearest neighbour by far;
    - every 25th item has no embedding;
    - vector lengths vary from 0.5 to 6.5 (the contract says unit vectors; cosine must not
      rely on it, so a dot product would rank these differently).
    """
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n + 1, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = []
    for i in range(n):
        collection = "alpha" if i % 2 else "beta"
        it = item(i, collection=collection, month=6 + i % 3, day=1 + i % 28)
        if i % 25 != 3:
            it["properties"][COLUMN] = (vectors[i] * (0.5 + i % 7)).tolist()
        items.append(it)
    twin = item(n, collection="beta", month=7, day=3, item_id="twin")
    near = vectors[7] + 0.01 * vectors[n]
    twin["properties"][COLUMN] = (near / np.linalg.norm(near)).tolist()
    return [*items, twin]


def write_index(
    folder: Path,
    items: list[dict[str, Any]],
    *,
    row_group_size: int = index.ROW_GROUP_SIZE,
    fixed: bool = True,
    extra: Callable[[pa.Table], pa.Table] | None = None,
    sidecar: bool = False,
) -> Path:
    """One stac-geoparquet file per collection in ``folder``, written by the index writer.

    ``fixed`` stores embeddings as ``fixed_size_list<float32, 64>`` (the index contract);
    otherwise as stac-geoparquet's ``list<double>``. Small ``row_group_size`` values make
    several row groups per file. ``extra`` may change each table before it is encoded.
    ``sidecar`` also writes the vectors sidecar a build writes (``index.encode_vectors``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    by_collection: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        by_collection.setdefault(it["collection"], []).append(it)
    for collection, members in sorted(by_collection.items()):
        table = index.to_table(members)
        if COLUMN in table.column_names:
            kind = pa.list_(pa.float32(), DIM) if fixed else pa.list_(pa.float64())
            position = table.column_names.index(COLUMN)
            table = table.set_column(position, COLUMN, table[COLUMN].cast(kind))
        if extra is not None:
            table = extra(table)
        data, _ = index.encode(table, {"id": collection}, path=f"{collection}.parquet")
        # Rewrite with small row groups; the schema metadata (geo, stac-geoparquet) stays.
        encoded = pq.read_table(io.BytesIO(data))
        pq.write_table(encoded, folder / f"{collection}.parquet", row_group_size=row_group_size)
        parquet = (folder / f"{collection}.parquet").read_bytes()
        vectors = index.encode_vectors(encoded, parquet=parquet) if sidecar else None
        if vectors is not None:
            (folder / index.vectors_path(f"{collection}.parquet")).write_bytes(vectors)
    return folder


def brute_force(
    items: list[dict[str, Any]],
    query: np.ndarray,
    k: int,
    keep: Callable[[dict[str, Any]], bool] = lambda it: True,
    column: str = COLUMN,
) -> list[tuple[str, float]]:
    """The exact top ``k`` (id, cosine similarity) in float64, best first, ties by id."""
    scored = []
    for it in items:
        vector = it["properties"].get(column)
        if vector is None or not keep(it):
            continue
        v = np.asarray(vector, dtype=np.float64)
        scored.append((float(v @ query / (np.linalg.norm(v) * np.linalg.norm(query))), it["id"]))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [(i, s) for s, i in scored[:k]]

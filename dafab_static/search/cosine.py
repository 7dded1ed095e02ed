"""Cosine similarity of stored vectors with a query, and a running top-k: the arithmetic of
kNN search (:mod:`.knn`), apart from the scan that feeds it.

Vectors arrive as Arrow arrays, a row group at a time, and reach torch without a copy
(DLPack); torch runs on the GPU when there is one.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dafab_static.errors import QueryError

# (-score, file, row group, row): sorting these gives best first. Ties are then broken by
# id, and two items sharing an id (in two collections) by this position.
Entry = tuple[float, int, int, int]


def vectors(
    array: pa.Array, dim: int, *, where: str
) -> tuple[pa.Array, np.ndarray | None, np.ndarray | None]:
    """The float values of a column of vectors as one flat array, ``dim`` per row, ready
    for :meth:`Scorer.candidates`; which rows they belong to; and which of them are null.

    Args:
        array: a ``fixed_size_list`` or ``list`` column of floats (one row group's).
        dim: the query's length, which every vector must have.
        where: the column and file, for the error message.

    Returns:
        (values, rows, null): ``rows`` is ``None`` when the values hold every row, else the
        positions of the rows they hold (a list column's non-null ones). ``null`` marks the
        null rows the values still hold (a fixed-size column's, read without a copy: their
        values are undefined), for the scorer to drop. A vector with a null value is NaN
        there, so it scores NaN and is dropped in both storages (the fixed-size one scored
        it as if the value were 0).

    Raises:
        QueryError: a vector whose length differs from the query's.

    >>> column = pa.array([[3.0, 4.0], None, [None, 1.0]], pa.list_(pa.float32(), 2))
    >>> values, rows, null = vectors(column, 2, where="emb:m")
    >>> values.to_pylist()[:2], values.to_pylist()[4:], rows, null.tolist()
    ([3.0, 4.0], [nan, 1.0], None, [False, True, False])
    """
    kind = array.type
    if pa.types.is_fixed_size_list(kind):
        if kind.list_size != dim:
            raise QueryError(
                f"near: the query vector has {dim} values, but {where} has {kind.list_size}"
            )
        # The child array spans the parent's offset: slice it, no copy. Taking the non-null
        # rows out instead copied every vector of the row group (68 ms per million).
        flat = array.values.slice(array.offset * dim, len(array) * dim)
        if flat.null_count:
            flat = pc.fill_null(flat, math.nan)
        null = None
        if array.null_count:
            null = ~array.is_valid().to_numpy(zero_copy_only=False)
        return flat, None, null
    kept = None
    if array.null_count:
        kept = np.flatnonzero(array.is_valid().to_numpy(zero_copy_only=False))
        array = array.take(pa.array(kept))
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    wrong = np.flatnonzero(lengths != dim)
    if len(wrong):
        raise QueryError(
            f"near: the query vector has {dim} values, but {where} has a vector of "
            f"{lengths[wrong[0]]}"
        )
    flat = array.flatten()
    if flat.null_count:
        flat = pc.fill_null(flat, math.nan)
    return flat, kept, None


class Scorer:
    """Cosine similarity of row vectors with the query, in torch (on CUDA when present)."""

    def __init__(self, query: np.ndarray) -> None:
        import torch

        self.torch = torch
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dim = len(query)
        # The raw query and its norm, not a pre-normalised query: an item equal to the query
        # then scores exactly 1 whenever its dot product and norms are exact.
        self.query = {
            dtype: torch.tensor(query, dtype=dtype, device=self.device)
            for dtype in (torch.float32, torch.float64)
        }
        self.norm = {dtype: torch.linalg.vector_norm(q) for dtype, q in self.query.items()}
        self.threads = torch.get_num_threads()
        self._local = threading.local()

    # Why one thread: the scan already runs one thread per file in flight, and torch starts
    # an OpenMP team per calling thread for each small op. On 2 cores with other work
    # running, scoring 1M vectors took 2.3 s with torch's default 2 threads against 0.14 s
    # with 1 (measured: team members spin-waiting on descheduled ones).
    def serial(self) -> None:
        """Score on one CPU thread from now on, in the calling thread (a scan worker)."""
        if self.device.type == "cpu" and not getattr(self._local, "serial", False):
            # Changes this thread's OpenMP and MKL counts only, and torch's default for new
            # threads, which restore() puts back.
            self.torch.set_num_threads(1)
            self._local.serial = True

    def restore(self) -> None:
        """Put torch's thread count back as the search found it (call when it ends)."""
        if self.device.type == "cpu":
            self.torch.set_num_threads(self.threads)

    def candidates(
        self, values: pa.Array, threshold: float, k: int, null: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows (positions) that may enter the top ``k`` and their scores: those scoring at
        least the running ``threshold`` and the batch's own k-th best (ties kept, so the
        final order by id is exact). Rows marked in ``null`` are never candidates."""
        torch = self.torch
        # DLPack shares Arrow's buffer; torch.from_numpy would warn that it is read-only.
        matrix = torch.from_dlpack(values).view(-1, self.dim)
        if matrix.dtype not in (torch.float32, torch.float64):
            matrix = matrix.float()
        matrix = matrix.to(self.device, non_blocking=True)
        norms = torch.linalg.vector_norm(matrix, dim=1) * self.norm[matrix.dtype]
        scores = (matrix @ self.query[matrix.dtype]) / norms
        # Zero vectors (nulls) score NaN, broken ones NaN or inf: neither is a neighbour.
        # As -inf they are dropped below, and cannot be the batch's k-th best (topk ranks
        # NaN above every number).
        scores = torch.nan_to_num(scores, nan=-math.inf, posinf=-math.inf)
        if null is not None:
            scores[torch.from_numpy(null).to(self.device)] = -math.inf
        best, where = torch.topk(scores, min(k, len(scores)))
        low = float(best[-1]) if len(scores) > k else -math.inf
        cut = max(threshold, low)
        if float(best[0]) < cut or float(best[0]) == -math.inf:
            return _NONE, _NONE  # the usual case once the running top-k has filled up
        if cut > low:
            # Nothing outside the batch's top k can reach the cut: pick among those.
            keep = best >= cut
            picked, picked_scores = where[keep], best[keep]
        else:  # the batch's k-th best is the cut: rows tying with it count too
            picked = torch.nonzero((scores >= cut) & (scores > -math.inf)).flatten()
            picked_scores = scores[picked]
        return picked.cpu().numpy(), picked_scores.double().cpu().numpy()


_NONE = np.empty(0, dtype=np.int64)


class TopK:
    """A bounded running top-k, shared by threads: the best ``k`` entries and any that tie
    with the k-th, best first."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.entries: list[Entry] = []
        self.threshold = -math.inf
        self._lock = threading.Lock()

    def offer(self, file: int, group: int, rows: np.ndarray, scores: np.ndarray) -> None:
        """Add rows ``rows`` of row group ``group`` of file ``file`` with their scores."""
        new = [(-s, file, group, r) for s, r in zip(scores.tolist(), rows.tolist(), strict=True)]
        with self._lock:
            entries = sorted(self.entries + new)
            if len(entries) >= self.k:
                last = entries[self.k - 1][0]
                cut = self.k
                while cut < len(entries) and entries[cut][0] == last:
                    cut += 1
                del entries[cut:]
                self.threshold = -last
            self.entries = entries

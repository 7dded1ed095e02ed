"""ordered_map: the scan's thread pool. Results in input order, a bounded number of tasks
ahead of the consumer, more of them while results are small."""

from __future__ import annotations

import threading

import pytest

from dafab_static.search import files


def _ahead(weight: object, n: int = 200) -> tuple[list[int], int]:
    """Run ordered_map over range(n); return its results and the most tasks that had
    started beyond the one the consumer was handed."""
    started = []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
        return i

    out, most = [], 0
    for result in files.ordered_map(work, range(n), workers=2, weight=weight):  # type: ignore[arg-type]
        with lock:
            most = max(most, len(started) - len(out) - 1)
        out.append(result)
    return out, most


def test_results_come_in_input_order_with_a_narrow_window_by_default() -> None:
    out, most = _ahead(None)
    assert out == list(range(200))
    assert most <= 4  # 2 * workers


def test_small_results_widen_the_window_up_to_its_cap() -> None:
    out, most = _ahead(lambda r: 100)
    assert out == list(range(200))
    assert 4 < most <= files.WIDE_WINDOW


@pytest.mark.parametrize("size", [files.WINDOW_BYTES // 2, files.WINDOW_BYTES * 4])
def test_large_results_keep_the_window_narrow(size: int) -> None:
    # Two results already fill the byte budget: the window never grows past 2 * workers.
    out, most = _ahead(lambda r: size)
    assert out == list(range(200))
    assert most <= 4

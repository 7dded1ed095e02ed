"""Parsed Parquet footers kept between searches, within a byte budget."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

import dafab_static
from dafab_static.errors import QueryError
from dafab_static.search import files, parquet
from tests.builds.generate import item, write_ndjson


def test_the_budget_admits_until_full_and_takes_back_what_is_released() -> None:
    budget = files.FooterBudget(limit=100 * files.FooterBudget.EXPANSION)
    first = budget.admit(60)
    assert first == 60 * files.FooterBudget.EXPANSION
    assert budget.admit(50) == 0  # would pass the limit: not kept
    second = budget.admit(40)
    assert second and budget.used == budget.limit
    budget.release(first)
    assert budget.admit(50) and budget.used == 90 * files.FooterBudget.EXPANSION


@pytest.mark.parametrize(("value", "megabytes"), [("", 256), ("0", 0), ("64", 64), (" 1.5 ", 1.5)])
def test_the_limit_comes_from_the_environment(
    value: str, megabytes: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAFAB_FOOTER_CACHE_MB", value)
    assert files.FooterBudget().limit == int(megabytes * 1024 * 1024)


@pytest.mark.parametrize("value", ["lots", "-1", "nan"])
def test_a_bad_limit_names_the_variable(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAFAB_FOOTER_CACHE_MB", value)
    with pytest.raises(QueryError, match=f"DAFAB_FOOTER_CACHE_MB={value!r}: expected a number"):
        _ = files.FooterBudget().limit


def _build(root: Path, name: str, items: list[dict[str, Any]]) -> Path:
    out = root / name
    assert dafab_static.build([str(write_ndjson(root / f"{name}.ndjson", items))], str(out)).ok
    return out


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For every reader opened: whether it was handed a kept footer."""
    init = parquet.Reader.__init__
    seen: list[bool] = []

    def spy(self: parquet.Reader, source: Any, layout: Any = None, metadata: Any = None) -> None:
        seen.append(metadata is not None)
        init(self, source, layout, metadata)

    monkeypatch.setattr(parquet.Reader, "__init__", spy)
    return seen


@pytest.mark.parametrize("limit", [1 << 30, 0])
def test_kept_footers_are_reused_and_change_no_result(
    tmp_path: Path, limit: int, opens: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [item(i, month=6 + i % 2, day=1 + i % 28) for i in range(300)]
    catalog = _build(tmp_path, "catalog", items)
    files.CACHE.clear()
    monkeypatch.setattr(files, "FOOTERS", files.FooterBudget(limit=limit))
    query = {"bbox": [10.0, 45.0, 12.0, 45.3], "filter": "eo:cloud_cover > 5"}
    first = list(dafab_static.search(str(catalog), **query))
    assert opens == [False, False]  # two partitions, each parsed once on first use
    second = list(dafab_static.search(str(catalog), **query))
    assert second == first and len(first) > 10
    assert opens[2:] == [bool(limit)] * 2
    kept = files.FOOTERS.used
    assert (kept > 0) == bool(limit)
    files.CACHE.clear()  # closing the cached files gives their footers' room back
    assert files.FOOTERS.used == 0


def test_a_rebuilt_index_is_not_read_with_its_old_footer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files.CACHE.clear()
    monkeypatch.setattr(files, "FOOTERS", files.FooterBudget(limit=1 << 30))
    catalog = _build(tmp_path, "catalog", [item(i) for i in range(50)])
    assert dafab_static.search(str(catalog)).count() == 50
    index = next(catalog.glob("index/*/year=*/month=*/items.parquet"))
    old = index.stat()
    fresh = _build(tmp_path, "fresh", [item(i) for i in range(80)])
    replacement = next(fresh.glob("index/*/year=*/month=*/items.parquet"))
    index.write_bytes(replacement.read_bytes())
    # A new size, and a later modification time even on a coarse clock.
    later = max(time.time_ns(), old.st_mtime_ns + 1_000_000_000)
    os.utime(index, ns=(later, later))
    found = list(dafab_static.search(str(index)))
    assert len(found) == 80
    files.CACHE.clear()


@pytest.mark.parametrize("variable", [None, "", "64"])
def test_the_cli_keeps_no_footer_unless_told(
    tmp_path: Path, variable: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One CLI search, then the process ends: kept footers would only raise its peak."""
    from typer.testing import CliRunner

    from dafab_static.cli import app

    catalog = _build(tmp_path, "catalog", [item(i) for i in range(50)])
    files.CACHE.clear()
    if variable is None:
        monkeypatch.delenv("DAFAB_FOOTER_CACHE_MB", raising=False)
    else:
        monkeypatch.setenv("DAFAB_FOOTER_CACHE_MB", variable)
    budget = files.FooterBudget()
    monkeypatch.setattr(files, "FOOTERS", budget)
    run = CliRunner().invoke(
        app, ["search", str(catalog), "--filter", "eo:cloud_cover > 5", "--format", "count"]
    )
    assert run.exit_code == 0, run.output
    assert run.output.strip() == "44"
    assert files.FOOTERS is budget  # the process's own budget is back
    assert (budget.used > 0) == bool(variable)
    files.CACHE.clear()

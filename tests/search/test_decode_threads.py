"""Arrow's column threads: on for a search of one file, off when files decode in parallel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dafab_static
from dafab_static.search import parquet
from tests.builds.generate import item, write_ndjson


@pytest.fixture(scope="module")
def two_months(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("threads")
    items = [item(i, month=6 + i % 2, day=1 + i % 28) for i in range(200)]
    out = root / "catalog"
    assert dafab_static.build([str(write_ndjson(root / "items.ndjson", items))], str(out)).ok
    return out


@pytest.mark.parametrize(
    ("query", "files", "threads"),
    [
        ({}, 2, False),  # two partitions: each decodes on its own worker
        ({"datetime": "2024-06-01/2024-06-30"}, 1, True),  # one partition: Arrow's threads
    ],
)
def test_threads_follow_the_number_of_files(
    two_months: Path,
    query: dict[str, Any],
    files: int,
    threads: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read = parquet.Reader.read_row_group
    seen: list[tuple[int, bool]] = []

    def spy(self: parquet.Reader, index: int, columns: Any, *, stop: int | None = None) -> Any:
        seen.append((id(self), self.threads))
        return read(self, index, columns, stop=stop)

    monkeypatch.setattr(parquet.Reader, "read_row_group", spy)
    found = list(dafab_static.search(str(two_months), **query))
    assert len(found) == 200 // (3 - files)
    assert len({reader for reader, _ in seen}) == files
    assert {flag for _, flag in seen} == {threads}

"""kNN over the vectors sidecar a build writes beside each partition: same answers as the
Parquet column, used when present, ignored when it does not match its file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import dafab_static
from dafab_static import index
from tests.search.embeddings import COLUMN, brute_force, embedded_items, write_index

QUERY = "gen-0000007"


def ranked(folder: Path, **params: object) -> list[tuple[str, float]]:
    table = dafab_static.search(str(folder), near=QUERY, k=8, **params).to_arrow()  # type: ignore[arg-type]
    return list(zip(table["id"].to_pylist(), table["dafab:score"].to_pylist(), strict=True))


@pytest.mark.parametrize("row_group_size", [7, 8192])
@pytest.mark.parametrize(
    "params", [{}, {"filter": "datetime >= TIMESTAMP('2024-07-01T00:00:00Z')"}]
)
def test_sidecar_gives_the_parquet_answers(
    tmp_path: Path, row_group_size: int, params: dict[str, object]
) -> None:
    items = embedded_items()
    with_sidecar = write_index(tmp_path / "a", items, row_group_size=row_group_size, sidecar=True)
    without = write_index(tmp_path / "b", items, row_group_size=row_group_size)
    assert sorted(p.name for p in with_sidecar.glob("*.vectors.arrow")) == [
        "alpha.vectors.arrow", "beta.vectors.arrow"]  # fmt: skip
    got = ranked(with_sidecar, **params)
    assert [i for i, _ in got] == [i for i, _ in ranked(without, **params)]
    query = np.asarray(next(i for i in items if i["id"] == QUERY)["properties"][COLUMN])
    keep = (lambda it: it["properties"]["datetime"] >= "2024-07") if params else (lambda it: True)
    expected = brute_force(items, query, 8, keep=keep)
    assert [i for i, _ in got] == [i for i, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_the_sidecar_is_what_is_read(tmp_path: Path) -> None:
    """A sidecar whose vectors differ from the Parquet column's decides the answer: the proof
    that search reads it (a build never writes them apart)."""
    items = embedded_items()
    folder = write_index(tmp_path, items, sidecar=True)
    path = folder / "beta.vectors.arrow"
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    ids = table["id"].to_pylist()
    vectors = table[COLUMN].combine_chunks()
    flat = vectors.values.to_numpy(zero_copy_only=False).reshape(len(ids), -1).copy()
    query = np.asarray(next(i for i in items if i["id"] == QUERY)["properties"][COLUMN])
    flat[ids.index("gen-0000010")] = query  # in the sidecar only: now the query's twin
    changed = table.set_column(1, COLUMN, pa.FixedSizeListArray.from_arrays(
        pa.array(flat.reshape(-1), pa.float32()), flat.shape[1]))  # fmt: skip
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, changed.schema) as writer:
        writer.write_table(changed)
    found = [i for i, _ in ranked(folder)]
    assert found[:2] == [QUERY, "gen-0000010"] or found[:2] == ["gen-0000010", QUERY]


def test_a_sidecar_of_another_file_is_ignored(tmp_path: Path) -> None:
    items = embedded_items()
    folder = write_index(tmp_path, items, sidecar=True)
    # A sidecar left over from an older, shorter partition: the row counts disagree.
    parquet = (folder / "beta.parquet").read_bytes()  # even with this file's fingerprint
    short = index.encode_vectors(index.to_table(items[:3]).cast(
        pa.schema([f.with_type(pa.list_(pa.float32(), 64)) if f.name == COLUMN else f
                   for f in index.to_table(items[:3]).schema])), parquet=parquet)  # fmt: skip
    assert short is not None
    (folder / "beta.vectors.arrow").write_bytes(short)
    query = np.asarray(next(i for i in items if i["id"] == QUERY)["properties"][COLUMN])
    assert [i for i, _ in ranked(folder)] == [i for i, _ in brute_force(items, query, 8)]


def test_a_sidecar_the_parquet_file_was_rewritten_since_is_ignored(tmp_path: Path) -> None:
    """Another tool rewrote a partition with as many rows: the sidecar's old vectors were
    scored, and the items returned carried the new ones."""
    write_index(tmp_path, embedded_items(seed=1), sidecar=True)
    sidecars = sorted(p.name for p in tmp_path.glob("*.vectors.arrow"))
    items = embedded_items(seed=2)
    write_index(tmp_path, items)  # the Parquet files only
    assert sorted(p.name for p in tmp_path.glob("*.vectors.arrow")) == sidecars != []
    query = np.asarray(next(i for i in items if i["id"] == QUERY)["properties"][COLUMN])
    assert [i for i, _ in ranked(tmp_path)] == [i for i, _ in brute_force(items, query, 8)]


def test_sidecars_are_opened_once_while_their_files_stay_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept between searches (opening and fingerprinting cost ~0.7 ms a file), and opened
    again once the Parquet file is rewritten, in the same process."""
    from dafab_static.search import knn

    opened: list[str] = []
    original = knn._open_sidecar

    def counting(partition: str, path: str) -> pa.Table | None:
        opened.append(Path(path).name)
        return original(partition, path)

    monkeypatch.setattr(knn, "_open_sidecar", counting)
    first = embedded_items(seed=1)
    write_index(tmp_path, first, sidecar=True)
    query = np.asarray(next(i for i in first if i["id"] == QUERY)["properties"][COLUMN])
    truth = [i for i, _ in brute_force(first, query, 8)]
    assert [i for i, _ in ranked(tmp_path)] == truth
    assert sorted(opened) == ["alpha.vectors.arrow", "beta.vectors.arrow"]
    assert [i for i, _ in ranked(tmp_path)] == truth
    assert len(opened) == 2  # kept

    second = embedded_items(seed=2)
    write_index(tmp_path, second)  # the Parquet files only: the kept sidecars are stale
    query = np.asarray(next(i for i in second if i["id"] == QUERY)["properties"][COLUMN])
    assert [i for i, _ in ranked(tmp_path)] == [i for i, _ in brute_force(second, query, 8)]
    assert len(opened) == 4

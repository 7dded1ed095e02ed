"""Exact cosine kNN search (``near``), alone and after the STAC/CQL2 filters, checked
against a float64 brute force over the same items."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dafab_static
from dafab_static import QueryError, index, search
from dafab_static.options import BuildOptions
from tests.builds.generate import write_ndjson
from tests.search.embeddings import COLUMN, DIM, brute_force, embedded_items, write_index

K = 15


@pytest.fixture(scope="module")
def embedded() -> list[dict[str, Any]]:
    return embedded_items()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, embedded: list[dict[str, Any]]) -> Path:
    """Both collections' files, 16 rows per row group (several row groups per file)."""
    return write_index(tmp_path_factory.mktemp("knn"), embedded, row_group_size=16)


def _query(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM)


def _pairs(result: Any) -> list[tuple[str, float]]:
    return [(it["id"], it["properties"]["dafab:score"]) for it in result]


def _check(got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in expected]
    # float32 vectors in the index against the float64 originals
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-6)


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed_size_list", "list_double"])
@pytest.mark.parametrize("row_group_size", [7, 50, 8192])
def test_vector_query_equals_brute_force(
    tmp_path: Path, embedded: list[dict[str, Any]], row_group_size: int, fixed: bool
) -> None:
    folder = write_index(tmp_path, embedded, row_group_size=row_group_size, fixed=fixed)
    kind = pq.read_schema(folder / "alpha.parquet").field(COLUMN).type
    assert kind == (pa.list_(pa.float32(), DIM) if fixed else pa.list_(pa.float64()))
    assert pq.ParquetFile(folder / "alpha.parquet").num_row_groups == -(-120 // row_group_size)
    query = _query()
    got = _pairs(search(str(folder), near=query.tolist(), k=K))
    _check(got, brute_force(embedded, query, K))
    assert len(got) == K
    # Cosine ignores scale: a query scaled to the ends of float64 ranks and scores alike.
    for scale in (1e300, 1e-300):
        scaled = _pairs(search(str(folder), near=(query * scale).tolist(), k=K))
        assert [i for i, _ in scaled] == [i for i, _ in got]
        assert [s for _, s in scaled] == pytest.approx([s for _, s in got], abs=1e-6)


def test_item_query_ranks_itself_then_its_near_duplicate(
    source: Path, embedded: list[dict[str, Any]]
) -> None:
    got = _pairs(search(str(source), near="gen-0000007", k=5))
    assert [i for i, _ in got[:2]] == ["gen-0000007", "twin"]
    assert got[0][1] == pytest.approx(1.0, abs=1e-6)
    assert 0.99 < got[1][1] < 1.0
    query = np.asarray(embedded[7]["properties"][COLUMN])
    _check(got, brute_force(embedded, query, 5))


def _in_bbox(it: dict[str, Any], west: float, south: float, east: float, north: float) -> bool:
    x0, y0, x1, y1 = it["bbox"]
    return x0 <= east and x1 >= west and y0 <= north and y1 >= south


def test_prefilter_bbox_datetime_and_cql2(source: Path, embedded: list[dict[str, Any]]) -> None:
    box = (12.0, 45.0, 18.0, 46.0)
    query = _query(2)
    result = search(
        str(source),
        near=query.tolist(),
        k=8,
        bbox=list(box),
        datetime="2024-07",
        filter="eo:cloud_cover < 50",
    )

    def keep(it: dict[str, Any]) -> bool:
        props = it["properties"]
        return (
            _in_bbox(it, *box)
            and props["datetime"].startswith("2024-07")
            and props["eo:cloud_cover"] < 50
        )

    expected = brute_force(embedded, query, 8, keep)
    # The filter must matter: the unfiltered answer differs.
    assert [i for i, _ in expected] != [i for i, _ in brute_force(embedded, query, 8)]
    got = _pairs(result)
    _check(got, expected)
    for it in result:
        assert it["properties"]["eo:cloud_cover"] < 50
        assert it["properties"]["datetime"].startswith("2024-07")


def test_fewer_matches_than_k(source: Path, embedded: list[dict[str, Any]]) -> None:
    ids = ["gen-0000001", "gen-0000002", "gen-0000003", "twin"]  # 3 has no embedding
    query = _query(3)
    got = _pairs(search(str(source), near=query.tolist(), k=10, ids=ids))
    _check(got, brute_force(embedded, query, 10, lambda it: it["id"] in ids))
    assert len(got) == 3
    assert search(str(source), near=query.tolist(), k=10, ids=ids).count() == 3


def test_item_lookup_prefers_the_collections_then_looks_across(
    source: Path, embedded: list[dict[str, Any]]
) -> None:
    # gen-0000007 is in alpha: searched within alpha, its beta twin is not a result.
    got = _pairs(search(str(source), near="gen-0000007", k=4, collections=["alpha"]))
    query = np.asarray(embedded[7]["properties"][COLUMN])
    _check(got, brute_force(embedded, query, 4, lambda it: it["collection"] == "alpha"))
    assert got[0][0] == "gen-0000007" and "twin" not in [i for i, _ in got]
    # Not in beta: found in its own collection, it queries beta ("beta items like this").
    across = _pairs(search(str(source), near="gen-0000007", k=4, collections=["beta"]))
    _check(across, brute_force(embedded, query, 4, lambda it: it["collection"] == "beta"))
    assert "gen-0000007" not in [i for i, _ in across]
    with pytest.raises(QueryError, match=r"near: no item 'nowhere' in "):
        list(search(str(source), near="nowhere", collections=["beta"]))


def test_filter_does_not_apply_to_the_query_item(source: Path) -> None:
    # gen-0000007 has cloud cover 7: excluded from the results, still the query.
    got = _pairs(search(str(source), near="gen-0000007", k=3, filter="eo:cloud_cover > 50"))
    assert "gen-0000007" not in [i for i, _ in got] and len(got) == 3
    assert got[0][0] != "twin"  # twin has cloud cover 40 (item 240 % 100)


def test_limit_caps_k(source: Path) -> None:
    query = _query(4).tolist()
    ten = [i for i, _ in _pairs(search(str(source), near=query, k=10))]
    assert [i for i, _ in _pairs(search(str(source), near=query, k=10, limit=3))] == ten[:3]
    assert len(_pairs(search(str(source), near=query, k=2, limit=10))) == 2
    assert search(str(source), near=query, k=10, limit=3).count() == 10  # count ignores limit


def test_arrow_scores_and_fields(source: Path, embedded: list[dict[str, Any]]) -> None:
    query = _query(5)
    table = search(str(source), near=query.tolist(), k=6, fields="id").to_arrow()
    expected = brute_force(embedded, query, 6)
    assert table["id"].to_pylist() == [i for i, _ in expected]
    assert table.schema.field("dafab:score").type == pa.float64()
    scores = table["dafab:score"].to_pylist()
    assert scores == sorted(scores, reverse=True)
    assert scores == pytest.approx([s for _, s in expected], abs=1e-6)
    assert all(-1.0 <= s <= 1.0 for s in scores)  # cosines, float32 rounding clipped
    # The Fields extension's default set stays (assets included); the vectors do not.
    assert "assets" in table.column_names and COLUMN not in table.column_names
    first = next(iter(search(str(source), near=query.tolist(), k=1, fields="id")))
    assert set(first["properties"]) == {"datetime", "dafab:score"}
    assert first["id"] == expected[0][0]
    # Ids and scores alone (what bench_knn.py asks for): the default set excluded.
    default = ["geometry", "bbox", "links", "assets", "properties.datetime"]
    slim = search(
        str(source), near=query.tolist(), k=3, fields={"include": ["id"], "exclude": default}
    )
    assert slim.to_arrow().column_names == [
        "type",
        "stac_version",
        "id",
        "collection",
        "dafab:score",
    ]
    full = next(iter(search(str(source), near=query.tolist(), k=1)))
    assert full["properties"][COLUMN] == pytest.approx(
        next(it for it in embedded if it["id"] == expected[0][0])["properties"][COLUMN], abs=1e-7
    )
    empty = search(str(source), near=query.tolist(), ids=["nope"]).to_arrow()
    assert empty.num_rows == 0 and "dafab:score" in empty.column_names
    unscored = search(str(source), near=query.tolist(), k=3, fields="-properties.dafab:score")
    table = unscored.to_arrow()
    assert "dafab:score" not in table.column_names and table.num_rows == 3
    assert table["id"].to_pylist() == [i for i, _ in expected[:3]]


def _copies(embedded: list[dict[str, Any]], vector: list[float], names: list[str]) -> list[Any]:
    """Items of ``alpha`` carrying ``vector``, at the places of items 21, 101 and 181."""
    copies = []
    for name, source in zip(names, (21, 101, 181), strict=True):
        copy = dict(embedded[source])
        copy["id"] = name
        copy["properties"] = {**copy["properties"], COLUMN: vector}
        copies.append(copy)
    return copies


def test_ties_are_broken_by_id(tmp_path: Path, embedded: list[dict[str, Any]]) -> None:
    # Sixteen components of +-1, the rest 0: every dot product and norm (4) is exact, so
    # the copies tie exactly, at exactly 1.
    vector = [(1.0 if i % 8 else -1.0) if i % 4 == 0 else 0.0 for i in range(DIM)]
    # Name the copies so that the smallest id is the last one in the file (rows are in
    # Hilbert order), each in a row group of its own: with k=2 the first two fill the
    # top-k, and only a tie kept at the threshold lets the third in.
    placed = index.to_table(_copies(embedded, vector, ["p0", "p1", "p2"]))["id"].to_pylist()
    names = dict(zip(placed, ["copy-c", "copy-b", "copy-a"], strict=True))
    copies = _copies(embedded, vector, [names[p] for p in ("p0", "p1", "p2")])
    folder = write_index(tmp_path, [*embedded, *copies], row_group_size=5)
    rows = pq.read_table(folder / "alpha.parquet", columns=["id"])["id"].to_pylist()
    at = [rows.index(name) for name in ("copy-c", "copy-b", "copy-a")]
    assert at == sorted(at) and len({a // 5 for a in at}) == 3
    got = _pairs(search(str(folder), near=vector, k=4))
    assert [i for i, _ in got[:3]] == ["copy-a", "copy-b", "copy-c"]
    assert [s for _, s in got[:3]] == [1.0, 1.0, 1.0]
    assert _pairs(search(str(folder), near=vector, k=2)) == [("copy-a", 1.0), ("copy-b", 1.0)]


def _two_models(table: pa.Table) -> pa.Table:
    # A second model: each vector reversed, so its neighbours differ.
    reversed_ = [None if v is None else v[::-1] for v in table[COLUMN].to_pylist()]
    return table.append_column("emb:other", pa.array(reversed_, pa.list_(pa.float32(), DIM)))


def test_two_models_need_model(tmp_path: Path, embedded: list[dict[str, Any]]) -> None:
    folder = write_index(tmp_path, embedded, extra=_two_models)
    query = _query(6)
    with pytest.raises(QueryError, match=r"2 models \(emb:other, emb:test-model\).*model"):
        list(search(str(folder), near=query.tolist()))
    got = _pairs(search(str(folder), near=query.tolist(), k=5, model="test-model"))
    _check(got, brute_force(embedded, query, 5))
    other = _pairs(search(str(folder), near=query[::-1].tolist(), k=5, model="emb:other"))
    _check(other, brute_force(embedded, query, 5))  # reversed vectors, reversed query
    with pytest.raises(QueryError, match=r"model 'nope': .* has no emb:nope \(its embeddings"):
        list(search(str(folder), near=query.tolist(), model="nope"))


def test_what_the_prefilter_prunes_does_not_decide_whether_there_are_embeddings(
    tmp_path: Path, embedded: list[dict[str, Any]]
) -> None:
    """Only ``beta`` has embeddings: a prefilter that leaves ``alpha`` alone, or that
    prunes every file, finds nothing to rank; it said the catalog had no embeddings."""
    items = [
        {**it, "properties": {k: v for k, v in it["properties"].items() if k != COLUMN}}
        if it["collection"] == "alpha" else it
        for it in embedded
    ]  # fmt: skip
    source = write_ndjson(tmp_path / "items.ndjson", items)
    folder = tmp_path / "catalog"  # a build's manifests prune files before any is opened
    assert dafab_static.build([str(source)], str(folder), options=BuildOptions(quiet=True)).ok
    query = _query(7).tolist()
    assert len(list(search(str(folder), near=query, k=3))) == 3
    assert list(search(str(folder), near=query, collections=["alpha"])) == []
    assert list(search(str(folder), near=query, bbox=[100, 0, 101, 1])) == []
    assert list(search(str(folder), near=query, model="test-model", ids=["gen-0000001"])) == []
    with pytest.raises(QueryError, match=r"model 'nope': .* \(its embeddings are emb:test-m"):
        list(search(str(folder), near=query, model="nope", collections=["alpha"]))


@pytest.mark.parametrize("fixed", [True, False])
def test_a_vector_with_a_null_value_is_no_neighbour_in_either_storage(
    tmp_path: Path, embedded: list[dict[str, Any]], fixed: bool
) -> None:
    """Fixed-size storage scored a null value as 0 (the vector ranked first, score 1.0);
    list storage dropped it. One rule: a vector with a gap is no embedding."""
    items = [dict(it, properties=dict(it["properties"])) for it in embedded]
    vector = list(items[5]["properties"][COLUMN])
    query = np.asarray(vector)
    query[0] = 0.0
    vector[0] = None
    items[5]["properties"][COLUMN] = vector
    folder = write_index(tmp_path, items, fixed=fixed)
    got = _pairs(search(str(folder), near=query.tolist(), k=3))
    assert items[5]["id"] not in [i for i, _ in got]
    _check(got, brute_force([it for k, it in enumerate(items) if k != 5], query, 3))


def test_a_null_row_is_no_candidate_whatever_values_it_hides() -> None:
    """Arrow leaves a null fixed-size list's values undefined: they are read without a
    copy (taking the valid rows out copied every vector), and masked when scoring."""
    from dafab_static.search.cosine import Scorer, vectors

    query = _query(3)
    values = pa.array(np.tile(query, 3).astype(np.float32))
    column = pa.FixedSizeListArray.from_arrays(values, DIM, mask=pa.array([False, True, False]))
    flat, rows, null = vectors(column, DIM, where="emb:test-model")
    assert rows is None and null is not None and null.tolist() == [False, True, False]
    picked, scores = Scorer(query).candidates(flat, -np.inf, 3, null)
    assert sorted(picked.tolist()) == [0, 2] and np.allclose(scores, 1.0)


def test_no_embeddings(catalog: Path) -> None:
    with pytest.raises(QueryError, match=r"has no embeddings \(no emb:\* column"):
        list(search(str(catalog), near=[1.0, 0.0]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"near": "nope"}, r"near: no item 'nope' in "),
        ({"near": "gen-0000003"}, r"near: item 'gen-0000003' has no embedding emb:test-model"),
        ({"near": [1.0, 2.0, 3.0]}, r"query vector has 3 values, but emb:test-model has 64"),
        ({"near": "gen-0000007", "k": 0}, r"k must be a positive integer, not 0"),
        ({"near": "gen-0000007", "k": True}, r"k must be a positive integer, not True"),
        ({"near": [0.0] * DIM}, r"near: the vector is all zeros"),
        ({"near": [1.0, float("nan")]}, r"near: the vector holds NaN"),
        ({"near": [[1.0], [2.0]]}, r"near: expected a flat"),
        ({"near": ["a", "b"]}, r"near: expected an item id or a list of numbers"),
        # numpy reads these as numbers: a vector of '1' strings, True as shape ()
        ({"near": ["1"] * DIM}, r"near: expected an item id or a list of numbers, not \['1'"),
        ({"near": True}, r"near: expected an item id or a list of numbers, not True"),
        ({"near": [True, 1.0]}, r"near: expected an item id or a list of numbers"),
        ({"near": "gen-0000007", "sortby": "datetime"}, r"sortby: a near search is ordered"),
        ({"k": 3}, r"k and model need near"),
        ({"model": "test-model"}, r"k and model need near"),
    ],
)
def test_errors_name_the_culprit(source: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        list(search(str(source), **kwargs))


def test_wrong_length_against_list_double(tmp_path: Path, embedded: list[dict[str, Any]]) -> None:
    folder = write_index(tmp_path, embedded, fixed=False)
    with pytest.raises(QueryError, match=r"query vector has 3 values, but emb:test-model in .*"):
        list(search(str(folder), near=[1.0, 2.0, 3.0]))


def test_plain_parquet_without_ids(tmp_path: Path) -> None:
    """Any Parquet with a vector column can be searched; rows need no STAC id."""
    vectors = np.eye(4, DIM) + 0.1  # row i points mostly along axis i
    table = pa.table(
        {
            "name": ["a", "b", "c", "d"],
            COLUMN: pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), DIM),
        }
    )
    pq.write_table(table, tmp_path / "plain.parquet")
    query = np.zeros(DIM)
    query[2] = 1.0
    got = list(search(str(tmp_path / "plain.parquet"), near=query.tolist(), k=2))
    assert [f["properties"]["name"] for f in got] == ["c", "a"]  # a, b, d tie: by position
    cosine = 1.1 / np.sqrt(1.1**2 + 0.01 * (DIM - 1))
    assert got[0]["properties"]["dafab:score"] == pytest.approx(cosine, abs=1e-6)


def test_search_leaves_torch_threads_as_it_found_them(source: Path) -> None:
    """The scan scores on one thread per worker, and must not leave that as torch's default
    for threads started afterwards."""
    import threading

    import torch

    before = torch.get_num_threads()
    assert len(_pairs(search(str(source), near=_query(7).tolist(), k=3))) == 3
    seen: list[int] = []
    later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    later.start()
    later.join()
    assert seen == [before] and torch.get_num_threads() == before


def test_an_id_in_two_collections(tmp_path: Path, embedded: list[dict[str, Any]]) -> None:
    one, other = dict(embedded[30]), dict(embedded[31])  # beta and alpha
    one["id"] = other["id"] = "dup"
    folder = write_index(tmp_path, [*embedded, one, other])
    with pytest.raises(QueryError, match=r"2 items have the id 'dup' \(collections alpha, beta"):
        list(search(str(folder), near="dup"))
    got = _pairs(search(str(folder), near="dup", k=3, collections=["alpha"]))
    assert got[0] == ("dup", pytest.approx(1.0, abs=1e-6))
    query = np.asarray(other["properties"][COLUMN])
    alpha = [it for it in [*embedded, other] if it["collection"] == "alpha"]
    _check(got, brute_force(alpha, query, 3))

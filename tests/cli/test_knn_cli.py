"""``dafab-static search --near``: kNN by item id or vector, with filters; errors as one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cli.runner import cli
from tests.search.embeddings import COLUMN, DIM, brute_force, embedded_items, write_index


@pytest.fixture(scope="module")
def items() -> list[dict[str, Any]]:
    return embedded_items()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, items: list[dict[str, Any]]) -> Path:
    return write_index(tmp_path_factory.mktemp("knn-cli"), items, row_group_size=32)


def test_near_an_item(source: Path, items: list[dict[str, Any]]) -> None:
    run = cli("search", str(source), "--near", "gen-0000007", "--k", "4", "--format", "ids")
    assert run.returncode == 0, run.stderr
    query = np.asarray(items[7]["properties"][COLUMN])
    assert run.stdout.split() == [i for i, _ in brute_force(items, query, 4)]
    assert run.stdout.split()[:2] == ["gen-0000007", "twin"]


def test_near_a_vector_with_a_filter(
    source: Path, items: list[dict[str, Any]], tmp_path: Path
) -> None:
    query = np.random.default_rng(9).standard_normal(DIM)
    expected = brute_force(items, query, 5, lambda it: it["properties"]["eo:cloud_cover"] < 30)
    vector = tmp_path / "q.json"
    vector.write_text(json.dumps(query.tolist()))
    common = ["--k", "5", "--filter", "eo:cloud_cover < 30", "--model", "test-model"]
    from_file = cli("search", str(source), "--near", f"@{vector}", *common)
    assert from_file.returncode == 0, from_file.stderr
    lines = [json.loads(line) for line in from_file.stdout.splitlines()]
    assert [f["id"] for f in lines] == [i for i, _ in expected]
    assert [f["properties"]["dafab:score"] for f in lines] == pytest.approx(
        [s for _, s in expected], abs=1e-6
    )
    inline = cli("search", str(source), "--near", json.dumps(query.tolist()), *common,
                 "--format", "ids")  # fmt: skip
    assert inline.stdout.split() == [i for i, _ in expected]
    count = cli("search", str(source), "--near", f"@{vector}", *common, "--format", "count")
    assert count.stdout.strip() == "5"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--near", "nope"], "near: no item 'nope' in "),
        (["--near", "gen-0000007", "--k", "0"], "k must be a positive integer, not 0"),
        (["--near", "[1, 2, 3]"], "query vector has 3 values, but emb:test-model has 64"),
        (["--near", "[1, 2"], "--near: not a JSON array"),
        (["--near", '[1, "a"]'], "near: expected an item id or a list of numbers"),
        (["--near", "@/nonexistent.json"], "--near: no such file"),
        (["--near", "gen-0000007", "--model", "x"], "model 'x': "),
        (["--near", "gen-0000007", "--sortby", "datetime"], "sortby: a near search"),
        (["--k", "3"], "k and model need near"),
    ],
)
def test_errors_are_one_line(source: Path, args: list[str], message: str) -> None:
    run = cli("search", str(source), *args)
    assert run.returncode == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1

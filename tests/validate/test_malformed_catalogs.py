"""Someone else's catalog, or ours edited by hand, with members of the wrong shape: validate,
info, queryables and search answer (problems, errors, partial figures), never a traceback.
Each case was a TypeError or AttributeError found by fuzzing the sample catalog."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import dafab_static
from dafab_static.errors import DafabError


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("malformed") / "cat"
    assert dafab_static.build([], str(dest), sample=True).ok
    return dest


def _edit(root: Path, pattern: str, change: Callable[[Any], Any]) -> Path:
    path = next(root.glob(pattern))
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return path


def _set(key: str, value: Any) -> Callable[[Any], Any]:
    def change(doc: Any) -> Any:
        doc[key] = value
        return doc

    return change


CASES = [
    ("index/sentinel-2-l2a/_partitions.json", lambda doc: [doc]),  # a list, not an object
    ("index/sentinel-2-l2a/_partitions.json", _set("partitions", [{"rows": 1}])),  # no path
    ("sensors/sentinel-2/sentinel-2-l2a.json", _set("assets", "x")),
    ("sensors/sentinel-2/sentinel-2-l2a.json", _set("extent", [1])),
    ("sensors/catalog.json", _set("links", [1, {"rel": "child", "href": 5}])),
    ("catalog.json", _set("conformsTo", True)),
]


@pytest.mark.parametrize(("pattern", "change"), CASES)
def test_every_reader_answers(
    sample: Path, tmp_path: Path, pattern: str, change: Callable[[Any], Any]
) -> None:
    root = tmp_path / "cat"
    shutil.copytree(sample, root)
    _edit(root, pattern, change)
    report = dafab_static.validate(str(root))
    assert report.problems or report.ok  # a report, whatever it finds
    for call in (
        lambda: dafab_static.info(str(root)),
        lambda: dafab_static.queryables(str(root)),
        lambda: list(dafab_static.search(str(root), filter="eo:cloud_cover < 50", limit=3)),
    ):
        try:
            call()
        except DafabError as error:  # a one-line error naming the file is an answer too
            assert str(root) in str(error)


def test_a_broken_manifest_is_a_problem_naming_it(sample: Path, tmp_path: Path) -> None:
    root = tmp_path / "cat"
    shutil.copytree(sample, root)
    manifest = _edit(root, "index/sentinel-2-l2a/_partitions.json", lambda doc: [doc])
    messages = [str(p) for p in dafab_static.validate(str(root)).problems]
    assert any(f"{manifest}: not a partitions manifest" in m for m in messages), messages
    with pytest.raises(DafabError, match="not a partitions manifest"):
        list(dafab_static.search(str(root)))


def test_info_names_what_it_could_not_read_and_describes_the_rest(
    sample: Path, tmp_path: Path
) -> None:
    """A collection's broken manifest said only 'no partitions manifest', with no warning;
    one broken child link made info fail as a whole."""
    root = tmp_path / "cat"
    shutil.copytree(sample, root)
    manifest = _edit(root, "index/sentinel-2-l2a/_partitions.json", lambda doc: [doc])
    catalog = json.loads((root / "catalog.json").read_text())
    catalog["links"].append({"rel": "child", "href": "./missing/catalog.json"})
    (root / "catalog.json").write_text(json.dumps(catalog))
    described = dafab_static.info(str(root))
    assert len(described.collections) == len(dafab_static.info(str(sample)).collections)
    broken, missing = sorted(described.warnings)
    assert broken.startswith("child link of ") and "missing/catalog.json" in broken
    assert missing.startswith("collection 'sentinel-2-l2a': items not counted: ")
    assert str(manifest) in missing
    assert "  warning: collection 'sentinel-2-l2a'" in described.text()
    assert described.to_dict()["warnings"] == described.warnings

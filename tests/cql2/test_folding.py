"""CASEI and ACCENTI fold a literal exactly as they fold a column, so every value equals
itself under them, whatever Python's and Arrow's Unicode tables disagree on."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

import dafab_static
from dafab_static.cql2.folding import accenti, casei

# Python and Arrow (utf8proc) disagree on each: 'İ' lowers to 'i' in Arrow, to 'i̇' in
# Python; U+0902 and the Thai vowel signs are nonspacing marks of combining class 0.
NAMES = ["İstanbul", "हिंदी", "ที่นี่", "Straße", "Zürich", "ΣΊΣΥΦΟΣ", "ﬁord", "Ǆemal"]


@pytest.mark.parametrize("fold", [casei, accenti])
@pytest.mark.parametrize("name", NAMES)
def test_a_literal_folds_as_a_column_does(fold: object, name: str) -> None:
    column = fold(pa.array([name, None]))  # type: ignore[operator]
    assert fold(pa.scalar(name)) == column[0]  # type: ignore[operator]
    assert not column[1].is_valid


def test_folding_examples() -> None:
    assert casei(pa.scalar("Straße")).as_py() == casei(pa.scalar("STRASSE")).as_py()
    assert accenti(pa.scalar("Zürich")).as_py() == "Zurich"
    assert casei(pa.scalar(None, pa.string())).is_valid is False


def test_casei_is_full_case_folding_where_arrow_lowers_otherwise() -> None:
    """CaseFolding.txt maps U+0130 'İ' to 'i' + U+0307; Arrow's lower case gives a plain
    'i', which made CASEI('İstanbul') equal CASEI('istanbul')."""
    strings = ["İstanbul", "istanbul", "ǅ", "ẞ"]
    assert casei(pa.array(strings)).to_pylist() == [s.casefold() for s in strings]
    assert casei(pa.scalar("İstanbul")) != casei(pa.scalar("istanbul"))


def _item(i: int, name: str) -> dict[str, object]:
    return {
        "type": "Feature", "stac_version": "1.1.0", "id": f"n{i}", "collection": "names",
        "geometry": {"type": "Point", "coordinates": [i, 0]}, "bbox": [i, 0, i, 0],
        "properties": {"datetime": "2024-05-01T00:00:00Z", "name": name},
        "links": [], "assets": {},
    }  # fmt: skip


@pytest.fixture(scope="module")
def names_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("names")
    items = [_item(i, name) for i, name in enumerate(NAMES)]
    source = root / "items.ndjson"
    source.write_text("\n".join(json.dumps(item) for item in items))
    assert dafab_static.build([str(source)], str(root / "catalog")).ok
    return root / "catalog"


@pytest.mark.parametrize("function", ["CASEI", "ACCENTI"])
@pytest.mark.parametrize("name", NAMES)
def test_every_name_matches_itself(names_catalog: Path, function: str, name: str) -> None:
    expected = [f"n{NAMES.index(name)}"]
    for text in (
        f"{function}(name) = {function}('{name}')",
        f"{function}(name) LIKE {function}('{name[:2]}%')",
    ):
        found = [item["id"] for item in dafab_static.search(str(names_catalog), filter=text)]
        assert found == expected, text


def test_case_and_accents_are_ignored_together(names_catalog: Path) -> None:
    text = "CASEI(ACCENTI(name)) = CASEI(ACCENTI('ZURICH'))"
    assert [item["id"] for item in dafab_static.search(str(names_catalog), filter=text)] == ["n4"]

"""The CQL2 string functions CASEI and ACCENTI, vectorised over Arrow strings."""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@functools.cache
def _folding_exceptions() -> str:
    """A regex class of the characters whose full case folding is not what Arrow's
    ``utf8_lower`` makes of them ('ß' → 'ss', 'ﬁ' → 'fi', Greek final sigma, 'İ' → 'i̇'
    where Arrow gives a plain 'i'): Arrow has no case folding."""
    chars = [chr(c) for c in range(0x80, 0x1FFFF) if not 0xD800 <= c <= 0xDFFF]
    lowered = pc.utf8_lower(pa.array(chars)).to_pylist()
    special = [c for c, low in zip(chars, lowered, strict=True) if c.casefold() != low]
    return "[" + "".join(re.escape(c) for c in special) + "]"


def _one(fold: Any, value: pa.Scalar) -> pa.Scalar:
    """``fold`` of one scalar, by the very code that folds a column. Folding a literal
    otherwise (``str.casefold``, ``unicodedata``) broke reflexivity where Python's Unicode
    tables and Arrow's (utf8proc) differ: 'İstanbul' or the Devanagari sign U+0902 did not
    equal themselves under CASEI or ACCENTI."""
    return fold(pa.array([value.as_py()], value.type))[0]


def casei(value: Any) -> Any:
    """CASEI of an Arrow string scalar or array: full Unicode case folding.

    Example:
        >>> casei(pa.array(["Straße", None])).to_pylist()
        ['strasse', None]
    """
    # CASEI is full Unicode case folding (CQL2 requirement /req/case-insensitive-comparison/
    # casei-function): vectorised lower case, then Python's casefold of the rare rows that
    # hold a character whose folding differs ('Straße' = 'STRASSE').
    if isinstance(value, pa.Scalar):
        return _one(casei, value)
    lowered = pc.utf8_lower(value)
    special = pc.fill_null(pc.match_substring_regex(value, _folding_exceptions()), False)
    if not pc.any(special).as_py():
        return lowered
    rows = np.flatnonzero(special.to_numpy(zero_copy_only=False))
    folded = lowered.to_pylist()
    original = value.take(pa.array(rows)).to_pylist()
    for row, text in zip(rows, original, strict=True):
        folded[row] = text.casefold()
    return pa.array(folded, lowered.type)


def accenti(value: Any) -> Any:
    """ACCENTI of an Arrow string scalar or array: the text without its accents.

    Example:
        >>> accenti(pa.scalar("Zürich")).as_py()
        'Zurich'
    """
    # Decompose (NFD), then drop the nonspacing marks: 'Zürich' → 'Zurich'.
    if isinstance(value, pa.Scalar):
        return _one(accenti, value)
    decomposed = pc.utf8_normalize(value, form="NFD")
    return pc.replace_substring_regex(decomposed, pattern=r"\p{Mn}+", replacement="")

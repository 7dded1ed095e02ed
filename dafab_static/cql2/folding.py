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
    """A regex class of the characters whose full case folding is not their lower case
    ('ß' → 'ss', 'ﬁ' → 'fi', Greek final sigma...): Arrow has only ``utf8_lower``."""
    chars = [
        chr(c)
        for c in range(0x80, 0x1FFFF)
        if not 0xD800 <= c <= 0xDFFF and chr(c).casefold() != chr(c).lower()
    ]
    return "[" + "".join(re.escape(c) for c in chars) + "]"


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
    # casei-function): vectorised lower case, then Python's casefold for the rare rows that
    # hold a character whose folding differs ('Straße' = 'STRASSE').
    if isinstance(value, pa.Scalar):
        return _one(casei, value)
    lowered = pc.utf8_lower(value)
    special = pc.fill_null(pc.match_substring_regex(lowered, _folding_exceptions()), False)
    if not pc.any(special).as_py():
        return lowered
    rows = np.flatnonzero(special.to_numpy(zero_copy_only=False))
    folded = lowered.to_pylist()
    for row in rows:
        folded[row] = folded[row].casefold()
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

"""The public API is what ``dafab_static.__all__`` lists, and all of it is importable."""

from __future__ import annotations

import dafab_static


def test_all_lists_exactly_the_public_names() -> None:
    import __future__

    public = {
        name
        for name, value in vars(dafab_static).items()
        if not name.startswith("_") and not isinstance(value, __future__._Feature)
    }
    submodules = {
        name for name, value in vars(dafab_static).items() if type(value).__name__ == "module"
    }
    assert set(dafab_static.__all__) - {"__version__"} == public - submodules
    for name in dafab_static.__all__:
        assert getattr(dafab_static, name) is not None


def test_public_callables_have_docstrings() -> None:
    for name in dafab_static.__all__:
        value = getattr(dafab_static, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), name

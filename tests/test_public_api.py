"""The public API is what ``dafab_static.__all__`` lists, and all of it is importable."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import dafab_static


def test_all_lists_exactly_the_public_names() -> None:
    import __future__

    public = {
        name
        for name in dir(dafab_static)
        if not name.startswith("_")
        and not isinstance(getattr(dafab_static, name), (types.ModuleType, __future__._Feature))
    }
    assert set(dafab_static.__all__) - {"__version__"} == public
    for name in dafab_static.__all__:
        assert getattr(dafab_static, name) is not None


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_cli_starts_without_loading_the_build_or_search() -> None:
    # The public names load on first use: `dafab-static --help` should not import Arrow.
    code = (
        "import sys, dafab_static.cli; "
        "print(sorted(m for m in ('pyarrow', 'numpy', 'torch', 'dafab_static.build', "
        "'dafab_static.search') if m in sys.modules))"
    )
    assert _fresh(code) == "[]"


def test_functions_keep_their_names_when_the_submodule_is_imported_first() -> None:
    # build, info, queryables, search and validate are each a submodule and its function.
    code = (
        "import dafab_static.build, dafab_static.search.scan, dafab_static.validate, "
        "dafab_static.info, dafab_static.queryables._read, dafab_static as d; "
        "print([type(getattr(d, n)).__name__ for n in "
        "('build', 'search', 'validate', 'info', 'queryables')])"
    )
    assert _fresh(code) == "['function', 'function', 'function', 'function', 'function']"


def test_public_callables_have_docstrings() -> None:
    for name in dafab_static.__all__:
        value = getattr(dafab_static, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), name


def test_paths_are_str_or_pathlike_and_anything_else_is_an_option_error(tmp_path: Path) -> None:
    """Path objects work everywhere a path does; a wrong type is an OptionError naming the
    parameter, never an AttributeError from deep inside; a plain string is one source."""
    import pytest

    from dafab_static.errors import OptionError
    from tests.builds.generate import item, write_ndjson

    src = write_ndjson(tmp_path / "a.ndjson", [item(i) for i in range(3)])
    dest = tmp_path / "cat"
    assert dafab_static.build(str(src), dest).items == 3  # one source, not its characters
    assert dafab_static.info(dest).items == 3
    assert dafab_static.validate(dest).ok
    assert dafab_static.search(dest).count() == 3
    assert "properties" in dafab_static.queryables(Path(dest))
    calls = [
        (lambda: dafab_static.search(None), "source=None: expected a path or URL"),
        (lambda: dafab_static.info(3), "target=3: expected a path or URL"),
        (lambda: dafab_static.validate({}), "path_or_url={}: expected a path or URL"),
        (lambda: dafab_static.build(None, dest), "sources=None: expected paths or URLs"),
        (lambda: dafab_static.build([src], 3), "dest=3: expected a path or URL"),
        (lambda: dafab_static.build([src], dest, options={"a": 1}), "expected a dafab_static"),
        (lambda: dafab_static.build([src], dest, progress=1), "expected a function"),
        (lambda: dafab_static.BuildOptions(max_children=None), "max_children=None: expected int"),
        (lambda: dafab_static.BuildOptions(collection="."), "collection id '.' names no folder"),
    ]  # fmt: skip
    for call, message in calls:
        with pytest.raises(OptionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            call()

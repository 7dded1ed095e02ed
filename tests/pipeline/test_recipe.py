"""Recipes: parsing, checking, and the errors that name the recipe, step and parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dafab_static.errors import DafabError, OptionError
from dafab_static.pipeline import load_recipe, parse_recipe, run_pipeline
from tests.conftest import REPO_ROOT

RECIPES = sorted((REPO_ROOT / "pipelines").glob("*.toml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_shipped_recipes_load(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.steps
    assert recipe.name == path.stem


def test_recipe_fields(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(
        '[pipeline]\nname = "x"\nversion = "3"\ncollections = ["sentinel-2-*"]\n'
        "[execution]\nmax_size = 300\nwindow = 64\n"
        '[[steps]]\nname = "indices"\nindices = ["ndvi"]\npercentiles = [50]\n'
    )
    recipe = load_recipe(path)
    assert (recipe.name, recipe.version, recipe.execution.max_size) == ("x", "3", 300)
    assert recipe.execution.reader == "threads"
    assert [s.name for s in recipe.steps] == ["indices"]
    assert recipe.applies_to("sentinel-2-l2a") and not recipe.applies_to("landsat-c2-l2")
    assert recipe.assets == "local"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[steps]]\nname = 'nope'\n", "step 1 (nope): unknown step 'nope'; known steps:"),
        (
            "[[steps]]\nname = 'indices'\nbogus = 1\n",
            "step 1 (indices): unknown parameter 'bogus'; known: indices, percentiles",
        ),
        # values are checked against the step's signature, never coerced
        (
            "[[steps]]\nname = 'cloud_mask'\nmask = 'no'\n",
            "(cloud_mask): mask='no': input should be a valid boolean",
        ),
        (
            "[[steps]]\nname = 'cloud_mask'\ndilation = true\n",
            "dilation=True: input should be a valid integer",
        ),
        ("[[steps]]\nname = 'embedding'\nchips = 'no'\n", "chips='no': input should be"),
        (
            "[[steps]]\nname = 'indices'\npercentiles = [true]\n",
            "percentiles=[True]: item 0: input should be a valid number",
        ),
        (
            "[[steps]]\nname = 'annotations'\nclasses = 'cloud'\n",
            "classes='cloud': 'str' instances are not allowed as a Sequence value",
        ),
        (
            "[[steps]]\nname = 'cloud_mask'\n[[steps]]\nname = 'annotations'\nmin_area = -5\n",
            "min_area=-5: expected a number of pixels, 0 or more",
        ),
        (
            "[execution]\nwindow = 4096\n[[steps]]\nname = 'indices'\n",
            "window=4096: larger than the analysis grid (max_size=1024)",
        ),
        ("[[steps]]\nname = 'indices'\nindices = ['evi']\n", "unknown index 'evi'"),
        ("[[steps]]\nname = 'thumbnail'\nsize = 2\n", "size=2: expected an integer"),
        # found by fuzzing the recipes: these were ValueError tracebacks
        ("[[steps]]\nname = 'thumbnail'\nstretch = [2]\n", "stretch=[2]: item 1: field required"),
        ("[[steps]]\nname = 'thumbnail'\nstretch = 5\n", "stretch=5: input should be an array"),
        (
            "[[steps]]\nname = 'thumbnail'\nstretch = ['a', 'b']\n",
            "item 0: input should be a valid number",
        ),
        ("[[steps]]\nname = 'thumbnail'\nstretch = [50, 10]\n", "expected 0 <= low < high <= 100"),
        ("[pipeline]\nname = 'x'\n", "no [[steps]]"),
        ("[pipeline]\nfoo = 1\n[[steps]]\nname = 'indices'\n", "[pipeline]: unknown key 'foo'"),
        ("[execution]\nwindow = 0\n[[steps]]\nname = 'indices'\n", "window=0"),
        ("[pipeline]\nassets = 'http'\n[[steps]]\nname = 'indices'\n", "assets='http'"),
        ("[[steps]]\nname = 'no.such.module:Step'\n", "cannot import step"),
        ("[[steps]]\nname = 'collections:OrderedDict'\n", "is not a dafab_static.pipeline.Step"),
        # a plugin's own mistakes were tracebacks: empty and relative names, its __init__
        ("[[steps]]\nname = ':'\n", "step ':': expected an absolute 'module:Class'"),
        ("[[steps]]\nname = '.steps:X'\n", "step '.steps:X': expected an absolute 'module:Class'"),
        (
            "[[steps]]\nname = 'tests.pipeline.plugin:Nope'\n",
            "cannot import step 'tests.pipeline.plugin:Nope' (module 'tests.pipeline.plugin' has "
            "no attribute 'Nope')",
        ),
        (
            "[[steps]]\nname = 'tests.pipeline.plugin:Faulty'\nwhere = 'init'\n",
            "step 1 (tests.pipeline.plugin:Faulty): the step failed to start: RuntimeError: init",
        ),
        ("not toml [", "not valid TOML"),
        # TOML reads version = 1.10 as 1.1: a string is asked for, not made
        (
            "[pipeline]\nversion = 1.10\n[[steps]]\nname = 'indices'\n",
            "[pipeline] version=1.1: expected a string (in quotes)",
        ),
        ("[execution]\nworkers = true\n[[steps]]\nname = 'indices'\n", "workers=True"),
    ],
)
def test_bad_recipes_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(OptionError) as error:
        load_recipe(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match=r"--pipeline .*nope.toml: cannot read recipe"):
        load_recipe(tmp_path / "nope.toml")
    with pytest.raises(OptionError) as error:
        load_recipe("defualt", option="recipe")
    assert str(error.value) == (
        "recipe defualt: cannot read recipe (No such file or directory); a recipe is a TOML "
        "file, or one of the shipped recipes: default, google-satellite-embedding, quick, "
        "resnet18-sentinel2"
    )


def test_shipped_recipes_by_name_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package ships pipelines/: its recipes load by name, and by the
    ``pipelines/NAME.toml`` the README shows, from a folder that has no such file; a file
    that is there wins."""
    pipelines = Path(__file__).resolve().parents[2] / "pipelines"
    monkeypatch.chdir(tmp_path)
    for name in ("quick", "quick.toml", "pipelines/quick.toml"):
        recipe = load_recipe(name)
        assert Path(recipe.source).read_bytes() == (pipelines / "quick.toml").read_bytes()
        assert recipe.name == "quick"
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "quick.toml").write_text('[[steps]]\nname = "thumbnail"\n')
    assert [s.name for s in load_recipe("pipelines/quick.toml").steps] == ["thumbnail"]
    with pytest.raises(OptionError, match="cannot read recipe"):
        load_recipe("elsewhere/quick.toml")


def test_step_by_import_path() -> None:
    recipe = parse_recipe({"steps": [{"name": "tests.pipeline.plugin:Brightness"}]})
    assert recipe.steps[0].cls.__name__ == "Brightness"
    # Reports and processing:lineage name it as the recipe does (it declares no name).
    assert recipe.steps[0].create().name == "tests.pipeline.plugin:Brightness"


def test_installed_plugin_steps_are_found_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package that declares a ``dafab_static.steps`` entry point adds a step by name,
    without editing dafab-static: a real distribution's metadata on ``sys.path``."""
    from dafab_static.pipeline import available_steps

    dist = tmp_path / "my_steps-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-steps\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[dafab_static.steps]\nbrightness = tests.pipeline.plugin:Brightness\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "brightness" in available_steps()
    recipe = parse_recipe({"steps": [{"name": "brightness", "scale": 2.0}]})
    assert recipe.steps[0].cls.__name__ == "Brightness"
    assert recipe.steps[0].create().scale == 2.0  # type: ignore[attr-defined]


def test_a_bug_in_a_built_in_step_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a plugin's own failure becomes a one-line error; ours is a bug to show."""
    from dafab_static.pipeline.steps.indices import Indices

    def broken(self: Any, **kw: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Indices, "__init__", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        parse_recipe({"steps": [{"name": "indices"}]})


def test_an_installed_step_whose_module_is_gone_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "gone-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gone\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[dafab_static.steps]\nbroken = gone_steps:Step\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(OptionError) as error:
        parse_recipe({"steps": [{"name": "broken"}]})
    assert str(error.value) == (
        "<recipe> step 1 (broken): cannot import installed step 'broken' (gone_steps:Step) "
        "(No module named 'gone_steps')"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[execution]\ndevice = 'tpu'\n[[steps]]\nname = 'indices'\n",
         "[execution] device 'tpu': not a torch device"),
        ("[[steps]]\nname = 'embedding'\nmodel = '../../etc'\n",
         "step 1 (embedding): model_id '../../etc' is not a slug of 3 or more"),
        # MLM's mlm:name needs 3 characters: 'ab' passed, and its model card did not validate
        ("[[steps]]\nname = 'product_embedding'\nraster = 'x.tif'\nmodel = '../../evil'\n",
         "step 1 (product_embedding): model '../../evil' is not a slug of 3 or more"),
        ("[[steps]]\nname = 'embedding'\nmodel = 'ab'\n",
         "model_id 'ab' is not a slug of 3 or more lowercase letters, digits, '.', '_' or '-', "
         "starting with a letter and ending with a letter or digit (MLM's mlm:name pattern)"),
        ("[[steps]]\nname = 'product_embedding'\nraster = 'missing.vrt'\n",
         "step 1 (product_embedding): product_embedding raster="),
        ("[[steps]]\nname = 'tests.pipeline.plugin:Faulty'\nwhere = 'setup'\n",
         "step 1 (tests.pipeline.plugin:Faulty): the step failed to start: RuntimeError: setup"),
    ],
)  # fmt: skip
def test_recipe_values_checked_when_the_run_starts_name_file_and_step(
    tmp_path: Path, text: str, message: str
) -> None:
    """A device, weights or a product are found wrong only when the run sets up: the
    message still names the recipe file and the step (it said --device, or nothing)."""
    path = tmp_path / "late.toml"
    path.write_text(text)
    with pytest.raises(DafabError) as error:
        run_pipeline(load_recipe(path), [], put_asset=lambda *a: "")
    assert str(error.value).startswith(str(path)) and message in str(error.value)

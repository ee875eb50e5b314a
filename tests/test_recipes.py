"""The seed recipes: each file is a valid set of parameters that `dvc exp run` can take."""

from __future__ import annotations

import pytest

from imdb_rnn.errors import ParamsError
from imdb_rnn.params import PARAMS_FILE, read_document
from imdb_rnn.recipes import (
    RECIPES_DIR,
    apply_overrides,
    dvc_command,
    hydra_override,
    load_recipe,
    main,
    recipe_names,
    validate,
)
from tests.conftest import REPO_ROOT

RECIPE_NAMES = recipe_names(REPO_ROOT / RECIPES_DIR)


def test_there_is_a_recipe_for_every_seed_notebook():
    notebooks = {load_recipe(name, REPO_ROOT / RECIPES_DIR).notebook for name in RECIPE_NAMES}
    seeds = {path.name for path in (REPO_ROOT.parent / "shared/seeds").glob("*.txt")}
    if not seeds:
        pytest.skip("the seed notebooks are not beside this checkout")
    assert notebooks == seeds


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_every_recipe_gives_valid_parameters(name):
    """A renamed or retyped parameter breaks the recipe here, not an hour into a run."""
    recipe = load_recipe(name, REPO_ROOT / RECIPES_DIR)
    document = read_document(REPO_ROOT / PARAMS_FILE)
    validate(apply_overrides(document, recipe.set))
    assert recipe.all_substitutions(), "say what differs from the notebook, even the data source"


def test_show_prints_the_standard_substitutions_in_full(monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)
    main(["show", "seed-001-lstm"])
    shown = capsys.readouterr().out
    assert "cannot be downloaded offline" in shown and 'train.model: "lstm"' in shown


def leaf_keys(document: dict, dotted_prefix: str) -> list[str]:
    """The dotted keys of every value under a prefix, as -S writes them:
    train.early_stopping.patience, not train.early_stopping."""
    value = document
    for part in dotted_prefix.split("."):
        value = value[part]
    if not isinstance(value, dict):
        return [dotted_prefix]
    return [key for child in value for key in leaf_keys(document, f"{dotted_prefix}.{child}")]


def keys_a_recipe_must_pin(recipe_set: dict) -> set[str]:
    """Every key that can change what the recipe computes, so that params.yaml's defaults
    (or a quick-run cap left in it) never leak into a recipe's result."""
    document = read_document(REPO_ROOT / PARAMS_FILE)
    keys = {
        key for section in ("ingest", "tokenize", "train") for key in leaf_keys(document, section)
    }
    if recipe_set["ingest.protocol"] == "official":
        keys.discard("ingest.test_fraction")  # only the random protocol reads it
    if recipe_set["ingest.unlabelled"] is False:
        keys.discard("ingest.unlabelled_path")  # read only with unlabelled reviews
    keys.discard("train.peer_timeout_seconds")  # how long to wait for workers: no result changes
    keys |= {"embed.method", "embed.dimension", "embed.seed"}
    if recipe_set["embed.method"] == "word2vec":
        keys |= {f"embed.{key}" for key in document["embed"] if key != "pretrained"}
    if recipe_set["embed.method"] == "pretrained":
        keys |= set(leaf_keys(document, "embed.pretrained"))
    return keys


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_every_recipe_pins_every_key_that_shapes_its_result(name):
    recipe_set = load_recipe(name, REPO_ROOT / RECIPES_DIR).set
    missing = keys_a_recipe_must_pin(recipe_set) - set(recipe_set)
    assert not missing, f"{name} leaves these to params.yaml: {sorted(missing)}"


def test_an_unknown_key_is_a_one_line_error():
    with pytest.raises(ParamsError, match=r"no key train\.unitz \(did you mean units\?\)"):
        apply_overrides({"train": {"units": 4}}, {"train.unitz": 8})
    with pytest.raises(ParamsError, match="no section trian"):
        apply_overrides({"train": {"units": 4}}, {"trian.units": 8})


def test_the_dvc_command_writes_values_as_dvc_reads_them(tmp_path):
    (tmp_path / "demo.yaml").write_text(
        "name: demo\nnotebook: x.txt\ndescription: d\n"
        "claimed: {accuracy: 0.8, what: validation}\nstandard_substitutions: []\n"
        "substitutions: [none]\n"
        "set: {train.bidirectional: false, linear.max_features: null, train.units: 8,\n"
        "      train.learning_rate: 0.0001, ingest.source: 'data/a: b.csv',\n"
        "      ingest.revision: 'null'}\n"
    )
    command = dvc_command(load_recipe("demo", tmp_path), queue=True)
    assert command == [
        "dvc", "exp", "run", "--name", "demo", "--queue",
        "--set-param", "train.bidirectional=false",
        "--set-param", "linear.max_features=null",
        "--set-param", "train.units=8",
        "--set-param", "train.learning_rate=0.0001",
        "--set-param", 'ingest.source="data/a: b.csv"',
        "--set-param", 'ingest.revision="null"',
    ]  # fmt: skip
    assert hydra_read_back(command[7::2]) == load_recipe("demo", tmp_path).set


def hydra_read_back(overrides: list[str]) -> dict:
    """What DVC's --set-param makes of each override (it parses them with Hydra, not YAML)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return {override.key_or_group: override.value() for override in parsed}


@pytest.mark.parametrize(
    "value",
    ["données/avis.csv", "C:\\new\\", 'say "hi"', "it's \\\"odd\\", "a,b c=d", 1e-05, [1, 2]],
    ids=[
        "non-ascii",
        "backslashes",
        "double-quotes",
        "both-quotes",
        "punctuation",
        "float",
        "list",
    ],
)
def test_every_override_reaches_dvc_unchanged(value):
    assert hydra_read_back([hydra_override("ingest.source", value)]) == {"ingest.source": value}


def test_a_value_hydra_would_resolve_is_refused():
    with pytest.raises(ParamsError, match=r"ingest.source: '\$\{HOME\}/a.csv' cannot be passed"):
        hydra_override("ingest.source", "${HOME}/a.csv")


def test_unknown_recipe_names_the_known_ones(tmp_path):
    (tmp_path / "only.yaml").write_text("name: only\n")
    with pytest.raises(ParamsError, match=r"no recipe 'other' .*\(known: only\)"):
        load_recipe("other", tmp_path)
    with pytest.raises(ParamsError, match=r"only\.yaml: notebook: Field required"):
        load_recipe("only", tmp_path)
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ParamsError, match=r"broken\.yaml: line 2, column 1: .*not valid YAML"):
        load_recipe("broken", tmp_path)


def test_dry_run_prints_the_commands_without_running_them(monkeypatch, capsys):
    if not RECIPE_NAMES:
        pytest.skip("no recipes yet")
    monkeypatch.chdir(REPO_ROOT)
    main(["run", "--dry-run", *RECIPE_NAMES[:2]])
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(RECIPE_NAMES[:2])
    assert all(line.startswith("dvc exp run --name seed-") for line in printed)


def test_extra_overrides_win_and_are_checked(monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)
    name = RECIPE_NAMES[0]
    main(["run", "--dry-run", name, "--set", "train.epochs=2", "--suffix=-short"])
    printed = capsys.readouterr().out
    assert f"--name {name}-short" in printed and printed.count("train.epochs=") == 1
    assert "train.epochs=2" in printed
    with pytest.raises(
        ParamsError, match=r"--set: train\.epochs must be greater than or equal to 1"
    ):
        main(["run", "--dry-run", name, "--set", "train.epochs=0"])
    with pytest.raises(ParamsError, match="write it as key=value"):
        main(["run", "--dry-run", name, "--set", "train.epochs"])

"""imdb-recipe: run a seed notebook's recipe as a DVC experiment.

Each recipe is a YAML file in recipes/: the notebook it comes from, the accuracy the notebook
claims and what that number measures, what had to be substituted, and under ``set`` the
parameter overrides that express it. This command checks the overrides against params.yaml and
the parameter models, then runs plain `dvc exp run -n <recipe> -S key=value ...` (or only prints
it), so every recipe is also an ordinary experiment that `dvc exp show` compares.

    imdb-recipe list
    imdb-recipe show seed-001-lstm           # the claim, every substitution, the overrides
    imdb-recipe run seed-001-lstm            # runs now
    imdb-recipe run --queue seed-001-lstm    # then: dvc queue start
    imdb-recipe run --dry-run seed-001-lstm  # print the dvc command only
    imdb-recipe run seed-004-bilstm-word2vec --set train.epochs=2 --suffix=-2-epochs
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML, YAMLError

from imdb_rnn import cli
from imdb_rnn.errors import ParamsError
from imdb_rnn.params import (
    PARAMS_FILE,
    SECTIONS,
    describe_yaml_error,
    parse_section,
    read_document,
)

RECIPES_DIR = Path("recipes")


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accuracy: float | None = Field(ge=0, le=1)
    what: str  # which split, which epoch: claims are only comparable when this matches


# What most seed notebooks do that this pipeline does differently, said once here; a recipe names
# the ones that apply to it and lists only its own, specific substitutions.
STANDARD_SUBSTITUTIONS = {
    "keras-imdb-data": (
        "Data: the notebook reads Keras' preprocessed IMDB (keras.datasets.imdb.load_data), which"
        " cannot be downloaded offline; the recipe reads the same 50,000 reviews as raw text from"
        " Hugging Face stanfordnlp/imdb (ingest.source huggingface, official 25k train / 25k test)."
    ),
    "keras-word-index": (
        "Tokenization: Keras' fixed word index (punctuation stripped, a start marker prepended,"
        " num_words counting its reserved ids) is replaced by this pipeline's tokenizer and a"
        " vocabulary built from the training split only; tokenize.vocab_size is the notebook's"
        " num_words and counts padding and OOV; <br /> is removed, ! and ? are tokens, there is no"
        " start marker; min_frequency 1 because Keras has no minimum count."
    ),
    "keras-uniform-embedding": (
        "Embedding: Keras' uniform(-0.05, 0.05) initialisation is embed.method random at the"
        " notebook's dimension, except that the padding row starts at zero (still trainable, since"
        " nothing is masked)."
    ),
    "unmasked-padding": (
        "Padding is not masked in the notebook (no mask_zero): train.mask_padding false and"
        " therefore train.bucket_by_length false; pad_sequences' defaults (padding and truncating"
        " 'pre') are kept."
    ),
}


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    notebook: str
    description: str
    claimed: Claim
    standard_substitutions: list[Literal[tuple(STANDARD_SUBSTITUTIONS)]]  # type: ignore[misc]
    substitutions: list[str]  # the recipe's own
    set: dict[str, Any]

    def all_substitutions(self) -> list[str]:
        return [STANDARD_SUBSTITUTIONS[key] for key in self.standard_substitutions] + list(
            self.substitutions
        )


def load_recipe(name: str, directory: Path = RECIPES_DIR) -> Recipe:
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(recipe_names(directory)) or "none"
        raise ParamsError(f"no recipe '{name}' in {directory}/ (known: {known})")
    try:
        recipe = Recipe.model_validate(read_document(path))
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ParamsError(f"{path}: {where}: {problem['msg']}") from None
    if recipe.name != name:
        raise ParamsError(f"{path} is named '{recipe.name}'; make its name match the file name")
    return recipe


def recipe_names(directory: Path = RECIPES_DIR) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.yaml"))


def apply_overrides(document: dict, overrides: dict[str, Any], origin: str = "the recipe") -> dict:
    """A copy of the params document with each dotted key replaced; unknown keys are errors that
    blame ``origin``, the recipe file or --set that named them."""
    updated = copy.deepcopy(document)
    for dotted_key, value in overrides.items():
        *parents, key = dotted_key.split(".")
        target = updated
        for parent in parents:
            if not isinstance(target.get(parent), dict):
                raise ParamsError(
                    f"{origin}: params.yaml has no section {parent} (in {dotted_key})"
                    f"{_did_you_mean(parent, target)}; correct {origin}"
                )
            target = target[parent]
        if key not in target:
            raise ParamsError(
                f"{origin}: params.yaml has no key {dotted_key}{_did_you_mean(key, target)};"
                f" correct {origin}"
            )
        target[key] = value
    return updated


def _did_you_mean(name: str, mapping: dict) -> str:
    close = difflib.get_close_matches(name, [str(key) for key in mapping], n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def validate(document: dict, origin: str = "params.yaml") -> None:
    """Every section must still validate after the overrides (types, ranges, cross-key rules).

    ``origin`` is blamed for a bad value: the recipe file or --set that supplied it, not
    params.yaml, which was fine before the overrides.
    """
    for section, model in SECTIONS.items():
        try:
            parse_section(document, section, model)
        except ParamsError as error:
            raise ParamsError(str(error).replace("params.yaml:", f"{origin}:")) from None


def dvc_command(
    recipe: Recipe, queue: bool, overrides: dict[str, Any] | None = None, name: str | None = None
) -> list[str]:
    """``dvc exp run`` with the recipe's overrides, then the caller's (which win)."""
    command = ["dvc", "exp", "run", "--name", name or recipe.name]
    if queue:
        command.append("--queue")
    for key, value in (recipe.set | (overrides or {})).items():
        command += ["--set-param", hydra_override(key, value)]
    return command


def parse_overrides(assignments: list[str]) -> dict[str, Any]:
    """``key=value`` strings, each value read as YAML (as params.yaml would hold it)."""
    overrides = {}
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        if not separator or not key:
            raise ParamsError(f"--set {assignment!r}: write it as key=value, e.g. train.epochs=2")
        try:
            overrides[key.strip()] = YAML(typ="safe", pure=True).load(value)
        except YAMLError as error:
            raise ParamsError(
                f"--set {assignment!r}: the value is not valid YAML ({describe_yaml_error(error)});"
                " quote it, e.g. --set 'ingest.source=\"my file.csv\"'"
            ) from None
    return overrides


def hydra_override(key: str, value: Any) -> str:
    """``key=value`` in the grammar DVC's --set-param parses: Hydra's override grammar, not YAML.

    Hydra keeps a quoted string's characters as they are (JSON's ``\u00e9`` or a doubled
    backslash would reach params.yaml literally) and resolves ``${...}`` in it. So the value is
    parsed back with Hydra's own parser, and one it would not give back unchanged is refused
    before any experiment starts.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    override = f"{key}={_hydra_value(value)}"
    try:
        read_back = OverridesParser.create().parse_override(override).value()
    except HydraException:
        read_back = None
    if read_back != value or type(read_back) is not type(value) or "${" in override:
        raise ParamsError(
            f"{key}: {value!r} cannot be passed to dvc exp run --set-param unchanged; set it in"
            " params.yaml instead"
        )
    return override


def _hydra_quoted(text: str) -> str:
    """``text`` as a quoted string of Hydra's grammar. Inside one, a backslash is literal except
    in a run of them that ends at a quote or at the closing quote: such runs are doubled, and a
    quote of the enclosing kind gets one more backslash."""
    quote = "'" if '"' in text and "'" not in text else '"'

    def escape(match: re.Match) -> str:
        backslashes, quote_or_end = match[1], match[2]
        return 2 * backslashes + ("\\" + quote_or_end if quote_or_end else "")

    return quote + re.sub(rf"(\\*)({quote}|$)", escape, text) + quote


def _hydra_value(value: Any) -> str:
    if isinstance(value, str):
        return _hydra_quoted(value)
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(item)}" for k, item in value.items()) + "}"
    return json.dumps(value)  # null, true/false and numbers are spelt as in JSON


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="imdb-recipe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the recipes and what their notebooks claim")
    show = commands.add_parser("show", help="one recipe: its claim, every substitution, its set")
    show.add_argument("name")
    run = commands.add_parser("run", help="run one or more recipes as DVC experiments")
    run.add_argument("names", nargs="+")
    run.add_argument("--queue", action="store_true", help="queue them; run with dvc queue start")
    run.add_argument("--dry-run", action="store_true", help="print the dvc commands only")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra override on top of the recipe, e.g. train.epochs=2 for a shorter run",
    )
    run.add_argument(
        "--suffix", default="", help="appended to the experiment name, e.g. --suffix=-short"
    )
    return parser.parse_args(argv)


def list_recipes() -> None:
    broken = []
    for name in recipe_names():
        try:
            recipe = load_recipe(name)
        except ParamsError as error:  # one broken file must not hide the others
            broken.append(str(error))
            continue
        claim = recipe.claimed.accuracy
        print(f"{name:32} claims {claim if claim is not None else '-'}: {recipe.description}")
    if broken:
        raise ParamsError(f"{len(broken)} recipe(s) could not be read: {'; '.join(broken)}")


def show_recipe(name: str) -> None:
    recipe = load_recipe(name)
    print(f"{recipe.name} ({recipe.notebook}): {recipe.description}")
    print(f"claimed: {recipe.claimed.accuracy} ({recipe.claimed.what})")
    print("substitutions:")
    for substitution in recipe.all_substitutions():
        print(f"  - {substitution}")
    print("set:")
    for key, value in recipe.set.items():
        print(f"  {key}: {json.dumps(value, ensure_ascii=False)}")  # JSON is YAML too


def run_recipes(args: argparse.Namespace) -> None:
    document = read_document(PARAMS_FILE)
    recipes = [load_recipe(name) for name in args.names]
    extra = parse_overrides(args.set)
    for recipe in recipes:  # check them all before running any
        recipe_file = str(RECIPES_DIR / f"{recipe.name}.yaml")
        with_recipe = apply_overrides(document, recipe.set, recipe_file)
        validate(with_recipe, recipe_file)
        validate(apply_overrides(with_recipe, extra, "--set"), "--set")
    commands = [dvc_command(r, args.queue, extra, r.name + args.suffix) for r in recipes]
    for command in commands:
        print(shlex.join(command), flush=True)
        if args.dry_run:
            continue
        completed = cli.run_dvc(command)
        if completed.returncode != 0:
            sys.exit(completed.returncode)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "list":
        list_recipes()
    elif args.command == "show":
        show_recipe(args.name)
    else:
        run_recipes(args)


def entry_point() -> None:
    cli.run(main, "imdb-recipe", log_level="WARNING", dies_with_parent=False)


if __name__ == "__main__":
    entry_point()

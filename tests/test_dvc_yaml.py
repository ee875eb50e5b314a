"""dvc.yaml's code dependencies match what each stage really imports, and stages import the
library beside them: otherwise dvc.lock records hashes of code that did not run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# Imported by stages, yet unable to change an output: never a stage's dependency.
from imdb_rnn import CANNOT_CHANGE_RESULTS
from tests.conftest import REPO_ROOT

PACKAGE = "imdb_rnn"


def imported_modules(path: Path) -> set[str]:
    """imdb_rnn modules a file imports, at the top or inside functions."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:  # `from imdb_rnn import artifacts`, not a constant
                modules |= {alias.name for alias in node.names if alias.name.islower()}
            elif node.module.startswith(PACKAGE + "."):
                modules.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            modules |= {
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith(PACKAGE + ".")
            }
    return modules


def imported_closure(stage_file: Path) -> set[str]:
    package_dir = REPO_ROOT / "src" / PACKAGE
    pending, seen = imported_modules(stage_file), set()
    while pending:
        module = pending.pop()
        seen.add(module)
        pending |= imported_modules(package_dir / f"{module}.py") - seen
    return seen


STAGES = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
# Stages whose floating-point results depend on the kernels that stages/__init__.py pins for every
# stage (imdb_rnn.numerics); ingest and tokenize do text and integer work.
FLOATING_POINT_STAGES = {"embed", "train", "evaluate", "linear", "combine"}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_stage_depends_on_exactly_the_library_code_it_runs(name):
    stage = STAGES[name]
    module = stage["cmd"].split("python -m ")[1].split()[0]
    stage_file = Path(*module.split(".")).with_suffix(".py")
    assert str(stage_file) in stage["deps"]

    listed = {Path(dep).stem for dep in stage["deps"] if dep.startswith(f"src/{PACKAGE}/")}
    imported = imported_closure(REPO_ROOT / stage_file) - CANNOT_CHANGE_RESULTS
    if name in FLOATING_POINT_STAGES:  # stages/__init__.py pins their kernels
        imported.add("numerics")
    assert listed == imported, (
        f"stage {name}: add {sorted(imported - listed)} to its deps, "
        f"remove {sorted(listed - imported)}"
    )


def test_stages_import_the_library_beside_them_not_the_installed_one(tmp_path):
    """DVC runs queued experiments in copies of the repository, while an editable install
    points at the original checkout; the copy's own src/ must be what runs."""
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "__init__.py").write_text(
        (REPO_ROOT / "stages" / "__init__.py").read_text()
    )
    (tmp_path / "src" / PACKAGE).mkdir(parents=True)
    (tmp_path / "src" / PACKAGE / "__init__.py").write_text("")
    for module in ("numerics.py", "cli.py", "errors.py"):  # what stages/__init__.py imports
        source = REPO_ROOT / "src" / PACKAGE / module
        (tmp_path / "src" / PACKAGE / module).write_text(source.read_text())
    completed = subprocess.run(
        [sys.executable, "-c", f"import stages, {PACKAGE}; print({PACKAGE}.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(completed.stdout.strip()).resolve().is_relative_to(tmp_path.resolve())


# Which stages an edit to each library module reruns. The modules are cut along these lines: an
# edit to the tokenizer must not rerun ingest, nor an edit to the model code rerun the linear
# member. A new module, or a new import, shows up here as a failure to look at.
RERUNS = {
    "artifacts": {"ingest", "tokenize", "embed", "train", "evaluate", "linear", "combine"},
    "sources": {"ingest"},
    "data": {"ingest"},
    "unlabelled": {"ingest"},
    "text": {"tokenize", "embed", "linear"},
    "vocabulary": {"tokenize", "embed", "train", "evaluate"},
    "encoding": {"tokenize", "train", "evaluate"},
    "embedding": {"embed"},
    "pretrained": {"embed"},
    "numerics": {"embed", "train", "evaluate", "linear", "combine"},
    "batching": {"train", "evaluate"},
    "model": {"train", "evaluate"},
    "model_file": {"train", "evaluate"},
    "resume": {"train"},
    "distribution": {"train"},
    "evaluation": {"evaluate", "linear", "combine"},
    "predictions": {"evaluate", "linear", "combine"},
    "linear": {"linear"},
    "combination": {"combine"},
    "predictor_file": {"combine"},
    # imdb-predict, imdb-recipe and imdb-plots only: no stage runs them
    "serving": set(),
    "predict": set(),
    "recipes": set(),
    "plots": set(),
    # cannot change an output (see CANNOT_CHANGE_RESULTS)
    "errors": set(),
    "cli": set(),
    "params": set(),
    "environment": set(),
    "cluster": set(),
}


def test_an_edit_to_each_module_reruns_exactly_these_stages():
    modules = {path.stem for path in (REPO_ROOT / "src" / PACKAGE).glob("*.py")} - {"__init__"}
    assert set(RERUNS) == modules, "state which stages an edit to a new module reruns"
    for module, expected in RERUNS.items():
        dependent = {
            name for name, stage in STAGES.items() if f"src/{PACKAGE}/{module}.py" in stage["deps"]
        }
        assert dependent == expected, module


def test_ingest_reruns_only_for_its_own_code():
    code = {dep for dep in STAGES["ingest"]["deps"] if dep.endswith(".py")}
    assert code == {
        "stages/ingest.py",
        "src/imdb_rnn/sources.py",
        "src/imdb_rnn/data.py",
        "src/imdb_rnn/unlabelled.py",
        "src/imdb_rnn/artifacts.py",
    }


def test_imdb_predict_serves_what_the_combine_stage_writes():
    from imdb_rnn.predict import DEFAULT_PREDICTOR

    outputs = [
        next(iter(out)) if isinstance(out, dict) else out for out in STAGES["combine"]["outs"]
    ]
    assert str(DEFAULT_PREDICTOR) in outputs


def test_every_path_a_stage_reads_or_writes_is_on_its_command_line():
    """One place for each path: a stage must not rebuild a file name dvc.yaml also declares."""
    for name, stage in STAGES.items():
        files = [dep for dep in stage["deps"] if not dep.endswith(".py")]
        files += [
            next(iter(out)) if isinstance(out, dict) else out for out in stage.get("outs", [])
        ]
        files += [next(iter(out)) for out in stage.get("metrics", [])]
        for path in files:
            passed = [path, *(str(parent) for parent in Path(path).parents)]  # or its directory
            assert any(f" {candidate} " in f" {stage['cmd']} " for candidate in passed), (
                f"stage {name} does not pass {path}"
            )


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_stage_replaces_the_shell_dvc_starts_it_in(name):
    """dvc runs a cmd through $SHELL, or /bin/sh without one; dash forks a lone command instead of
    becoming it, and a stage whose parent is that shell would outlive a killed dvc."""
    assert STAGES[name]["cmd"].startswith(f"exec python -m stages.{name} ")

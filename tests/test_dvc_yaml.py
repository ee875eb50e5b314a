"""dvc.yaml's code dependencies match what each stage really imports, and stages import the
library beside them: otherwise dvc.lock records hashes of code that did not run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

PACKAGE = "imdb_rnn"

# Imported by every stage, yet unable to change an output: error types and their one-line
# messages, logging setup, and the validation of values that DVC already tracks as params.
CANNOT_CHANGE_RESULTS = {"errors", "cli", "params"}


def imported_modules(path: Path) -> set[str]:
    """imdb_rnn modules a file imports, at the top or inside functions."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                modules |= {alias.name for alias in node.names}
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


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_stage_depends_on_exactly_the_library_code_it_runs(name):
    stage = STAGES[name]
    module = stage["cmd"].split("python -m ")[1].split()[0]
    stage_file = Path(*module.split(".")).with_suffix(".py")
    assert str(stage_file) in stage["deps"]

    listed = {Path(dep).stem for dep in stage["deps"] if dep.startswith(f"src/{PACKAGE}/")}
    imported = imported_closure(REPO_ROOT / stage_file) - CANNOT_CHANGE_RESULTS
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
    completed = subprocess.run(
        [sys.executable, "-c", f"import stages, {PACKAGE}; print({PACKAGE}.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(completed.stdout.strip()).resolve().is_relative_to(tmp_path.resolve())

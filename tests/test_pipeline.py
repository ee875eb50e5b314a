"""End to end: the real `dvc` CLI runs the pipeline in a scratch git repository on tiny data.

This proves what users rely on: `dvc repro` runs every stage once, then reruns exactly the stages
downstream of a changed parameter, and nothing when nothing changed; `dvc plots show` finds the
plots; `dvc exp run -S` reaches the stages; `imdb-predict` scores reviews with what was trained.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

PIPELINE_FILES = ("dvc.yaml", "params.yaml", "stages", "src", ".dvcignore")
pytestmark = pytest.mark.slow


class Project:
    """A scratch copy of the pipeline with its own git repository and DVC cache."""

    def __init__(self, root: Path):
        self.root = root
        venv_bin = str(Path(sys.executable).parent)  # `python` and `dvc` of this interpreter
        self.env = os.environ | {
            "PATH": venv_bin + os.pathsep + os.environ["PATH"],
            "DVC_NO_ANALYTICS": "1",
        }

    def run(self, *command: str) -> str:
        """Run a command in the project; return its stdout and stderr together."""
        result = self.run_process(*command)
        return result.stdout + result.stderr

    def run_process(self, *command: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, (
            f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        )
        return result

    def repro(self, *extra: str) -> set[str]:
        """Run `dvc repro` and return the names of the stages that actually ran."""
        return set(re.findall(r"Running stage '(\w+)'", self.run("dvc", "repro", *extra)))

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run(
            "git",
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.com",
            "commit",
            "-qm",
            message,
        )

    def set_param(self, dotted_key: str, value) -> None:
        params_file = self.root / "params.yaml"
        params = yaml.safe_load(params_file.read_text())
        *sections, key = dotted_key.split(".")
        target = params
        for section in sections:
            target = target[section]
        target[key] = value
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def project(tmp_path, tiny_dataset) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    for name in PIPELINE_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    project = Project(root)
    project.run("git", "init", "-q")
    project.run("dvc", "init", "-q")
    project.set_param("ingest.source", str(tiny_dataset))
    project.set_param("tokenize.vocab_size", 60)
    project.set_param("tokenize.max_length", 16)
    project.set_param("embed.dimension", 8)
    project.set_param("embed.epochs", 1)
    project.set_param("train.units", 4)
    project.set_param("train.epochs", 2)
    # DVCLive (3.49) fails in a repository without commits, which a clone never is.
    project.commit("tiny pipeline")
    return project


ALL_STAGES = {"ingest", "tokenize", "embed", "train", "evaluate", "baseline"}


def test_repro_reruns_exactly_the_stages_downstream_of_a_change(project):
    assert project.repro() == ALL_STAGES
    assert project.repro() == set(), "a second repro with nothing changed must run nothing"

    metrics = json.loads((project.root / "reports/metrics.json").read_text())
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"} <= set(metrics)
    assert metrics["test_reviews"] == 100
    for plot in ("confusion_matrix.csv", "roc.csv", "precision_recall.csv"):
        assert (project.root / "reports/plots" / plot).stat().st_size > 0
    train_summary = json.loads((project.root / "reports/train/metrics.json").read_text())
    assert set(train_summary["saved_model"]) == {"epoch", "val_loss", "val_accuracy"}
    history = (project.root / "reports/train/plots/metrics/eval/accuracy.tsv").read_text()
    assert history.splitlines()[0] == "step\taccuracy" and len(history.splitlines()) == 3

    project.set_param("train.units", 3)
    assert project.repro() == {"train", "evaluate"}

    project.set_param("evaluate.threshold", 0.6)
    assert project.repro() == {"evaluate"}

    project.set_param("baseline.ngram_max", 1)
    assert project.repro() == {"baseline"}

    project.set_param("embed.epochs", 2)
    assert project.repro() == {"embed", "train", "evaluate"}

    project.set_param("tokenize.vocab_size", 12)  # the toy reviews have 26 distinct words
    assert project.repro() == {"tokenize", "embed", "train", "evaluate"}

    # A new sequence length rewrites the id matrices but not the vocabulary or the token corpus,
    # so DVC sees embed's inputs unchanged and skips it.
    project.set_param("tokenize.max_length", 12)
    assert project.repro() == {"tokenize", "train", "evaluate"}

    shown = project.run("dvc", "plots", "show", "--json")
    assert "Loss per epoch" in shown and "Confusion matrix (test)" in shown

    predicted = project.run_process(
        "imdb-predict", "--json", "A great movie.", "Awful film.", "Fun!"
    )
    assert len(json.loads(predicted.stdout)) == 3  # stdout is pure JSON; TensorFlow logs to stderr


def test_exp_run_set_param_overrides_reach_the_stage(project):
    project.repro()
    project.commit("baseline")
    output = project.run("dvc", "exp", "run", "-S", "train.units=3")
    assert set(re.findall(r"Running stage '(\w+)'", output)) == {"train", "evaluate"}
    summary = project.run("dvc", "exp", "show", "--json")
    assert '"units": 3' in summary.replace(" ", "").replace('"units":3', '"units": 3')

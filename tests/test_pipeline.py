"""End to end: the real `dvc` CLI runs the pipeline in a scratch git repository on tiny data.

This proves what users rely on: `dvc repro` runs every stage once, then reruns exactly the stages
downstream of a changed parameter, and nothing when nothing changed.
"""

from __future__ import annotations

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
        result = subprocess.run(
            command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, (
            f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout + result.stderr

    def repro(self, *extra: str) -> set[str]:
        """Run `dvc repro` and return the names of the stages that actually ran."""
        return set(re.findall(r"Running stage '(\w+)'", self.run("dvc", "repro", *extra)))

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
    return project


def test_repro_reruns_exactly_the_stages_downstream_of_a_change(project):
    assert project.repro() == {"ingest", "tokenize", "embed"}
    assert project.repro() == set(), "a second repro with nothing changed must run nothing"

    project.set_param("embed.epochs", 2)
    assert project.repro() == {"embed"}

    project.set_param("tokenize.vocab_size", 12)  # the toy reviews have 26 distinct words
    assert project.repro() == {"tokenize", "embed"}

    # A new sequence length rewrites the id matrices but not the vocabulary or the token corpus,
    # so DVC sees embed's inputs unchanged and skips it.
    project.set_param("tokenize.max_length", 12)
    assert project.repro() == {"tokenize"}

    project.set_param("ingest.validation_fraction", 0.2)
    assert project.repro() == {"ingest", "tokenize", "embed"}


def test_exp_run_set_param_overrides_reach_the_stage(project):
    project.repro()
    project.run("git", "add", "-A")
    project.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")
    output = project.run("dvc", "exp", "run", "-S", "embed.dimension=4")
    assert set(re.findall(r"Running stage '(\w+)'", output)) == {"embed"}
    assert '"dimension": 4' in (project.root / "reports/embedding.json").read_text()

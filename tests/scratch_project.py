"""A scratch copy of the pipeline, with its own git repository and DVC cache, on tiny data.

The end-to-end tests drive the real `git` and `dvc` CLIs in it, as a user would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT

ALL_STAGES = {"ingest", "tokenize", "embed", "train", "evaluate", "linear", "combine"}
PIPELINE_FILES = ("dvc.yaml", "params.yaml", "stages", "src", "recipes", ".dvcignore")


class Project:
    """A scratch copy of the pipeline with its own git repository and DVC cache."""

    def __init__(self, root: Path):
        self.root = root
        venv_bin = str(Path(sys.executable).parent)  # `python` and `dvc` of this interpreter
        self.env = os.environ | {
            "PATH": venv_bin + os.pathsep + os.environ["PATH"],
            "DVC_NO_ANALYTICS": "1",
        }

    @property
    def env_without_shell(self) -> dict[str, str]:
        """The environment of cron or a CI job: no $SHELL, so dvc runs each stage through
        /bin/sh, which on Debian is dash, and dash forks a command rather than becoming it."""
        return {name: value for name, value in self.env.items() if name != "SHELL"}

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

    def stages_with_changed_inputs(self) -> set[str]:
        """The stages `dvc status` finds changed: those whose own dependencies (parameters,
        code, input files) differ from dvc.lock. Unlike `dvc repro`, this runs nothing, so the
        stages downstream of them are not in it."""
        return set(json.loads(self.run_process("dvc", "status", "--json").stdout))

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


def create_tiny_project(root: Path, tiny_dataset: Path) -> Project:
    """Copy the pipeline into ``root``, point it at ``tiny_dataset``, shrink it, commit it."""
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

"""Running one stage as dvc.yaml runs it, in a scratch directory, and reading its one-line error."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT


def run_stage(
    workdir: Path, name: str, *args: str, env: dict | None = None, emulator: tuple[str, ...] = ()
):
    """Run ``python -m stages.<name> args`` in workdir; under ``emulator`` (a command that runs
    a program on another CPU, such as user-mode QEMU) if one is given."""
    environment = os.environ | {"PYTHONPATH": str(REPO_ROOT)} | (env or {})
    return subprocess.run(
        [*emulator, sys.executable, "-m", f"stages.{name}", *args],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900 if emulator else 300,
    )


def error_line(result: subprocess.CompletedProcess) -> str:
    """The stage's error: exactly one line, the last on stderr (log lines may come before it)."""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert errors == lines[-1:], result.stderr
    return errors[0]


def write_params(workdir: Path, params: dict) -> None:
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))


def stage_args(name: str, root: Path = REPO_ROOT) -> list[str]:
    """The stage's arguments exactly as the dvc.yaml in ``root`` passes them: the paths live there
    only."""
    command = shlex.split(yaml.safe_load((root / "dvc.yaml").read_text())["stages"][name]["cmd"])
    return command[command.index(f"stages.{name}") + 1 :]


INGEST_ARGS, TOKENIZE_ARGS, EMBED_ARGS = (
    stage_args(name) for name in ("ingest", "tokenize", "embed")
)

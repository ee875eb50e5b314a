"""What pinning the kernels costs: each stage run with and without imdb_rnn.numerics' pins.

Not part of the test suite. Copies the workspace's stage inputs (after a full `dvc repro`) into a
scratch project, then runs embed (one Word2Vec epoch), train (one epoch), evaluate, linear and
combine there, each twice in a row: once pinned, once with IMDB_RNN_PORTABLE_NUMERICS=0 (the
kernels this CPU picks by itself), alternating which goes first from stage to stage so that drift
on a shared machine does not favour either. Reports seconds per run and the ratio pinned/unpinned.

    python benchmarks/numerics_cost.py --out benchmarks/numerics_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from imdb_rnn.cli import RECORD_ENV
from imdb_rnn.numerics import SWITCH_ENV

REPOSITORY = Path(__file__).resolve().parents[1]
STAGES = ("embed", "train", "evaluate", "linear", "combine")
INPUTS = ("data", "models")


def prepare(workdir: Path) -> Path:
    project = workdir / "project"
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    for name in INPUTS:
        shutil.copytree(
            REPOSITORY / name, project / name, ignore=shutil.ignore_patterns(".gitignore")
        )
    params = yaml.safe_load((REPOSITORY / "params.yaml").read_text())
    params["embed"]["epochs"] = 1
    params["train"]["epochs"] = 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


def run(project: Path, stage: str, pinned: bool, record: Path) -> float:
    command = yaml.safe_load((REPOSITORY / "dvc.yaml").read_text())["stages"][stage]["cmd"]
    env = os.environ | {
        "PYTHONPATH": str(REPOSITORY),
        RECORD_ENV: str(record),
        SWITCH_ENV: "1" if pinned else "0",
    }
    record.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, *shlex.split(command.removeprefix("exec "))[1:]],
        cwd=project,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return json.loads(record.read_text().splitlines()[-1])["seconds"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/numerics_cost.json"))
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="imdb-rnn-numerics-"))
    project = prepare(workdir)
    results = {}
    for index, stage in enumerate(STAGES):
        order = (True, False) if index % 2 == 0 else (False, True)
        seconds = {
            pinned: run(project, stage, pinned, workdir / "record.jsonl") for pinned in order
        }
        results[stage] = {
            "pinned_s": seconds[True],
            "unpinned_s": seconds[False],
            "ratio": round(seconds[True] / seconds[False], 3),
        }
        print(stage, results[stage], flush=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

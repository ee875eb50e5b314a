"""A parameter grid queued with `dvc exp run --queue`, run with one worker and then with two.

Not part of the test suite. Run it in a workspace whose pipeline is up to date (after
`dvc repro`): each grid point reruns train, evaluate and combine from the cached upstream outputs.
Both grids are shortened the same way (one epoch of a BiGRU(32)) and differ only in the training
seed, so each point costs the same and DVC does not restore the second grid from its run cache.
Prints wall time per grid and writes the `dvc exp show` comparison to --out.

    python benchmarks/parallel_sweep.py --out benchmarks/parallel_sweep.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from imdb_rnn.environment import cpu_description

# dvc exp show matches --keep against whole column names, metrics files' paths included
KEPT_COLUMNS = "|".join(
    ["Experiment", "train.seed"]
    + [f"reports/metrics/{model}.json:test.accuracy" for model in ("rnn", "combined")]
)
GRIDS = {1: "train.seed=1,2", 2: "train.seed=3,4"}  # workers -> the grid they run
SHORTENED = [
    "-S",
    "train.epochs=1",
    "-S",
    "train.units=32",
    "-S",
    "train.early_stopping.patience=0",
]


def dvc(*args: str) -> str:
    return subprocess.run(["dvc", *args], check=True, capture_output=True, text=True).stdout


def run_grid(workers: int, grid: str) -> float:
    dvc("exp", "run", "--queue", "-S", grid, *SHORTENED)
    started = time.perf_counter()
    dvc("queue", "start", "-j", str(workers))
    while True:
        time.sleep(5)
        status = dvc("queue", "status")
        if "Queued" not in status and "Running" not in status:
            break
    seconds = time.perf_counter() - started
    if "Failed" in status:
        raise SystemExit(f"a queued experiment failed:\n{status}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/parallel_sweep.json"))
    args = parser.parse_args(argv)
    results = {"machine": cpu_description()}
    for workers, grid in GRIDS.items():
        seconds = run_grid(workers, grid)
        results[f"{workers} worker(s)"] = {
            "grid": grid,
            "experiments": 2,
            "wall_s": round(seconds, 1),
        }
        print(f"{workers} worker(s), {grid}: {seconds:.0f} s", flush=True)
    shown = dvc(
        "exp", "show", "--csv", "--drop", ".*", "--keep",
        KEPT_COLUMNS,
    )  # fmt: skip
    results["exp_show"] = shown
    results["speedup"] = round(
        results["1 worker(s)"]["wall_s"] / results["2 worker(s)"]["wall_s"], 2
    )
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(shown)


if __name__ == "__main__":
    main()

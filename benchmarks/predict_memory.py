"""imdb-predict's peak memory and speed as its input grows: 1, 10 and 100 MB of reviews.

Not part of the test suite. Writes files of synthetic reviews (words drawn from the predictor's
own vocabulary in proportion to their training counts, 20 to 460 words a review: about IMDB's
1.3 kB), runs imdb-predict on each with its output thrown away, and reads the peak resident memory
of that one process from the kernel (os.wait4), so a fresh process is measured at each size and
nothing of this script's own is counted.

    python benchmarks/predict_memory.py --out benchmarks/predict_memory.json
    PYTHONPATH=other/src python benchmarks/predict_memory.py --sizes-mb 1 10   # other code
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from imdb_rnn.environment import cpu_description
from imdb_rnn.predictor_file import read_manifest
from imdb_rnn.vocabulary import RESERVED_TOKENS, read_vocabulary

PREDICT = Path(sys.executable).parent / "imdb-predict"  # the installed console script
WORDS_PER_REVIEW = (20, 460)


def write_synthetic_reviews(path: Path, megabytes: float, tokens, counts, seed: int = 0) -> int:
    """About ``megabytes`` of reviews, one a line; returns how many."""
    rng = np.random.default_rng(seed)
    probabilities = np.asarray(counts, dtype=np.float64) / sum(counts)
    written = reviews = 0
    with path.open("w", encoding="utf-8", newline="\n") as stream:
        while written < megabytes * 2**20:
            words = rng.choice(len(tokens), size=rng.integers(*WORDS_PER_REVIEW), p=probabilities)
            line = " ".join(tokens[word] for word in words).capitalize() + ".\n"
            written += stream.write(line)
            reviews += 1
    return reviews


def measure(command: list[str], reviews_file: Path) -> dict:
    """Wall time, exit status and peak resident memory of one run of ``command --file``."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [*command, "--file", str(reviews_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        # wait4 gives the resources of this child alone (ru_maxrss in KiB on Linux)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace").strip()
    return {
        "exit_status": os.waitstatus_to_exitcode(status),
        "seconds": round(seconds, 1),
        "peak_resident_mib": round(usage.ru_maxrss / 2**10),
        "stderr": errors[-500:],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictor", type=Path, default=Path("models/predictor.json"))
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[1, 10, 100])
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    manifest = read_manifest(args.predictor)
    vocabulary = read_vocabulary(args.predictor.parent / manifest.vocabulary.path)
    words = len(RESERVED_TOKENS)  # padding and the unknown word are never written
    tokens, counts = vocabulary.tokens[words:], vocabulary.counts[words:]
    command = [str(PREDICT), "--predictor", str(args.predictor)]
    runs = []
    with tempfile.TemporaryDirectory() as directory:
        for megabytes in args.sizes_mb:
            reviews_file = Path(directory) / f"reviews-{megabytes:g}MB.txt"
            reviews = write_synthetic_reviews(reviews_file, megabytes, tokens, counts)
            run = {"megabytes": megabytes, "reviews": reviews} | measure(command, reviews_file)
            run["reviews_per_s"] = round(reviews / run["seconds"])
            print(json.dumps(run), flush=True)
            runs.append(run)
            reviews_file.unlink()
    results = {
        "machine": cpu_description(),
        "batch_size": manifest.batch_size,
        "python_path": os.environ.get("PYTHONPATH"),
        "runs": runs,
    }
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

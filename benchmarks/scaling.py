"""How the cost of ingest, tokenize, embed and one training epoch grows with the corpus.

Not part of the test suite. Builds corpora of 1x, 4x and 16x the ingest stage's training reviews
(synthetic growth: each extra review is a real training review with its sentences shuffled, so the
vocabulary and the length distribution stay IMDB's), clones the committed HEAD once per size,
points `ingest.source` at the corpus and runs `dvc repro train` there. Every stage appends its wall
time, peak resident memory and peak anonymous memory (resident memory minus the pages of
memory-mapped files) to a record file (imdb_rnn.cli, $IMDB_RNN_RECORD); the table shows them per
size, and the ratio to 1x.

Shortened so that 16x fits in minutes on 2 CPU cores, and said so in the results: one Word2Vec
epoch, one training epoch of a BiGRU(32) (the default is BiGRU(128)); everything else is the
committed params.yaml.

    python benchmarks/scaling.py --raw data/raw --out benchmarks/scaling.json
    python benchmarks/scaling.py --target ingest --out benchmarks/scaling-ingest.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from imdb_rnn.environment import cpu_description

REPOSITORY = Path(__file__).resolve().parents[1]
SHORTENED = {
    ("embed", "epochs"): 1,
    ("train", "epochs"): 1,
    ("train", "units"): 32,
    ("train", "early_stopping", "patience"): 0,
    ("train", "reduce_lr", "patience"): 0,
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def shuffled_sentences(text: str, rng: random.Random) -> str:
    sentences = _SENTENCE_END.split(text)
    rng.shuffle(sentences)
    return " ".join(sentences)


def grown_corpus(reviews: pd.DataFrame, factor: int, seed: int = 0) -> pd.DataFrame:
    """``factor`` times the reviews: the originals, then resampled ones with shuffled sentences."""
    rng = random.Random(seed)
    extra = []
    for _ in range((factor - 1) * len(reviews)):
        row = reviews.iloc[rng.randrange(len(reviews))]
        extra.append({"text": shuffled_sentences(row["text"], rng), "label": int(row["label"])})
    return pd.concat([reviews, pd.DataFrame(extra)], ignore_index=True)


def run_size(factor: int, raw: Path, workdir: Path, target: str) -> dict:
    source = workdir / f"corpus-{factor}x"
    source.mkdir(parents=True, exist_ok=True)
    train = pd.read_parquet(raw / "train.parquet")
    grown_corpus(train, factor).to_parquet(source / "train.parquet")
    shutil.copy(raw / "test.parquet", source / "test.parquet")

    clone = workdir / f"clone-{factor}x"
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run(["git", "clone", "-q", str(REPOSITORY), str(clone)], check=True)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["ingest"]["source"] = str(source)
    params["ingest"]["unlabelled"] = False  # the source holds the labelled splits alone
    # the source's train file is the whole official train split: keep its 10 % for validation
    for path, value in SHORTENED.items():
        section = params
        for key in path[:-1]:
            section = section[key]
        section[path[-1]] = value
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    records = workdir / f"records-{factor}x.jsonl"
    records.unlink(missing_ok=True)
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "IMDB_RNN_RECORD": str(records),
        "DVC_NO_ANALYTICS": "1",
    }
    print(f"{factor}x: {len(train) * factor:,} training reviews ...", flush=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dvc", "repro", target],
        cwd=clone,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    stages = {}
    for line in records.read_text().splitlines():
        record = json.loads(line)
        stages[record.pop("command")] = record
    shutil.rmtree(clone)
    return {
        "factor": factor,
        "training_reviews": len(train) * factor,
        "repro_seconds": round(time.perf_counter() - started, 1),
        "stages": stages,
    }


def table(results: list[dict]) -> str:
    base = {name: stage for name, stage in results[0]["stages"].items()}
    lines = [
        "| size | reviews | stage | wall time | x 1x | peak resident | peak anonymous |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for name, stage in result["stages"].items():
            ratio = stage["seconds"] / base[name]["seconds"] if base.get(name) else float("nan")
            lines.append(
                f"| {result['factor']}x | {result['training_reviews']:,} | {name} |"
                f" {stage['seconds']:.1f} s | {ratio:.1f} | {stage['peak_memory_mib']:,} MiB |"
                f" {stage.get('peak_anonymous_memory_mib', float('nan')):,.0f} MiB |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--raw", type=Path, default=Path("data/raw"), help="ingest's outputs")
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--target", default="train", help="the last stage to run (dvc repro)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/scaling.json"))
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="imdb-rnn-scaling-"))
    results = [
        run_size(factor, args.raw.resolve(), workdir, args.target) for factor in args.factors
    ]
    args.out.write_text(
        json.dumps(
            {
                "machine": cpu_description(),
                "shortened": {".".join(k): v for k, v in SHORTENED.items()},
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(table(results))


if __name__ == "__main__":
    main()

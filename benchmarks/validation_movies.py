"""Does a random validation share movies with training, and does drawing it in runs help?

Not part of the test suite, and not a stage: an experiment of issue 20, kept so that its rows of
docs/results.md can be rerun. The official test reviews are of other movies than the training
reviews (Maas et al. 2011); a random 10 % of the training reviews is not, and the Hugging Face
copy has no movie ids to split by. Two measurements, on the source's training split as ingest
reads it (`ingest.protocol: official`):

1. **The source's order keeps a movie together.** Every pair of training reviews whose tf-idf
   cosine exceeds 0.3 (review-specific words such as a film's title and cast shared): how many
   are within 30 rows of each other.
2. **Each validation split against the test split**: for every validation review, the cosine of
   its nearest training review (test: of 2,500 test reviews drawn once per seed); then the linear
   member (the committed `linear` params) fitted on that training split and scored on that
   validation split and on the 25,000 test reviews. For `ingest.validation_block_size` null
   (random) and each run length in `--run-lengths`, for each seed in `--seeds`.

    python benchmarks/validation_movies.py --out benchmarks/validation_movies.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from imdb_rnn.numerics import pin_kernels

pin_kernels()  # before NumPy loads, as every stage does

import numpy as np  # noqa: E402
from datasets import load_dataset  # noqa: E402
from scipy import sparse  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402

from imdb_rnn.data import split_official  # noqa: E402
from imdb_rnn.environment import cpu_description  # noqa: E402
from imdb_rnn.evaluation import compute_metrics  # noqa: E402
from imdb_rnn.linear import fit_linear  # noqa: E402
from imdb_rnn.params import EvaluateParams, IngestParams, LinearParams, load_section  # noqa: E402

SIMILAR = 0.3  # cosine above which two reviews share review-specific words (names, titles)
NEARBY_ROWS = 30  # IMDB's crawl kept at most 30 reviews of a movie
CHUNK = 2500  # rows of a similarity product at a time: bounds its memory
log = logging.getLogger("validation_movies")


def nearest_cosines(queries: sparse.csr_matrix, corpus: sparse.csr_matrix) -> np.ndarray:
    """Cosine of each (unit-length tf-idf) query row's most similar corpus row."""
    corpus_columns = corpus.T.tocsr()
    return np.concatenate(
        [
            (queries[start : start + CHUNK] @ corpus_columns).max(axis=1).toarray().ravel()
            for start in range(0, queries.shape[0], CHUNK)
        ]
    )


def similar_pairs(vectors: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (i, j), i != j, of every pair of rows with cosine above SIMILAR."""
    columns = vectors.T.tocsr()
    firsts, seconds = [], []
    for start in range(0, vectors.shape[0], CHUNK):
        product = (vectors[start : start + CHUNK] @ columns).tocoo()
        keep = (product.data > SIMILAR) & (product.row + start != product.col)
        firsts.append(product.row[keep] + start)
        seconds.append(product.col[keep])
    return np.concatenate(firsts), np.concatenate(seconds)


def summary(cosines: np.ndarray) -> dict[str, float]:
    return {
        f"share_above_{SIMILAR}": round(float(np.mean(cosines > SIMILAR)), 4),
        "median": round(float(np.median(cosines)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--run-lengths", type=int, nargs="+", default=[250, 50])
    parser.add_argument("--reviews", type=int, help="only the first N of each split (a smoke run)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.monotonic()
    ingest = load_section("ingest", IngestParams)
    linear = load_section("linear", LinearParams)
    threshold = load_section("evaluate", EvaluateParams).threshold

    def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
        return compute_metrics(labels, probabilities, threshold)["accuracy"]

    source = {
        split: load_dataset(ingest.dataset, split=split, revision=ingest.revision)
        for split in ("train", "test")
    }
    if args.reviews:  # both labels: the splits are sorted by label
        source = {
            split: rows.shuffle(seed=0).select(range(args.reviews)).sort("label")
            for split, rows in source.items()
        }
    texts = {split: np.array(rows["text"], dtype=object) for split, rows in source.items()}
    labels = {split: np.array(rows["label"], dtype=np.int8) for split, rows in source.items()}

    vectors = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(texts["train"])
    first, second = similar_pairs(vectors)
    order = {
        "similar_training_pairs": len(first),
        f"share_within_{NEARBY_ROWS}_rows": round(
            float(np.mean(np.abs(first - second) <= NEARBY_ROWS)), 4
        ),
    }
    log.info("source order: %s", order)

    train_rows = np.arange(len(labels["train"]))
    runs = []
    for seed in args.seeds:
        test_sample = np.random.default_rng(seed).choice(
            len(labels["test"]), size=min(CHUNK, len(labels["test"])), replace=False
        )
        for run_length in [None, *args.run_lengths]:
            splits = split_official(
                train_rows,
                np.arange(0),
                labels["train"],
                ingest.validation_fraction,
                seed,
                run_length,
            )
            tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2).fit(texts["train"][splits.train])
            training = tfidf.transform(texts["train"][splits.train])
            model = fit_linear(
                list(texts["train"][splits.train]), labels["train"][splits.train], linear
            )
            validation_accuracy = accuracy(
                model.probabilities(list(texts["train"][splits.validation])),
                labels["train"][splits.validation],
            )
            test_accuracy = accuracy(model.probabilities(list(texts["test"])), labels["test"])
            run = {
                "seed": seed,
                "validation_block_size": run_length,
                "validation_nearest_training_review": summary(
                    nearest_cosines(tfidf.transform(texts["train"][splits.validation]), training)
                ),
                "test_nearest_training_review": summary(
                    nearest_cosines(tfidf.transform(texts["test"][test_sample]), training)
                ),
                "linear_validation_accuracy": validation_accuracy,
                "linear_test_accuracy": test_accuracy,
                "validation_minus_test": round(validation_accuracy - test_accuracy, 4),
            }
            log.info("%s", json.dumps(run))
            runs.append(run)
    result = {
        "source_order": order,
        "runs": runs,
        "reviews": {split: len(rows) for split, rows in labels.items()},
        "seconds": round(time.monotonic() - started),
        "cpu": cpu_description(),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

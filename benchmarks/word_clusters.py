"""Word-cluster n-grams as extra features of the linear member, the clusters from unlabelled text.

Not part of the test suite, and not a stage: an experiment of issue 20, kept so that its rows of
docs/results.md can be rerun. The classic semi-supervised trick for linear models (Brown-cluster
features; Koo et al. 2008, Turian et al. 2010): words with similar Word2Vec vectors share a
cluster, so "awfully dull" and "terribly boring" share the cluster bigram a rare word bigram never
gets enough reviews to weigh. Unlabelled text enters through the vectors the clusters are cut from.

For each set of word vectors:

1. k-means (`--clusters` of them, scikit-learn's MiniBatchKMeans on unit-length vectors) over
   every word the vectors know; a review becomes its sequence of cluster names (a word the
   vectors lack becomes one shared name).
2. Cluster 1..`--cluster-ngrams`-grams present in at least 2 training reviews, NB-scaled like the
   linear member's word n-grams (each block its own log-count ratio), beside the linear member's
   own word uni/bi/trigrams; one logistic regression (liblinear, C = 1) over both blocks.

Scored alone, then stacked on validation with the existing members, as the combine stage stacks;
test accuracy is reported beside it, never used to choose. Two sets of vectors: the pipeline's
own (`models/word_vectors.bin`, Word2Vec on the training reviews: the control), and Word2Vec with
the embed stage's params on the training plus unlabelled reviews, trained here (18 minutes on 2
shared cores) or read from `--unlabelled-vectors` if that file exists.

    python benchmarks/word_clusters.py --out benchmarks/word_clusters.json \\
        --unlabelled-vectors /tmp/word2vec-unlabelled.kv
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from imdb_rnn.numerics import pin_kernels

pin_kernels()  # before NumPy loads, as every stage does

import numpy as np  # noqa: E402
from gensim.models import KeyedVectors  # noqa: E402
from region_cnn import append_row  # noqa: E402
from scipy import sparse  # noqa: E402
from sklearn.cluster import MiniBatchKMeans  # noqa: E402
from sklearn.feature_extraction.text import CountVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from unlabelled_members import scored  # noqa: E402

from imdb_rnn import artifacts  # noqa: E402
from imdb_rnn.embedding import train_word2vec  # noqa: E402
from imdb_rnn.environment import cpu_description  # noqa: E402
from imdb_rnn.linear import log_count_ratio  # noqa: E402
from imdb_rnn.params import EmbedParams, LinearParams, load_section  # noqa: E402
from imdb_rnn.predictions import SCORED_SPLITS, read_predictions  # noqa: E402
from imdb_rnn.text import tokenize  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
SPLITS = ("train", *SCORED_SPLITS)
UNKNOWN_CLUSTER = "c?"
log = logging.getLogger("word_clusters")

Reviews = dict[str, list[list[str]]]  # tokens of each review, per split


def ngram_presence(reviews: Reviews, ngram_max: int, min_df: int) -> dict[str, sparse.csr_matrix]:
    """1..ngram_max-grams of already tokenized reviews, counted (present or not) on train."""

    def ngrams(tokens: list[str]) -> list[str]:
        return [
            " ".join(tokens[start : start + n])
            for n in range(1, ngram_max + 1)
            for start in range(len(tokens) - n + 1)
        ]

    vectorizer = CountVectorizer(analyzer=ngrams, binary=True, dtype=np.float64, min_df=min_df)
    presence = {"train": vectorizer.fit_transform(reviews["train"])}
    for split in SCORED_SPLITS:
        presence[split] = vectorizer.transform(reviews[split])
    return presence


def word_clusters(vectors: KeyedVectors, clusters: int) -> dict[str, str]:
    """Each word's cluster name, k-means on unit-length vectors (cosine neighbours together)."""
    unit = vectors.vectors / np.linalg.norm(vectors.vectors, axis=1, keepdims=True)
    kmeans = MiniBatchKMeans(clusters, random_state=0, n_init=3, batch_size=4096).fit(unit)
    labels = kmeans.labels_
    return {word: f"c{label}" for word, label in zip(vectors.index_to_key, labels, strict=True)}


def as_clusters(reviews: Reviews, cluster_of: dict[str, str]) -> Reviews:
    return {
        split: [[cluster_of.get(word, UNKNOWN_CLUSTER) for word in words] for words in tokens]
        for split, tokens in reviews.items()
    }


def nb_logistic_regression(
    blocks: list[dict[str, sparse.csr_matrix]], labels: np.ndarray, c: float
) -> dict[str, np.ndarray]:
    """The linear member's model over several feature blocks, each NB-scaled on its own."""
    scaled = {split: [] for split in SPLITS}
    for block in blocks:
        ratio = log_count_ratio(block["train"], labels)
        for split in SPLITS:
            scaled[split].append(sparse.csr_matrix(block[split].multiply(ratio)))
    inputs = {split: sparse.hstack(parts).tocsr() for split, parts in scaled.items()}
    classifier = LogisticRegression(C=c, solver="liblinear", max_iter=1000)
    classifier.fit(inputs["train"], labels)
    return {split: classifier.predict_proba(inputs[split])[:, 1] for split in SCORED_SPLITS}


def unlabelled_vectors(path: Path, train: list[list[str]]) -> KeyedVectors:
    """Word2Vec with params.yaml's embed section on training + unlabelled reviews (cached)."""
    if path.exists():
        return KeyedVectors.load(str(path))
    unlabelled = [
        tokenize(text)
        for chunk in artifacts.iter_texts(REPOSITORY / "data/raw/unlabelled.parquet", 10_000)
        for text in chunk
    ]
    params = load_section("embed", EmbedParams, REPOSITORY / "params.yaml")
    vectors = train_word2vec(train + unlabelled, params)
    vectors.save(str(path))
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to append the rows to")
    parser.add_argument("--unlabelled-vectors", type=Path, required=True, help="cache file")
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--cluster-ngrams", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    data = {s: artifacts.read_reviews(REPOSITORY / f"data/raw/{s}.parquet") for s in SPLITS}
    reviews = {split: [tokenize(text) for text in data[split]["text"]] for split in SPLITS}
    labels = {split: data[split]["label"].to_numpy() for split in SPLITS}
    linear = load_section("linear", LinearParams, REPOSITORY / "params.yaml")
    words = ngram_presence(reviews, linear.ngram_max, linear.min_df)
    others = {
        member: read_predictions(REPOSITORY / f"data/predictions/{member}.npz")
        for member in ("rnn", "linear")
    }

    sources = {
        "the pipeline's vectors (training reviews)": lambda: KeyedVectors.load_word2vec_format(
            str(REPOSITORY / "models/word_vectors.bin"), binary=True
        ),
        "vectors from training + unlabelled reviews": lambda: unlabelled_vectors(
            args.unlabelled_vectors, reviews["train"]
        ),
    }
    for source, vectors in sources.items():
        started = time.perf_counter()
        cluster_of = word_clusters(vectors(), args.clusters)
        clustered = ngram_presence(as_clusters(reviews, cluster_of), args.cluster_ngrams, 2)
        for with_words in (True, False):
            blocks = [words, clustered] if with_words else [clustered]
            member = nb_logistic_regression(blocks, labels["train"], linear.c)
            name = f"{'words + ' if with_words else ''}cluster n-grams, {source}"
            row = scored(name, member, others, labels, time.perf_counter() - started)
            row |= {"clusters": args.clusters, "cluster_ngrams": args.cluster_ngrams}
            row |= {"cluster_features": clustered["train"].shape[1], "cpu": cpu_description()}
            append_row(args.out, row, log)


if __name__ == "__main__":
    main()

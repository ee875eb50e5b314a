"""Can a member learn from the unlabelled reviews? Self-training, distillation, PV-DBOW, measured.

Not part of the test suite, and not a stage: the experiments of issue 20 that did not earn a place
in the pipeline, kept so that each row of docs/results.md can be rerun. Reads a full `dvc repro`'s
outputs: the four review files of data/raw/ (ingest keeps the unlabelled reviews less the copies
of validation and test reviews), both members' probabilities, and the recurrent model with its
vocabulary and encoding (the teacher's votes on the unlabelled reviews).

Every variant is an NB-weighted logistic regression on the linear member's features (uni/bi/
trigram presence, min_df 2 on the training split, C = 1), fitted on the training split plus the
unlabelled reviews with labels from a teacher:

* self-training: the linear member labels them itself (all, or the most confident half);
* distillation: the combined model (RNN + linear, stacked on validation) labels them, hard (all,
  or the most confident 60 %) or soft (each review twice, weighted P and 1 - P);
* with --doc2vec also PV-DBOW document vectors (gensim, 100-d, 10 epochs, training split plus
  unlabelled reviews; validation and test vectors inferred, never trained on).

Each is scored alone and stacked with the existing members on validation, as the combine stage
stacks; test accuracy is reported beside it, never used to choose.

    python benchmarks/unlabelled_members.py --out benchmarks/unlabelled_members.json [--doc2vec]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from imdb_rnn.numerics import pin_kernels

pin_kernels()  # before NumPy and TensorFlow load, as every stage does

import numpy as np  # noqa: E402
from scipy import sparse  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from imdb_rnn import artifacts  # noqa: E402
from imdb_rnn.combination import fit_combiner  # noqa: E402
from imdb_rnn.environment import cpu_description  # noqa: E402
from imdb_rnn.linear import NB_ALPHA, _scaled, _vectorizer  # noqa: E402
from imdb_rnn.params import LinearParams, load_section  # noqa: E402
from imdb_rnn.predictions import SCORED_SPLITS, read_predictions  # noqa: E402
from imdb_rnn.text import tokenize  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
log = logging.getLogger("unlabelled_members")

Scorer = Callable[[sparse.csr_matrix], np.ndarray]


def nb_logistic_regression(
    presence: sparse.csr_matrix, labels: np.ndarray, weights: np.ndarray, c: float
) -> Scorer:
    """The linear member's model, with a weight per review (NB counts are weighted too)."""
    positive = np.asarray(presence.T @ (weights * (labels == 1))).ravel() + NB_ALPHA
    negative = np.asarray(presence.T @ (weights * (labels == 0))).ravel() + NB_ALPHA
    ratio = np.log(positive / positive.sum()) - np.log(negative / negative.sum())
    classifier = LogisticRegression(C=c, solver="liblinear", max_iter=1000)
    classifier.fit(_scaled(presence, "nb", ratio), labels, sample_weight=weights)
    return lambda rows: classifier.predict_proba(_scaled(rows, "nb", ratio))[:, 1]


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return round(float(((probabilities > 0.5) == labels).mean()), 5)


def scored(
    name: str,
    member: dict[str, np.ndarray],
    others: dict[str, dict[str, np.ndarray]],
    labels: dict[str, np.ndarray],
    seconds: float,
) -> dict:
    """The new member alone, then stacked with each set of existing members."""
    row = {"experiment": name, "seconds": round(seconds, 1)}
    row["member"] = {split: accuracy(member[split], labels[split]) for split in SCORED_SPLITS}
    for together in (("rnn",), ("rnn", "linear")):
        members = {name_: others[name_] for name_ in together} | {"new": member}
        combiner = fit_combiner(
            {m: p["validation"] for m, p in members.items()},
            labels["validation"],
            "stacking",
            1.0,
        )
        row[" + ".join((*together, "new"))] = {
            split: accuracy(
                combiner.probabilities({m: p[split] for m, p in members.items()}), labels[split]
            )
            for split in SCORED_SPLITS
        }
    log.info("%s", json.dumps(row))
    return row


def rnn_probabilities(texts: list[str]) -> np.ndarray:
    """The recurrent member's P(positive) for reviews, as imdb-predict computes it."""
    from imdb_rnn.encoding import encode, pad_and_truncate, read_encoding
    from imdb_rnn.model import predict_probabilities
    from imdb_rnn.model_file import read_classifier
    from imdb_rnn.vocabulary import read_vocabulary

    vocabulary = read_vocabulary(REPOSITORY / "data/tokenized/vocabulary.json")
    encoding = read_encoding(REPOSITORY / "data/tokenized/encoding.json")
    ids = pad_and_truncate(encode((tokenize(text) for text in texts), vocabulary), encoding)
    model = read_classifier(REPOSITORY / "models/model.keras")
    return predict_probabilities(model, ids, 512, encoding.padding)


def doc2vec_member(
    texts: dict[str, list[str]], unlabelled: list[str], train_labels: np.ndarray
) -> dict[str, np.ndarray]:
    """PV-DBOW on training + unlabelled reviews; a logistic regression on inferred vectors."""
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument

    tokens = {split: [tokenize(text) for text in texts[split]] for split in texts}
    corpus = [
        TaggedDocument(words, [index])
        for index, words in enumerate(tokens["train"] + [tokenize(text) for text in unlabelled])
    ]
    model = Doc2Vec(
        corpus, dm=0, vector_size=100, negative=5, hs=0, min_count=2, sample=0, epochs=10,
        workers=1, seed=1,
    )  # fmt: skip
    # Every split's vectors inferred alike, so that the classifier sees test-like vectors.
    vectors = {
        split: np.stack([model.infer_vector(words, epochs=10) for words in tokens[split]])
        for split in tokens
    }
    classifier = LogisticRegression(C=1.0, max_iter=2000).fit(vectors["train"], train_labels)
    return {split: classifier.predict_proba(vectors[split])[:, 1] for split in SCORED_SPLITS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--doc2vec", action="store_true", help="also PV-DBOW (tens of minutes)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    started = time.perf_counter()
    reviews = {
        split: artifacts.read_reviews(REPOSITORY / f"data/raw/{split}.parquet")
        for split in ("train", *SCORED_SPLITS)
    }
    texts = {split: reviews[split]["text"].tolist() for split in reviews}
    labels = {split: reviews[split]["label"].to_numpy() for split in reviews}
    unlabelled = [
        text
        for chunk in artifacts.iter_texts(REPOSITORY / "data/raw/unlabelled.parquet", 10_000)
        for text in chunk
    ]
    linear = load_section("linear", LinearParams, REPOSITORY / "params.yaml")
    vectorizer = _vectorizer(linear.ngram_max, binary=True, min_df=linear.min_df)
    presence = {"train": vectorizer.fit_transform(texts["train"])}
    for split in SCORED_SPLITS:
        presence[split] = vectorizer.transform(texts[split])
    presence["unlabelled"] = vectorizer.transform(unlabelled)
    seconds = time.perf_counter() - started
    log.info("%d unlabelled reviews; features in %.0f s", len(unlabelled), seconds)
    others = {
        member: read_predictions(REPOSITORY / f"data/predictions/{member}.npz")
        for member in ("rnn", "linear")
    }

    def fit_and_score(name: str, rows: sparse.csr_matrix, targets, weights) -> dict:
        begun = time.perf_counter()
        scorer = nb_logistic_regression(
            sparse.vstack([presence["train"], rows]).tocsr(),
            np.concatenate([labels["train"], targets]),
            np.concatenate([np.ones(len(labels["train"])), weights]),
            linear.c,
        )
        member = {split: scorer(presence[split]) for split in SCORED_SPLITS}
        return scored(name, member, others, labels, time.perf_counter() - begun)

    rows = []
    baseline = nb_logistic_regression(
        presence["train"], labels["train"], np.ones(len(labels["train"])), linear.c
    )
    teachers = {"self-training": baseline(presence["unlabelled"])}
    stacked = fit_combiner(
        {m: others[m]["validation"] for m in others}, labels["validation"], "stacking", 1.0
    )
    teachers["distillation"] = stacked.probabilities(
        {"rnn": rnn_probabilities(unlabelled), "linear": teachers["self-training"]}
    )
    for teacher, keeps in (("self-training", (1.0, 0.5)), ("distillation", (1.0, 0.6))):
        votes = teachers[teacher]
        confidence = np.abs(votes - 0.5)
        for keep in keeps:
            chosen = confidence >= np.quantile(confidence, 1 - keep)
            targets = (votes[chosen] > 0.5).astype(int)
            name = f"{teacher}, hard labels, the {keep:.0%} most confident"
            rows.append(
                fit_and_score(name, presence["unlabelled"][chosen], targets, np.ones(len(targets)))
            )
    votes = teachers["distillation"]
    both = sparse.vstack([presence["unlabelled"], presence["unlabelled"]]).tocsr()
    rows.append(
        fit_and_score(
            "distillation, soft labels",
            both,
            np.concatenate([np.ones(len(votes), int), np.zeros(len(votes), int)]),
            np.concatenate([votes, 1 - votes]),
        )
    )
    if args.doc2vec:
        begun = time.perf_counter()
        member = doc2vec_member(texts, unlabelled, labels["train"])
        rows.append(scored("PV-DBOW", member, others, labels, time.perf_counter() - begun))
    result = {
        "cpu": cpu_description(),
        "unlabelled_reviews": len(unlabelled),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

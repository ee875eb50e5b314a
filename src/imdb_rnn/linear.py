"""The linear member: logistic regression on word n-grams, and its pickle-free model file.

Two feature sets, both over the pipeline's own tokenizer (imdb_rnn.text.tokenize):

* ``nb``: binary n-gram presence scaled by naive-Bayes log-count ratios, the NB-weighted linear
  model of Wang & Manning (2012), whose bigram variant (NBSVM) reaches 91.2 % on IMDB;
* ``tfidf``: sublinear TF-IDF of word n-grams, L2-normalised.

scikit-learn fits it; what is saved is plain data (the n-grams, one scale and one weight per
n-gram, the intercept), and the probabilities the pipeline reports are computed from that saved
data by ``LinearModel.probabilities``, the very function imdb-predict serves, so the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from imdb_rnn import artifacts
from imdb_rnn.errors import DataError
from imdb_rnn.params import LinearParams
from imdb_rnn.text import tokenize

# The n-gram list is stored as one UTF-8 string; tokens never contain this separator.
_NGRAM_SEPARATOR = "\n"
# Naive-Bayes smoothing: a pseudo-count for every n-gram in each class.
NB_ALPHA = 1.0


@dataclass(frozen=True)
class LinearModel:
    """P(positive) = sigmoid(intercept + weights . scale(features(text)))."""

    features: str  # "nb" or "tfidf"
    ngram_max: int
    ngrams: tuple[str, ...]  # feature order
    scale: np.ndarray  # per n-gram: NB log-count ratio, or IDF
    weights: np.ndarray  # per n-gram: the logistic regression's coefficients
    intercept: float

    def vectorizer(self) -> CountVectorizer:
        return _vectorizer(
            self.ngram_max,
            binary=self.features == "nb",
            vocabulary={ngram: index for index, ngram in enumerate(self.ngrams)},
        )

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        counts = self.vectorizer().transform(list(texts))
        logits = _scaled(counts, self.features, self.scale) @ self.weights + self.intercept
        return expit(logits)


def _vectorizer(ngram_max: int, binary: bool, **settings) -> CountVectorizer:
    return CountVectorizer(
        tokenizer=tokenize,  # the same tokens the recurrent model sees
        lowercase=False,  # tokenize already normalises
        token_pattern=None,
        ngram_range=(1, ngram_max),
        binary=binary,
        dtype=np.float64,
        **settings,
    )


def _scaled(counts: sparse.csr_matrix, features: str, scale: np.ndarray) -> sparse.csr_matrix:
    """Counts to the model's inputs: NB-scaled presence, or L2-normalised sublinear TF-IDF."""
    if features == "nb":
        return sparse.csr_matrix(counts.multiply(scale))
    sublinear = counts.copy()
    sublinear.data = 1.0 + np.log(sublinear.data)
    return normalize(sparse.csr_matrix(sublinear.multiply(scale)))


def log_count_ratio(presence: sparse.csr_matrix, labels: np.ndarray) -> np.ndarray:
    """log((p / |p|) / (q / |q|)): p and q sum each feature over positive and negative reviews.
    A feature seen mostly in positive reviews gets a large positive scale."""
    positive = np.asarray(presence[labels == 1].sum(axis=0)).ravel() + NB_ALPHA
    negative = np.asarray(presence[labels == 0].sum(axis=0)).ravel() + NB_ALPHA
    return np.log(positive / positive.sum()) - np.log(negative / negative.sum())


def inverse_document_frequency(counts: sparse.csr_matrix) -> np.ndarray:
    """scikit-learn's smoothed IDF: log((1 + n) / (1 + df)) + 1."""
    documents = counts.shape[0]
    frequency = np.bincount(counts.indices, minlength=counts.shape[1])
    return np.log((1 + documents) / (1 + frequency)) + 1.0


def fit_linear(texts: Sequence[str], labels: np.ndarray, params: LinearParams) -> LinearModel:
    """Fit the n-gram vocabulary, the feature scale and the logistic regression."""
    labels = np.asarray(labels)
    vectorizer = _vectorizer(
        params.ngram_max,
        binary=params.features == "nb",
        min_df=params.min_df,
        max_features=params.max_features,
    )
    try:
        counts = vectorizer.fit_transform(list(texts))
    except ValueError as error:  # no n-gram survives min_df / max_features
        raise DataError(
            f"no n-gram occurs in at least linear.min_df ({params.min_df}) of the"
            f" {len(texts)} training reviews ({error}); lower linear.min_df or use more reviews"
        ) from None
    if params.features == "nb":
        scale = log_count_ratio(counts, labels)
    else:
        scale = inverse_document_frequency(counts)
    # liblinear: exact, single-threaded, and deterministic for a fixed input.
    classifier = LogisticRegression(C=params.c, solver="liblinear", max_iter=1000)
    classifier.fit(_scaled(counts, params.features, scale), labels)
    ngrams = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    return LinearModel(
        features=params.features,
        ngram_max=params.ngram_max,
        ngrams=tuple(ngrams),
        scale=scale,
        weights=classifier.coef_[0].astype(np.float64),
        intercept=float(classifier.intercept_[0]),
    )


def write_linear(model: LinearModel, path: Path) -> None:
    """Plain arrays in an .npz: readable with allow_pickle=False, so loading runs no code."""
    joined = _NGRAM_SEPARATOR.join(model.ngrams).encode("utf-8")
    artifacts.write_arrays(
        path,
        features=np.array(model.features),
        ngram_max=np.array(model.ngram_max),
        ngrams=np.frombuffer(joined, dtype=np.uint8),
        scale=model.scale,
        weights=model.weights,
        intercept=np.array(model.intercept),
    )


def read_linear(path: Path) -> LinearModel:
    arrays = artifacts.read_arrays(
        path, ("features", "ngram_max", "ngrams", "scale", "weights", "intercept")
    )
    ngrams = tuple(arrays["ngrams"].tobytes().decode("utf-8").split(_NGRAM_SEPARATOR))
    if not len(ngrams) == len(arrays["scale"]) == len(arrays["weights"]):
        raise artifacts.unreadable(path, "its n-grams, scales and weights differ in number")
    return LinearModel(
        features=str(arrays["features"]),
        ngram_max=int(arrays["ngram_max"]),
        ngrams=ngrams,
        scale=arrays["scale"],
        weights=arrays["weights"],
        intercept=float(arrays["intercept"]),
    )

"""The linear member: NB-weighted or TF-IDF n-gram logistic regression, saved without pickle."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from imdb_rnn.linear import (
    fit_linear,
    log_count_ratio,
    read_linear,
    write_linear,
)
from imdb_rnn.params import LinearParams
from imdb_rnn.text import tokenize
from tests.conftest import make_reviews


def linear_params(default_params, **overrides) -> LinearParams:
    return LinearParams.model_validate(copy.deepcopy(default_params["linear"]) | overrides)


def test_log_count_ratio_weights_features_by_class():
    # feature 0 occurs in both positive reviews, feature 1 in the negative one
    presence = sparse.csr_matrix(np.array([[1, 0], [1, 0], [0, 1]]))
    ratio = log_count_ratio(presence, np.array([1, 1, 0]))
    # p = [2, 0] + 1 = [3, 1] -> [0.75, 0.25]; q = [0, 1] + 1 = [1, 2] -> [1/3, 2/3]
    np.testing.assert_allclose(ratio, np.log([0.75 / (1 / 3), 0.25 / (2 / 3)]))


def test_tfidf_features_match_scikit_learn(default_params):
    """The hand-written TF-IDF path (needed to serve the model without pickle) is sklearn's."""
    texts = make_reviews(40, seed=4)["text"]
    labels = make_reviews(40, seed=4)["label"].to_numpy()
    params = linear_params(default_params, features="tfidf", ngram_max=2, min_df=1)
    ours = fit_linear(texts, labels, params)
    reference = TfidfVectorizer(
        tokenizer=tokenize, lowercase=False, token_pattern=None, ngram_range=(1, 2),
        sublinear_tf=True,
    )  # fmt: skip
    features = reference.fit_transform(texts)
    classifier = LogisticRegression(C=params.c, solver="liblinear").fit(features, labels)
    np.testing.assert_allclose(
        ours.probabilities(texts), classifier.predict_proba(features)[:, 1], rtol=1e-6
    )


@pytest.mark.parametrize("features", ["tfidf", "nb"])
def test_the_linear_model_learns_the_toy_sentiment_words(default_params, features):
    params = linear_params(default_params, features=features, ngram_max=2)
    train, test = make_reviews(200, seed=1), make_reviews(60, seed=2)
    model = fit_linear(train["text"], train["label"].to_numpy(), params)
    probabilities = model.probabilities(test["text"])
    assert probabilities.shape == (60,)
    assert np.mean((probabilities >= 0.5) == test["label"].to_numpy()) > 0.8
    assert any(" " in ngram for ngram in model.ngrams)  # bigrams, from ngram_max: 2


def test_the_saved_model_is_plain_arrays_and_predicts_the_same(default_params, tmp_path):
    train = make_reviews(100, seed=1)
    model = fit_linear(train["text"], train["label"].to_numpy(), linear_params(default_params))
    write_linear(model, tmp_path / "linear.npz")
    np.load(tmp_path / "linear.npz", allow_pickle=False)  # no object arrays: no code can run
    loaded = read_linear(tmp_path / "linear.npz")
    assert loaded.ngrams == model.ngrams
    texts = ["a great film", "an awful waste", "café ünïcode"]
    np.testing.assert_array_equal(loaded.probabilities(texts), model.probabilities(texts))

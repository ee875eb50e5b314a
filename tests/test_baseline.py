from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import sparse

from imdb_rnn.baseline import NaiveBayesScaler, build_baseline, positive_probabilities
from imdb_rnn.params import BaselineParams
from tests.conftest import make_reviews


def test_naive_bayes_scaler_weights_features_by_log_count_ratio():
    # feature 0 occurs in both positive reviews, feature 1 in the negative one
    features = sparse.csr_matrix(np.array([[1, 0], [1, 0], [0, 1]]))
    scaler = NaiveBayesScaler(alpha=1.0).fit(features, np.array([1, 1, 0]))
    # p = [2, 0] + 1 = [3, 1] -> [0.75, 0.25]; q = [0, 1] + 1 = [1, 2] -> [1/3, 2/3]
    np.testing.assert_allclose(scaler.log_count_ratio_, np.log([0.75 / (1 / 3), 0.25 / (2 / 3)]))
    assert scaler.transform(features).toarray()[2, 0] == 0


@pytest.mark.parametrize("features", ["tfidf", "nb"])
def test_baseline_learns_the_toy_sentiment_words(default_params, features):
    params = BaselineParams.model_validate(
        copy.deepcopy(default_params["baseline"]) | {"features": features}
    )
    train, test = make_reviews(200, seed=1), make_reviews(60, seed=2)
    model = build_baseline(params).fit(train["text"], train["label"])
    probabilities = positive_probabilities(model, test["text"])
    assert probabilities.shape == (60,)
    accuracy = np.mean((probabilities >= 0.5) == test["label"].to_numpy())
    assert accuracy > 0.8
    assert any(" " in ngram for ngram in model[0].vocabulary_)  # bigrams, from ngram_max: 2

"""The linear baseline every recurrent run is measured against: n-gram logistic regression.

Two feature sets, both over the pipeline's own tokenizer (imdb_rnn.text.tokenize):

* ``tfidf``: sublinear TF-IDF of word n-grams;
* ``nb``: binary n-gram presence scaled by naive-Bayes log-count ratios, the NB-weighted linear
  model of Wang & Manning (2012), whose bigram variant (NBSVM) reaches 91.2 % on IMDB.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from imdb_rnn.params import BaselineParams
from imdb_rnn.text import tokenize


class NaiveBayesScaler(TransformerMixin, BaseEstimator):
    """Scale each feature by its log-count ratio log((p / |p|) / (q / |q|)).

    p and q sum the feature over positive and negative training reviews, each smoothed by
    ``alpha``; a feature that appears mostly in positive reviews gets a large positive weight.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, features, labels):
        labels = np.asarray(labels)
        positive = np.asarray(features[labels == 1].sum(axis=0)).ravel() + self.alpha
        negative = np.asarray(features[labels == 0].sum(axis=0)).ravel() + self.alpha
        self.log_count_ratio_ = np.log(positive / positive.sum()) - np.log(
            negative / negative.sum()
        )
        return self

    def transform(self, features):
        return sparse.csr_matrix(features).multiply(self.log_count_ratio_).tocsr()


def build_baseline(params: BaselineParams) -> Pipeline:
    """An unfitted scikit-learn pipeline: text in, P(positive) out."""
    ngrams = {
        "tokenizer": tokenize,  # the same tokens the recurrent model sees
        "lowercase": False,  # tokenize already normalises
        "token_pattern": None,
        "ngram_range": (1, params.ngram_max),
        "min_df": params.min_df,
        "max_features": params.max_features,
    }
    if params.features == "tfidf":
        steps = [TfidfVectorizer(sublinear_tf=True, **ngrams)]
    else:
        steps = [CountVectorizer(binary=True, **ngrams), NaiveBayesScaler(alpha=1.0)]
    # liblinear: exact, single-threaded, and deterministic for a fixed input.
    classifier = LogisticRegression(C=params.c, solver="liblinear", max_iter=1000)
    return make_pipeline(*steps, classifier)


def positive_probabilities(model: Pipeline, texts: Sequence[str]) -> np.ndarray:
    return model.predict_proba(list(texts))[:, 1]

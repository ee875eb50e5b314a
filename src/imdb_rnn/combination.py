"""Combining the members' probabilities into one: stacking on the validation split.

The recurrent network and the n-gram model make different mistakes, so a weighted vote of the two
beats either. The vote is taken in log-odds: each member's probability becomes its logit, and

    P(positive) = sigmoid(intercept + sum of weight_m * logit(p_m))

with the weights and intercept fitted by logistic regression on the validation split only (the
test split is scored, never fitted), which also recalibrates members that are over- or
under-confident. ``method: average`` skips the fit: equal weights, no intercept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

# Probabilities are clipped this far from 0 and 1 before taking logits, so that a member that is
# certain (p rounds to 1.0 in float32) gives a large, finite vote rather than an infinite one.
PROBABILITY_FLOOR = 1e-7


def log_odds(probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(
        np.asarray(probabilities, np.float64), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR
    )
    return logit(clipped)


@dataclass(frozen=True)
class Combiner:
    """Weights per member (in log-odds) and an intercept."""

    weights: dict[str, float]
    intercept: float

    def probabilities(self, member_probabilities: Mapping[str, np.ndarray]) -> np.ndarray:
        missing = set(self.weights) - set(member_probabilities)
        if missing:
            raise ValueError(f"no probabilities for member(s) {sorted(missing)}")
        votes = sum(
            weight * log_odds(member_probabilities[name]) for name, weight in self.weights.items()
        )
        return expit(self.intercept + votes)


def fit_combiner(
    member_probabilities: Mapping[str, np.ndarray], labels: np.ndarray, method: str, c: float
) -> Combiner:
    """Fit the combination on one split (validation). Members are used in sorted name order, so
    the result does not depend on the order of a dict."""
    names = sorted(member_probabilities)
    if method == "average":
        return Combiner(weights={name: 1.0 / len(names) for name in names}, intercept=0.0)
    features = np.column_stack([log_odds(member_probabilities[name]) for name in names])
    # lbfgs on a handful of features is exact to its tolerance and deterministic.
    model = LogisticRegression(C=c, solver="lbfgs", max_iter=1000)
    model.fit(features, np.asarray(labels))
    return Combiner(
        weights={name: float(weight) for name, weight in zip(names, model.coef_[0], strict=True)},
        intercept=float(model.intercept_[0]),
    )

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imdb_rnn.evaluation import (
    MAX_CURVE_POINTS,
    compute_metrics,
    confusion_rows,
    most_confident_errors,
    precision_recall_points,
    roc_points,
)

LABELS = np.array([1, 1, 1, 0, 0, 0])
PROBABILITIES = np.array([0.9, 0.6, 0.3, 0.4, 0.2, 0.95])


def test_metrics_at_the_threshold():
    scores = compute_metrics(LABELS, PROBABILITIES, threshold=0.5)
    # predicted 1,1,0,0,0,1: TP=2, FN=1, TN=2, FP=1
    assert scores["accuracy"] == round(4 / 6, 4)
    assert scores["precision"] == round(2 / 3, 4) and scores["recall"] == round(2 / 3, 4)
    assert scores["f1"] == round(2 / 3, 4)
    assert scores["roc_auc"] == round(5 / 9, 4)
    expected_log_loss = -np.mean(
        LABELS * np.log(PROBABILITIES) + (1 - LABELS) * np.log(1 - PROBABILITIES)
    )
    assert scores["log_loss"] == pytest.approx(expected_log_loss, abs=1e-4)


def test_threshold_moves_the_decisions_not_the_ranking_metrics():
    strict = compute_metrics(LABELS, PROBABILITIES, threshold=0.92)
    assert strict["recall"] == 0.0 and strict["precision"] == 0.0
    assert strict["roc_auc"] == compute_metrics(LABELS, PROBABILITIES, 0.5)["roc_auc"]


def test_curves_are_finite_bounded_and_thinned():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 5000)
    probabilities = np.clip(labels * 0.3 + rng.random(5000) * 0.7, 0, 1)
    for points in (
        roc_points(labels, probabilities),
        precision_recall_points(labels, probabilities),
    ):
        assert len(points) <= MAX_CURVE_POINTS
        assert np.isfinite(points.to_numpy()).all()
        assert points["threshold"].between(0, 1).all()
    roc = roc_points(labels, probabilities)
    assert (roc.iloc[0]["fpr"], roc.iloc[-1]["tpr"]) == (0.0, 1.0)


def test_confusion_rows_have_one_row_per_review():
    rows = confusion_rows(LABELS, PROBABILITIES, 0.5)
    assert rows.to_dict("list") == {"actual": [1, 1, 1, 0, 0, 0], "predicted": [1, 1, 0, 0, 0, 1]}


def test_most_confident_errors_come_first():
    texts = pd.Series(["a", "b", "c", "d", "e", "f"])
    errors = most_confident_errors(texts, LABELS, PROBABILITIES, 0.5, count=5)
    assert [error["text"] for error in errors] == [
        "f",
        "c",
    ]  # 0.95 for a negative, 0.3 for a positive
    assert errors[0] == {"test_index": 5, "label": 0, "positive_probability": 0.95, "text": "f"}
    assert most_confident_errors(texts, LABELS, PROBABILITIES, 0.5, count=0) == []

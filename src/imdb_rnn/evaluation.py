"""Scoring predicted probabilities against true labels: metrics, curves and error analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics

# Enough points for a smooth curve in `dvc plots show`, few enough to keep the files small in git
# (a precision-recall curve has one point per distinct score: up to 25,000 on the test split).
MAX_CURVE_POINTS = 400


def compute_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float
) -> dict[str, float | None]:
    """Accuracy, precision, recall, F1 at ``threshold``; ROC-AUC and log loss use no threshold.

    With reviews of one label only, ROC-AUC is undefined: it is null, never NaN (which is not JSON).
    """
    predicted = (probabilities >= threshold).astype(np.int8)
    if len(np.unique(labels)) < 2:
        roc_auc = None
    else:
        roc_auc = round(float(metrics.roc_auc_score(labels, probabilities)), 4)
    return {
        "accuracy": round(float(metrics.accuracy_score(labels, predicted)), 4),
        "precision": round(float(metrics.precision_score(labels, predicted, zero_division=0)), 4),
        "recall": round(float(metrics.recall_score(labels, predicted, zero_division=0)), 4),
        "f1": round(float(metrics.f1_score(labels, predicted, zero_division=0)), 4),
        "roc_auc": roc_auc,
        "log_loss": round(float(metrics.log_loss(labels, probabilities, labels=[0, 1])), 4),
    }


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    """At most MAX_CURVE_POINTS rows, evenly spaced, always keeping the first and last."""
    if len(frame) <= MAX_CURVE_POINTS:
        return frame
    rows = np.unique(np.linspace(0, len(frame) - 1, MAX_CURVE_POINTS).round().astype(int))
    return frame.iloc[rows].reset_index(drop=True)


def roc_points(labels: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    fpr, tpr, thresholds = metrics.roc_curve(labels, probabilities)
    # roc_curve's first threshold is +inf (nothing predicted positive); JSON and CSV plots choke
    # on it, and 1.0 means the same here since probabilities never exceed 1.
    thresholds = np.minimum(thresholds, 1.0)
    return _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thresholds}).round(4))


def precision_recall_points(labels: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    precision, recall, thresholds = metrics.precision_recall_curve(labels, probabilities)
    # The last (precision 1, recall 0) point has no threshold; give it the largest possible.
    thresholds = np.append(thresholds, 1.0)
    points = pd.DataFrame({"recall": recall, "precision": precision, "threshold": thresholds})
    return _thin(points.round(4))


def confusion_rows(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> pd.DataFrame:
    """One (actual, predicted) row per review: the input DVC's confusion-matrix template counts."""
    return pd.DataFrame(
        {"actual": labels.astype(int), "predicted": (probabilities >= threshold).astype(int)}
    )


def most_confident_errors(
    texts: pd.Series, labels: np.ndarray, probabilities: np.ndarray, threshold: float, count: int
) -> list[dict]:
    """The ``count`` misclassified reviews whose probability was furthest from the true label."""
    predicted = probabilities >= threshold
    wrong = np.flatnonzero(predicted != labels.astype(bool))
    distance = np.abs(probabilities[wrong] - labels[wrong])
    # stable sort, so equally confident errors stay in test-split order on every run
    worst = wrong[np.argsort(-distance, kind="stable")][:count]
    return [
        {
            "test_index": int(index),
            "label": int(labels[index]),
            "positive_probability": round(float(probabilities[index]), 4),
            "text": str(texts.iloc[index]),
        }
        for index in worst
    ]

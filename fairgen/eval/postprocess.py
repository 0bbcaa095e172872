"""The post-processing baseline: group-specific thresholds on the real classifier's scores
(Hardt, Price & Srebro 2016, with the demographic-parity constraint).

For each bound b on the demographic-parity difference, :func:`solve` picks one
deterministic threshold per group, t0 for c=0 and t1 for c=1, that maximises accuracy on the
REAL valid split subject to |P(score >= t0 | c=0) - P(score >= t1 | c=1)| <= b there, and
applies them to the real test split. The candidate thresholds are every group's distinct valid
scores (plus one above the largest), so the optimum over deterministic group thresholds is exact
on the valid split. The bounds run from 0 to the unconstrained classifier's valid DP difference,
which traces the accuracy-vs-DP curve a user gets from the one-line post-processing fix.

``fairgen threshold-baseline`` (:mod:`fairgen.stages.threshold_baseline`) scores the valid and test splits with the ``real`` classifier
(``model.pt``), solves the curve for ``classifier.threshold_bounds`` and writes ``curve.json``:
per bound the thresholds, valid and test accuracy, test DP and equal-opportunity differences,
and the paired bootstrap interval of each against the unthresholded real classifier on the same
test rows (:func:`fairgen.eval.fairness.paired_difference`).
"""

from __future__ import annotations

import numpy as np

from fairgen.common.errors import DataError

METHOD = "real_thresholds"


def _group_table(score: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate thresholds of one group (ascending; the last selects nobody), the number
    selected at each, and the number classified correctly at each."""
    t = np.unique(score)
    t = np.append(t, np.inf)
    order = np.sort(score)
    n = len(score)
    below = np.searchsorted(order, t, side="left")  # rows with score < t
    selected = n - below
    # correct = positives with score >= t + negatives with score < t
    pos_sorted = np.sort(score[y == 1])
    neg_sorted = np.sort(score[y == 0])
    pos_sel = len(pos_sorted) - np.searchsorted(pos_sorted, t, side="left")
    neg_below = np.searchsorted(neg_sorted, t, side="left")
    return t, selected, pos_sel + neg_below


def solve(score: np.ndarray, y: np.ndarray, c: np.ndarray, bounds) -> list[dict]:
    """For each DP bound, the accuracy-maximising pair of group thresholds on (score, y, c):
    ``{bound, t0, t1, accuracy, dp_difference}`` (ties: the smaller DP difference, then the
    lower thresholds). Both groups must be present."""
    score, y, c = np.asarray(score, float), np.asarray(y, int), np.asarray(c, int)
    tables, sizes = [], []
    for g in (0, 1):
        m = c == g
        if not m.any():
            raise DataError(f"no rows of group c={g}: group thresholds are undefined")
        tables.append(_group_table(score[m], y[m]))
        sizes.append(int(m.sum()))
    (t0, s0, k0), (t1, s1, k1) = tables
    sel0, sel1 = s0 / sizes[0], s1 / sizes[1]
    gap = np.abs(sel0[:, None] - sel1[None, :])
    acc = (k0[:, None] + k1[None, :]) / len(y)
    out = []
    for b in bounds:
        ok = gap <= b + 1e-12
        if not ok.any():
            raise DataError(f"no pair of group thresholds reaches DP difference <= {b}")
        # lexicographic: accuracy (max), then gap (min)
        masked = np.where(ok, acc, -np.inf)
        best = masked.max()
        cand = np.flatnonzero((masked >= best - 1e-12).ravel())
        i, j = np.unravel_index(cand[np.argmin(gap.ravel()[cand])], gap.shape)
        out.append({"bound": float(b), "t0": float(t0[i]), "t1": float(t1[j]), "accuracy": float(acc[i, j]),
                    "dp_difference": float(gap[i, j])})
    return out


def apply(score: np.ndarray, c: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Predictions of the group thresholds: 1 where score >= t_c."""
    return (np.asarray(score) >= np.where(np.asarray(c) == 1, t1, t0)).astype(np.int64)


def default_bounds(dp_max: float, step: float = 0.02) -> list[float]:
    """0, step, 2 step, ... up to (and including) ``dp_max``."""
    k = int(np.floor(dp_max / step + 1e-9))
    return [round(i * step, 10) for i in range(k + 1)] + ([float(dp_max)] if k * step < dp_max - 1e-9 else [])


def accuracy_at(points: list[dict], dp: float) -> float | None:
    """The threshold curve's test accuracy at DP difference ``dp``: the best accuracy among its
    points whose test DP difference is at most ``dp`` (None if none is)."""
    ok = [p["test_accuracy"] for p in points if p["test_demographic_parity_difference"] <= dp + 1e-12]
    return max(ok) if ok else None

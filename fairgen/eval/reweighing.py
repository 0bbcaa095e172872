"""Reweighing (Kamiran & Calders, 2012): per-sample weights that make c independent of y.

Each (group c, label y) cell gets the weight ``w(c, y) = P(c) P(y) / P(c, y)`` (all
probabilities estimated on the training data). Under these weights the weighted joint
distribution factorises, ``P_w(c, y) = P(c) P(y)``, while both marginals are unchanged and the
weights sum to the number of samples (mean weight 1). That holds when all four cells occur; a
cell with no samples cannot be weighted up, so then the weights sum to less than ``n``.
"""

from __future__ import annotations

import numpy as np

from fairgen.common.errors import DataError


def _binary(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"reweighing: {name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        bad = np.flatnonzero(~np.isin(arr, (0, 1)))[0]
        raise DataError(f"reweighing: {name} must be 0/1, found {arr[bad].item()!r} at position {bad}")
    return arr.astype(np.int64)


def reweighing_table(c, y) -> dict[tuple[int, int], float]:
    """``{(c, y): P(c) P(y) / P(c, y)}`` for every (c, y) cell that occurs in the data."""
    c, y = _binary("c", c), _binary("y", y)
    if c.shape != y.shape:
        raise DataError(f"reweighing: c and y differ in length ({c.size} vs {y.size})")
    n = c.size
    if n == 0:
        raise DataError("reweighing: no samples")
    table = {}
    for cv in (0, 1):
        for yv in (0, 1):
            n_cy = int(np.sum((c == cv) & (y == yv)))
            if n_cy:
                # P(c)P(y)/P(c,y) = (n_c / n)(n_y / n) / (n_cy / n) = n_c n_y / (n n_cy)
                table[(cv, yv)] = float(np.sum(c == cv)) * float(np.sum(y == yv)) / (n * n_cy)
    return table


def reweighing_weights(c, y) -> np.ndarray:
    """Per-sample weights ``w(c_i, y_i)`` (float64, sum = number of samples)."""
    table = reweighing_table(c, y)
    c, y = np.asarray(c, dtype=np.int64), np.asarray(y, dtype=np.int64)
    lookup = np.zeros((2, 2))
    for (cv, yv), w in table.items():
        lookup[cv, yv] = w
    return lookup[c, y]

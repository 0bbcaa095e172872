"""The oracle accuracy-fairness frontier of the embedded synthetic data.

The embedded dataset draws each image's outcome as y ~ Bernoulli(p) with p = P(y = 1 | the image's
drawn attributes, c) known exactly (:mod:`fairgen.data.procedural_celeba`). That makes the best any
classifier can do computable: the *oracle* knows p for every test image. Under a demographic-parity
bound b, the oracle's best classifier selects the images with the highest p in each group, with one
selection rate per group (a group-wise threshold on p, randomized at the threshold so that any rate
is reachable) and |rate_1 - rate_0| <= b. Its **expected accuracy** (mean over images of p where it predicts 1 and
1 - p where it predicts 0) is the most any classifier can reach at that bound, in expectation over
the outcome's noise; the accuracy on the drawn test labels is reported beside it.

Why it matters: a fairness goal such as "half the real classifier's DP difference at <= 5 points
accuracy loss" is feasible only where the frontier allows it, and a classifier's distance to the
frontier separates what the fairness constraint costs (moving along it) from what the method loses
(the gap below it, e.g. synthetic images that are not as informative as real ones).

Exact optimisation: with p sorted descending in group g, selecting the top k gives expected correct
E_g(k) = 2 P_g(k) - k + n_g - T_g (P_g: prefix sums, T_g: total), concave in k (increments 2p - 1
decrease) and linear between integers (the boundary image selected with probability frac(k)). The
optimum of this concave piecewise-linear objective over the band |k_1/n_1 - k_0/n_0| <= b lies where
one group's k is an integer and the other's is its unconstrained optimum clipped to the band, so
every bound is solved exactly in O(n log n); it equals the linear program over per-image selection
probabilities (checked against scipy's in the tests).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fairgen.common import io
from fairgen.common.errors import DataError

FRONTIER_VERSION = 1


@dataclass
class OracleSplit:
    """One split of the synthetic data with each image's true outcome probability."""

    image_id: np.ndarray
    c: np.ndarray
    y: np.ndarray
    p: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.p)


def _check_inputs(p: np.ndarray, c: np.ndarray, y: np.ndarray | None) -> None:
    if p.ndim != 1 or c.shape != p.shape or (y is not None and y.shape != p.shape):
        raise ValueError(f"p, c (and y) must be 1-D of one length, got {p.shape}, {c.shape}"
                         f"{'' if y is None else ', ' + str(y.shape)}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("p must be probabilities in [0, 1] (found NaN or out-of-range values)")
    if not np.isin(c, (0, 1)).all():
        raise ValueError("c must be 0/1")
    for g in (0, 1):
        if not (c == g).any():
            raise ValueError(f"group c={g} is empty: demographic parity needs both groups")


def frontier(p, c, bounds, y=None) -> list[dict]:
    """The oracle's best classifier at each DP bound (see the module docstring).

    ``p``: P(y = 1) per image; ``c``: its group (0/1); ``bounds``: DP-difference bounds >= 0
    (``inf`` is unconstrained); ``y``: optional drawn labels. The classifier selects each group's
    images in decreasing p up to a selection rate; at most one image per group is selected with a
    probability between 0 and 1 (a randomized threshold), so every rate is reachable and a bound of
    0 means exact parity. Returns one dict per bound: ``bound`` (None when unconstrained),
    ``expected_accuracy``, ``selection_rate_c0/c1``, ``dp_difference`` (|rate_1 - rate_0|),
    ``threshold_c0/c1`` (lowest p selected with positive probability; None when the group selects
    nobody) and, with ``y``, ``accuracy`` (on the drawn labels, in expectation over the
    randomization).
    """
    p = np.asarray(p, dtype=np.float64)
    c = np.asarray(c).astype(np.int64)
    y = None if y is None else np.asarray(y).astype(np.int64)
    _check_inputs(p, c, y)
    n = len(p)
    order, q, gains, n_g, k_best = {}, {}, {}, {}, {}
    for g in (0, 1):
        rows = np.flatnonzero(c == g)
        o = rows[np.argsort(-p[rows], kind="stable")]  # ties keep index order (deterministic)
        order[g], q[g], n_g[g] = o, p[o], len(o)
        prefix = np.concatenate([[0.0], np.cumsum(q[g])])
        k = np.arange(n_g[g] + 1)
        gains[g] = 2.0 * prefix - k + n_g[g] - prefix[-1]  # expected correct when selecting the top k
        k_best[g] = int(np.argmax(gains[g]))

    def gain(g, k):  # concave, piecewise linear between integers (the boundary image selected with prob. frac(k))
        return np.interp(k, np.arange(n_g[g] + 1), gains[g])

    out = []
    for b in bounds:
        b = float(b)
        if math.isnan(b) or b < 0:
            raise ValueError(f"DP bound must be >= 0, got {b}")
        # A concave piecewise-linear objective over the feasible band peaks at a vertex, where one
        # group's count is an integer and the other's is its best (clipped) value for that count.
        best = (-np.inf, 0.0, 0.0)
        for g, h in ((0, 1), (1, 0)):
            kg = np.arange(n_g[g] + 1, dtype=np.float64)
            rate = kg / n_g[g]
            lo = np.clip((rate - b) * n_g[h], 0, n_g[h]) if math.isfinite(b) else np.zeros_like(rate)
            hi = np.clip((rate + b) * n_g[h], 0, n_g[h]) if math.isfinite(b) else np.full_like(rate, n_g[h])
            kh = np.clip(float(k_best[h]), lo, hi)
            total = gains[g] + gain(h, kh)
            i = int(np.argmax(total))
            if total[i] > best[0] + 1e-9:
                best = (float(total[i]), *((kg[i], kh[i]) if g == 0 else (kh[i], kg[i])))
        ks = {0: best[1], 1: best[2]}
        row = {"bound": b if math.isfinite(b) else None, "expected_accuracy": best[0] / n}
        select = np.zeros(n, dtype=np.float64)  # probability that each image is predicted 1
        for g in (0, 1):
            whole = int(math.floor(ks[g] + 1e-9))
            select[order[g][:whole]] = 1.0
            if whole < n_g[g] and ks[g] - whole > 1e-9:
                select[order[g][whole]] = ks[g] - whole
            row[f"selection_rate_c{g}"] = ks[g] / n_g[g]
            top = int(math.ceil(ks[g] - 1e-9))
            row[f"threshold_c{g}"] = float(q[g][top - 1]) if top else None
        row["dp_difference"] = abs(row["selection_rate_c1"] - row["selection_rate_c0"])
        if y is not None:
            row["accuracy"] = float(np.where(y == 1, select, 1.0 - select).mean())
        out.append(row)
    return out


def default_bounds(p, c, step: float = 0.01) -> list[float]:
    """0, step, 2 step, ... up to the unconstrained oracle's DP difference, then unconstrained."""
    top = frontier(p, c, [math.inf])[0]["dp_difference"]
    return [round(k * step, 10) for k in range(int(math.floor(top / step)) + 1)] + [math.inf]


def oracle_split(manifest: str | os.PathLike, index: str | os.PathLike, protected: str, outcome: str,
                 split: str = "test") -> OracleSplit:
    """The images of ``split`` in the crops ``index`` with their true P(outcome = 1).

    The probabilities are recomputed from the parameters the dataset manifest records (the dataset
    is seeded, so this redraws exactly its attributes and outcome model) and checked against the
    index: every image id must exist and its c and y must match the redraw. DataError (naming the
    file and row) for a non-synthetic source, a dataset made by another generator version, a
    missing image or a label that does not match.
    """
    from fairgen.data import procedural_celeba as syn
    from fairgen.data.crops import binary_column

    manifest, index = Path(manifest), Path(index)
    m = io.read_json(manifest)
    source = m.get("source") if isinstance(m, dict) else None
    if source != "synthetic":
        raise DataError(f"{manifest}: dataset source {source!r} has no ground-truth outcome probabilities; "
                        "the oracle frontier exists only for the embedded synthetic data (source 'synthetic')")
    params = m.get("parameters")
    if not isinstance(params, dict):
        raise DataError(f"{manifest}: no 'parameters' recorded for the synthetic dataset")
    if params.get("generator_version") != syn.GENERATOR_VERSION:
        raise DataError(f"{manifest}: dataset made by synthetic generator version {params.get('generator_version')!r}, "
                        f"this fairgen has version {syn.GENERATOR_VERSION}; its outcome model cannot be redrawn")
    for key, want in (("protected", protected), ("outcome", outcome)):
        if params.get(key) != want:
            raise DataError(f"{manifest}: dataset has {key} {params.get(key)!r} but the config has {want!r}")
    keys = ("n_images", "seed", "p_protected", "p_outcome_given_protected_0", "p_outcome_given_protected_1",
            "feature_strength", "split_fractions", "protected", "outcome")
    missing = [k for k in keys if k not in params]
    if missing:
        raise DataError(f"{manifest}: synthetic parameters lack {', '.join(missing)}")
    sample = syn.sample_dataset(**{k: params[k] for k in keys})
    truth = sample.frame.set_index("image_id")

    df, _ = io.read_parquet(index, "crops_index", columns=["image_id", "split", protected, outcome])
    rows = np.flatnonzero(df["split"].astype(str).to_numpy() == split)
    if rows.size == 0:
        raise DataError(f"{index}: the '{split}' split is empty")
    ids = df["image_id"].astype(str).to_numpy()[rows]
    c = binary_column(df, protected, index)[rows]
    y = binary_column(df, outcome, index)[rows]
    at = truth.index.get_indexer(ids)  # -1: not in the dataset
    if (at < 0).any():
        r = rows[np.flatnonzero(at < 0)[0]]
        raise DataError(f"{index}, row {r}: image '{df['image_id'].iloc[r]}' "
                        f"is not in the synthetic dataset {manifest} describes")
    c_true = (truth[protected].to_numpy()[at] > 0).astype(np.int64)
    y_true = (truth[outcome].to_numpy()[at] > 0).astype(np.int64)
    for name, got, want in ((protected, c, c_true), (outcome, y, y_true)):
        bad = np.flatnonzero(got != want)
        if bad.size:
            r = rows[bad[0]]
            raise DataError(f"{index}, row {r}: image '{df['image_id'].iloc[r]}' has {name}={got[bad[0]]} but the "
                            f"synthetic dataset {manifest} describes has {want[bad[0]]}; the index is not of this dataset")
    return OracleSplit(ids, c, y, np.asarray(sample.p_outcome, dtype=np.float64)[at], f"{split} split of {index}")


def summarize(data: OracleSplit, bounds=None) -> dict:
    """The frontier of one oracle split as a JSON-ready dict: the unconstrained (Bayes) point and
    one point per bound (default :func:`default_bounds`)."""
    bounds = default_bounds(data.p, data.c) if bounds is None else sorted(float(b) for b in bounds)
    points = frontier(data.p, data.c, bounds, data.y)
    return {
        "frontier_version": FRONTIER_VERSION,
        "what": "oracle classifier (group-wise thresholds on the true P(y=1 | attributes, c)) with the highest "
                "expected accuracy under each demographic-parity bound",
        "n": len(data), "n_c0": int((data.c == 0).sum()), "n_c1": int((data.c == 1).sum()),
        "label_dp_difference": float(abs(data.y[data.c == 1].mean() - data.y[data.c == 0].mean())),
        "bayes": frontier(data.p, data.c, [math.inf], data.y)[0],
        "points": points,
    }


def compute(manifest: str | os.PathLike, index: str | os.PathLike, protected: str, outcome: str,
            split: str = "test", bounds=None) -> dict:
    """:func:`summarize` of the ``split`` of the crops ``index`` (see :func:`oracle_split`)."""
    result = summarize(oracle_split(manifest, index, protected, outcome, split), bounds)
    return {**result, "split": split, "protected": protected, "outcome": outcome}


def load(path: str | os.PathLike, protected: str, outcome: str, n: int | None = None, split: str = "test") -> dict:
    """A frontier JSON written by ``fairgen frontier`` (:mod:`fairgen.stages.frontier`), as :func:`summarize` gives it (its points end with the
    unconstrained one), checked against the pair, the split and (given ``n``) the number of images
    of the split it should describe: DataError naming the file otherwise."""
    result = io.read_json(path)
    if not isinstance(result, dict) or result.get("frontier_version") != FRONTIER_VERSION:
        version = result.get("frontier_version") if isinstance(result, dict) else None
        raise DataError(f"{path}: not a frontier JSON of version {FRONTIER_VERSION} (found version {version!r})")
    for key, want in (("protected", protected), ("outcome", outcome), ("split", split), ("n", n)):
        if want is not None and result.get(key) != want:
            raise DataError(f"{path}: frontier of {key} {result.get(key)!r}, expected {want!r}")
    points = result.get("points")
    if not isinstance(points, list) or not points or not isinstance(result.get("bayes"), dict):
        raise DataError(f"{path}: no frontier points")
    if points[-1].get("bound") is not None:
        points = [*points, result["bayes"]]
    return {**result, "points": points}

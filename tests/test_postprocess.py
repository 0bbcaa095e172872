"""The group-threshold baseline (fairgen.eval.postprocess) and the trade-off stage (fairgen.eval.tradeoff)."""

import itertools

import numpy as np
import pandas as pd
import pytest

from fairgen.common import config, io
from fairgen.common.errors import DataError
from fairgen.eval.postprocess import accuracy_at, apply, default_bounds, solve
from fairgen.eval.tradeoff import compare_points, family


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 2, n)
    y = (rng.random(n) < np.where(c == 0, 0.65, 0.25)).astype(int)
    score = np.clip(0.35 * y + 0.25 * (c == 0) + rng.normal(0.2, 0.2, n), 0, 1).round(3)
    return score, y, c


def _brute(score, y, c, bound):
    """Every pair of group thresholds at the observed scores (and above them), by hand."""
    best = None
    cands = [np.r_[np.unique(score[c == g]), np.inf] for g in (0, 1)]
    for t0, t1 in itertools.product(*cands):
        pred = np.where(c == 1, score >= t1, score >= t0)
        gap = abs(pred[c == 0].mean() - pred[c == 1].mean())
        if gap <= bound + 1e-12:
            acc = (pred == y).mean()
            if best is None or acc > best[0] + 1e-12 or (abs(acc - best[0]) <= 1e-12 and gap < best[1]):
                best = (acc, gap)
    return best


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("bound", [0.0, 0.05, 0.2, 1.0])
def test_solve_matches_brute_force(seed, bound):
    score, y, c = _data(120, seed)
    got = solve(score, y, c, [bound])[0]
    acc, gap = _brute(score, y, c, bound)
    assert got["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert got["dp_difference"] == pytest.approx(gap, abs=1e-12)
    pred = apply(score, c, got["t0"], got["t1"])
    assert (pred == y).mean() == pytest.approx(got["accuracy"], abs=1e-12)
    assert abs(pred[c == 0].mean() - pred[c == 1].mean()) <= bound + 1e-12


def test_accuracy_never_falls_as_the_bound_loosens():
    score, y, c = _data()
    accs = [p["accuracy"] for p in solve(score, y, c, default_bounds(0.6))]
    assert all(b >= a - 1e-12 for a, b in zip(accs, accs[1:]))


def test_fairlearn_threshold_optimizer_agrees_at_parity():
    """fairlearn's ThresholdOptimizer (demographic parity, randomised thresholds, exact parity on
    the data it is fitted on) can only be as accurate as our best deterministic pair at a small
    bound, and no less accurate than ours at bound 0."""
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Fixed(BaseEstimator, ClassifierMixin):
        def fit(self, X, y):
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, X):
            s = np.asarray(X)[:, 0]
            return np.c_[1 - s, s]

    score, y, c = _data(2000, 3)
    opt = ThresholdOptimizer(estimator=Fixed().fit(score[:, None], y), constraints="demographic_parity",
                             objective="accuracy_score", predict_method="predict_proba", prefit=True)
    opt.fit(score[:, None], y, sensitive_features=c)
    rng_preds = np.mean([opt.predict(score[:, None], sensitive_features=c, random_state=s) for s in range(20)], axis=0)
    fl_acc = float(np.mean(np.where(y == 1, rng_preds, 1 - rng_preds)))
    ours0 = solve(score, y, c, [0.0])[0]["accuracy"]
    ours_small = solve(score, y, c, [0.02])[0]["accuracy"]
    assert ours0 <= fl_acc + 0.01
    assert fl_acc <= ours_small + 0.01


def test_solve_needs_both_groups():
    with pytest.raises(DataError, match="no rows of group c=1"):
        solve([0.1, 0.9], [0, 1], [0, 0], [0.1])


def test_accuracy_at_reads_the_curve():
    pts = [{"test_accuracy": 0.7, "test_demographic_parity_difference": 0.0},
           {"test_accuracy": 0.75, "test_demographic_parity_difference": 0.2},
           {"test_accuracy": 0.74, "test_demographic_parity_difference": 0.3}]
    assert accuracy_at(pts, 0.25) == 0.75
    assert accuracy_at(pts, 0.1) == 0.7
    assert accuracy_at(pts[1:], 0.1) is None


def test_family_names():
    assert family("real_clp[clp_lambda]@10") == ("real_clp[clp_lambda]", 10.0)
    assert family("fgan_dp") == ("fgan_dp", None)


def _preds(path, method, y, c, score):
    df = pd.DataFrame({"image_id": [f"{i}.jpg" for i in range(len(y))], "c": c, "y_true": y, "score": score,
                       "y_pred": (score >= 0.5).astype(int)})
    io.write_parquet(df, path, "predictions", metadata={"method": method, "privileged": 0})
    return str(path)


def test_tradeoff_goal_check(tmp_path):
    """A point that is the real classifier's scores pushed to parity by group thresholds plus
    perfect extra knowledge dominates; reweighing itself never counts as dominating."""
    rng = np.random.default_rng(0)
    n = 2000
    c = rng.integers(0, 2, n)
    y = (rng.random(n) < np.where(c == 0, 0.65, 0.25)).astype(int)
    real = np.clip(0.3 * y + 0.3 * (c == 0) + rng.normal(0.2, 0.15, n), 0, 1)
    rew = np.clip(0.3 * y + 0.05 * (c == 0) + rng.normal(0.3, 0.2, n), 0, 1)
    oracle = np.where(y == 1, 0.9, 0.1)  # always right: accuracy 1, DP = the label gap
    cfg = config.validate({"classifier": {"bootstrap": 200}})
    curve = {"points": [{"bound": 0.0, "test_accuracy": 0.6, "test_demographic_parity_difference": 0.0},
                        {"bound": 1.0, "test_accuracy": 0.8, "test_demographic_parity_difference": 0.6}]}
    io.write_json(curve, tmp_path / "curve.json")
    files = {m: _preds(tmp_path / f"{m}.parquet", m, y, c, s) for m, s in
             (("real", real), ("reweighing", rew), ("oracle", oracle), ("bad", 1 - oracle))}
    res = compare_points(cfg, files["real"], files["reweighing"],
                         [f"oracle={files['oracle']}", f"bad={files['bad']}"], str(tmp_path / "curve.json"))
    by = {p["name"]: p for p in res["points"]}
    rew_dp = by["reweighing"]["demographic_parity_difference"]
    assert by["oracle"]["accuracy"] == 1.0
    # the oracle is more accurate than reweighing but its DP (the label gap) is higher than reweighing's
    assert by["oracle"]["goal"]["more_accurate_than_reweighing"]
    assert by["oracle"]["goal"]["dp_not_above_reweighing"] == (by["oracle"]["demographic_parity_difference"] <= rew_dp)
    assert not by["bad"]["goal"]["more_accurate_than_reweighing"]
    assert not by["reweighing"]["dominates_both_baselines"]
    assert res["dominating"] == [n for n in ("oracle", "bad") if by[n]["dominates_both_baselines"]]
    with pytest.raises(DataError, match="unique"):
        compare_points(cfg, files["real"], files["reweighing"], [f"real={files['oracle']}"], str(tmp_path / "curve.json"))

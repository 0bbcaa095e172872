"""fairgen.eval.fairness: every metric against fairlearn/sklearn, hand-made and paper examples,
properties (group swap, row permutation, weights), the bootstrap and every bad input."""

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from fairlearn import metrics as flm
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fairgen.common.errors import DataError
from fairgen.common.io import read_parquet, write_parquet
from fairgen.eval import fairness as F

GROUP_RATES = F.RATE_METRICS


def make_data(seed, n=600, weighted=False, ties=True, p_c1=0.4, base=(0.65, 0.25)):
    """Random classifier output with group-dependent base rates, scores with ties."""
    rng = np.random.default_rng(seed)
    c = (rng.random(n) < p_c1).astype(int)
    y = (rng.random(n) < np.where(c == 0, base[0], base[1])).astype(int)
    score = np.clip(0.35 * y + 0.1 * c + 0.55 * rng.random(n), 0, 1)
    if ties:
        score = np.round(score, 2)
    y_pred = (score + 0.1 * rng.standard_normal(n) > 0.5).astype(int)
    w = rng.exponential(1.0, n) if weighted else None
    return y, y_pred, c, score, w


# --------------------------------------------------------------------------------------------
# fairlearn / sklearn oracle


def fairlearn_reference(y, p, c, s, w, privileged):
    """All metrics computed with fairlearn (MetricFrame + its difference/ratio functions)."""
    kw = {} if w is None else {"sample_weight": w}
    rates = {
        "selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate,
        "fpr": flm.false_positive_rate, "fnr": flm.false_negative_rate,
        "tnr": flm.true_negative_rate, "error_rate": skm.zero_one_loss,
        "accuracy": skm.accuracy_score, "balanced_accuracy": skm.balanced_accuracy_score,
    }
    frames = [
        flm.MetricFrame(metrics=rates, y_true=y, y_pred=p, sensitive_features=c,
                        sample_params={k: kw for k in rates} if w is not None else None),
        # base rate P(y=1) is the selection rate of a classifier that predicts y itself
        flm.MetricFrame(metrics={"base_rate": flm.selection_rate}, y_true=y, y_pred=y, sensitive_features=c,
                        sample_params={"base_rate": kw} if w is not None else None),
        flm.MetricFrame(metrics={"n": flm.count, "positives": lambda yt, yp: int(np.sum(yt))},
                        y_true=y, y_pred=p, sensitive_features=c),
        flm.MetricFrame(metrics={"auc": skm.roc_auc_score}, y_true=y, y_pred=s, sensitive_features=c,
                        sample_params={"auc": kw} if w is not None else None),
    ]
    ref = {}
    for mf in frames:
        for name, value in mf.overall.items():
            ref[name] = value
            for g in (0, 1):
                ref[f"{name}_c{g}"] = mf.by_group.loc[g, name]
    ref["weight"] = len(y) if w is None else w.sum()
    for g in (0, 1):
        ref[f"weight_c{g}"] = (c == g).sum() if w is None else w[c == g].sum()
    args = dict(y_true=y, y_pred=p, sensitive_features=c, **kw)
    ref["demographic_parity_difference"] = flm.demographic_parity_difference(**args)
    ref["demographic_parity_ratio"] = flm.demographic_parity_ratio(**args)
    ref["equal_opportunity_difference"] = flm.equal_opportunity_difference(**args)
    ref["false_positive_rate_difference"] = flm.false_positive_rate_difference(**args)
    ref["equalized_odds_difference"] = flm.equalized_odds_difference(**args)
    ref["error_rate_gap"] = flm.zero_one_loss_difference(**args)
    u, pr = 1 - privileged, privileged
    ref["statistical_parity_difference"] = ref[f"selection_rate_c{u}"] - ref[f"selection_rate_c{pr}"]
    ref["disparate_impact"] = ref[f"selection_rate_c{u}"] / ref[f"selection_rate_c{pr}"]
    ref["equal_opportunity_difference_signed"] = ref[f"tpr_c{u}"] - ref[f"tpr_c{pr}"]
    ref["average_odds_difference"] = 0.5 * (ref[f"fpr_c{u}"] - ref[f"fpr_c{pr}"]
                                            + ref[f"tpr_c{u}"] - ref[f"tpr_c{pr}"])
    return ref


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("privileged", [0, 1])
def test_every_metric_matches_fairlearn(seed, weighted, privileged):
    y, p, c, s, w = make_data(seed, weighted=weighted)
    res = F.evaluate(y, p, c, score=s, sample_weight=w, privileged=privileged, n_boot=0)
    flat = F.flatten(res)
    ref = fairlearn_reference(y, p, c, s, w, privileged)
    assert set(flat) == set(ref)
    for name, expected in ref.items():
        assert flat[name] == pytest.approx(float(expected), rel=1e-12, abs=1e-12), name
    assert res["n"] == len(y) and res["privileged"] == privileged


def test_overall_accuracy_balanced_accuracy_auc_match_sklearn():
    y, p, c, s, w = make_data(5, n=2000, weighted=True)
    res = F.evaluate(y, p, c, score=s, sample_weight=w, n_boot=0)["overall"]
    assert res["accuracy"] == pytest.approx(skm.accuracy_score(y, p, sample_weight=w), abs=1e-12)
    assert res["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(y, p, sample_weight=w), abs=1e-12)
    assert res["auc"] == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), abs=1e-12)


# --------------------------------------------------------------------------------------------
# hand-computed examples


def test_hand_computed_example():
    # group c=0: y = 1 1 1 0 0 ; y_pred = 1 1 0 1 0  -> TP 2 FN 1 FP 1 TN 1
    # group c=1: y = 1 0 0 0   ; y_pred = 0 0 0 1    -> TP 0 FN 1 FP 1 TN 2
    y = [1, 1, 1, 0, 0, 1, 0, 0, 0]
    p = [1, 1, 0, 1, 0, 0, 0, 0, 1]
    c = [0, 0, 0, 0, 0, 1, 1, 1, 1]
    res = F.evaluate(y, p, c, privileged=0, n_boot=0)
    g0, g1, ov, fair = res["groups"]["0"], res["groups"]["1"], res["overall"], res["fairness"]
    assert (g0["n"], g0["positives"], g1["n"], g1["positives"]) == (5, 3, 4, 1)
    assert g0["selection_rate"] == pytest.approx(3 / 5) and g1["selection_rate"] == pytest.approx(1 / 4)
    assert g0["base_rate"] == pytest.approx(3 / 5) and g1["base_rate"] == pytest.approx(1 / 4)
    assert g0["tpr"] == pytest.approx(2 / 3) and g1["tpr"] == 0.0
    assert g0["fnr"] == pytest.approx(1 / 3) and g1["fnr"] == 1.0
    assert g0["fpr"] == pytest.approx(1 / 2) and g1["fpr"] == pytest.approx(1 / 3)
    assert g0["tnr"] == pytest.approx(1 / 2) and g1["tnr"] == pytest.approx(2 / 3)
    assert g0["error_rate"] == pytest.approx(2 / 5) and g1["error_rate"] == pytest.approx(2 / 4)
    assert g0["accuracy"] == pytest.approx(3 / 5)
    assert g0["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert ov["accuracy"] == pytest.approx(5 / 9) and ov["tpr"] == pytest.approx(2 / 4)
    assert fair["demographic_parity_difference"] == pytest.approx(3 / 5 - 1 / 4)
    assert fair["demographic_parity_ratio"] == pytest.approx((1 / 4) / (3 / 5))
    assert fair["equal_opportunity_difference"] == pytest.approx(2 / 3)
    assert fair["false_positive_rate_difference"] == pytest.approx(1 / 2 - 1 / 3)
    assert fair["equalized_odds_difference"] == pytest.approx(2 / 3)
    assert fair["error_rate_gap"] == pytest.approx(1 / 2 - 2 / 5)
    # privileged = 0, so unprivileged is c=1
    assert fair["statistical_parity_difference"] == pytest.approx(1 / 4 - 3 / 5)
    assert fair["disparate_impact"] == pytest.approx((1 / 4) / (3 / 5))
    assert fair["equal_opportunity_difference_signed"] == pytest.approx(0 - 2 / 3)
    assert fair["average_odds_difference"] == pytest.approx(((1 / 3 - 1 / 2) + (0 - 2 / 3)) / 2)


def test_hand_computed_weights_and_auc():
    # weights 2 on the first row equal repeating it; AUC counts a tie as 1/2
    y = [1, 0, 1, 0, 1, 0]
    s = [0.9, 0.9, 0.2, 0.1, 0.6, 0.7]
    p = [1, 1, 0, 0, 1, 1]
    c = [0, 0, 0, 1, 1, 1]
    res = F.evaluate(y, p, c, score=s, sample_weight=[2, 1, 1, 1, 1, 1], n_boot=0)
    g0 = res["groups"]["0"]
    # group 0: positives 0.9 (weight 2), 0.2; negative 0.9 -> pairs: tie (2 * 0.5) + loss (0) over 3
    assert g0["auc"] == pytest.approx(1 / 3)
    assert g0["tpr"] == pytest.approx(2 / 3) and g0["weight"] == 4 and g0["n"] == 3
    assert res["groups"]["1"]["auc"] == pytest.approx(0.5)  # positive 0.6 vs negatives 0.1, 0.7


def table1_counts():
    """Confusion counts (TN, FP, FN, TP) per group that reproduce, at the paper's 4 decimals,
    every 'no debiasing' number of Sattigeri et al. (2019) Table 1 (CelebA, c = Male, y =
    Attractive): FPR .4043/.0927, FNR .1213/.4222, err .2196/.1749, overall err .2023.
    Found by a small integer search; the counts themselves are not in the paper."""
    return {0: (1427 - 577, 577, 325, 2680 - 325), 1: (1952 - 181, 181, 274, 649 - 274)}


def arrays_from_counts(counts):
    y, p, c = [], [], []
    for g, cells in counts.items():
        for (yy, pp), k in zip([(0, 0), (0, 1), (1, 0), (1, 1)], cells):
            y += [yy] * k
            p += [pp] * k
            c += [g] * k
    return np.array(y), np.array(p), np.array(c)


def test_paper_table1_convention():
    y, p, c = arrays_from_counts(table1_counts())
    res = F.evaluate(y, p, c, privileged=0, n_boot=0)
    g0, g1, fair = res["groups"]["0"], res["groups"]["1"], res["fairness"]
    assert [round(g0[k], 4) for k in ("fpr", "fnr", "error_rate")] == [0.4043, 0.1213, 0.2196]
    assert [round(g1[k], 4) for k in ("fpr", "fnr", "error_rate")] == [0.0927, 0.4222, 0.1749]
    assert round(res["overall"]["error_rate"], 4) == 0.2023
    # the paper's "Demographic Parity" column is the error-rate gap ...
    assert round(fair["error_rate_gap"], 4) == 0.0447
    # ... and its "EO" column is the equal-opportunity (TPR) gap, not equalized odds
    assert round(fair["equal_opportunity_difference"], 4) == 0.3009
    assert round(fair["equalized_odds_difference"], 4) == 0.3116  # the FPR gap is larger
    # the real demographic parity (selection-rate) gap of the same classifier is ten times larger
    assert fair["demographic_parity_difference"] > 0.45


def test_error_rate_gap_from_table1_error_rates():
    n = 10000
    c = np.repeat([0, 1], n)
    y = np.ones(2 * n, dtype=int)
    p = y.copy()
    p[:2196] = 0  # error rate .2196 in c=0
    p[n:n + 1749] = 0  # error rate .1749 in c=1
    fair = F.evaluate(y, p, c, n_boot=0, allow_undefined=True)["fairness"]
    assert fair["error_rate_gap"] == pytest.approx(0.0447, abs=1e-12)


# --------------------------------------------------------------------------------------------
# properties

rows = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 1),
                          st.integers(0, 4), st.integers(1, 5)), min_size=2, max_size=40)


def columns(data):
    y, p, c, s, w = (np.array(col) for col in zip(*data))
    return y, p, c, s / 4, w.astype(float)


def assert_same(a, b):
    if a is None or b is None:
        assert a is None and b is None
    else:
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(rows, st.sampled_from([0, 1]))
def test_swapping_groups(data, privileged):
    y, p, c, s, w = columns(data)
    assume(0 < c.sum() < len(c))
    kw = dict(score=s, sample_weight=w, privileged=privileged, n_boot=0, allow_undefined=True)
    a, b = F.evaluate(y, p, c, **kw), F.evaluate(y, p, 1 - c, **kw)
    for k in a["overall"]:
        assert_same(a["overall"][k], b["overall"][k])
        for g in (0, 1):
            assert_same(a["groups"][str(g)][k], b["groups"][str(1 - g)][k])
    for k in F.UNSIGNED_METRICS:
        assert_same(a["fairness"][k], b["fairness"][k])
    for k in ("statistical_parity_difference", "equal_opportunity_difference_signed",
              "average_odds_difference"):
        assert_same(a["fairness"][k], None if b["fairness"][k] is None else -b["fairness"][k])
    di_a, di_b = a["fairness"]["disparate_impact"], b["fairness"]["disparate_impact"]
    if di_a:
        assert di_b == pytest.approx(1 / di_a)
    # swapping c and which value is privileged together changes no signed metric either
    other = F.evaluate(y, p, 1 - c, **{**kw, "privileged": 1 - privileged})
    for k in F.SIGNED_METRICS:
        assert_same(a["fairness"][k], other["fairness"][k])


@settings(max_examples=60, deadline=None)
@given(rows, st.randoms(use_true_random=False))
def test_permuting_rows_changes_nothing(data, rnd):
    y, p, c, s, w = columns(data)
    assume(0 < c.sum() < len(c))
    order = list(range(len(y)))
    rnd.shuffle(order)
    kw = dict(n_boot=0, allow_undefined=True)
    a = F.flatten(F.evaluate(y, p, c, score=s, sample_weight=w, **kw))
    b = F.flatten(F.evaluate(y[order], p[order], c[order], score=s[order], sample_weight=w[order], **kw))
    for k in a:
        assert_same(a[k], b[k])


@settings(max_examples=60, deadline=None)
@given(rows)
def test_integer_weights_equal_repeated_rows(data):
    y, p, c, s, w = columns(data)
    assume(0 < c.sum() < len(c))
    reps = w.astype(int)
    kw = dict(n_boot=0, allow_undefined=True)
    a = F.flatten(F.evaluate(y, p, c, score=s, sample_weight=w, **kw))
    b = F.flatten(F.evaluate(*(np.repeat(x, reps) for x in (y, p, c)), score=np.repeat(s, reps), **kw))
    c_scaled = F.flatten(F.evaluate(y, p, c, score=s, sample_weight=w * 3.7, **kw))
    for k in a:
        if F._base(k) not in ("n", "positives", "weight"):
            assert_same(a[k], b[k])
            assert_same(a[k], c_scaled[k])


def _row(y, p, c):
    return st.tuples(st.just(y) if y is not None else st.integers(0, 1), st.just(p) if p is not None else
                     st.integers(0, 1), st.just(c), st.integers(0, 4), st.integers(1, 5))


@st.composite
def rows_with(draw, required):
    """``rows`` plus one row for each (y, p, c) in ``required`` (None: any value), shuffled."""
    return draw(st.permutations(draw(rows) + [draw(_row(*r)) for r in required]))


#: both groups present (the only requirement of evaluate with allow_undefined=True; weights are >= 1)
both_groups = rows_with([(None, None, 0), (None, None, 1)])
#: every metric defined: each group has y=0 and y=1 rows, and a y_pred=1 (no zero selection rate)
fully_defined = rows_with([(0, None, 0), (1, 1, 0), (0, None, 1), (1, 1, 1)])


@st.composite
def one_group(draw):
    g = draw(st.integers(0, 1))
    return [(y, p, g, s, w) for y, p, _, s, w in draw(rows)]


@st.composite
def group_without_a_class(draw):
    """Both groups, but group g has no row with y = k: its TPR (k=1) or FPR (k=0) is undefined."""
    g, k = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    kept = [r for r in draw(rows) if not (r[2] == g and r[0] == k)]
    return g, k, draw(st.permutations(kept + [draw(_row(1 - k, None, g)), draw(_row(None, None, 1 - g))]))


def _check_finite_and_explained(res, allow_undefined):
    json.dumps(res, allow_nan=False)  # raises on NaN/inf
    nones = {k for k, v in F.flatten(res).items() if v is None}
    assert nones == set(res["undefined"])
    assert allow_undefined or not nones
    for lo, hi in res["ci"].values():
        assert (lo is None) == (hi is None)
        if lo is not None:
            assert lo <= hi
    return nones


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(both_groups)
def test_with_both_groups_evaluate_succeeds_and_every_none_is_explained(data):
    """allow_undefined=True and both groups present: evaluate must succeed, with finite numbers
    and None only where a reason is listed."""
    y, p, c, s, w = columns(data)
    _check_finite_and_explained(F.evaluate(y, p, c, score=s, sample_weight=w, n_boot=20, allow_undefined=True),
                                True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fully_defined, st.booleans())
def test_fully_defined_input_gives_every_metric(data, allow_undefined):
    """Every group with both outcomes and a positive prediction: evaluate must succeed without a
    single undefined metric, whether or not undefined ones are allowed."""
    y, p, c, s, w = columns(data)
    res = F.evaluate(y, p, c, score=s, sample_weight=w, n_boot=20, allow_undefined=allow_undefined)
    assert _check_finite_and_explained(res, allow_undefined) == set()


@settings(max_examples=40, deadline=None)
@given(one_group(), st.booleans())
def test_one_group_only_raises(data, allow_undefined):
    y, p, c, s, w = columns(data)
    with pytest.raises(DataError, match=f"only group c={c[0]} is present"):
        F.evaluate(y, p, c, score=s, sample_weight=w, n_boot=20, allow_undefined=allow_undefined)


@settings(max_examples=60, deadline=None)
@given(group_without_a_class())
def test_undefined_metric_raises_unless_allowed(case):
    """A group without positives (or negatives) has no TPR (FPR): evaluate raises, naming the
    metric, unless undefined metrics are allowed -- then that metric is None, with its reason."""
    g, k, data = case
    y, p, c, s, w = columns(data)
    metric = f"{'tpr' if k == 1 else 'fpr'}_c{g}"
    with pytest.raises(DataError, match="metric '"):
        F.evaluate(y, p, c, score=s, sample_weight=w, n_boot=20)
    res = F.evaluate(y, p, c, score=s, sample_weight=w, n_boot=20, allow_undefined=True)
    assert res["groups"][str(g)][metric[:3]] is None and metric in res["undefined"]


# --------------------------------------------------------------------------------------------
# bootstrap


def test_vectorised_resamples_match_fairlearn_on_the_same_rows():
    y, p, c, s, w = make_data(11, n=300, weighted=True)
    data = F._prepare(y, p, c, s, w)
    rng = np.random.default_rng(3)
    idx = tuple(rng.integers(0, m, size=(6, m)) for m in data.n)
    got = F._metric_arrays(*F._sums(data, idx), privileged=0)
    rows = [np.flatnonzero(c == g) for g in (0, 1)]
    for b in range(6):
        take = np.concatenate([rows[g][idx[g][b]] for g in (0, 1)])
        ref = fairlearn_reference(y[take], p[take], c[take], s[take], w[take], privileged=0)
        for name, expected in ref.items():
            assert got[name][b] == pytest.approx(float(expected), rel=1e-10, abs=1e-12), (b, name)


def test_interval_is_the_percentile_interval_of_the_resamples():
    y, p, c, s, _ = make_data(4, n=500)
    level = 0.9
    ci = F.bootstrap_ci(y, p, c, score=s, n_boot=300, level=level, seed=7)
    boot = F._resample_metrics(F._prepare(y, p, c, s), 1, 300, 7)
    assert set(ci) == set(boot)
    assert not any(F._is_count(k) for k in ci)
    for name, x in boot.items():
        if name in F.UNSIGNED_METRICS:
            continue
        lo, hi = np.percentile(x, [5, 95])
        assert (ci[name]["lower"], ci[name]["upper"]) == pytest.approx((lo, hi)), name
        assert ci[name]["std"] == pytest.approx(np.std(x, ddof=1)) and ci[name]["n_valid"] == 300
    # folded: |SR0 - SR1| gets the folded interval of SR0 - SR1
    lo, hi = np.percentile(boot["selection_rate_c0"] - boot["selection_rate_c1"], [5, 95])
    expect = (0.0, max(-lo, hi)) if lo <= 0 <= hi else tuple(sorted((abs(lo), abs(hi))))
    got = ci["demographic_parity_difference"]
    assert (got["lower"], got["upper"]) == pytest.approx(expect)
    # min/max SR gets the folded interval of t = SR0 / (SR0 + SR1) under min(t, 1-t) / max(t, 1-t)
    t = np.percentile(boot["selection_rate_c0"] / (boot["selection_rate_c0"] + boot["selection_rate_c1"]),
                      [5, 95])
    f = [min(v, 1 - v) / max(v, 1 - v) for v in t]
    expect = (min(f), 1.0 if t[0] <= 0.5 <= t[1] else max(f))
    got = ci["demographic_parity_ratio"]
    assert (got["lower"], got["upper"]) == pytest.approx(expect)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.2, 0.8), st.floats(0.2, 0.8), st.sampled_from([0.8, 0.95]))
def test_interval_contains_the_point_estimate(seed, b0, b1, level):
    y, p, c, s, w = make_data(seed, n=800, weighted=seed % 2 == 1, base=(b0, b1))
    ci = F.bootstrap_ci(y, p, c, score=s, sample_weight=w, n_boot=200, level=level, seed=seed)
    for name, v in ci.items():
        assert v["lower"] <= v["estimate"] <= v["upper"], name


def test_interval_narrows_with_more_data():
    small = F.bootstrap_ci(*make_data(1, n=500)[:3], n_boot=400, seed=0)
    big = F.bootstrap_ci(*make_data(1, n=8000)[:3], n_boot=400, seed=0)
    for name in small:
        w_small = small[name]["upper"] - small[name]["lower"]
        w_big = big[name]["upper"] - big[name]["lower"]
        assert w_big < 0.6 * w_small, name  # about 1/4 expected (sqrt of 16x the rows)


def test_coverage_including_a_zero_gap():
    """95% intervals cover the population value in most of 150 simulated data sets, also for
    |SR0 - SR1| = 0 and min/max SR = 1 at the boundary (plain percentile intervals of the
    folded metric never would: every resample lies on one side of the population value)."""
    rng = np.random.default_rng(0)
    truth = {"selection_rate_c0": 0.3, "statistical_parity_difference": 0.0,
             "demographic_parity_difference": 0.0, "demographic_parity_ratio": 1.0,
             "equalized_odds_difference": 0.0}
    hits = dict.fromkeys(truth, 0)
    reps = 150
    for _ in range(reps):
        c = np.repeat([0, 1], 300)
        y = rng.integers(0, 2, 600)
        p = (rng.random(600) < 0.3).astype(int)  # same selection rate in both groups
        ci = F.bootstrap_ci(y, p, c, n_boot=300, seed=int(rng.integers(1 << 30)))
        for k in hits:
            hits[k] += ci[k]["lower"] <= truth[k] <= ci[k]["upper"]
    for k, h in hits.items():
        assert 0.88 <= h / reps <= 1.0, (k, h)


def test_determinism_and_seed():
    y, p, c, s, _ = make_data(2, n=400)
    a = F.evaluate(y, p, c, score=s, n_boot=200, seed=5)
    assert a == F.evaluate(y, p, c, score=s, n_boot=200, seed=5)
    assert a["ci"] != F.evaluate(y, p, c, score=s, n_boot=200, seed=6)["ci"]


def test_more_resamples_extend_the_same_resamples(monkeypatch):
    y, p, c, s, _ = make_data(2, n=400)
    data = F._prepare(y, p, c, s)
    monkeypatch.setattr(F, "_CHUNK_ELEMENTS", 16 * (400 + 4 * data.n_levels + 16))  # chunks of 16
    short = F._resample_metrics(data, 1, 50, 9)
    long = F._resample_metrics(data, 1, 120, 9)
    for k in short:
        np.testing.assert_array_equal(short[k], long[k][:50])


def test_stratified_resamples_keep_group_sizes():
    y, p, c, _, _ = make_data(6, n=300)
    data = F._prepare(y, p, c)
    rng = np.random.default_rng(0)
    idx = tuple(rng.integers(0, m, size=(5, m)) for m in data.n)
    _, n, _ = F._sums(data, idx)
    assert (n.sum(-1) == np.array(data.n)).all()


def test_undefined_resamples_are_counted_not_hidden(caplog):
    # group c=1 has one positive: some resamples lose it, TPR(c=1) is undefined there
    y = np.r_[np.tile([0, 1], 50), [1], np.zeros(29, int)]
    c = np.r_[np.zeros(100, int), np.ones(30, int)]
    p = y.copy()
    ci = F.bootstrap_ci(y, p, c, n_boot=500, seed=1)
    assert 0 < ci["tpr_c1"]["n_valid"] < 500
    assert ci["equal_opportunity_difference"]["n_valid"] == ci["tpr_c1"]["n_valid"]
    assert ci["selection_rate_c1"]["n_valid"] == 500
    assert "tpr_c1: defined in" in caplog.text


def test_bootstrap_speed_20k_rows_1000_resamples():
    y, p, c, s, w = make_data(0, n=20_000, weighted=True, ties=False)
    t = time.process_time()  # CPU time: robust to other processes sharing the machine
    F.evaluate(y, p, c, score=s, sample_weight=w, n_boot=1000)
    elapsed = time.process_time() - t
    # about 1 s of CPU; a Python loop over resamples would take minutes
    assert elapsed < 10, elapsed


# --------------------------------------------------------------------------------------------
# output shape, JSON and the table


def test_evaluate_output_is_json_and_complete():
    y, p, c, s, w = make_data(3, n=500, weighted=True)
    res = F.evaluate(y, p, c, score=s, sample_weight=w, privileged=0, n_boot=50, seed=1, source="x.parquet")
    again = json.loads(json.dumps(res, allow_nan=False))
    assert again == res
    assert set(res) == {"n", "privileged", "overall", "groups", "fairness", "ci", "bootstrap", "undefined"}
    assert set(res["groups"]) == {"0", "1"}
    assert set(res["overall"]) == set(F.COUNT_METRICS + F.RATE_METRICS + F.SCORE_METRICS)
    assert set(res["fairness"]) == set(F.FAIRNESS_METRICS)
    flat = F.flatten(res)
    assert set(res["ci"]) == {k for k in flat if not F._is_count(k)}
    assert set(res["bootstrap"]["std"]) == set(res["ci"])
    assert isinstance(res["n"], int) and isinstance(res["groups"]["1"]["positives"], int)
    numpy_args = F.evaluate(y, p, c, privileged=np.int64(0), n_boot=np.int64(20), level=np.float32(0.9),
                            seed=np.uint8(3))
    json.dumps(numpy_args)  # numpy scalars in the arguments do not leak into the result
    no_score = F.evaluate(y, p, c, n_boot=0)
    assert "auc" not in no_score["overall"] and no_score["ci"] == {}


def test_inputs_as_pandas_and_bool():
    y, p, c, s, _ = make_data(8, n=200)
    ref = F.evaluate(y, p, c, score=s, n_boot=0)
    df = pd.DataFrame({"y": pd.array(y, dtype="Int64"), "p": p.astype(bool), "c": c.astype(float), "s": s})
    assert F.evaluate(df["y"], df["p"], df["c"], score=df["s"], n_boot=0) == ref
    assert F.evaluate(list(y), list(p), list(c), score=list(s), n_boot=0) == ref


def test_metrics_table(tmp_path):
    y, p, c, s, _ = make_data(9, n=400)
    results = {
        "baseline": F.evaluate(y, p, c, score=s, n_boot=50),
        "fgan_dp": F.evaluate(y, 1 - p, c, n_boot=50),
        "no_ci": F.evaluate(y, p, c, n_boot=0),
    }
    df = F.metrics_table(results)
    assert list(df["method"]) == ["baseline", "fgan_dp", "no_ci"]
    cols = list(df.columns)
    assert cols[:4] == ["method", "n", "positives", "weight"]
    i = cols.index("demographic_parity_difference")
    assert cols[i + 1:i + 3] == ["demographic_parity_difference_lo", "demographic_parity_difference_hi"]
    for method, res in results.items():
        row = df.set_index("method").loc[method]
        for k, v in F.flatten(res).items():
            assert row[k] == pytest.approx(v)
        for k, (lo, hi) in res["ci"].items():
            assert (row[f"{k}_lo"], row[f"{k}_hi"]) == pytest.approx((lo, hi))
    assert math.isnan(df.loc[1, "auc"]) and math.isnan(df.loc[2, "tpr_lo"])
    assert df["n"].dtype.kind == "i"
    write_parquet(df, tmp_path / "m.parquet", kind="metrics_table")
    back, _ = read_parquet(tmp_path / "m.parquet", kind="metrics_table")
    pd.testing.assert_frame_equal(back, df)
    with pytest.raises(DataError, match="method 'bad'"):
        F.metrics_table({"bad": {"overall": {}}})
    with pytest.raises(DataError, match="at least one"):
        F.metrics_table({})


# --------------------------------------------------------------------------------------------
# bad input

Y, P, C = [1, 0, 1, 0], [1, 0, 0, 1], [0, 0, 1, 1]


@pytest.mark.parametrize("kwargs, needle", [
    (dict(y_true=[], y_pred=[], c=[]), "empty input"),
    (dict(y_true=[1, 0, 1], y_pred=P, c=C), "differ in length: y_true=3, y_pred=4, c=4"),
    (dict(y_true=Y, y_pred=P, c=C, score=[0.1, 0.2]), "score=2"),
    (dict(y_true=Y, y_pred=P, c=C, sample_weight=[1, 1, 1]), "sample_weight=3"),
    (dict(y_true=Y, y_pred=P, c=[1, 1, 1, 1]), "only group c=1 is present"),
    (dict(y_true=Y, y_pred=P, c=[0, 0, 0, 0]), "only group c=0 is present"),
    (dict(y_true=[1, 0, 2, 0], y_pred=P, c=C), "y_true must be binary (0/1); row 2 is 2"),
    (dict(y_true=Y, y_pred=[1, 0, float("nan"), 1], c=C), "y_pred must be binary (0/1); row 2 is nan"),
    (dict(y_true=Y, y_pred=P, c=[0, -1, 1, 1]), "c must be binary (0/1); row 1 is -1"),
    (dict(y_true=Y, y_pred=P, c=["a", "a", "b", "b"]), "c must be numeric"),
    (dict(y_true=Y, y_pred=P, c=[[0, 0], [1, 1]]), "1-D"),
    (dict(y_true=Y, y_pred=P, c=np.array([0, None, 1, 1], dtype=object)), "row 1 is nan"),
    (dict(y_true=Y, y_pred=P, c=C, score=[0.1, float("nan"), 0.3, 0.4]), "score must be finite"),
    (dict(y_true=Y, y_pred=P, c=C, score=[0.1, 0.2, float("inf"), 0.4]), "score must be finite (no NaN/inf); row 2 is inf"),
    (dict(y_true=Y, y_pred=P, c=C, score=[0.1, 0.2, 1.5, 0.4]), "score must be a probability in [0, 1]"),
    (dict(y_true=Y, y_pred=P, c=C, sample_weight=[1, -1, 1, 1]), "sample_weight must be non-negative"),
    (dict(y_true=Y, y_pred=P, c=C, sample_weight=[1, 1, float("nan"), 1]), "sample_weight must be finite"),
    (dict(y_true=Y, y_pred=P, c=C, sample_weight=[1, 1, 0, 0]), "sample weights of group c=1 are 0"),
    (dict(y_true=Y, y_pred=P, c=C, privileged=2), "privileged must be 0 or 1"),
    (dict(y_true=Y, y_pred=P, c=C, n_boot=-1), "n_boot"),
    (dict(y_true=Y, y_pred=P, c=C, n_boot=1), "n_boot"),
    (dict(y_true=Y, y_pred=P, c=C, level=1.0), "level"),
    (dict(y_true=Y, y_pred=P, c=C, seed=-3), "seed"),
])
def test_bad_input(kwargs, needle):
    with pytest.raises(DataError) as e:
        F.evaluate(**{"n_boot": 0, **kwargs})
    assert needle in str(e.value)


def test_source_names_the_file():
    with pytest.raises(DataError, match=r"^preds\.parquet: empty input"):
        F.evaluate([], [], [], source="preds.parquet")


def test_group_without_positives_names_group_and_metric():
    y, p, c = [1, 0, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1]
    with pytest.raises(DataError) as e:
        F.evaluate(y, p, c, n_boot=0)
    msg = str(e.value)
    assert "'tpr_c1'" in msg and "group c=1" in msg and "y_true=1" in msg and "allow_undefined" in msg
    assert "equal_opportunity_difference" in msg  # listed among the other undefined metrics
    res = F.evaluate(y, p, c, n_boot=50, allow_undefined=True)
    assert res["groups"]["1"]["tpr"] is None and res["fairness"]["equalized_odds_difference"] is None
    assert "group c=1" in res["undefined"]["tpr_c1"]
    assert "tpr_c1" in res["undefined"]["equal_opportunity_difference"]
    assert res["ci"]["tpr_c1"] == [None, None] and res["bootstrap"]["n_valid"]["tpr_c1"] == 0
    assert res["groups"]["1"]["fpr"] == 0.5 and res["fairness"]["demographic_parity_difference"] == 0


def test_group_without_negatives_and_zero_weight_positives():
    with pytest.raises(DataError, match="'fpr_c0'.*group c=0.*y_true=0"):
        F.evaluate([1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 1, 1], n_boot=0)
    with pytest.raises(DataError, match="'tpr_c1'.*sample weight 0"):
        F.evaluate(Y, P, C, sample_weight=[1, 1, 0, 1], n_boot=0)
    with pytest.raises(DataError, match="also undefined:.*auc_c1"):
        F.evaluate([1, 0, 1, 1], [1, 0, 1, 1], C, score=[0.9, 0.1, 0.8, 0.7], n_boot=0)


def test_ratio_metrics_with_zero_selection():
    # nobody selected: the min/max ratio and disparate impact are 0/0
    with pytest.raises(DataError, match="'demographic_parity_ratio'.*selection rate is 0 in both groups"):
        F.evaluate(Y, [0, 0, 0, 0], C, n_boot=0)
    # only the privileged group c=1 has selection rate 0
    with pytest.raises(DataError, match="'disparate_impact'.*privileged group's selection rate is 0"):
        F.evaluate(Y, [1, 0, 0, 0], C, privileged=1, n_boot=0)
    res = F.evaluate(Y, [1, 0, 0, 0], C, privileged=0, n_boot=0)
    assert res["fairness"]["disparate_impact"] == 0 and res["fairness"]["demographic_parity_ratio"] == 0


def test_bootstrap_ci_rejects_bad_input_too():
    with pytest.raises(DataError, match="only group"):
        F.bootstrap_ci(Y, P, [1, 1, 1, 1])
    with pytest.raises(DataError, match="at least 2"):
        F.bootstrap_ci(Y, P, C, n_boot=0)


# --------------------------------------------------------------------------------------------
# paired comparison with a baseline


def test_paired_difference_points_are_the_differences_of_evaluate():
    y, p_base, c, s_base, _ = make_data(3)
    _, p_new, _, s_new, _ = make_data(4)
    r = F.paired_difference(y, c, p_base, p_new, s_base, s_new, privileged=0, n_boot=200, seed=1)
    a = F.flatten(F.evaluate(y, p_base, c, s_base, privileged=0, n_boot=0))
    b = F.flatten(F.evaluate(y, p_new, c, s_new, privileged=0, n_boot=0))
    assert set(r["metrics"]) == set(F.PAIRED_METRICS)
    for name, e in r["metrics"].items():
        assert e["baseline"] == pytest.approx(a[name]) and e["value"] == pytest.approx(b[name])
        assert e["difference"] == pytest.approx(b[name] - a[name])
        assert e["relative"] == pytest.approx((b[name] - a[name]) / abs(a[name]))
        assert e["lower"] <= e["upper"] and e["relative_lower"] <= e["relative_upper"]
        assert e["n_valid"] == 200
    assert r["bootstrap"]["paired"] is True and r["undefined"] == {}
    # without scores (or with one side's only) there is no AUC to compare
    assert "auc" not in F.paired_difference(y, c, p_base, p_new, s_base, None, n_boot=0)["metrics"]


def test_paired_resamples_score_both_classifiers_on_the_same_rows():
    """Fixing 12 wrong predictions can only raise accuracy on any resample of the same rows, so
    the paired interval of the change lies above 0; independent resamples would straddle it."""
    y, p_base, c, _, _ = make_data(5, n=800)
    p_new = p_base.copy()
    wrong = np.flatnonzero(p_base != y)[:12]
    p_new[wrong] = y[wrong]
    e = F.paired_difference(y, c, p_base, p_new, n_boot=500, seed=2)["metrics"]["accuracy"]
    assert e["difference"] == pytest.approx(12 / 800)
    assert 0 < e["lower"] <= e["difference"] <= e["upper"]
    lo_a, hi_a = F.evaluate(y, p_base, c, n_boot=500, seed=2)["ci"]["accuracy"]
    lo_b, hi_b = F.evaluate(y, p_new, c, n_boot=500, seed=3)["ci"]["accuracy"]
    assert lo_b < hi_a  # the separate intervals overlap: only the paired one sees the change
    # identical predictions: no change on any resample
    same = F.paired_difference(y, c, p_base, p_base, n_boot=100, seed=0)["metrics"]
    assert all(e["difference"] == e["lower"] == e["upper"] == 0 for e in same.values())


def test_paired_interval_of_a_halved_dp_gap():
    rng = np.random.default_rng(0)
    n = 4000
    c = (rng.random(n) < 0.5).astype(int)
    y = (rng.random(n) < np.where(c == 0, 0.6, 0.3)).astype(int)
    p_base = (rng.random(n) < np.where(c == 0, 0.7, 0.2)).astype(int)  # DP gap 0.5
    p_new = (rng.random(n) < np.where(c == 0, 0.575, 0.325)).astype(int)  # DP gap 0.25
    e = F.paired_difference(y, c, p_base, p_new, n_boot=400, seed=0)["metrics"]["demographic_parity_difference"]
    assert e["relative"] == pytest.approx(e["value"] / e["baseline"] - 1)
    assert e["relative_lower"] < -0.5 < e["relative_upper"] < -0.3  # the true change is -50%
    assert e["lower"] < -0.25 < e["upper"] < 0


def test_paired_difference_undefined_metrics_are_none_with_a_reason():
    y = np.array([1, 0, 1, 0, 0, 0])
    c = np.array([0, 0, 0, 1, 1, 1])  # group c=1 has no positives: TPR(1) undefined
    p_base = np.array([1, 0, 1, 0, 0, 0])  # selection rates 2/3 and 0: DP 2/3
    p_same_rate = np.array([1, 0, 0, 1, 0, 0])  # SR 1/3 in both groups: DP 0
    r = F.paired_difference(y, c, p_base, p_same_rate, n_boot=20, seed=0)
    eo = r["metrics"]["equal_opportunity_difference"]
    assert eo["difference"] is None and eo["lower"] is None
    assert "equal_opportunity_difference" in r["undefined"]
    assert "no rows with y_true=1" in r["undefined"]["equal_opportunity_difference"]
    # a baseline DP of 0 has no relative change
    r2 = F.paired_difference(y, c, p_same_rate, p_base, n_boot=20, seed=0)
    dp = r2["metrics"]["demographic_parity_difference"]
    assert dp["difference"] == pytest.approx(2 / 3) and dp["relative"] is None
    assert "baseline's value is 0" in r2["undefined"]["demographic_parity_difference.relative"]
    for e in list(r["metrics"].values()) + list(r2["metrics"].values()):
        assert not any(isinstance(v, float) and math.isnan(v) for v in e.values())


def test_paired_difference_bad_input():
    y, p, c, s, _ = make_data(0, n=50)
    with pytest.raises(DataError, match="preds.parquet: inputs differ in length"):
        F.paired_difference(y, c, p, p[:-1], source="preds.parquet")
    with pytest.raises(DataError, match="preds.parquet: baseline: score must be finite"):
        F.paired_difference(y, c, p, p, np.where(np.arange(50) == 3, np.nan, s), s, source="preds.parquet")
    with pytest.raises(DataError, match="only group c=0"):
        F.paired_difference(y, np.zeros(50, int), p, p)
    with pytest.raises(DataError, match="n_boot must be 0"):
        F.paired_difference(y, c, p, p, n_boot=1)
    r = F.paired_difference(y, c, p, 1 - p, n_boot=0)
    assert all(e["lower"] is None and e["difference"] is not None for e in r["metrics"].values())

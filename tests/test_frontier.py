"""The oracle accuracy-fairness frontier (fairgen.eval.frontier): exactness against brute force, its
guarantees, and the redraw of the synthetic data's true outcome probabilities with its checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fairgen import cli
from fairgen.common import io
from fairgen.common.errors import DataError
from fairgen.data import procedural_celeba as S
from fairgen.eval import frontier as FR
from fairgen.stages import frontier as frontier_stage


def linear_program(p, c, bound):
    """The best expected accuracy over every randomized classifier (a selection probability per
    image) within the DP bound, by scipy's LP solver: an independent check of the exact solver."""
    from scipy.optimize import linprog

    n0, n1 = (c == 0).sum(), (c == 1).sum()
    rate_diff = np.where(c == 1, 1.0 / n1, -1.0 / n0)  # rate_1 - rate_0 as a linear function
    res = linprog(-(2 * p - 1), A_ub=np.vstack([rate_diff, -rate_diff]), b_ub=[bound, bound],
                  bounds=[(0, 1)] * len(p), method="highs")
    assert res.status == 0
    return (-res.fun + (1 - p).sum()) / len(p)


@pytest.mark.parametrize("seed", range(6))
def test_frontier_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 30))
    c = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(int)
    c[:2] = [0, 1]
    # group-dependent probabilities, as in biased data, with ties (few distinct values)
    p = np.clip(np.round(rng.beta(2, 2, n) * 8) / 8 + 0.25 * (c == 0) - 0.15, 0, 1)
    bounds = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, math.inf]
    for bound, pt in zip(bounds, FR.frontier(p, c, bounds)):
        assert pt["expected_accuracy"] == pytest.approx(linear_program(p, c, min(bound, 1.0)), abs=1e-9)
        assert pt["dp_difference"] <= bound + 1e-12
        assert pt["dp_difference"] == pytest.approx(abs(pt["selection_rate_c1"] - pt["selection_rate_c0"]))


def test_unconstrained_is_the_bayes_classifier_and_the_frontier_is_monotone():
    rng = np.random.default_rng(3)
    c = (rng.random(500) < 0.4).astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(0, 1.5, 500) + np.where(c == 1, -1.0, 0.8))))
    y = (rng.random(500) < p).astype(int)
    pts = FR.frontier(p, c, [0, 0.1, 0.2, 0.3, math.inf], y)
    bayes = pts[-1]
    assert bayes["bound"] is None
    assert bayes["expected_accuracy"] == pytest.approx(np.maximum(p, 1 - p).mean())
    assert bayes["accuracy"] == pytest.approx(((p > 0.5) == y).mean())
    assert bayes["dp_difference"] == pytest.approx(abs((p[c == 1] > 0.5).mean() - (p[c == 0] > 0.5).mean()))
    acc = [pt["expected_accuracy"] for pt in pts]
    assert acc == sorted(acc) and acc[0] < acc[-1]  # fairness costs accuracy on biased data
    # the thresholds are the lowest selected probability in each group
    for g in (0, 1):
        k = round(bayes[f"selection_rate_c{g}"] * (c == g).sum())
        assert bayes[f"threshold_c{g}"] == pytest.approx(np.sort(p[c == g])[::-1][k - 1])


def test_default_bounds_reach_the_unconstrained_dp():
    rng = np.random.default_rng(0)
    c = np.r_[np.zeros(50, int), np.ones(50, int)]
    p = np.r_[rng.uniform(0.4, 1, 50), rng.uniform(0, 0.6, 50)]
    bounds = FR.default_bounds(p, c, step=0.05)
    top = FR.frontier(p, c, [math.inf])[0]["dp_difference"]
    assert bounds[0] == 0 and bounds[-1] == math.inf
    assert bounds[-2] <= top < bounds[-2] + 0.05


@pytest.mark.parametrize("p, c, bound, match", [
    ([0.5, 0.2], [0, 0], 0.1, "group c=1 is empty"),
    ([0.5, float("nan")], [0, 1], 0.1, "NaN"),
    ([0.5, 1.2], [0, 1], 0.1, r"\[0, 1\]"),
    ([0.5, 0.2], [0, 2], 0.1, "0/1"),
    ([0.5, 0.2], [0, 1], -0.1, ">= 0"),
])
def test_bad_inputs_raise(p, c, bound, match):
    with pytest.raises(ValueError, match=match):
        FR.frontier(np.array(p), np.array(c), [bound])


# ---------------------------------------------------------------- the synthetic data's oracle


PARAMS = dict(n_images=600, seed=5, p_protected=0.42, p_outcome_given_protected_0=0.65,
              p_outcome_given_protected_1=0.25, feature_strength=2.0, split_fractions=(0.6, 0.2, 0.2),
              protected="Male", outcome="Attractive")


@pytest.fixture(scope="module")
def sample():
    return S.sample_dataset(**PARAMS)


def write_inputs(tmp_path, sample, mutate=None, source="synthetic", **param_changes):
    """A dataset manifest and a crops index (only the columns the oracle reads) for ``sample``."""
    params = {**S.synthetic_parameters(**PARAMS), **param_changes}
    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps({"source": source, "parameters": params}))
    df = sample.frame[["image_id", "split", "Male", "Attractive"]].copy()
    for col in ("Male", "Attractive"):
        df[col] = (df[col] > 0).astype(np.int8)
    if mutate:
        df = mutate(df)
    index = tmp_path / "index.parquet"
    io.write_parquet(df.reset_index(drop=True), index, "crops_index")
    return manifest, index


def test_oracle_split_redraws_the_true_probabilities(tmp_path, sample):
    manifest, index = write_inputs(tmp_path, sample)
    data = FR.oracle_split(manifest, index, "Male", "Attractive", "test")
    test = (sample.frame["split"] == "test").to_numpy()
    assert len(data) == test.sum()
    assert np.array_equal(data.p, sample.p_outcome[test])
    assert np.array_equal(data.y, (sample.frame["Attractive"].to_numpy()[test] > 0).astype(int))
    # the outcome was drawn from these probabilities; the group base rates are as configured
    p_all, c_all = sample.p_outcome, (sample.frame["Male"].to_numpy() > 0)
    assert p_all[~c_all].mean() == pytest.approx(0.65, abs=0.01)
    assert p_all[c_all].mean() == pytest.approx(0.25, abs=0.01)
    result = FR.compute(manifest, index, "Male", "Attractive", "test")
    assert result["n"] == len(data) and result["points"][-1]["bound"] is None
    assert result["bayes"]["expected_accuracy"] == pytest.approx(np.maximum(data.p, 1 - data.p).mean())


def test_oracle_split_works_on_a_subset_in_any_order(tmp_path, sample):
    """Crops may skip images (on_bad_image: skip): the oracle follows the index's rows."""
    manifest, index = write_inputs(tmp_path, sample, mutate=lambda df: df.iloc[::-2])
    data = FR.oracle_split(manifest, index, "Male", "Attractive", "valid")
    pos = {name: i for i, name in enumerate(sample.frame["image_id"])}
    assert np.array_equal(data.p, sample.p_outcome[[pos[i] for i in data.image_id]])


def flip_outcome_of_first_test_row(df):
    df = df.copy()
    row = int(np.flatnonzero(df["split"].to_numpy() == "test")[0])
    df.iloc[row, df.columns.get_loc("Attractive")] = 1 - df["Attractive"].iloc[row]
    return df


@pytest.mark.parametrize("case, match", [
    (dict(source="celeba_local"), "source 'celeba_local' has no ground-truth"),
    (dict(generator_version=99), "generator version 99"),
    (dict(outcome="Smiling"), "outcome 'Smiling' but the config has 'Attractive'"),
    (dict(mutate=flip_outcome_of_first_test_row), r"index.parquet, row \d+: image '\d+\.jpg' has Attractive="),
    (dict(mutate=lambda df: df.assign(image_id=df["image_id"].str.replace(".jpg", ".png"))),
     r"index.parquet, row \d+: image '\d+\.png' is not in the synthetic dataset"),
    (dict(mutate=lambda df: df[df["split"] != "test"]), "the 'test' split is empty"),
])
def test_oracle_split_errors_name_the_file_and_row(tmp_path, sample, case, match):
    manifest, index = write_inputs(tmp_path, sample, **case)
    with pytest.raises(DataError, match=match):
        FR.oracle_split(manifest, index, "Male", "Attractive", "test")


def test_cli_writes_the_frontier_and_the_asked_bounds(tmp_path, sample, capsys):
    manifest, index = write_inputs(tmp_path, sample)
    out = tmp_path / "frontier.json"
    rc = cli.main(["frontier", "--set", "protected=Male", "--set", "outcome=Attractive", "--dataset", str(manifest),
                   "--index", str(index), "--out-json", str(out), "--bound", "0.123", "--bound", "0.05"])
    assert rc == 0
    result = json.loads(out.read_text())
    bounds = [pt["bound"] for pt in result["points"]]
    assert 0.123 in bounds and 0.05 in bounds and bounds == sorted(bounds)
    printed = capsys.readouterr().out
    assert "DP difference <= 0.123: expected accuracy" in printed and "Bayes (unconstrained)" in printed
    rc = cli.main(["frontier", "--dataset", str(tmp_path / "nope.json"), "--index", str(index),
                   "--out-json", str(tmp_path / "x.json")])
    assert rc == 2 and not (tmp_path / "x.json").exists()


def test_randomized_threshold_by_hand():
    """Group 0 is surely positive, group 1 surely negative; DP difference <= 0.25. Selecting half
    of one group-0 image (rate 0.25) and no group-1 image is best: 4.5 of 6 expected correct,
    better than any deterministic choice (4 of 6)."""
    p, c, y = np.array([1.0, 1.0, 0, 0, 0, 0]), np.array([0, 0, 1, 1, 1, 1]), np.array([1, 1, 0, 0, 0, 0])
    pt = FR.frontier(p, c, [0.25], y)[0]
    assert pt["expected_accuracy"] == pytest.approx(0.75) and pt["accuracy"] == pytest.approx(0.75)
    assert pt["selection_rate_c0"] == pytest.approx(0.25) and pt["selection_rate_c1"] == 0
    assert pt["threshold_c0"] == 1.0 and pt["threshold_c1"] is None
    assert FR.frontier(p, c, [0.0], y)[0]["expected_accuracy"] == pytest.approx(4 / 6)


def test_load_reads_back_what_the_cli_writes(tmp_path, sample):
    """The frontier rule's JSON read back (what the audit draws): the curve of compute(), the
    unconstrained point last; a file of another pair, split, size or version fails naming it."""
    manifest, index = write_inputs(tmp_path, sample)
    out = tmp_path / "frontier.json"
    assert frontier_stage.run({"protected": "Male", "outcome": "Attractive"}, str(manifest), str(index), str(out)) == 0
    computed = FR.compute(manifest, index, "Male", "Attractive", "test")
    assert FR.load(out, "Male", "Attractive", computed["n"]) == computed
    good = json.loads(out.read_text())
    for key, value in (("protected", "Young"), ("split", "valid"), ("n", computed["n"] - 1), ("frontier_version", 0)):
        io.write_json({**good, key: value}, out)
        with pytest.raises(DataError, match=rf"frontier\.json: .*{value}"):
            FR.load(out, "Male", "Attractive", computed["n"])

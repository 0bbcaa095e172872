"""Every debiasing point against the two baselines, on one test split: the comparisons of
``fairgen tradeoff`` (:mod:`fairgen.stages.tradeoff`).

Inputs are test predictions (``predictions.parquet`` of ``fairgen train-classifier``) of the
``real`` classifier, of ``reweighing`` (the pre-processing baseline) and of any number of named
points (e.g. the counterfactual-pair sweeps, the synthetic-only runs), plus the post-processing
baseline's curve (``fairgen threshold-baseline``) and optionally the oracle frontier of the
embedded data (``fairgen frontier``). For every point it gives its accuracy and DP difference
with paired 95% intervals against ``real`` and against ``reweighing`` on the same test rows, and
checks the goal: a point **dominates both baselines** when

* its DP difference is no higher than reweighing's,
* it is more accurate than reweighing, the paired interval of the accuracy difference above 0,
* and it is more accurate than the threshold curve at its own DP difference (the best curve
  point whose test DP difference is no higher).

Writes ``tradeoff.json`` and ``tradeoff.png`` (accuracy against DP difference: the curves of each
point family in knob order, the threshold curve, the oracle frontier, real and reweighing).
"""

from __future__ import annotations

import re

import numpy as np

from fairgen.common import io
from fairgen.common.config import seed_for
from fairgen.common.errors import DataError

KEYS = ("accuracy", "demographic_parity_difference", "equal_opportunity_difference")


def _parse_point(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")  # names hold no '='; paths may
    if not sep or not name or not path:
        raise DataError(f"--point {text!r}: expected NAME=PREDICTIONS.parquet (NAME without '=')")
    return name, path


def family(name: str) -> tuple[str, float | None]:
    """A point's curve and position on it, from its name ``FAMILY@VALUE`` (e.g.
    ``real_clp@1`` -> ``('real_clp', 1.0)``); a name without ``@`` is a curve of its own."""
    m = re.fullmatch(r"(.+)@([-+0-9.e]+)", name)
    return (m.group(1), float(m.group(2))) if m else (name, None)


def compare_points(cfg: dict, real: str, reweighing: str, point: list[str], thresholds: str,
                   frontier: str | None = None) -> dict:
    """The numbers of ``fairgen tradeoff`` (module docstring), without writing anything."""
    from fairgen.eval import fairness
    from fairgen.eval.classifier import read_predictions
    from fairgen.eval.postprocess import accuracy_at

    cc = cfg["classifier"]
    _, privileged, base = read_predictions(real)
    _, _, rew = read_predictions(reweighing)
    curve = io.read_json(thresholds)
    if not isinstance(curve, dict) or not curve.get("points"):
        raise DataError(f"{thresholds}: not a threshold curve of 'fairgen threshold-baseline'")
    named = [("real", real), ("reweighing", reweighing), *map(_parse_point, point)]
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise DataError(f"point names must be unique: {sorted({n for n in names if names.count(n) > 1})}")

    def aligned(path, df):
        if not df.index.equals(base.index) and set(df.index) != set(base.index):
            raise DataError(f"{path}: not the test rows of {real}")
        df = df.loc[base.index]
        for col in ("y_true", "c"):
            if not np.array_equal(df[col].to_numpy(), base[col].to_numpy()):
                raise DataError(f"{path}: column {col} differs from {real}'s on the same image ids")
        return df

    rew = aligned(reweighing, rew)
    y, c = base["y_true"].to_numpy(), base["c"].to_numpy()

    def paired(a, b, stage):
        return fairness.paired_difference(y, c, a["y_pred"].to_numpy(), b["y_pred"].to_numpy(),
                                          a["score"].to_numpy(), b["score"].to_numpy(), privileged=privileged,
                                          n_boot=cc["bootstrap"], level=cc["ci_level"],
                                          seed=seed_for(cfg, stage))["metrics"]

    rew_dp = None
    points = []
    for name, path in named:
        df = base if name == "real" else aligned(path, read_predictions(path)[2])
        vs_real = paired(base, df, f"tradeoff/{name}")
        vs_rew = paired(rew, df, f"tradeoff/{name}/vs_reweighing")
        entry = {"name": name, "predictions": str(path), "family": family(name)[0], "knob": family(name)[1],
                 **{k: vs_real[k]["value"] for k in KEYS if k in vs_real},
                 "vs_real": {k: {f: vs_real[k][f] for f in ("difference", "lower", "upper", "relative")}
                             for k in KEYS if k in vs_real},
                 "vs_reweighing": {k: {f: vs_rew[k][f] for f in ("difference", "lower", "upper")}
                                   for k in KEYS if k in vs_rew}}
        if name == "reweighing":
            rew_dp = entry["demographic_parity_difference"]
        points.append(entry)
    for e in points:
        dp = e["demographic_parity_difference"]
        at = accuracy_at(curve["points"], dp)
        acc_ci = e["vs_reweighing"]["accuracy"]
        e["threshold_curve_accuracy_at_dp"] = at
        e["goal"] = {
            "dp_not_above_reweighing": bool(dp <= rew_dp + 1e-12),
            "more_accurate_than_reweighing": bool(acc_ci["lower"] is not None and acc_ci["lower"] > 0),
            "above_threshold_curve": bool(at is None or e["accuracy"] > at),
        }
        e["dominates_both_baselines"] = all(e["goal"].values()) and e["name"] not in ("real", "reweighing")
    result = {"real": str(real), "reweighing": str(reweighing), "thresholds": str(thresholds),
              "privileged": privileged, "n_test": len(base), "points": points,
              "threshold_curve": [{"dp": p["test_demographic_parity_difference"], "accuracy": p["test_accuracy"],
                                   "bound": p["bound"]} for p in curve["points"]],
              "dominating": [e["name"] for e in points if e["dominates_both_baselines"]],
              "bootstrap": {"n_boot": cc["bootstrap"], "level": cc["ci_level"], "paired": True}}
    if frontier:
        fr = io.read_json(frontier)
        result["frontier"] = [{"dp": p["dp_difference"], "accuracy": p["expected_accuracy"]} for p in fr["points"]]
    return result


def plot(result: dict) -> bytes:
    """Accuracy against DP difference for every point family and both baselines."""
    from fairgen.common import figures as plots

    return plots.tradeoff_curves(result)

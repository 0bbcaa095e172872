"""``fairgen threshold-baseline`` (rule ``threshold_baseline``): the post-processing baseline's
accuracy-vs-DP curve (group thresholds on the real classifier's scores, :mod:`fairgen.eval.postprocess`)."""

from __future__ import annotations

import logging
import os

import numpy as np

from fairgen.common import io
from fairgen.common.config import seed_for
from fairgen.common.errors import DataError
from fairgen.eval.postprocess import METHOD, apply, default_bounds, solve

log = logging.getLogger(__name__)


def threshold_curve(cfg: dict, array: str | os.PathLike, index: str | os.PathLike, model: str | os.PathLike,
                    out_json: str | os.PathLike, progress: bool = True) -> dict:
    """``fairgen threshold-baseline``: the group-threshold curve of the real classifier (module
    docstring), written to ``out_json``."""
    from fairgen.common.runtime import resolve_device
    from fairgen.eval import fairness
    from fairgen.eval.classifier import load_model, load_real, privileged_group
    from fairgen.eval.cnn import Runner

    cc = cfg["classifier"]
    net, saved = load_model(model)
    if saved.get("method") != "real":
        raise DataError(f"{model}: classifier of method '{saved.get('method')}', expected 'real'")
    real = load_real(cfg, array, index)
    privileged, _ = privileged_group(real["train"])
    runner = Runner(net, resolve_device(cfg["device"]), cfg["precision"], cc["batch_size"])
    valid, test = real["valid"], real["test"]
    s_valid = runner.predict(runner.tensor(valid.images), "score valid", progress)
    s_test = runner.predict(runner.tensor(test.images), "score test", progress)
    base_pred = (s_test >= cc["threshold"]).astype(np.int64)
    unconstrained = solve(s_valid, valid.y, valid.c, [1.0])[0]
    bounds = default_bounds(unconstrained["dp_difference"])
    points = []
    for p in solve(s_valid, valid.y, valid.c, bounds):
        pred = apply(s_test, test.c, p["t0"], p["t1"])
        res = fairness.paired_difference(test.y, test.c, base_pred, pred, privileged=privileged,
                                         n_boot=cc["bootstrap"], level=cc["ci_level"],
                                         seed=seed_for(cfg, f"compare/{METHOD}"), source=str(out_json))
        m = res["metrics"]
        points.append({
            "bound": p["bound"], "t0": p["t0"], "t1": p["t1"],
            "valid_accuracy": p["accuracy"], "valid_dp_difference": p["dp_difference"],
            **{f"test_{k}": m[k]["value"] for k in ("accuracy", "demographic_parity_difference",
                                                    "equal_opportunity_difference") if k in m},
            **{f"vs_real_{k}": [m[k]["difference"], m[k]["lower"], m[k]["upper"]]
               for k in ("accuracy", "demographic_parity_difference") if k in m},
        })
    result = {"method": METHOD, "classifier": str(model), "privileged": privileged,
              "selection": "accuracy on the real valid split under each DP bound (deterministic group thresholds)",
              "evaluated_on": f"real test split ({len(test)} images)", "points": points}
    io.write_json(result, out_json)
    log.info("group thresholds: %d points, test accuracy %.4f at DP %.3f ... %.4f at DP %.3f", len(points),
             points[0]["test_accuracy"], points[0]["test_demographic_parity_difference"],
             points[-1]["test_accuracy"], points[-1]["test_demographic_parity_difference"])
    return result

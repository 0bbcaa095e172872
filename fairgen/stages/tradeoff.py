"""``fairgen tradeoff`` (rule ``pairs_tradeoff``): debiasing points against both baselines (real and
reweighing) on the same test split, with paired intervals, the threshold curve and a figure."""

from __future__ import annotations

import logging

import numpy as np

from fairgen.common import io
from fairgen.eval.tradeoff import compare_points, plot

log = logging.getLogger(__name__)


def run(cfg: dict, real: str, reweighing: str, point: list[str], thresholds: str, out_json: str, out_png: str,
        frontier: str | None = None) -> dict:
    """CLI ``fairgen tradeoff``: write ``out_json`` and ``out_png`` (module docstring)."""
    result = compare_points(cfg, real, reweighing, point, thresholds, frontier)
    png = plot(result)
    with io.atomic_path(out_png) as tmp:
        tmp.write_bytes(png)
    io.write_json(result, out_json)
    for e in result["points"]:
        d = e["vs_real"]["accuracy"]
        log.info("%-40s accuracy %.4f (vs real %+.1f [%+.1f, %+.1f] pts) DP %.3f; threshold curve at its DP %s%s",
                 e["name"], e["accuracy"], 100 * d["difference"], 100 * (d["lower"] or np.nan),
                 100 * (d["upper"] or np.nan), e["demographic_parity_difference"],
                 "n/a" if e["threshold_curve_accuracy_at_dp"] is None else f"{e['threshold_curve_accuracy_at_dp']:.4f}",
                 "  DOMINATES" if e["dominates_both_baselines"] else "")
    return result

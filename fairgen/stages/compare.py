"""``fairgen compare`` (rule ``compare_classifiers``): every classifier beside the ``real`` baseline on the same test
images, with paired bootstrap intervals of the differences (Parquet and CSV)."""

from __future__ import annotations

import logging
import math

import numpy as np

from fairgen.common import io
from fairgen.common.config import seed_for
from fairgen.common.errors import DataError
from fairgen.eval.classifier import COMPARISON_COLUMNS, read_predictions

log = logging.getLogger(__name__)


def write_comparison(cfg: dict, predictions: list[str], out_parquet: str, out_csv: str,
                     baseline: str = "real"):
    """Compare each method's test predictions with the baseline's on the same images.

    Reads the predictions.parquet of every method (one of them ``baseline``), checks they cover
    the same test images with the same y_true and c, and writes one row per (method, metric) of
    :func:`fairgen.eval.fairness.paired_difference` (difference = method - baseline; relative =
    difference / |baseline|) to Parquet (kind ``comparison``) and CSV. The bootstrap uses
    ``classifier.bootstrap`` resamples at ``classifier.ci_level``, seeded per method.
    """
    import pandas as pd

    from fairgen.eval import fairness

    cc = cfg["classifier"]
    read = {}
    for path in predictions:
        method, privileged, df = read_predictions(path)
        if method in read:
            raise DataError(f"{path}: predictions of method '{method}' appear twice (also {read[method][0]})")
        read[method] = (path, privileged, df)
    if baseline not in read:
        raise DataError(f"no predictions of the baseline '{baseline}' among {', '.join(map(str, predictions))}")
    if len(read) < 2:
        raise DataError(f"{read[baseline][0]}: only the baseline's predictions; nothing to compare it with")
    base_path, privileged, base = read[baseline]
    rows, undefined = [], {}
    for method, (path, priv, df) in read.items():
        if method == baseline:
            continue
        if priv != privileged:
            raise DataError(f"{path}: privileged group c={priv}, but the baseline's ({base_path}) is c={privileged}")
        missing = base.index.difference(df.index)
        extra = df.index.difference(base.index)
        if len(missing) or len(extra):
            what = (f"lacks image_id {missing[0]!r} of the baseline ({base_path})" if len(missing)
                    else f"has image_id {extra[0]!r} that the baseline ({base_path}) lacks")
            raise DataError(f"{path}: not the baseline's test images: it {what} "
                            f"({len(missing)} missing, {len(extra)} extra)")
        df = df.loc[base.index]
        for col in ("y_true", "c"):
            bad = np.flatnonzero(df[col].to_numpy() != base[col].to_numpy())
            if len(bad):
                raise DataError(f"{path}: {col} of image_id {base.index[bad[0]]!r} is {df[col].iloc[bad[0]]!r}, "
                                f"the baseline's ({base_path}) is {base[col].iloc[bad[0]]!r}")
        result = fairness.paired_difference(
            base["y_true"].to_numpy(), base["c"].to_numpy(), base["y_pred"].to_numpy(), df["y_pred"].to_numpy(),
            base["score"].to_numpy(), df["score"].to_numpy(), privileged=privileged, n_boot=cc["bootstrap"],
            level=cc["ci_level"], seed=seed_for(cfg, f"compare/{method}"), source=str(path))
        for metric, e in result["metrics"].items():
            rows.append({"method": method, "metric": metric, "baseline": e["baseline"], "value": e["value"],
                         "difference": e["difference"], "difference_lo": e["lower"], "difference_hi": e["upper"],
                         "relative": e["relative"], "relative_lo": e["relative_lower"],
                         "relative_hi": e["relative_upper"], "n_valid": e["n_valid"]})
        undefined.update({f"{method}.{k}": v for k, v in result["undefined"].items()})
        for k, v in result["undefined"].items():
            log.warning("compare %s with %s: %s undefined (%s)", method, baseline, k, v)
    table = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    for col in COMPARISON_COLUMNS[2:-1]:
        table[col] = table[col].astype(np.float64)
    io.write_parquet(table, out_parquet, "comparison",
                     metadata={"baseline": baseline, "privileged": privileged,
                               "sources": [str(p) for p in predictions], "undefined": undefined,
                               "bootstrap": {"n_boot": cc["bootstrap"], "level": cc["ci_level"], "paired": True,
                                             "stratified_by": "c"}})
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    for method in table["method"].unique():
        r = table[table["method"] == method].set_index("metric")
        dp = r.loc["demographic_parity_difference"]
        rel = "relative change undefined" if math.isnan(dp["relative"]) else f"{100 * dp['relative']:+.0f}%"
        log.info("%s vs %s: DP difference %.3f -> %.3f (%s), accuracy %+.1f points", method, baseline,
                 dp["baseline"], dp["value"], rel, 100 * r.at["accuracy", "difference"])
    return table

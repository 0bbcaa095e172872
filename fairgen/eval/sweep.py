"""Sweeps over seeds, ``gan.lambda_fair`` values and (protected, outcome) pairs.

The workflow's ``sweep`` target (workflow/rules/sweep.smk) trains every classifier method once per
sweep point and writes its metrics to::

    results/sweep/PROTECTED-OUTCOME/sSEED/classifiers/METHOD/metrics.json          (lambda-free)
    results/sweep/PROTECTED-OUTCOME/sSEED/lLAMBDA/classifiers/METHOD/metrics.json  (lambda-dependent)

Methods whose training data does not depend on ``gan.lambda_fair`` (real, reweighing, acgan)
live under the first form and get an empty (NaN) ``lambda_fair``.

``fairgen sweep-aggregate`` (:mod:`fairgen.stages.sweep_aggregate`, through :func:`collect` and
:func:`summarize`) reads those files (the point comes from the path,
cross-checked against the file's own ``method``/``protected``/``outcome``) into one row per run
(``runs.parquet``) and summarises them across seeds per (protected, outcome, lambda_fair, method,
metric): number of seeds with a defined value, mean, sample standard deviation (ddof 1; NaN for
one seed), min and max (``summary.parquet`` + CSV). ``fairgen sweep-report`` (:mod:`fairgen.report.sweep`)
renders a self-contained HTML page (the audit report's stylesheet, figures as data URIs) with the
key metrics as mean +/- std per pair and each against ``lambda_fair`` with every seed as a dot.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from fairgen.common import io as fio
from fairgen.common.errors import DataError
from fairgen.common.sweep_points import POINT_GROUPS, point_values

KEYS = ("protected", "outcome", "lambda_fair", "method")
RUN_KEYS = KEYS + ("seed",)
STATS = ("n_seeds", "mean", "std", "min", "max")
BASELINE = "real"

# The layout of sweep.smk read back; the point (fairgen.common.sweep_points, the grammar sweep.smk also uses) is
# everything between the sweep folder and "classifiers".
METRICS_PATH = re.compile(rf"(?:^|/){POINT_GROUPS}/classifiers/(?P<method>[A-Za-z0-9_]+)/metrics\.json$")


def parse_metrics_path(path: str | os.PathLike) -> dict:
    """``.../Male-Attractive/s2/l0.5/classifiers/fgan_dp/metrics.json`` -> the point's keys.

    ``lambda_fair`` is None for the lambda-free form (no ``lLAMBDA`` folder).
    """
    text = Path(path).as_posix()
    m = METRICS_PATH.search(text)
    if m is None:
        raise DataError(f"{path}: not a sweep metrics path (expected .../PROTECTED-OUTCOME/sSEED[/lLAMBDA]/"
                        "classifiers/METHOD/metrics.json)")
    point = point_values(m, str(path))
    return {"protected": point["protected"], "outcome": point["outcome"], "lambda_fair": point["lambda_fair"],
            "method": m["method"], "seed": point["seed"]}


def _metric_value(v, path, key) -> float:
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DataError(f"{path}: metric '{key}' is not a number ({v!r})")
    return float(v)


def collect(paths: list[str | os.PathLike]):
    """One row per sweep run: the point (``RUN_KEYS``) and every flat metric of its metrics.json.

    Metrics a run lacks (undefined, or no scores) are NaN. Rows are sorted by point; metric
    columns keep the order of the first file that has them.
    """
    import pandas as pd

    from fairgen.eval.fairness import flatten

    if not paths:
        raise DataError("sweep-aggregate: no metrics files given")
    rows, metrics, seen = [], [], {}
    for path in paths:
        point = parse_metrics_path(path)
        result = fio.read_json(path)
        if not isinstance(result, dict):
            raise DataError(f"{path}: expected a JSON object (a classifier metrics.json)")
        for key in ("method", "protected", "outcome"):
            if key in result and result[key] != point[key]:
                raise DataError(f"{path}: the file has {key} '{result[key]}' but its path says '{point[key]}'")
        try:
            flat = flatten(result)
        except DataError as e:
            raise DataError(f"{path}: {e}") from None
        key = tuple(point[k] for k in RUN_KEYS)
        if key in seen:
            raise DataError(f"{path}: the same sweep run as {seen[key]} "
                            f"({', '.join(f'{k}={v}' for k, v in point.items())})")
        seen[key] = path
        metrics += [k for k in flat if k not in metrics]
        rows.append({**point, **{k: _metric_value(v, path, k) for k, v in flat.items()}})
    df = pd.DataFrame(rows, columns=[*RUN_KEYS, *metrics])
    df["lambda_fair"] = df["lambda_fair"].astype(np.float64)
    df[metrics] = df[metrics].astype(np.float64)
    return df.sort_values(list(RUN_KEYS), na_position="first", kind="stable").reset_index(drop=True)


def metric_columns(runs) -> list[str]:
    return [c for c in runs.columns if c not in RUN_KEYS]


def summarize(runs):
    """Mean and spread across seeds: one row per (protected, outcome, lambda_fair, method, metric).

    ``n_seeds`` counts the seeds where the metric is defined; ``std`` is the sample standard
    deviation (n - 1 in the denominator), NaN with fewer than two defined values, as are all
    statistics of a metric defined for no seed.
    """
    import pandas as pd

    metrics = metric_columns(runs)
    out = []
    for key, group in runs.groupby(list(KEYS), dropna=False, sort=True):
        for metric in metrics:
            v = group[metric].to_numpy(dtype=np.float64)
            v = v[np.isfinite(v)]
            n = len(v)
            out.append({**dict(zip(KEYS, key)), "metric": metric, "n_seeds": n,
                        "mean": float(v.mean()) if n else math.nan,
                        "std": float(v.std(ddof=1)) if n > 1 else math.nan,
                        "min": float(v.min()) if n else math.nan, "max": float(v.max()) if n else math.nan})
    df = pd.DataFrame(out, columns=[*KEYS, "metric", *STATS])
    df["lambda_fair"] = df["lambda_fair"].astype(np.float64)
    df["n_seeds"] = df["n_seeds"].astype(np.int64)
    return df


# ============================================================================ report

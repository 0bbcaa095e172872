"""Sweeps over seeds, ``gan.lambda_fair`` values and (protected, outcome) pairs.

The workflow's ``sweep`` target (workflow/rules/sweep.smk) trains every classifier method once per
sweep point and writes its metrics to::

    results/sweep/PROTECTED-OUTCOME/sSEED/classifiers/METHOD/metrics.json          (lambda-free)
    results/sweep/PROTECTED-OUTCOME/sSEED/lLAMBDA/classifiers/METHOD/metrics.json  (lambda-dependent)

Methods whose training data does not depend on ``gan.lambda_fair`` (real, reweighing, acgan)
live under the first form and get an empty (NaN) ``lambda_fair``.

``fairgen sweep-aggregate`` (:func:`aggregate`) reads those files (the point comes from the path,
cross-checked against the file's own ``method``/``protected``/``outcome``) into one row per run
(``runs.parquet``) and summarises them across seeds per (protected, outcome, lambda_fair, method,
metric): number of seeds with a defined value, mean, sample standard deviation (ddof 1; NaN for
one seed), min and max (``summary.parquet`` + CSV). ``fairgen sweep-report`` (:func:`report`)
renders a self-contained HTML page (the audit report's stylesheet, figures as data URIs) with the
key metrics as mean +/- std per pair and each against ``lambda_fair`` with every seed as a dot.
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

import numpy as np

from fairgen import __version__
from fairgen import io as fio
from fairgen.errors import DataError
from fairgen.sweep_points import POINT_GROUPS, point_values

log = logging.getLogger(__name__)

KEYS = ("protected", "outcome", "lambda_fair", "method")
RUN_KEYS = KEYS + ("seed",)
STATS = ("n_seeds", "mean", "std", "min", "max")
TEMPLATE = "sweep.html.j2"
BASELINE = "real"

# The layout of sweep.smk read back; the point (fairgen.sweep_points, the grammar sweep.smk also uses) is
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

    from fairgen.fairness import flatten

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


def aggregate(cfg: dict, metrics: list[str], out_runs: str, out_summary: str, out_csv: str):
    """CLI ``fairgen sweep-aggregate``: runs.parquet, summary.parquet and summary.csv."""
    runs = collect(metrics)
    summary = summarize(runs)
    meta = {"sources": [str(p) for p in metrics]}
    fio.write_parquet(runs, out_runs, "sweep_runs", metadata=meta)
    fio.write_parquet(summary, out_summary, "sweep_summary", metadata=meta)
    with fio.atomic_path(out_csv) as tmp:
        summary.to_csv(tmp, index=False)
    n_points = runs.groupby(list(KEYS), dropna=False).ngroups
    log.info("sweep: %d runs, %d (pair, lambda_fair, method) groups, %d metrics", len(runs), n_points,
             len(metric_columns(runs)))
    return 0


# ============================================================================ report


def _pm(mean: float, std: float, digits: int = 3) -> str:
    from fairgen.report import fmt

    if not math.isfinite(mean):
        return fmt(None)
    return f"{mean:.{digits}f} \u00b1 {std:.{digits}f}" if math.isfinite(std) else f"{mean:.{digits}f}"


def _lambda_text(lam: float) -> str:
    return "\u2014" if not math.isfinite(lam) else format(lam, "g")


def _pair_table(summary, key_metrics) -> dict:
    """Rows (method, lambda_fair), columns the key metrics as mean +/- std with n and [min, max]."""
    from fairgen.report import _cell, fmt

    columns = [{"label": "Method", "title": "training data of the classifier"},
               {"label": "\u03bb fair", "title": "gan.lambda_fair (\u2014: the method does not depend on it)",
                "num": True},
               {"label": "Seeds", "title": "seeds with a result", "num": True}]
    for key, label, tip, better in key_metrics:
        arrow = "\u2191" if better == "higher" else "\u2193"
        columns.append({"label": f"{label} {arrow}", "title": f"{tip}: mean \u00b1 sample std across seeds; "
                        f"[min, max] below ({better} is better)", "num": True})
    rows = []
    groups = dict(list(summary.groupby(["method", "lambda_fair"], dropna=False, sort=False)))
    # methods lambda_fair does not affect first (the baseline 'real' leading), then by method and lambda
    order = sorted(groups, key=lambda k: (math.isfinite(k[1]), k[0] != BASELINE, k[0], k[1]))
    for method, lam in order:
        stats = groups[(method, lam)].set_index("metric")
        n = int(stats["n_seeds"].max())
        row = [_cell(method, "", "method"), _cell(_lambda_text(lam), "", "num"), _cell(fmt(n), "", "num")]
        for key, *_ in key_metrics:
            if key not in stats.index:
                row.append(_cell(fmt(None), "", "num"))
                continue
            s = stats.loc[key]
            sub = f"[{s['min']:.3f}, {s['max']:.3f}]" if s["n_seeds"] > 1 else ""
            row.append(_cell(_pm(s["mean"], s["std"]), sub, "num",
                             title=f"{int(s['n_seeds'])} seed(s) with a defined value"))
        rows.append(row)
    return {"columns": columns, "rows": rows}


def _pair_figure(runs, summary, key_metrics) -> bytes:
    """One panel per key metric against lambda_fair: lambda-dependent methods as mean +/- std lines
    over the swept values with each seed as a dot; lambda-free methods as a band (mean +/- std)."""
    from fairgen import report_plots as plots

    @plots._styled
    def draw() -> bytes:
        lams = sorted(x for x in runs["lambda_fair"].unique() if math.isfinite(x))
        pos = {lam: i for i, lam in enumerate(lams)}
        methods = list(dict.fromkeys(runs["method"]))
        colors = dict(zip(methods, plots._line_colors(len(methods))))
        ncols = len(key_metrics)
        fig, axes = plots._figure(1, ncols, 3.6 * ncols, 3.3)
        handles = {}
        width = max(len(lams) - 1, 1)
        for ax, (key, label, _, better) in zip(axes.flat, key_metrics):
            for method in methods:
                mine = summary[(summary["method"] == method) & (summary["metric"] == key)]
                seeds = runs[runs["method"] == method]
                color = colors[method]
                free = mine[mine["lambda_fair"].isna()]
                if len(free) and math.isfinite(free["mean"].iloc[0]):
                    m, s = free["mean"].iloc[0], free["std"].iloc[0]
                    handles[method] = ax.axhline(m, color=color, lw=1.4, ls="--", label=method)
                    if math.isfinite(s):
                        ax.axhspan(m - s, m + s, color=color, alpha=0.12, lw=0)
                dep = mine[mine["lambda_fair"].notna()].sort_values("lambda_fair")
                if len(dep):
                    x = np.array([pos[v] for v in dep["lambda_fair"]], dtype=float)
                    handles[method] = ax.errorbar(x, dep["mean"], yerr=np.nan_to_num(dep["std"].to_numpy()),
                                                  color=color, marker="o", ms=5, lw=1.4, capsize=3, label=method)
                    pts = seeds[seeds["lambda_fair"].notna()]
                    jitter = (np.arange(len(pts)) % 5 - 2) * 0.02 * width
                    ax.plot(np.array([pos[v] for v in pts["lambda_fair"]]) + jitter, pts[key], ".", color=color,
                            alpha=0.5, ms=4)
            ax.set_xticks(range(len(lams)), [format(v, "g") for v in lams])
            ax.set_xlim(-0.4, len(lams) - 0.6)
            ax.set_xlabel("gan.lambda_fair")
            ax.set_title(f"{label} ({better} is better)")
        if handles:
            fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(len(handles), 6))
        return plots._render(fig)

    return draw()


def report(cfg: dict, runs: str, out_html: str):
    """CLI ``fairgen sweep-report``: one self-contained HTML page from runs.parquet."""
    from fairgen.report import COMPARISON, Figure, _render_html

    df, meta = fio.read_parquet(runs, "sweep_runs", columns=list(RUN_KEYS))
    if df.empty:
        raise DataError(f"{runs}: no sweep runs")
    summary = summarize(df)
    key_metrics = [c for c in COMPARISON if c[0] in ("accuracy", "demographic_parity_difference",
                                                      "equal_opportunity_difference", "error_rate_gap")]
    sections = []
    for (protected, outcome), pair_runs in df.groupby(["protected", "outcome"], sort=True):
        pair_summary = summary[(summary["protected"] == protected) & (summary["outcome"] == outcome)]
        name = f"{protected}-{outcome}"
        fig = Figure(f"sweep_{name}", f"Metrics against lambda_fair: {outcome} by {protected}",
                     "Lines: mean \u00b1 sample standard deviation across seeds of the methods trained on "
                     "Fairness GAN data with the fairness weight gan.lambda_fair; dots: single seeds. Dashed "
                     "lines and bands: methods lambda_fair does not affect (mean \u00b1 std). Every "
                     "classifier is evaluated on the real test split of its pair.",
                     _pair_figure(pair_runs, pair_summary, key_metrics))
        sections.append({"id": f"pair-{name}", "protected": protected, "outcome": outcome,
                         "seeds": sorted(int(s) for s in pair_runs["seed"].unique()),
                         "lambdas": [format(v, "g") for v in sorted(pair_runs["lambda_fair"].dropna().unique())],
                         "table": _pair_table(pair_summary, key_metrics), "figure": fig})
    context = {
        "title": "fairgen sweep: mean and spread across seeds",
        "version": __version__, "sections": sections, "n_runs": len(df),
        "sources": meta.get("sources", []), "runs_path": str(runs),
    }
    html = _render_html(context, TEMPLATE)
    with fio.atomic_path(out_html) as tmp:
        tmp.write_text(html, encoding="utf-8")
    log.info("sweep report: %d pair(s), %d runs -> %s", len(sections), len(df), out_html)
    return 0

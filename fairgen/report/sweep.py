"""``fairgen sweep-report`` (rule ``sweep_report``): the sweep report, one self-contained HTML page
with the key metrics across seeds per (pair, lambda_fair, method)."""

from __future__ import annotations

import logging
import math

from fairgen import __version__
from fairgen.common import figures as plots
from fairgen.common import io as fio
from fairgen.common.errors import DataError
from fairgen.eval.sweep import BASELINE, RUN_KEYS, summarize
from fairgen.report.render import Figure, cell, fmt, render_html
from fairgen.report.tables import COMPARISON

log = logging.getLogger(__name__)


TEMPLATE = "sweep.html.j2"


def _pm(mean: float, std: float, digits: int = 3) -> str:
    if not math.isfinite(mean):
        return fmt(None)
    return f"{mean:.{digits}f} \u00b1 {std:.{digits}f}" if math.isfinite(std) else f"{mean:.{digits}f}"


def _lambda_text(lam: float) -> str:
    return "\u2014" if not math.isfinite(lam) else format(lam, "g")


def _pair_table(summary, key_metrics) -> dict:
    """Rows (method, lambda_fair), columns the key metrics as mean +/- std with n and [min, max]."""
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
        row = [cell(method, "", "method"), cell(_lambda_text(lam), "", "num"), cell(fmt(n), "", "num")]
        for key, *_ in key_metrics:
            if key not in stats.index:
                row.append(cell(fmt(None), "", "num"))
                continue
            s = stats.loc[key]
            sub = f"[{s['min']:.3f}, {s['max']:.3f}]" if s["n_seeds"] > 1 else ""
            row.append(cell(_pm(s["mean"], s["std"]), sub, "num",
                            title=f"{int(s['n_seeds'])} seed(s) with a defined value"))
        rows.append(row)
    return {"columns": columns, "rows": rows}


def report(cfg: dict, runs: str, out_html: str):
    """CLI ``fairgen sweep-report``: one self-contained HTML page from runs.parquet."""
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
                     plots.lambda_sweep(pair_runs, pair_summary, key_metrics))
        sections.append({"id": f"pair-{name}", "protected": protected, "outcome": outcome,
                         "seeds": sorted(int(s) for s in pair_runs["seed"].unique()),
                         "lambdas": [format(v, "g") for v in sorted(pair_runs["lambda_fair"].dropna().unique())],
                         "table": _pair_table(pair_summary, key_metrics), "figure": fig})
    context = {
        "title": "fairgen sweep: mean and spread across seeds",
        "version": __version__, "sections": sections, "n_runs": len(df),
        "sources": meta.get("sources", []), "runs_path": str(runs),
    }
    html = render_html(context, TEMPLATE)
    with fio.atomic_path(out_html) as tmp:
        tmp.write_text(html, encoding="utf-8")
    log.info("sweep report: %d pair(s), %d runs -> %s", len(sections), len(df), out_html)
    return 0

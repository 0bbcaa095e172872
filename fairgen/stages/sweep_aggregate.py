"""``fairgen sweep-aggregate`` (rule ``sweep_aggregate``): the classifier metrics of a sweep, one row
per run and statistics across seeds (:mod:`fairgen.eval.sweep`)."""

from __future__ import annotations

import logging

from fairgen.common import io as fio
from fairgen.eval.sweep import KEYS, collect, metric_columns, summarize

log = logging.getLogger(__name__)


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

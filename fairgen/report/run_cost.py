"""What a workflow run cost: wall time, CPU time and peak memory per job.

Snakemake's ``benchmark:`` directive (on every rule of this workflow) writes one TSV per job,
``results/benchmarks/RULE[/WILDCARDS].tsv``, with the columns ``s`` (wall seconds), ``max_rss``
(peak resident memory, MB) and ``cpu_time`` (user + system seconds), among others. The audit's
"Run cost" table and ``benchmarks/pipeline_cost.py`` read them through :func:`run_cost`.
"""

from __future__ import annotations

import os
from pathlib import Path

from fairgen.common.errors import DataError

#: The benchmark columns read here (Snakemake's names) and what they are.
COLUMNS = {"s": "wall seconds", "max_rss": "peak RSS (MB)", "cpu_time": "CPU seconds (user + system)"}


def read_benchmark(path: str | os.PathLike) -> dict:
    """``{'wall_s', 'cpu_s', 'max_rss_mb'}`` of one benchmark TSV (the last row when Snakemake
    repeated the job). Values Snakemake could not measure (``-`` or NA) are None."""
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
    except FileNotFoundError:
        raise DataError(f"{path}: benchmark file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a Snakemake benchmark TSV ({e})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: benchmark file lacks column(s) {', '.join(missing)} "
                        f"(expected Snakemake's: {', '.join(COLUMNS)})")
    if df.empty:
        raise DataError(f"{path}: benchmark file has no rows")
    row = df.iloc[-1]

    def value(col):
        v = pd.to_numeric(row[col], errors="coerce")
        return None if pd.isna(v) else float(v)

    return {"wall_s": value("s"), "cpu_s": value("cpu_time"), "max_rss_mb": value("max_rss")}


def run_cost(files: list[str | os.PathLike]) -> dict:
    """The rows (job name = path under the files' common folder, without ``.tsv``) and totals of
    the benchmark files: total wall and CPU seconds summed over jobs, peak RSS over jobs."""
    files = [Path(f) for f in files]
    if not files:
        return {"rows": [], "total_wall_s": 0.0, "total_cpu_s": 0.0, "peak_rss_mb": None}
    root = Path(os.path.commonpath([f.parent for f in files]))
    rows = [{"job": f.relative_to(root).with_suffix("").as_posix(), **read_benchmark(f)} for f in files]
    rows.sort(key=lambda r: -(r["wall_s"] or 0.0))
    rss = [r["max_rss_mb"] for r in rows if r["max_rss_mb"] is not None]
    return {"rows": rows,
            "total_wall_s": sum(r["wall_s"] or 0.0 for r in rows),
            "total_cpu_s": sum(r["cpu_s"] or 0.0 for r in rows),
            "peak_rss_mb": max(rss) if rss else None}

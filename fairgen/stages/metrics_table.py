"""``fairgen metrics-table`` (rule ``metrics_table``): the metrics.json of several classifiers as one
table (Parquet and CSV)."""

from __future__ import annotations

from fairgen.common import io
from fairgen.common.errors import DataError


def write_metrics_table(cfg: dict, metrics: list[str], out_parquet: str, out_csv: str):
    """Combine several metrics.json files (one per method) into one Parquet + CSV table."""
    from fairgen.eval import fairness

    results = {}
    for path in metrics:
        result = io.read_json(path)
        method = result.get("method") if isinstance(result, dict) else None
        if not isinstance(method, str):
            raise DataError(f"{path}: not a classifier metrics.json (no 'method')")
        if method in results:
            raise DataError(f"{path}: method '{method}' appears twice")
        results[method] = result
    try:
        table = fairness.metrics_table(results)
    except DataError as e:
        raise DataError(f"{', '.join(map(str, metrics))}: {e}") from None
    io.write_parquet(table, out_parquet, "metrics_table",
                     metadata={"sources": [str(p) for p in metrics],
                               "privileged": {m: r.get("privileged") for m, r in results.items()}})
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table

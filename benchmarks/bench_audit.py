"""Speed of ``fairgen audit-predictions`` against fairlearn ``MetricFrame`` with bootstrap.

    python benchmarks/bench_audit.py --rows 1000000 --groups 8 --n-boot 1000 --fairlearn-boot 1000

Makes a seeded synthetic predictions file (Parquet, columns score / label_value / group; scores
with 4 decimals, so about 10,000 distinct values), then times

1. the whole command ``fairgen audit-predictions`` as a subprocess (start-up, reading, checks,
   point estimates, ``--n-boot`` resamples, the HTML report and every output file), and
2. fairlearn ``MetricFrame(..., n_boot=--fairlearn-boot)`` on the same file with the same
   per-group metrics (selection rate, TPR, FPR, FNR, TNR, precision, error rate, accuracy,
   balanced accuracy on the thresholded score; ROC AUC and average precision on the score) --
   no report, no files.

Prints wall-clock and CPU seconds (user + system, children included) of both and their ratio.
With ``--fairlearn-boot`` below ``--n-boot`` fairlearn's time is measured at that many resamples
and its cost at ``--n-boot`` extrapolated linearly from the time without and with the resamples
(printed as such). The machine's load average is printed too: on a shared machine wall time
grows with the load, CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def make_file(path: Path, rows: int, groups: int, seed: int) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    share = rng.dirichlet(np.full(groups, 4.0))
    g = rng.choice(groups, size=rows, p=share)
    y = (rng.random(rows) < 0.25 + 0.3 * g / groups).astype(np.int64)
    logit = 1.5 * (2 * y - 1) + (1.0 + 0.1 * g) * rng.standard_normal(rows)
    score = np.round(1 / (1 + np.exp(-logit)), 4)
    names = np.array([f"g{i}" for i in range(groups)], dtype=object)
    pd.DataFrame({"score": score, "label_value": y, "group": names[g]}).to_parquet(path, index=False)


def time_fairgen(path: Path, out: Path, n_boot: int) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "fairgen", "audit-predictions", "--predictions", str(path), "--group", "group",
           "--n-boot", str(n_boot), "--out-dir", str(out)]
    w0, c0 = time.perf_counter(), _cpu()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - w0, _cpu() - c0


def time_fairlearn(path: Path, n_boot: int) -> tuple[float, float]:
    import pandas as pd
    import sklearn.metrics as skm
    from fairlearn import metrics as flm

    w0, c0 = time.perf_counter(), _cpu()
    df = pd.read_parquet(path)
    y, s, g = df["label_value"].to_numpy(), df["score"].to_numpy(), df["group"]
    p = (s >= 0.5).astype(int)
    boot = {} if n_boot == 0 else {"n_boot": n_boot, "ci_quantiles": [0.025, 0.975], "random_state": 0}
    counts = {"selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate,
              "fnr": flm.false_negative_rate, "tnr": flm.true_negative_rate, "error_rate": skm.zero_one_loss,
              "accuracy": skm.accuracy_score, "balanced_accuracy": skm.balanced_accuracy_score,
              "precision": lambda a, b: skm.precision_score(a, b, zero_division=0)}
    mf = flm.MetricFrame(metrics=counts, y_true=y, y_pred=p, sensitive_features=g, **boot)
    ms = flm.MetricFrame(metrics={"auc": skm.roc_auc_score, "average_precision": skm.average_precision_score},
                         y_true=y, y_pred=s, sensitive_features=g, **boot)
    for frame in (mf, ms):
        frame.difference(), frame.ratio()
    return time.perf_counter() - w0, _cpu() - c0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--groups", type=int, default=8)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--fairlearn-boot", type=int, default=1000,
                   help="fairlearn resamples actually run (fewer: extrapolated linearly to --n-boot)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-fairgen", action="store_true", help="time fairlearn only")
    args = p.parse_args(argv)
    print(f"$ python {' '.join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])}")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.parquet"
        make_file(path, args.rows, args.groups, args.seed)
        print(f"file: {args.rows:,} rows, {args.groups} groups, {path.stat().st_size / 1e6:.1f} MB Parquet")
        fw, fc = (np.nan, np.nan) if args.skip_fairgen else time_fairgen(path, Path(tmp) / "out", args.n_boot)
        print(f"fairgen audit-predictions, n_boot={args.n_boot}, whole command incl. report: "
              f"wall {fw:.1f} s, CPU {fc:.1f} s", flush=True)
        if args.fairlearn_boot < args.n_boot:
            zw, zc = time_fairlearn(path, 0)
            print(f"fairlearn MetricFrame, no bootstrap: wall {zw:.1f} s, CPU {zc:.1f} s", flush=True)
        lw, lc = time_fairlearn(path, args.fairlearn_boot)
        what = f"n_boot={args.fairlearn_boot}"
        if args.fairlearn_boot < args.n_boot:
            scale = args.n_boot / max(args.fairlearn_boot, 1)
            print(f"fairlearn MetricFrame, {what}: wall {lw:.1f} s, CPU {lc:.1f} s", flush=True)
            lw, lc = zw + (lw - zw) * scale, zc + (lc - zc) * scale
            what = f"n_boot={args.n_boot} EXTRAPOLATED linearly from {args.fairlearn_boot} resamples"
        print(f"fairlearn MetricFrame, {what}: wall {lw:.1f} s, CPU {lc:.1f} s")
        print(f"ratio fairlearn / fairgen: wall {lw / fw:.1f}x, CPU {lc / fc:.1f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

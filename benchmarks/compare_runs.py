"""Whether two runs of the pipeline give the same classifiers: paired intervals, method by method.

    python benchmarks/compare_runs.py BASE_RESULTS OTHER_RESULTS [--methods fgan_dp fgan_eqopp acgan]

For each method, reads ``RESULTS/classifiers/METHOD/predictions.parquet`` of both runs (the same
real test images), and sets the other run's classifier beside the base run's with
:func:`fairgen.eval.fairness.paired_difference` (one bootstrap draw of test rows evaluates both; 2,000
resamples, 95%). A method "holds" when 0 lies in the interval of the difference for accuracy and
for the demographic-parity difference. Used to decide whether bf16 keeps the results of fp32
(issue 31; docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

METRICS = ("accuracy", "demographic_parity_difference", "equal_opportunity_difference")


def compare(base: Path, other: Path, method: str, n_boot: int) -> dict:
    from fairgen.eval import fairness
    from fairgen.eval.classifier import read_predictions

    rows = {}
    for name, root in (("base", base), ("other", other)):
        rows[name] = read_predictions(str(root / "classifiers" / method / "predictions.parquet"))
    (_, priv, a), (_, priv_b, b) = rows["base"], rows["other"]
    if priv != priv_b or not a.index.equals(b.index) or not (a["y_true"] == b["y_true"]).all():
        raise SystemExit(f"{method}: the two runs were not evaluated on the same test images")
    r = fairness.paired_difference(a["y_true"].to_numpy(), a["c"].to_numpy(), a["y_pred"].to_numpy(),
                                   b["y_pred"].to_numpy(), a["score"].to_numpy(), b["score"].to_numpy(),
                                   privileged=priv, n_boot=n_boot, level=0.95, seed=0)
    out = {}
    for m in METRICS:
        e = r["metrics"][m]
        out[m] = {k: e[k] for k in ("baseline", "value", "difference", "lower", "upper")}
        out[m]["holds"] = e["lower"] is not None and e["lower"] <= 0 <= e["upper"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path, help="results/ folder of the base run (e.g. fp32)")
    ap.add_argument("other", type=Path, help="results/ folder of the other run (e.g. bf16)")
    ap.add_argument("--methods", nargs="+", default=["fgan_dp", "fgan_eqopp", "acgan"])
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--out", default=None, help="also write the results as JSON")
    args = ap.parse_args(argv)
    results = {m: compare(args.base, args.other, m, args.n_boot) for m in args.methods}
    print(f"{'method':12s} {'metric':32s} {'base':>7s} {'other':>7s} {'diff':>7s}  95% interval       holds")
    for method, res in results.items():
        for metric, e in res.items():
            print(f"{method:12s} {metric:32s} {e['baseline']:7.4f} {e['value']:7.4f} {e['difference']:+7.4f}  "
                  f"[{e['lower']:+.4f}, {e['upper']:+.4f}]  {'yes' if e['holds'] else 'NO'}")
    held = all(e["holds"] for res in results.values() for m, e in res.items() if m != "equal_opportunity_difference")
    print(f"\naccuracy and DP difference held for every method: {'yes' if held else 'no'}")
    if args.out:
        Path(args.out).write_text(json.dumps({"base": str(args.base), "other": str(args.other), "results": results,
                                              "held": held}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

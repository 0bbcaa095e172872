"""The audit's tables as cells for the ``table`` macro (``macros.html.j2``): the classifier comparison
with bootstrap intervals, the per-group rates, the paired comparison with the baseline, the paper
reference beside our numbers, each classifier's pass/fail disparities (the same audit as ``fairgen
audit-predictions``) and the counterfactual-pair diagnostics; plus the metric columns they show."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fairgen.common import io as fio
from fairgen.eval import fairness as F
from fairgen.report.loaders import Inputs, MethodResult, Missing
from fairgen.report.predictions_html import passfail_table
from fairgen.report.reference import PAPER, PAPER_COLUMNS
from fairgen.report.render import cell, finite, fmt, fmt_ci

# (key in fairness.evaluate's "overall"/"fairness", column label, tooltip, better direction)
COMPARISON = (
    ("accuracy", "Accuracy", "fraction of correct predictions on the real test split", "higher"),
    ("balanced_accuracy", "Balanced acc.", "(TPR + TNR) / 2", "higher"),
    ("demographic_parity_difference", "DP diff.", "demographic parity difference |SR(0) - SR(1)|, "
     "SR = selection rate P(y_pred = 1)", "lower"),
    ("demographic_parity_ratio", "DP ratio", "demographic parity ratio min(SR) / max(SR)", "higher"),
    ("equal_opportunity_difference", "EO diff.", "equal opportunity difference |TPR(0) - TPR(1)|",
     "lower"),
    ("equalized_odds_difference", "Eq. odds diff.", "equalized odds difference max(|TPR gap|, |FPR gap|)",
     "lower"),
    ("error_rate_gap", "Error-rate gap", "|err(0) - err(1)|: the column Sattigeri et al. (2019) label "
     "'Demographic Parity'", "lower"),
)
GROUP_RATES = (
    ("selection_rate", "Selection rate", "P(y_pred = 1)"),
    ("tpr", "TPR", "true positive rate"),
    ("fpr", "FPR", "false positive rate"),
    ("fnr", "FNR", "false negative rate"),
    ("error_rate", "Error rate", "fraction misclassified"),
)
# Columns of the paired comparison with the baseline: (metric, label, tip, how the change is shown).
PAIRED = (
    ("accuracy", "\u0394 accuracy", "accuracy change against the baseline, percentage points", "points"),
    ("balanced_accuracy", "\u0394 balanced acc.", "balanced-accuracy change, percentage points", "points"),
    ("demographic_parity_difference", "DP diff.", "demographic parity difference, baseline \u2192 method", "pair"),
    ("demographic_parity_difference", "DP change", "relative change of the DP difference, "
     "(method - baseline) / baseline", "relative"),
    ("equal_opportunity_difference", "\u0394 EO diff.", "change of the equal opportunity difference", "difference"),
    ("equalized_odds_difference", "\u0394 eq. odds diff.", "change of the equalized odds difference", "difference"),
)

TRADEOFF = (
    ("demographic_parity_difference", "DP difference"),
    ("equalized_odds_difference", "equalized-odds difference"),
    ("error_rate_gap", "error-rate gap"),
)


def classifier_disparities(cfg: dict, methods: list[str], classifiers_dir: Path, inputs: Inputs,
                           labels: tuple[str, str]) -> tuple[list[dict], list[Missing]]:
    """Each classifier's test predictions through the same audit as ``fairgen audit-predictions``
    (:func:`fairgen.eval.fairness.group_audit`, groups = the protected attribute): the pass/fail table
    of disparities against the reference group at ``audit_predictions.tolerance``."""
    section, cc = cfg.get("audit_predictions") or {}, cfg["classifier"]
    out, missing = [], []
    for k, method in enumerate(methods):
        path = classifiers_dir / method / "predictions.parquet"
        if not path.is_file():
            missing.append(Missing(f"test predictions of '{method}'", str(path)))
            continue
        df, _ = fio.read_parquet(path, "predictions", columns=["c", "y_true", "y_pred", "score"])
        inputs.add(f"predictions {method}", path)
        group = np.where(df["c"].to_numpy() == 1, labels[1], labels[0])
        data = F.group_data(df["y_true"].to_numpy(), df["y_pred"].to_numpy(), group, df["score"].to_numpy(),
                            score_bins=section.get("score_bins", F.SCORE_BINS), source=str(path))
        n_boot = cc["bootstrap"] if cc["bootstrap"] != 1 else 0
        res = F.group_audit(data, n_boot=n_boot, level=cc["ci_level"], seed=cfg["seed"],
                            tolerance=section.get("tolerance", 0.8), min_group_size=section.get("min_group_size", 30))
        res["disparity_metrics"] = list(section.get("disparity_metrics", F.DISPARITY_METRICS))
        out.append({"method": method, "id": f"passfail-classifier-{k}", "table": passfail_table(res),
                    "reference": res["reference"], "tolerance": res["tolerance"]})
    return out, missing


def _paired_cell(row: dict | None, how: str) -> dict:
    if row is None:
        return cell("\u2014", "", "num")
    lo, hi = finite(row["difference_lo"]), finite(row["difference_hi"])
    if how == "pair":
        return cell(f"{fmt(finite(row['baseline']))} \u2192 {fmt(finite(row['value']))}", "", "num")
    if how == "relative":
        rel, rlo, rhi = (finite(row[k]) for k in ("relative", "relative_lo", "relative_hi"))
        sub = f"[{rlo * 100:+.0f}%, {rhi * 100:+.0f}%]" if rlo is not None and rhi is not None else ""
        return cell("\u2014" if rel is None else f"{rel * 100:+.0f}%", sub, "num")
    d = finite(row["difference"])
    if how == "points":
        sub = f"[{lo * 100:+.1f}, {hi * 100:+.1f}]" if lo is not None and hi is not None else ""
        return cell("\u2014" if d is None else f"{d * 100:+.1f}", sub, "num")
    sub = f"[{lo:+.3f}, {hi:+.3f}]" if lo is not None and hi is not None else ""
    return cell("\u2014" if d is None else f"{d:+.3f}", sub, "num")


def paired_table(paired: dict, methods: list[str]) -> dict:
    """Each method against the baseline on the same test images (paired bootstrap intervals)."""
    columns = [{"label": "Method", "title": "training data of the classifier"}]
    columns += [{"label": label, "title": tip, "num": True} for _, label, tip, _ in PAIRED]
    rows = [[cell(m, "", "method")] + [_paired_cell(paired[m].get(key), how) for key, _, _, how in PAIRED]
            for m in methods if m in paired]
    return {"columns": columns, "rows": rows}


def comparison_table(results: list[MethodResult], baseline: str) -> dict:
    columns = [{"label": "Method", "title": "training data of the classifier"},
               {"label": "n test", "title": "rows of the real test split", "num": True}]
    best = {}
    for key, label, tip, better in COMPARISON:
        arrow = "\u2191" if better == "higher" else "\u2193"
        columns.append({"label": f"{label} {arrow}", "title": f"{tip} ({better} is better)", "num": True})
        vals = [m.value(key) for m in results if m.value(key) is not None]
        if vals and len(results) > 1:
            best[key] = max(vals) if better == "higher" else min(vals)
    rows = []
    for m in results:
        row = [cell(m.method, "baseline" if m.method == baseline else "", "method"),
               cell(fmt(m.result.get("n")), "", "num")]
        for key, *_ in COMPARISON:
            v, lo, hi = m.triple(key)
            cls = "num best" if key in best and v is not None and v == best[key] else "num"
            row.append(cell(fmt(v), fmt_ci(lo, hi), cls))
        rows.append(row)
    return {"columns": columns, "rows": rows}


def group_table(results: list[MethodResult], labels) -> dict:
    columns = [{"label": "Method", "title": ""}, {"label": "Group", "title": "protected attribute value"},
               {"label": "n", "title": "test rows in the group", "num": True},
               {"label": "Base rate", "title": "P(y = 1) in the group", "num": True}]
    columns += [{"label": label, "title": tip, "num": True} for _, label, tip in GROUP_RATES]
    rows = []
    for m in results:
        for g in (0, 1):
            row = [cell(m.method if g == 0 else "", "", "method"), cell(labels[g]),
                   cell(fmt(m.result["groups"][str(g)].get("n")), "", "num"),
                   cell(fmt(m.value(f"base_rate_c{g}")), "", "num")]
            for key, *_ in GROUP_RATES:
                v, lo, hi = m.triple(f"{key}_c{g}")
                row.append(cell(fmt(v), fmt_ci(lo, hi), "num"))
            rows.append({"cells": row, "cls": "group-start" if g == 0 else ""})
    return {"columns": columns, "rows": [r["cells"] for r in rows], "row_cls": [r["cls"] for r in rows]}


def paper_table(results: list[MethodResult], columns=PAPER_COLUMNS, rows=None) -> dict:
    """Paper rows (as published, 4 decimals) each followed by our matching method's numbers."""
    ours = {m.method: m for m in results}
    header = [{"label": "Method", "title": ""}, {"label": "Source", "title": ""}]
    header += [{"label": label, "title": key, "num": True} for key, label in columns]
    out, row_cls = [], []
    for p in rows or PAPER["rows"]:
        out.append([cell(p["paper_name"], "", "method"), cell("paper (CelebA)", "", "nowrap")]
                   + [cell(fmt(p.get(k), 4), "", "num") for k, _ in columns])
        row_cls.append("group-start")
        m = ours.get(p["method"])
        if m is None:
            out.append([cell(""), cell(f"ours: '{p['method']}' not evaluated", "", "muted nowrap")]
                       + [cell("") for _ in columns])
        else:
            cells = [cell(""), cell(f"ours ({p['method']})", "", "nowrap")]
            for key, _ in columns:
                v, lo, hi = m.triple(key)
                cells.append(cell(fmt(v, 4), fmt_ci(lo, hi), "num"))
            out.append(cells)
        row_cls.append("")
    return {"columns": header, "rows": out, "row_cls": row_cls}


def pair_context(d: dict) -> dict:
    """The counterfactual-pair diagnostics (``fairgen pair-diagnostics``) as table rows."""
    def f(v, fmt="{:.3f}"):
        return "\u2014" if v is None else fmt.format(v)

    idk = d.get("identity_kept") or {}
    fs = d["flip_success"]
    return {
        "n_pairs": d["n_pairs"],
        "flip": f(fs["both_members"]), "flip_c0": f(fs["reads_c0_on_c0_member"]),
        "flip_c1": f(fs["reads_c1_on_c1_member"]), "reader_acc": f(fs["c_reader_accuracy_real_test"]),
        "identity_pairs": f(idk.get("agreement_pairs")), "identity_unpaired": f(idk.get("agreement_unpaired")),
        "rows": [{"method": m, "sens_pairs": f(r["c_sensitivity_pairs"]),
                  "sens_signed": f(r["c_sensitivity_pairs_signed"], "{:+.3f}"),
                  "same_side": f(r["pairs_same_side_of_threshold"]),
                  "sens_real": f(r["c_sensitivity_real"], "{:+.3f}"),
                  "domain": f(r["domain_separability"]["accuracy"])} for m, r in d["classifiers"].items()],
    }

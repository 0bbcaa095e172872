"""The HTML report of ``fairgen audit-predictions``: one self-contained page (inline CSS, figures
as data URIs, no scripts) rendered from ``templates/audit_predictions.html.j2`` with the
shared macros and stylesheet of the pipeline's audit report (:mod:`fairgen.report.render`).

Per model and attribute: the per-group table with intervals, the between-group differences
and ratios, a disparity chart against the reference group with the tolerance band, and the
pass/fail table; then the paired comparison of two models (``--compare``), the method notes
and the provenance. Every name from the input (groups, columns, models) reaches the page
through Jinja's autoescaping, so a group called ``<script>`` is shown, not run.
"""

from __future__ import annotations

import json

from fairgen import __version__
from fairgen.common import figures as plots
from fairgen.eval import fairness as F
from fairgen.report.render import Figure, cell, fmt, fmt_ci, render_html

TEMPLATE = "audit_predictions.html.j2"
SHORT = {"base_rate": "Base rate", "selection_rate": "Selection rate", "tpr": "TPR", "fpr": "FPR", "fnr": "FNR",
         "tnr": "TNR", "precision": "Precision", "error_rate": "Error rate", "accuracy": "Accuracy",
         "balanced_accuracy": "Balanced acc.", "auc": "AUC", "average_precision": "AP"}
VERDICT_TEXT = {"pass": "pass", "fail": "FAIL", "undefined": "undefined", "reference": "reference",
                "uncertain": "uncertain"}


def _col(label: str, title: str = "", num: bool = False) -> dict:
    return {"label": label, "title": title, "num": num}


def _value_cell(v: dict, cls: str = "num") -> dict:
    return cell(fmt(v.get("value")), fmt_ci(v.get("lower"), v.get("upper")), cls)


def group_table(res: dict) -> dict:
    columns = [_col("Group"), _col("n", "rows", True)] + [_col(SHORT[m], F.K_LABELS[m], True) for m in res["metrics"]]
    rows, row_cls = [], []
    small = set(res["small_groups"])
    for g in res["groups"]:
        cells = res["by_group"][g]
        tag = " (reference)" if g == res["reference"] else ""
        rows.append([cell(g + tag, "small group" if g in small else "", "method"),
                     cell(fmt(cells["n"]), "", "num")] + [_value_cell(cells[m]) for m in res["metrics"]])
        row_cls.append("small" if g in small else "")
    return {"columns": columns, "rows": rows, "row_cls": row_cls}


def between_table(res: dict) -> dict:
    columns = [_col("Metric"), _col("Min (group)", "", True), _col("Max (group)", "", True),
               _col("Difference max \u2212 min", "fairlearn MetricFrame.difference()", True),
               _col("Ratio min / max", "fairlearn MetricFrame.ratio()", True)]
    rows = []
    for m in res["metrics"]:
        b = res["between_groups"][m]
        rows.append([cell(F.K_LABELS[m], "", "method"), cell(fmt(b["group_min"]), b["argmin"] or "", "num"),
                     cell(fmt(b["group_max"]), b["argmax"] or "", "num"),
                     _value_cell(b["difference"]), _value_cell(b["ratio"])])
    return {"columns": columns, "rows": rows}


def passfail_table(res: dict) -> dict:
    metrics = res["disparity_metrics"]
    columns = [_col("Group")] + [_col(SHORT[m], f"{F.K_LABELS[m]}: group / reference", True) for m in metrics]
    rows = []
    for g in res["groups"]:
        row = [cell(g + (" (reference)" if g == res["reference"] else ""), "", "method")]
        for m in metrics:
            d = res["vs_reference"][g][m]
            dis = d["disparity"]
            verdict = d["verdict"]
            sub = f"{fmt(dis['value'], 2)} {fmt_ci(dis.get('lower'), dis.get('upper'), 2)}".strip()
            if verdict not in ("reference", "undefined"):
                sub += f" {d['interval_verdict']}"
            row.append(cell(VERDICT_TEXT[verdict], sub, f"num verdict {verdict}",
                            title=f"disparity {fmt(dis['value'])}, {d['interval_verdict']} by its interval"))
        rows.append(row)
    return {"columns": columns, "rows": rows}


def compare_table(cmp: dict, attr: str) -> dict:
    res = cmp["attributes"][attr]
    a, b = cmp["a"], cmp["b"]
    columns = [_col("Metric"), _col(a, "", True), _col(b, "", True),
               _col(f"{b} \u2212 {a} [paired interval]", "", True), _col("Scope")]
    rows = []
    for m in res["metrics"]:
        for scope, v in (("difference", res["between_groups"][m]["difference"]),
                         ("ratio", res["between_groups"][m]["ratio"])):
            sig = ""
            if v.get("lower") is not None:
                sig = "excludes 0" if v["lower"] > 0 or v["upper"] < 0 else "includes 0"
            rows.append([cell(F.K_LABELS[m], "", "method"), cell(fmt(v["a"]), "", "num"),
                         cell(fmt(v["b"]), "", "num"),
                         cell("\u2014" if v["difference"] is None else f"{v['difference']:+.3f}",
                              f"{fmt_ci(v.get('lower'), v.get('upper'))} {sig}".strip(), "num"),
                         cell("between-group difference (max \u2212 min)" if scope == "difference"
                              else "between-group ratio (min / max)")])
    return {"columns": columns, "rows": rows}


def _figure(res: dict, name: str, title: str) -> Figure:
    metrics = [(m, F.K_LABELS[m]) for m in res["disparity_metrics"]]
    values = {(m, g): (res["vs_reference"][g][m]["disparity"]["value"],
                       res["vs_reference"][g][m]["disparity"].get("lower"),
                       res["vs_reference"][g][m]["disparity"].get("upper"))
              for g in res["groups"] for m in res["disparity_metrics"]}
    png = plots.disparity(res["groups"], metrics, values, res["reference"], res["tolerance"], res["small_groups"])
    tau = res["tolerance"]
    return Figure(name, title, f"Disparity = metric of the group / metric of the reference group "
                  f"{res['reference']!r} ({res['reference_rule']}), log scale, with "
                  f"{res['bootstrap']['level'] * 100:.0f}% bootstrap intervals. Green band: the tolerance "
                  f"[{tau:.2f}, {1 / tau:.2f}]; red points fail it; hollow points are small groups.", png)


def _counts(res: dict) -> dict:
    out = {"pass": 0, "fail": 0, "uncertain": 0, "undefined": 0}
    for g in res["groups"]:
        for m in res["disparity_metrics"]:
            d = res["vs_reference"][g][m]
            if d["verdict"] in ("pass", "fail", "undefined"):
                out[d["verdict"]] += 1
                out["uncertain"] += d["interval_verdict"] == "uncertain"
    return out


def sections(result: dict) -> tuple[list[dict], list[Figure]]:
    out, figures = [], []
    for i, (model, per) in enumerate(result["models"].items()):
        for j, (attr, res) in enumerate(per.items()):
            fig = _figure(res, f"disparity_{i}_{j}", f"Disparity by group: {attr}"
                          + ("" if model == "all rows" else f", model {model}"))
            figures.append(fig)
            fails = [(g, m, res["vs_reference"][g][m]["disparity"]["value"])
                     for g in res["groups"] for m in res["disparity_metrics"]
                     if res["vs_reference"][g][m]["verdict"] == "fail"]
            out.append({"id": f"m{i}-a{j}", "model": model, "attribute": attr, "res": res,
                        "groups": group_table(res), "between": between_table(res),
                        "passfail": passfail_table(res), "figure": fig, "counts": _counts(res),
                        "fails": fails, "small": [(g, res["by_group"][g]["n"]) for g in res["small_groups"]],
                        "undefined": res["undefined"]})
    return out, figures


def render(result: dict) -> tuple[str, list[Figure]]:
    """The report's HTML and its figures (also written as PNG files by the caller)."""
    secs, figures = sections(result)
    cmp = result.get("comparison")
    comparison = None
    if cmp:
        comparison = {"a": cmp["a"], "b": cmp["b"], "tables": [
            {"attribute": attr, "table": compare_table(cmp, attr), "id": f"compare-{k}"}
            for k, attr in enumerate(cmp["attributes"])],
            "n": next(iter(cmp["attributes"].values()))["n"],
            "bootstrap": next(iter(cmp["attributes"].values()))["bootstrap"]}
    prov = result["provenance"]
    first = secs[0]["res"]
    totals = {k: sum(s["counts"][k] for s in secs) for k in ("pass", "fail", "uncertain", "undefined")}
    binning = [(s["model"], s["attribute"], s["res"]["score_binning"]) for s in secs if s["res"]["score_binning"]]
    html = render_html({
        "version": __version__, "title": f"Fairness audit: {prov['input'].rsplit('/', 1)[-1]}",
        "prov": prov, "options": json.dumps(prov["options"], indent=2, sort_keys=True, default=str),
        "sections": secs, "comparison": comparison, "totals": totals, "models": list(result["models"]),
        "attributes": result["attributes"], "tolerance": first["tolerance"],
        "band": f"[{first['tolerance']:.2f}, {1 / first['tolerance']:.2f}]", "bootstrap": first["bootstrap"],
        "min_group_size": first["min_group_size"], "binning": binning,
    }, template=TEMPLATE)
    return html, figures

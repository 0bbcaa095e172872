"""The audit report's template context: :func:`build_context` reads every input (through
:mod:`fairgen.report.loaders`), generates the summary, draws the figures and assembles what
``templates/audit.html.j2`` shows: the dataset card, the GAN runs, the classifier tables, the
trade-off with the oracle frontier of the embedded synthetic data and the group-threshold curve,
the synthetic-data quality (FID, label statistics, c-conditioning, attribute coverage), the paper
reference and the provenance."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fairgen import __version__
from fairgen.common import figures as plots
from fairgen.common.errors import DataError
from fairgen.report.loaders import (
    BASELINE,
    Inputs,
    MethodResult,
    Missing,
    SyntheticSet,
    ci_level,
    get_key,
    load_classifiers,
    load_gan_runs,
    load_manifest,
    load_paired,
    load_quality,
    load_synthetic_sets,
    read_json_object,
    real_base_rates,
    split_counts,
)
from fairgen.report.reference import PAPER, PAPER_GROUP_COLUMNS
from fairgen.report.render import Figure, fmt, level_text
from fairgen.report.run_cost import run_cost
from fairgen.report.summary import Summary, summarize
from fairgen.report.tables import (
    GROUP_RATES,
    TRADEOFF,
    classifier_disparities,
    comparison_table,
    group_table,
    pair_context,
    paired_table,
    paper_table,
)

SOURCE_NAMES = {
    "synthetic": "the embedded synthetic stand-in for CelebA (rendered faces in CelebA's file format)",
    "celeba_download": "CelebA (downloaded, checksums verified)",
    "celeba_local": "CelebA (a local copy)",
}
LAYOUT_NAMES = {"official": "the release's text files", "kaggle": "the Kaggle copy's CSV files"}


def group_labels(protected: str) -> tuple[str, str]:
    """The two groups' names in tables and figures: ``"Male = 0"``, ``"Male = 1"``."""
    return f"{protected} = 0", f"{protected} = 1"


def split_text(manifest: dict) -> str:
    """Which train / valid / test split the manifest's dataset uses, in words."""
    spec = manifest.get("split") or {"method": "official"}
    if spec.get("method") == "random":
        return (f"random by image (seed {spec['seed']}): test {spec['test_fraction']:.0%} of all images, valid "
                f"{spec['valid_fraction']:.0%} of the rest for model selection")
    return "the dataset's own partition (its list_eval_partition file)"


def oracle_frontier(manifest: dict, dataset: Path, crops_index: Path | None, cfg: dict,
                    results: list[MethodResult], inputs: Inputs,
                    frontier_file: Path | None = None) -> tuple[dict | None, list[Missing]]:
    """The oracle accuracy-vs-DP frontier of the real test split (embedded synthetic data only,
    :mod:`fairgen.eval.frontier`; the curve from ``frontier_file``, the JSON of ``fairgen frontier``, when
    given) and each classifier's distance below it at its own DP difference (solved exactly there)."""
    from fairgen.eval import frontier as FR

    if manifest.get("source") != "synthetic":
        if frontier_file is not None:
            raise DataError(f"{frontier_file}: an oracle frontier, but dataset {dataset} has source "
                            f"{manifest.get('source')!r} (only the embedded synthetic data has one)")
        return None, []
    if crops_index is None:
        return None, [Missing("oracle frontier (needs the crops index)", str(dataset), "has no crops index beside it")]
    try:
        data = FR.oracle_split(dataset, crops_index, cfg["protected"], cfg["outcome"], "test")
    except DataError as e:
        return None, [Missing("oracle frontier", str(crops_index), f"could not be matched to the dataset ({e})")]
    if frontier_file is None:
        curve = FR.summarize(data)
    else:
        curve = FR.load(frontier_file, cfg["protected"], cfg["outcome"], len(data))
        inputs.add("oracle frontier", frontier_file)
    scored = [m for m in results
              if m.value("accuracy") is not None and m.value("demographic_parity_difference") is not None]
    at_own_dp = FR.frontier(data.p, data.c, [m.value("demographic_parity_difference") for m in scored])
    rows = []
    for m, pt in zip(scored, at_own_dp):
        acc = m.value("accuracy")
        rows.append({"method": m.method, "accuracy": fmt(acc), "dp": fmt(m.value("demographic_parity_difference")),
                     "oracle": fmt(pt["expected_accuracy"]), "gap": f"{(pt['expected_accuracy'] - acc) * 100:.1f} points",
                     "same_split": m.result.get("n") == len(data)})
    inputs.add("oracle frontier: dataset parameters", dataset)
    bayes = curve["bayes"]
    return {"curve": curve, "rows": rows, "n": len(data), "label_dp": fmt(curve["label_dp_difference"]),
            "bayes_acc": fmt(bayes["expected_accuracy"]), "bayes_dp": fmt(bayes["dp_difference"]),
            "fair_acc": fmt(curve["points"][0]["expected_accuracy"]),
            "mismatch": any(not r["same_split"] for r in rows)}, []


def build_context(cfg: dict, dataset: str | os.PathLike, classifiers_dir: str | os.PathLike,
                  crops_index: str | os.PathLike | None = None, crops_summary: str | os.PathLike | None = None,
                  gan_dir: str | os.PathLike | None = None, synthetic_dir: str | os.PathLike | None = None,
                  quality: str | os.PathLike | None = None,
                  comparison: str | os.PathLike | None = None, thresholds: str | os.PathLike | None = None,
                  pair_diagnostics: str | os.PathLike | None = None,
                  benchmarks: list[str | os.PathLike] | None = None,
                  frontier: str | os.PathLike | None = None) -> tuple[dict, list[Figure], Summary]:
    """Read every input and return ``(context, figures, summary)`` without writing anything: the
    context of ``templates/audit.html.j2``, every figure it shows (also written as PNG files by
    :func:`fairgen.report.audit.audit`) and the generated summary."""
    protected, outcome = cfg["protected"], cfg["outcome"]
    labels = group_labels(protected)
    inputs = Inputs()
    p = (lambda x: Path(x) if x else None)
    dataset, classifiers_dir = Path(dataset), Path(classifiers_dir)

    manifest = load_manifest(dataset, inputs)
    for key, want in (("protected", protected), ("outcome", outcome)):
        if key in manifest and manifest[key] != want:
            raise DataError(f"{dataset}: manifest has {key} '{manifest[key]}' but the config has '{want}'")
    methods = list(cfg["classifier"]["methods"])
    results = load_classifiers(methods, classifiers_dir, inputs)
    level = ci_level(results)
    missing: dict[str, list[Missing]] = {k: [] for k in ("dataset", "gan", "synthetic", "quality", "classifiers",
                                                          "tradeoff")}
    paired, missing["classifiers"] = load_paired(p(comparison), methods, inputs)
    disparities, miss = classifier_disparities(cfg, methods, classifiers_dir, inputs, labels)
    missing["classifiers"] += miss
    summary = summarize(results, level, paired=paired)

    figures: list[Figure] = []

    crops = None
    if crops_summary is not None:
        if Path(crops_summary).is_file():
            crops = read_json_object(Path(crops_summary), inputs, "crops summary")
        else:
            missing["dataset"].append(Missing("crops summary", str(crops_summary)))
    if crops_index is not None and not Path(crops_index).is_file():
        missing["dataset"].append(Missing("crops index", str(crops_index)))
        crops_index = None
    real_rows, rates_source = real_base_rates(cfg, manifest, dataset, p(crops_index), inputs)
    synth, miss = load_synthetic_sets(cfg, list(cfg["gan"]["runs"]), p(synthetic_dir), inputs, labels)
    missing["synthetic"] += miss
    rate_rows = real_rows + [s.rates for s in synth]
    if rate_rows:
        figures.append(Figure("base_rates", f"Base rate P({outcome} = 1 | {protected})",
                              f"P({outcome} = 1) per group in the real splits ({rates_source}) and in each "
                              "synthetic set.", plots.base_rates(rate_rows, labels, outcome)))

    gans, miss = load_gan_runs(cfg, list(cfg["gan"]["runs"]), p(gan_dir), inputs)
    missing["gan"] += miss
    for g in gans:
        figures += ([g.curves] if g.curves else []) + g.grids
    figures += [s.grid for s in synth if s.grid]

    frontier, missing["tradeoff"] = oracle_frontier(manifest, dataset, p(crops_index), cfg, results, inputs,
                                                    p(frontier))
    reference = None
    if frontier:
        pts = frontier["curve"]["points"]
        reference = {"demographic_parity_difference": [([pt["dp_difference"] for pt in pts],
                                                        [pt["expected_accuracy"] for pt in pts], "oracle frontier")]}
    curve = read_json_object(Path(thresholds), inputs, "group-threshold curve") if thresholds else None
    if curve:
        pts = sorted(get_key(curve, Path(thresholds), "points", types=list),
                     key=lambda pt: pt["test_demographic_parity_difference"])
        reference = reference or {}
        reference.setdefault("demographic_parity_difference", []).append(
            ([pt["test_demographic_parity_difference"] for pt in pts], [pt["test_accuracy"] for pt in pts],
             "group thresholds on real (post-processing)"))
    pairs_ctx = pair_context(read_json_object(Path(pair_diagnostics), inputs, "pair diagnostics")) if pair_diagnostics else None
    tradeoff_fig = Figure(
        "tradeoff", "Accuracy vs fairness",
        "Each point is one classifier evaluated on the real test split; error bars are "
        f"{level_text(level)}bootstrap confidence intervals. Lower on the x axis is fairer; higher on "
        "the y axis is more accurate." + (" The dashed line is the oracle frontier: the highest expected "
                                          "accuracy any classifier can reach at each DP difference on this "
                                          "split (embedded synthetic data only)." if frontier else "")
        + (" The grey line labelled 'group thresholds' is the post-processing baseline: group-specific thresholds on the real "
           "classifier's scores, chosen on the real valid split under each DP bound (fairgen "
           "threshold-baseline)." if curve else ""),
        plots.tradeoff([{"method": m.method, "accuracy": m.triple("accuracy"),
                         **{k: m.triple(k) for k, _ in TRADEOFF}} for m in results], TRADEOFF,
                       BASELINE if any(m.method == BASELINE for m in results) else None, reference))
    rates_fig = Figure(
        "group_rates", "Per-group rates",
        f"Rates of each classifier per group ({labels[0]} / {labels[1]}) on the real test split, with "
        f"{level_text(level)}bootstrap intervals.",
        plots.group_rates([m.method for m in results], [(k, label) for k, label, _ in GROUP_RATES],
                          {(m.method, k, g): m.triple(f"{k}_c{g}") for m in results
                           for k, *_ in GROUP_RATES for g in (0, 1)}, labels))
    figures += [tradeoff_fig, rates_fig]

    q, miss = load_quality(p(quality), inputs)
    missing["quality"] += miss
    quality_ctx = _quality_context(q, labels, figures) if q else None

    source = manifest["source"]
    context = {
        "title": f"Fairness audit: {outcome} by {protected}",
        "version": __version__,
        "protected": protected, "outcome": outcome, "labels": labels,
        "source": source, "source_name": SOURCE_NAMES.get(source, source),
        "is_synthetic_source": source == "synthetic",
        "summary": summary, "level_txt": level_text(level),
        "methods": methods, "baseline": BASELINE,
        "dataset": _dataset_context(manifest, crops, rate_rows, rates_source, synth),
        "gans": gans, "gan_runs": list(cfg["gan"]["runs"]), "synth": synth,
        "comparison": comparison_table(results, BASELINE),
        "frontier": frontier,
        "pairs": pairs_ctx,
        "paired": paired_table(paired, methods) if paired else None,
        "groups": group_table(results, labels),
        "disparities": disparities,
        "paper": {**PAPER, "table": paper_table(results),
                  "groups": paper_table(results, PAPER_GROUP_COLUMNS,
                                        [r for r in PAPER["rows"] if "fpr_c0" in r]),
                  "same_task": (protected, outcome) == (PAPER["protected"], PAPER["outcome"]),
                  "split": split_text(manifest)},
        "results": results,
        "training": [_training_row(m) for m in results],
        "quality": quality_ctx,
        "missing": missing,
        "figures": {f.name: f for f in figures},
        "inputs": inputs.rows(),
        "config": json.dumps(cfg, indent=2, sort_keys=True),
        "bootstrap": _bootstrap_text(results),
        "run_cost": run_cost(benchmarks) if benchmarks else None,
    }
    return context, figures, summary


def _bootstrap_text(results: list[MethodResult]) -> str:
    b = next((m.result.get("bootstrap") for m in results if (m.result.get("bootstrap") or {}).get("n_boot")), None)
    if not b:
        return "No bootstrap intervals were computed (classifier.bootstrap = 0)."
    return (f"Intervals: {level_text(b.get('level'))}percentile bootstrap over {b['n_boot']:,} resamples of the "
            f"test rows, stratified by {b.get('stratified_by', 'c')}; absolute gaps and the min/max ratio use the "
            "folded interval of their signed quantity.")


def _training_row(m: MethodResult) -> dict:
    t = m.result.get("training") or {}
    sel = m.result.get("selection") or {}
    return {"method": m.method, "source": t.get("source", "\u2014"), "n": fmt(t.get("n")),
            "weighted": "yes" if t.get("weighted") else "no", "arch": t.get("arch", "\u2014"),
            "epochs": fmt(t.get("epochs")), "best_epoch": fmt(sel.get("best_epoch")),
            "privileged": fmt(m.result.get("privileged"))}


def _dataset_context(manifest: dict, crops: dict | None, rate_rows: list[dict], rates_source: str,
                     synth: list[SyntheticSet]) -> dict:
    facts = [("Source", SOURCE_NAMES.get(manifest["source"], manifest["source"])), ("Root", manifest["root"])]
    if "n_images" in manifest:
        facts.append(("Images", fmt(manifest["n_images"])))
    if "layout" in manifest:
        facts.append(("Layout", f"{manifest['layout']} ({LAYOUT_NAMES.get(manifest['layout'], '')})"
                      + ("" if manifest.get("identity_available", True) else "; identities not available")))
    facts.append(("Split", split_text(manifest)))
    splits = split_counts(manifest)
    if splits:
        facts.append(("Split sizes", ", ".join(f"{k} {fmt(v)}" for k, v in splits.items())))
    if crops:
        facts.append(("Crops", f"{crops.get('method', '?')}, {crops.get('resolution', '?')} px; "
                               f"{fmt(crops.get('n_cropped'))} cropped, {fmt(crops.get('n_skipped'))} skipped"))
    rows = []
    for r in rate_rows:
        gap = None if None in r["p"] else r["p"][1] - r["p"][0]
        n = r["n"] if r["n"] and None not in r["n"] else None
        rows.append({"label": r["label"], "n": fmt(sum(n)) if n else "\u2014",
                     "n0": fmt(n[0]) if n else "\u2014", "n1": fmt(n[1]) if n else "\u2014",
                     "p_c1": fmt(r.get("p_c1")), "p0": fmt(r["p"][0]), "p1": fmt(r["p"][1]),
                     "gap": fmt(gap)})
    return {"facts": facts, "rates": rows, "rates_source": rates_source}


def _quality_context(q: dict, labels, figures: list[Figure]) -> dict:
    runs = list(q["runs"])
    fid_tables = []
    for key, ex in q["extractors"].items():
        label = ex.get("label", key)
        values, reference = {}, {}
        ref = q["real"].get("reference_fid", {}).get(key)
        rows = []
        if ref:
            for part in ("overall", "0", "1"):
                reference[part] = _fid_value(ref, part)
            rows.append({"run": "real train vs real eval (reference)", "cls": "muted",
                         **{k: fmt(reference[p], 2) for k, p in (("all", "overall"), ("c0", "0"), ("c1", "1"))},
                         "n": fmt((ref.get("overall") or {}).get("n_synthetic"))})
        for run in runs:
            f = q["runs"][run]["fid"].get(key)
            if f is None:
                continue
            for part in ("overall", "0", "1"):
                values[(run, part)] = _fid_value(f, part)
            rows.append({"run": run, "cls": "",
                         **{k: fmt(values[(run, p)], 2) for k, p in (("all", "overall"), ("c0", "0"), ("c1", "1"))},
                         "n": fmt((f.get("overall") or {}).get("n_synthetic"))})
        fig = None
        if runs:
            fig = Figure(f"fid_{key}", label, f"{label} per synthetic set and group. {ex.get('note', '')}",
                         plots.fid_bars(runs, values, reference, label, labels))
            figures.append(fig)
        fid_tables.append({"key": key, "label": label, "note": ex.get("note", ""), "rows": rows, "figure": fig})
    label_rows = []
    real_ls = q["real"].get("label_statistics")
    if real_ls:
        label_rows.append(_label_row("real train", real_ls, None, "muted"))
    for run in runs:
        ls = q["runs"][run]["label_statistics"]
        label_rows.append(_label_row(run, ls.get("synthetic", {}), ls.get("gap_synthetic_minus_real"), ""))
    cond_rows = []
    ceiling = (q.get("classifier_accuracy_real") or {}).get("c") or {}
    if ceiling:
        cond_rows.append({"run": "real eval images (ceiling)", "cls": "muted", "acc": fmt(ceiling.get("accuracy")),
                          "c0": fmt((ceiling.get("by_group") or {}).get("0")),
                          "c1": fmt((ceiling.get("by_group") or {}).get("1")), "n": fmt(ceiling.get("n"))})
    for run in runs:
        cc = q["runs"][run]["c_conditioning"]
        cond_rows.append({"run": run, "cls": "", "acc": fmt(cc.get("accuracy")),
                          "c0": fmt((cc.get("by_group") or {}).get("0")),
                          "c1": fmt((cc.get("by_group") or {}).get("1")), "n": fmt(cc.get("n"))})
    return {"fid": fid_tables, "labels": label_rows, "conditioning": cond_rows,
            "coverage": _coverage_context(q, runs, figures),
            "real_split": q.get("real_split", "?"), "n_samples": q.get("n_samples"),
            "classifier": next((r["c_conditioning"].get("classifier") for r in q["runs"].values()
                                if r["c_conditioning"].get("classifier")), "the c classifier")}


def _coverage_context(q: dict, runs: list, figures: list[Figure]) -> dict | None:
    """Attribute coverage (``quality.json``'s ``attribute_coverage``): the trusted attributes'
    rates real vs each run as a figure, and one row per dropped look per run."""
    cov = q.get("attribute_coverage")
    if not cov:
        return None
    real = cov.get("real") or {}
    trusted = [a for a in cov.get("attributes", []) if (real.get(a) or {}).get("trusted")]
    per_run = {r: (q["runs"][r].get("attribute_coverage") or {}) for r in runs}
    rows = []
    for r in runs:
        for d in per_run[r].get("dropped", []):
            rows.append({"run": r, "look": f"{d['attribute']} = {d['value']}", "real": fmt(d["real"]),
                         "synthetic": fmt(d["synthetic"])})
    reader = cov.get("classifier", "the attribute classifier")
    fig = None
    if trusted and runs:
        fig = Figure("attribute_coverage", "Attribute coverage",
                     f"Share of images with each attribute as {reader} "
                     "reads them: real evaluation images (bars) and each synthetic set (dots); a red ring marks "
                     "a look the set dropped. Only attributes the classifier reads well on real images are shown.",
                     plots.attribute_coverage(
                         trusted, [real[a]["predicted"]["overall"] for a in trusted],
                         {r: [(per_run[r].get("prevalence", {}).get(a) or {}).get("overall") for a in trusted]
                          for r in runs},
                         {r: {d["attribute"] for d in per_run[r].get("dropped", [])} for r in runs}))
        figures.append(fig)
    return {"rows": rows, "figure": fig, "n_attributes": len(cov.get("attributes", [])), "n_trusted": len(trusted),
            "classifier": reader, "untrusted": [a for a in cov.get("attributes", []) if a not in trusted],
            "rule": cov.get("rule") or {}}


def _fid_value(f: dict, part: str):
    entry = f.get("overall") if part == "overall" else (f.get("by_group") or {}).get(part)
    return None if not entry else entry.get("value")


def _label_row(name: str, ls: dict, gap: dict | None, cls: str) -> dict:
    by = ls.get("by_group") or {}
    gap_by = (gap or {}).get("by_group") or {}

    def signed(v):
        return "" if v is None else f"{v:+.3f}"

    return {"run": name, "cls": cls, "n": fmt(ls.get("n")),
            "p0": fmt((by.get("0") or {}).get("p_y1")), "p1": fmt((by.get("1") or {}).get("p_y1")),
            "g0": signed((gap_by.get("0") or {}).get("p_y1")), "g1": signed((gap_by.get("1") or {}).get("p_y1")),
            "dp": signed(ls.get("dp_difference_c1_minus_c0"))}

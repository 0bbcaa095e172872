"""``fairgen zoo-report`` (rule ``zoo_report``): the seed-GAN zoo report, one self-contained HTML page
rendered from ``templates/zoo.html.j2`` (the shared stylesheet and table macro): findings, the results
table with a row per run (FID against the real floor, conditional accuracy against chance, class
coverage), the evaluation classifiers, and per run its accuracy per requested class, per-class sample
grid and training curves; plus all the numbers as JSON."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fairgen.common.errors import DataError
from fairgen.common.io import atomic_path, read_json, write_json
from fairgen.data import zoo_data
from fairgen.eval.zoo import (
    CLASSIFIER_METRICS,
    EVAL_DIR,
    FID_LABEL,
    FID_NOTE,
    GRID,
    METRICS,
    TRAIN_DIR,
    TRAIN_SUMMARY,
)
from fairgen.report.render import cell, data_uri, fmt, render_html

log = logging.getLogger(__name__)

TEMPLATE = "zoo.html.j2"


def _png_uri(path: Path) -> str | None:
    return data_uri(path.read_bytes()) if path.is_file() else None


def _pct_text(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _pct(v) -> str:
    return fmt(None) if v is None else _pct_text(v)


def collect(cfg: dict, zoo_dir: str | os.PathLike) -> dict:
    """Everything the report shows, read from ``zoo_dir`` for the configured runs (DataError
    naming the first missing or invalid file)."""
    zoo_dir = Path(zoo_dir)
    runs, classifiers = {}, {}
    for run in cfg["zoo"]["runs"]:
        tdir, edir = zoo_dir / run / TRAIN_DIR, zoo_dir / run / EVAL_DIR
        train_summary, metrics = read_json(tdir / TRAIN_SUMMARY), read_json(edir / METRICS)
        for key in ("fid", "coverage", "dataset"):
            if key not in metrics:
                raise DataError(f"{edir / METRICS}: missing '{key}'")
        ds = metrics["dataset"]
        if ds not in classifiers:
            classifiers[ds] = read_json(zoo_dir / "classifier" / ds / CLASSIFIER_METRICS)
        runs[run] = {"train": train_summary, "metrics": metrics, "grid": edir / GRID,
                     "loss_curve": tdir / "loss_curve.png"}
    return {"runs": runs, "classifiers": classifiers}


def findings(collected: dict) -> list[str]:
    """Plain-language statements generated from the numbers (plain text)."""
    out = []
    runs = collected["runs"]
    for run, r in runs.items():
        m = r["metrics"]
        ca = m.get("conditional_accuracy")
        if ca:
            clf = collected["classifiers"].get(m["dataset"], {})
            out.append(f"{run} on {m['dataset']}: {_pct_text(ca['accuracy'])} of {ca['n']} samples are classified "
                       f"as the requested class by the real-data classifier (chance {_pct_text(m['chance'])}; the "
                       f"classifier's own held-out accuracy on real images {_pct_text(clf.get('holdout_accuracy'))}).")
    by_ds: dict[str, list[tuple[float, str]]] = {}
    for run, r in runs.items():
        by_ds.setdefault(r["metrics"]["dataset"], []).append((r["metrics"]["fid"]["value"], run))
    for ds, items in by_ds.items():
        if len(items) < 2:
            continue
        items.sort()
        floor = min(runs[run]["metrics"]["fid"]["real_floor"] for _, run in items)
        ranking = " < ".join(f"{run} {v:.2f}" for v, run in items)
        out.append(f"{FID_LABEL} on {ds} (lower is better; real-vs-real floor {floor:.2f}): {ranking}.")
    return out


def _run_context(run: str, r: dict) -> dict:
    """One run's section: training facts, accuracy per requested class, sample grid and curves."""
    m, t = r["metrics"], r["train"]
    train = t.get("train", {})
    ca = m.get("conditional_accuracy")
    accuracy = None
    if ca:
        accuracy = {"columns": [{"label": "requested class", "title": ""}]
                    + [{"label": str(n), "title": "", "num": True} for n in m["class_names"]],
                    "rows": [[cell("classified as requested", "", "method")]
                             + [cell(_pct(v), "", "num") for v in ca["accuracy_by_class"]]]}
    return {"run": run, "model": m["model"], "dataset": m["dataset"], "accuracy": accuracy,
            "training": f"{t.get('steps')} steps, batch {train.get('batch_size')}, Adam lr {train.get('lr_g')} betas "
                        f"{train.get('betas')}, {fmt(t.get('images_per_s'), 0)} images/s on {t.get('device')}; "
                        f"image shape {t.get('image_shape')}.",
            "grid": _png_uri(r["grid"]), "row_meaning": m["grid"]["row_meaning"], "curve": _png_uri(r["loss_curve"])}


def _results_table(runs: dict) -> dict:
    """A row per run: model, data, training cost, FID against its real floor, conditional accuracy
    against chance, and class coverage."""
    columns = [{"label": "run", "title": "zoo run"}, {"label": "model", "title": ""},
               {"label": "dataset", "title": ""}]
    columns += [{"label": label, "title": title, "num": True} for label, title in (
        ("steps", "training steps"), ("train time", "wall-clock training time"),
        ("n per side", "generated images scored, and real images they are compared with"),
        (FID_LABEL, "lower is better"), ("real floor", "FID between real images and as many other real ones"),
        ("cond. accuracy", "samples classified as the requested class by the real-data classifier"),
        ("chance", "1 / number of classes"),
        ("classes covered", "predicted classes holding at least half their fair share of the samples"),
        ("effective classes", "exp(entropy) of the predicted-class histogram"))]
    rows = []
    for run, r in runs.items():
        m, t = r["metrics"], r["train"]
        ca = m.get("conditional_accuracy")
        rows.append([cell(run, "", "method"), cell(m["model"]), cell(m["dataset"])]
                    + [cell(text, "", "num") for text in (
                        str(t.get("steps")), f"{fmt(t.get('wall_s'), 0)} s", str(m["fid"]["n_generated"]),
                        fmt(m["fid"]["value"], 2), fmt(m["fid"]["real_floor"], 2),
                        _pct(ca["accuracy"]) if ca else fmt(None), _pct(m["chance"]),
                        f"{m['coverage']['classes_covered']} / {m['n_classes']}",
                        fmt(m["coverage"]["effective_classes"], 2))])
    return {"columns": columns, "rows": rows}


def _classifier_table(classifiers: dict) -> dict:
    """A row per dataset: the real-data evaluation classifier's input shape, sizes and held-out accuracy."""
    columns = [{"label": "dataset", "title": ""}]
    columns += [{"label": label, "title": title, "num": True} for label, title in (
        ("input", "image shape the classifier reads"), ("train images", "real images it was trained on"),
        ("held-out images", "real images held out of its training (stratified by class)"),
        ("held-out accuracy", "accuracy on the held-out images"))]
    rows = [[cell(ds, "", "method")] + [cell(text, "", "num") for text in (
        "x".join(str(s) for s in c.get("shape", [])), str(c.get("n_train")), str(c.get("n_holdout")),
        _pct(c.get("holdout_accuracy")))] for ds, c in classifiers.items()]
    return {"columns": columns, "rows": rows}


def render_report(cfg: dict, collected: dict) -> str:
    """The zoo report as one self-contained HTML page (``templates/zoo.html.j2``: the shared inline
    CSS and table macro, images as data URIs)."""
    from fairgen import __version__

    runs, classifiers = collected["runs"], collected["classifiers"]
    by_dataset = {r["metrics"]["dataset"]: r["metrics"] for r in runs.values()}
    return render_html({
        "title": "fairgen seed-GAN zoo", "version": __version__, "seed": cfg["seed"],
        "standin_note": zoo_data.STANDIN_NOTE if any(m.get("standin") for m in by_dataset.values()) else None,
        "digits_note": zoo_data.DIGITS_NOTE if "digits" in by_dataset else None,
        "findings": findings(collected), "fid_note": FID_NOTE, "results": _results_table(runs),
        "classifiers": _classifier_table(classifiers),
        "runs": [_run_context(run, r) for run, r in runs.items()],
    }, TEMPLATE)


def report(cfg: dict, zoo_dir: str, out_html: str, out_json: str | None = None) -> int:
    """CLI ``zoo-report``: the self-contained HTML zoo report (and all its numbers as JSON)."""
    collected = collect(cfg, zoo_dir)
    page = render_report(cfg, collected)
    with atomic_path(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    if out_json:
        summary = {"format": "fairgen.zoo_summary", "format_version": 1, "findings": findings(collected),
                   "classifiers": collected["classifiers"],
                   "runs": {run: {k: v for k, v in r["metrics"].items() if k not in ("classifier",)}
                            | {"train_wall_s": r["train"].get("wall_s"), "steps": r["train"].get("steps")}
                            for run, r in collected["runs"].items()}}
        write_json(summary, out_json)
    log.info("zoo report: %s (%d runs)", out_html, len(collected["runs"]))
    return 0

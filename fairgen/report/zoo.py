"""``fairgen zoo-report`` (rule ``zoo_report``): the seed-GAN zoo report, one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import logging
import math
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

log = logging.getLogger(__name__)


def _png_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _pct_text(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _pct(v) -> str:
    return "&ndash;" if v is None else _pct_text(v)


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


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.note{color:#555;font-size:.92em}
.warn{background:#fff4e0;border-left:4px solid #e8a33c;padding:.5em 1em}
.figs{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}.figs figure{margin:0}
img.grid{image-rendering:pixelated;max-width:100%}img.curve{max-width:520px}
figcaption{font-size:.85em;color:#555}
"""


def render_report(cfg: dict, collected: dict) -> str:
    """The zoo report as one self-contained HTML page (inline CSS, images as data URIs)."""
    from fairgen import __version__

    runs, classifiers = collected["runs"], collected["classifiers"]
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>fairgen seed-GAN zoo</title>"
             f"<style>{_CSS}</style></head><body><h1>Seed-GAN zoo</h1>"
             f"<p class='note'>fairgen {esc(__version__)}; every model trained with the project's one GAN trainer "
             f"(<code>fairgen.training.Trainer</code>); seed {cfg['seed']}.</p>"]
    notes = {r["metrics"]["dataset"]: r["metrics"] for r in runs.values()}
    if any(m.get("standin") for m in notes.values()):
        parts.append(f"<p class='warn'>{esc(zoo_data.STANDIN_NOTE)}</p>")
    if "digits" in notes:
        parts.append(f"<p class='note'>digits: {esc(zoo_data.DIGITS_NOTE)}</p>")
    parts.append("<h2>Findings</h2><ul>" + "".join(f"<li>{esc(f)}</li>" for f in findings(collected)) + "</ul>")
    parts.append(f"<h2>Results</h2><p class='note'>{esc(FID_NOTE)}</p><table><tr><th class='l'>run</th>"
                 "<th class='l'>model</th><th class='l'>dataset</th><th>steps</th><th>train time</th>"
                 f"<th>n per side</th><th>{esc(FID_LABEL)}</th><th>real floor</th><th>cond. accuracy</th><th>chance</th>"
                 "<th>classes covered</th><th>effective classes</th></tr>")
    for run, r in runs.items():
        m, t = r["metrics"], r["train"]
        ca = m.get("conditional_accuracy")
        parts.append(
            f"<tr><td class='l'>{esc(run)}</td><td class='l'>{esc(m['model'])}</td><td class='l'>{esc(m['dataset'])}"
            f"</td><td>{t.get('steps')}</td><td>{_fmt(t.get('wall_s'), 0)} s</td><td>{m['fid']['n_generated']}</td>"
            f"<td>{_fmt(m['fid']['value'], 2)}</td>"
            f"<td>{_fmt(m['fid']['real_floor'], 2)}</td><td>{_pct(ca['accuracy']) if ca else '&ndash;'}</td>"
            f"<td>{_pct(m['chance'])}</td><td>{m['coverage']['classes_covered']} / {m['n_classes']}</td>"
            f"<td>{_fmt(m['coverage']['effective_classes'], 2)}</td></tr>")
    parts.append("</table><p class='note'>n per side: generated images scored, and real images they are compared "
                 "with (the same real images for every run on a dataset); real floor: FID between those real images "
                 "and as many other real ones; classes covered: predicted classes holding at least half their fair "
                 "share of the samples; effective classes: exp(entropy) of the predicted-class histogram.</p>")
    parts.append("<h2>Evaluation classifiers</h2><table><tr><th class='l'>dataset</th><th>input</th>"
                 "<th>train images</th><th>held-out images</th><th>held-out accuracy</th></tr>")
    for ds, c in classifiers.items():
        parts.append(f"<tr><td class='l'>{esc(ds)}</td><td>{'x'.join(str(s) for s in c.get('shape', []))}</td>"
                     f"<td>{c.get('n_train')}</td><td>{c.get('n_holdout')}</td>"
                     f"<td>{_pct(c.get('holdout_accuracy'))}</td></tr>")
    parts.append("</table>")
    for run, r in runs.items():
        m, t = r["metrics"], r["train"]
        train = t.get("train", {})
        parts.append(f"<h2>{esc(run)}: {esc(m['model'])} on {esc(m['dataset'])}</h2><p class='note'>"
                     f"{t.get('steps')} steps, batch {train.get('batch_size')}, Adam lr {train.get('lr_g')} betas "
                     f"{train.get('betas')}, {_fmt(t.get('images_per_s'), 0)} images/s on {esc(str(t.get('device')))}; "
                     f"image shape {t.get('image_shape')}.</p>")
        ca = m.get("conditional_accuracy")
        if ca:
            names = m["class_names"]
            parts.append("<table><tr><th class='l'>requested class</th>" +
                         "".join(f"<th>{esc(str(n))}</th>" for n in names) +
                         "</tr><tr><td class='l'>classified as requested</td>" +
                         "".join(f"<td>{_pct(v)}</td>" for v in ca["accuracy_by_class"]) + "</tr></table>")
        figs = []
        grid = _png_uri(r["grid"])
        if grid:
            figs.append(f"<figure><img class='grid' src='{grid}' alt='{esc(run)} samples, a row per class'>"
                        f"<figcaption>a row per {esc(m['grid']['row_meaning'])}</figcaption></figure>")
        curve = _png_uri(r["loss_curve"])
        if curve:
            figs.append(f"<figure><img class='curve' src='{curve}' alt='{esc(run)} training curves'>"
                        f"<figcaption>training losses and discriminator metrics</figcaption></figure>")
        parts.append("<div class='figs'>" + "".join(figs) + "</div>")
    parts.append("</body></html>\n")
    return "".join(parts)


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

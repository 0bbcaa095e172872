"""The fairness audit report: one self-contained HTML file plus its figures as PNG files.

``fairgen audit`` (:func:`audit`) reads what the pipeline wrote and renders
``fairgen/report/templates/audit.html.j2`` into ONE HTML file a reviewer can open offline: the CSS is
inline, every image is a base64 ``data:`` URI, and there are no scripts, fonts or links that
would reach the network. The same figures are written as PNG files into a figures folder.

Sections
--------
summary
    Plain-language findings generated from the numbers: the fairest method by demographic-parity
    difference, its accuracy cost against the ``real`` baseline, and whether the confidence
    intervals overlap (then the data do not show the difference to be significant).
dataset card
    The manifest (source, root, sizes per split) and P(y=1 | c) of the real splits and of every
    synthetic set.
GAN training
    Curves from each run's ``log.jsonl`` and its per-(c, y) sample grid.
classifiers
    The comparison table with bootstrap intervals, per-group rates, and the accuracy-vs-fairness
    trade-off plot.
synthetic-data quality
    Per-group FID labelled with its feature extractor, label statistics real vs synthetic,
    c-conditioning accuracy (``quality.json`` of :mod:`fairgen.eval.quality`).
paper reference
    Table 1 of Sattigeri et al. (2019) beside our numbers, with the paper's "DP" column named
    for what it is (an error-rate gap).

Inputs: the dataset manifest and every configured classifier's ``metrics.json`` are required
(a missing or invalid one is a :class:`~fairgen.common.errors.DataError` naming the file). Everything
else is optional: a part that is absent (not configured, or not produced) is reported as absent
in its section. A part that is present but malformed is a DataError naming the file.

This module is the entry of the ``audit`` rule: :func:`build` renders, :func:`audit` writes. The work is
done by :mod:`~fairgen.report.loaders` (reading the inputs), :mod:`~fairgen.report.summary` (the
generated prose), :mod:`~fairgen.report.tables` and :mod:`~fairgen.report.context` (the template
context), :mod:`~fairgen.report.reference` (the paper's Table 1) and :mod:`~fairgen.report.render`
(Jinja, figures, formatting).
"""

from __future__ import annotations

import logging
import os

from fairgen.common import io as fio
from fairgen.common.errors import FairgenError
from fairgen.report.context import build_context
from fairgen.report.render import Figure, render_html
from fairgen.report.summary import Summary

log = logging.getLogger(__name__)

TEMPLATE = "audit.html.j2"


def build(cfg: dict, dataset: str | os.PathLike, classifiers_dir: str | os.PathLike,
          **optional) -> tuple[str, list[Figure], Summary]:
    """Read every input and return ``(html, figures, summary)`` without writing anything; the
    optional inputs (``crops_index``, ``gan_dir``, ``quality``, ``frontier``, ...) are those of
    :func:`fairgen.report.context.build_context`."""
    context, figures, summary = build_context(cfg, dataset, classifiers_dir, **optional)
    return render_html(context, TEMPLATE), figures, summary


def audit(cfg: dict, dataset: str, classifiers_dir: str, out_html: str, figures_dir: str,
          crops_index: str | None = None, crops_summary: str | None = None, gan_dir: str | None = None,
          synthetic_dir: str | None = None, quality: str | None = None, comparison: str | None = None,
          thresholds: str | None = None, pair_diagnostics: str | None = None,
          benchmarks: list[str] | None = None, frontier: str | None = None) -> int:
    """CLI target of ``fairgen audit``: write the self-contained HTML report and its figures.

    Required: ``dataset`` (manifest JSON) and ``classifiers_dir`` holding ``METHOD/metrics.json``
    for every ``classifier.methods`` entry. Optional parts (crops index/summary, GAN runs under
    ``gan_dir/RUN/``, synthetic sets under ``synthetic_dir/RUN/``, ``quality`` JSON, the paired
    ``comparison`` Parquet of ``fairgen compare``) are shown as absent in their sections when missing;
    ``benchmarks`` (the upstream jobs' Snakemake benchmark files) fill the run-cost table. Both
    outputs are written atomically.
    """
    html, figures, summary = build(cfg, dataset, classifiers_dir, crops_index=crops_index,
                                   crops_summary=crops_summary, gan_dir=gan_dir,
                                   synthetic_dir=synthetic_dir, quality=quality, comparison=comparison,
                                   thresholds=thresholds, pair_diagnostics=pair_diagnostics,
                                   benchmarks=benchmarks, frontier=frontier)
    names = [f.name for f in figures]
    if len(set(names)) != len(names):
        raise FairgenError(f"duplicate figure names: {sorted(n for n in names if names.count(n) > 1)}")
    with fio.atomic_path(figures_dir, is_dir=True) as tmp:
        for f in figures:
            (tmp / f"{f.name}.png").write_bytes(f.png)
    with fio.atomic_path(out_html) as tmp:
        tmp.write_text(html, encoding="utf-8")
    log.info("audit report: %s (%d KiB, %d figures in %s)", out_html, len(html.encode()) // 1024,
             len(figures), figures_dir)
    for s in summary.sentences:
        log.info("summary: %s", s)
    return 0

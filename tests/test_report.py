"""The fairness audit report (fairgen.report.audit): self-contained HTML, contents, generated summary,
missing inputs, the CLI subcommand and the Snakemake rule.

Inputs are written by tests/browser/report_inputs.py with the producing modules' own functions.
One full report is rendered per module (fixture ``full``) and inspected by several tests.
"""

from __future__ import annotations

import base64
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
import report_inputs as ri  # noqa: E402
from html_tables import assert_row_shows_metrics, column, interval, number, read_table, rows_by_first_cell  # noqa: E402

from fairgen.cli import main as cli_main  # noqa: E402
from fairgen.common import io
from fairgen.common.errors import DataError  # noqa: E402
from fairgen.eval import fairness  # noqa: E402
from fairgen.report import audit as report
from fairgen.report.loaders import MethodResult
from fairgen.report.render import PNG_MAGIC
from fairgen.report.summary import is_constant, summarize

REPO = Path(__file__).resolve().parent.parent


class _Collector(html.parser.HTMLParser):
    """Tags, attributes and text of an HTML document."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._stack: list[str] = []
        self.style = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def handle_data(self, data):
        if self._stack and self._stack[-1] == "style":
            self.style += data
        else:
            self.text.append(data)

    def by_id(self, ident: str):
        return [(t, a) for t, a in self.tags if a.get("id") == ident]


def parse(html_text: str) -> _Collector:
    c = _Collector()
    c.feed(html_text)
    c.close()
    return c


URL_ATTRS = ("src", "href", "srcset", "action", "formaction", "poster", "data", "background", "xlink:href",
             "cite", "longdesc", "manifest", "ping")


def external_references(html_text: str) -> list[str]:
    """Every reference in the document that would make a browser load something: URL-valued
    attributes that are not in-page anchors or data: URIs, CSS url()/@import not to data:,
    and any script, link, iframe, object, embed, base or meta-refresh element."""
    doc = parse(html_text)
    bad = []
    for tag, attrs in doc.tags:
        if tag in ("script", "link", "iframe", "object", "embed", "base", "frame", "audio", "video", "source"):
            bad.append(f"<{tag}>")
        if tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            bad.append("<meta http-equiv=refresh>")
        for name in URL_ATTRS:
            value = (attrs.get(name) or "").strip()
            if name in attrs and not (value.startswith("#") or value.startswith("data:")):
                bad.append(f"<{tag} {name}={value[:80]!r}>")
        style = attrs.get("style") or ""
        bad += [f"style url({u})" for u in re.findall(r"url\(\s*['\"]?([^'\")]*)", style) if not u.startswith("data:")]
    css = doc.style
    bad += [f"css url({u})" for u in re.findall(r"url\(\s*['\"]?([^'\")]*)", css) if not u.startswith("data:")]
    bad += [f"css @import {m}" for m in re.findall(r"@import[^;]*", css)]
    bad += [f"protocol-relative {m}" for m in re.findall(r"""(?:src|href)\s*=\s*["']?//[^"'\s>]*""", html_text)]
    bad += [f"absolute URL in attribute {m}" for m in
            re.findall(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?|ftp|wss?):[^"'\s>]*""", html_text, re.I)]
    return bad


SMALL = {"methods": ["real", "acgan"], "runs": ["fgan_dp", "acgan"], "n_boot": 0}


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory):
    """Complete inputs for a smaller configuration, written once; tests copy them (``small``)."""
    root = tmp_path_factory.mktemp("small")
    cfg = ri.tiny_cfg(**SMALL)
    return cfg, root, ri.make_inputs(root / "in", cfg)


@pytest.fixture
def small(small_inputs, tmp_path):
    """A private copy of the small inputs (tests may damage it)."""
    cfg, root, paths = small_inputs
    shutil.copytree(root / "in", tmp_path / "in")
    return cfg, {k: v.replace(str(root / "in"), str(tmp_path / "in")) for k, v in paths.items()}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """One complete report from every input (5 classifiers, 3 GAN runs, quality)."""
    root = tmp_path_factory.mktemp("audit")
    cfg = ri.tiny_cfg()
    paths = ri.make_inputs(root / "in", cfg)
    out_html, figures = root / "out" / "report.html", root / "out" / "figures"
    assert report.audit(cfg, out_html=str(out_html), figures_dir=str(figures), **paths) == 0
    html_text = out_html.read_text(encoding="utf-8")
    return {"cfg": cfg, "paths": paths, "html": html_text, "doc": parse(html_text), "figures": figures,
            "root": root}


# ------------------------------------------------------------------------ self-containment


def test_report_has_no_network_references(full):
    assert external_references(full["html"]) == []
    imgs = [a for t, a in full["doc"].tags if t == "img"]
    assert imgs and all(a["src"].startswith("data:image/png;base64,") for a in imgs)


def test_reference_checker_flags_what_a_browser_would_load():
    """The checker itself must catch each kind of external reference (else the test above proves nothing)."""
    cases = ['<img src="http://example.org/a.png">', '<img src="//cdn.example.org/a.png">',
             '<a href="https://example.org">x</a>', '<script>1</script>',
             '<link rel="stylesheet" href="x.css">', '<style>@import "x.css";</style>',
             '<style>body{background:url(https://example.org/bg.png)}</style>',
             '<div style="background: url(x.png)"></div>', '<img src="figures/a.png">']
    for snippet in cases:
        assert external_references(f"<html><body>{snippet}</body></html>"), snippet
    assert external_references('<a href="#x">x</a><img src="data:image/png;base64,AAAA">') == []


def test_embedded_images_are_the_figure_files(full):
    """Every figure PNG is embedded exactly once, byte for byte, and nothing else is embedded."""
    embedded = sorted(base64.b64decode(a["src"].split(",", 1)[1])
                      for t, a in full["doc"].tags if t == "img")
    files = sorted(p.read_bytes() for p in full["figures"].glob("*.png"))
    assert embedded == files
    names = {p.stem for p in full["figures"].glob("*.png")}
    runs = full["cfg"]["gan"]["runs"]
    expected = {"base_rates", "tradeoff", "group_rates", "fid_own_cnn", "attribute_coverage"}
    expected |= {f"gan_{r}_curves" for r in runs} | {f"synthetic_{r}_samples" for r in runs}
    expected |= {f"gan_{r}_class_grid" for r in runs} | {f"gan_{r}_samples_step_0000100" for r in runs}
    assert names == expected
    for p in full["figures"].glob("*.png"):
        assert p.read_bytes().startswith(PNG_MAGIC)


# ------------------------------------------------------------------------ contents


def _table_text(html_text: str, table_id: str) -> str:
    m = re.search(rf'<table[^>]*id="{re.escape(table_id)}".*?</table>', html_text, re.S)
    assert m, f"table #{table_id} missing"
    return re.sub(r"<[^>]+>", " ", m.group(0))


def test_comparison_table_has_every_method_metric_and_interval(full):
    """Each method's row shows its metrics.json: every metric and interval in its own cell."""
    header, rows = rows_by_first_cell(full["html"], "comparison-table")
    methods = full["cfg"]["classifier"]["methods"]
    assert list(rows) == methods
    for method in methods:
        metrics = json.loads((Path(full["paths"]["classifiers_dir"]) / method / "metrics.json").read_text())
        assert_row_shows_metrics(header, rows[method], metrics)


def test_paired_table_shows_each_change_against_the_baseline(full):
    from fairgen.common import io

    text = _table_text(full["html"], "paired-table")
    table, _ = io.read_parquet(full["paths"]["comparison"], "comparison")
    methods = [m for m in full["cfg"]["classifier"]["methods"] if m != "real"]
    assert set(table["method"]) == set(methods)
    for m in methods:
        rows = table[table["method"] == m].set_index("metric")
        acc, dp = rows.loc["accuracy"], rows.loc["demographic_parity_difference"]
        assert m in text
        assert f"{acc['difference'] * 100:+.1f}" in text
        assert f"[{acc['difference_lo'] * 100:+.1f}, {acc['difference_hi'] * 100:+.1f}]" in text
        assert f"{dp['baseline']:.3f} \u2192 {dp['value']:.3f}" in text
        assert f"{dp['relative'] * 100:+.0f}%" in text
    assert "paired bootstrap intervals of the change" in full["html"]


def test_group_table_has_rates_per_group(full):
    """Two rows per method (Male = 0, Male = 1), each count, rate and interval in its own cell."""
    header, rows = read_table(full["html"], "group-table")
    methods = full["cfg"]["classifier"]["methods"]
    # the method is named in its first row only
    assert [(r[0]["text"], r[1]["text"]) for r in rows] == [(m if g == 0 else "", f"Male = {g}")
                                                            for m in methods for g in (0, 1)]
    for i, row in enumerate(rows):
        method, g = rows[i - i % 2][0]["text"], row[1]["text"][-1]
        r = json.loads((Path(full["paths"]["classifiers_dir"]) / method / "metrics.json").read_text())
        assert row[column(header, "n")]["text"] == f"{r['groups'][g]['n']:,}"
        assert row[column(header, "Base rate")]["text"] == number(r["groups"][g]["base_rate"])
        for key, label in (("selection_rate", "Selection rate"), ("tpr", "TPR"), ("fpr", "FPR"), ("fnr", "FNR"),
                           ("error_rate", "Error rate")):
            cell = row[column(header, label)]
            assert cell["text"] == number(r["groups"][g][key]), (method, g, key, cell)
            assert cell["sub"] == interval(*r["ci"][f"{key}_c{g}"]), (method, g, key, cell)


def test_dataset_card_base_rates(full):
    text = _table_text(full["html"], "base-rates")
    index = ri.crops_index_frame(full["cfg"])
    for split in ("train", "valid", "test"):
        part = index[index["split"] == split]
        for g in (0, 1):
            p = part[part["Male"] == g]["Attractive"].mean()
            assert f"{p:.3f}" in text
    for run in full["cfg"]["gan"]["runs"]:
        assert f"synthetic {run}" in text
    assert "embedded synthetic stand-in" in full["html"]


def test_gan_section(full):
    text = _table_text(full["html"], "gan-summary")
    for run in full["cfg"]["gan"]["runs"]:
        summary = json.loads((Path(full["paths"]["gan_dir"]) / run / "summary.json").read_text())
        gen = summary["generated"]
        assert f"{gen['by_group']['1']['p_y1']:.3f}" in text
        assert f"{gen['dp_difference_c1_minus_c0']:+.3f}" in text
        assert f"{summary['real_train']['dp_difference_c1_minus_c0']:+.3f}" in text
        assert re.search(rf'<div class="run" id="gan-{run}">', full["html"])
    assert "100" in text and "0.2 min" in text


def quality_label(d):
    from fairgen.eval.quality import dropped_label

    return dropped_label(d)


def test_quality_section(full):
    q = json.loads(Path(full["paths"]["quality"]).read_text())
    fid = _table_text(full["html"], "fid-own_cnn")
    assert "FID (own-CNN features)" in full["html"]
    for run, r in q["runs"].items():
        assert f"{r['fid']['own_cnn']['overall']['value']:.2f}" in fid
        assert f"{r['fid']['own_cnn']['by_group']['1']['value']:.2f}" in fid
        assert f"{r['c_conditioning']['accuracy']:.3f}" in _table_text(full["html"], "conditioning")
        assert f"{r['label_statistics']['synthetic']['by_group']['0']['p_y1']:.3f}" in \
            _table_text(full["html"], "label-stats")
    # attribute coverage: every dropped look in the table, the figure, the untrusted attribute named
    dropped = _table_text(full["html"], "dropped-looks")
    first = full["cfg"]["gan"]["runs"][0]  # the run report_inputs makes drop glasses and old faces
    assert [quality_label(d) for d in q["runs"][first]["attribute_coverage"]["dropped"]] == \
        ["Eyeglasses=1", "Young=0"]
    for run, r in q["runs"].items():
        for d in r["attribute_coverage"]["dropped"]:
            assert re.search(rf"{run}\s+{d['attribute']} = {d['value']}\s+{d['real']:.3f}\s+{d['synthetic']:.3f}",
                             dropped), (run, d)
    assert "attribute_coverage.png" in {p.name for p in Path(full["figures"]).iterdir()}
    assert "Not compared (read poorly on real images): Smiling." in full["html"]
    assert "balanced accuracy &ge; 0.75 with &ge; 10 images of each value" in full["html"]  # the file's rule
    assert "at least 0.02 of cases and a synthetic set in less than 0.25 times" in full["html"]


def test_attribute_coverage_with_no_attribute_read_well_says_so(full, tmp_path):
    """When the attribute reader reads no attribute well on real images (a short training), the
    report says so instead of 'no set dropped a look', and draws no coverage figure."""
    q = json.loads(Path(full["paths"]["quality"]).read_text())
    for entry in q["attribute_coverage"]["real"].values():
        entry["trusted"] = False
    for r in q["runs"].values():
        r["attribute_coverage"]["dropped"] = []
    path = tmp_path / "quality.json"
    path.write_text(json.dumps(q))
    html_text, figures, _ = report.build(full["cfg"], **{**full["paths"], "quality": str(path)})
    assert "reads none of the 3 attributes well enough" in html_text
    assert 'id="dropped-looks"' not in html_text and "No synthetic set dropped a look" not in html_text
    assert "attribute_coverage" not in {f.name for f in figures}
    assert "Not compared (read poorly on real images): Eyeglasses, Young, Smiling." in html_text
    # and with the full file: the table, no warning
    assert "reads none of the" not in full["html"] and 'id="dropped-looks"' in full["html"]


def test_oracle_frontier_section(full):
    """The synthetic source's oracle frontier: each classifier's accuracy against the oracle's
    expected accuracy at the classifier's own DP difference, and the curve on the trade-off plot."""
    from fairgen.eval import frontier as FR

    cfg, paths = full["cfg"], full["paths"]
    data = FR.oracle_split(paths["dataset"], paths["crops_index"], cfg["protected"], cfg["outcome"])
    text = _table_text(full["html"], "frontier-table")
    for method in cfg["classifier"]["methods"]:
        r = json.loads((Path(paths["classifiers_dir"]) / method / "metrics.json").read_text())
        dp, acc = r["fairness"]["demographic_parity_difference"], r["overall"]["accuracy"]
        oracle = FR.frontier(data.p, data.c, [dp])[0]["expected_accuracy"]
        assert re.search(rf"{method}\s+{acc:.3f}\s+{dp:.3f}\s+{oracle:.3f}\s+{(oracle - acc) * 100:.1f} points", text), method
    bayes = FR.frontier(data.p, data.c, [float("inf")])[0]
    assert f"expected accuracy of {bayes['expected_accuracy']:.3f}" in full["html"]
    assert "The dashed line is the oracle frontier" in full["html"]
    assert "Absent:</strong> oracle frontier" not in full["html"]


def test_oracle_frontier_from_the_frontier_file(small, tmp_path):
    """`fairgen audit --frontier FILE` (what the audit rule passes on the synthetic source): the same
    frontier section and trade-off figure as the frontier computed in place; a file of another pair
    or test split fails naming the file."""
    from fairgen.stages import frontier as FR

    cfg, paths = small
    out = tmp_path / "frontier.json"
    assert FR.run(cfg, paths["dataset"], paths["crops_index"], str(out)) == 0
    html_in_place, figures_in_place, _ = report.build(cfg, **paths)
    html_file, figures_file, _ = report.build(cfg, **paths, frontier=str(out))

    def section(html_text):
        return re.search(r"<h3>Oracle frontier</h3>.*?</table>", html_text, re.S).group(0)

    assert section(html_file) == section(html_in_place)
    assert [(f.name, f.png) for f in figures_file] == [(f.name, f.png) for f in figures_in_place]
    assert str(out) in html_file and str(out) not in html_in_place  # the provenance table names the file
    good = json.loads(out.read_text())
    for key, value, match in (("outcome", "Smiling", "outcome 'Smiling'"), ("n", good["n"] + 1, "n "),
                              ("frontier_version", 99, "version 99")):
        io.write_json({**good, key: value}, out)
        with pytest.raises(DataError, match=f"{re.escape(str(out))}: .*{match}"):
            report.build(cfg, **paths, frontier=str(out))
    # a frontier for a source that has none is an error, not a silently dropped input
    io.write_json(good, out)
    io.write_json({**json.loads(Path(paths["dataset"]).read_text()), "source": "celeba_local"}, paths["dataset"])
    with pytest.raises(DataError, match="source 'celeba_local'"):
        report.build(cfg, **paths, frontier=str(out))


def test_oracle_frontier_only_for_the_synthetic_source_and_never_fatal(small, tmp_path):
    from fairgen.common import io

    cfg, paths = small
    manifest = json.loads(Path(paths["dataset"]).read_text())
    io.write_json({**manifest, "source": "celeba_local"}, paths["dataset"])
    html_text = report.build(cfg, **paths)[0]
    assert "frontier-table" not in html_text and "oracle frontier" not in html_text
    # a synthetic manifest whose parameters do not redraw the index: a notice, not a failure
    io.write_json({**manifest, "parameters": {**manifest["parameters"], "seed": 99}}, paths["dataset"])
    html_text = report.build(cfg, **paths)[0]
    assert re.search(r"Absent:</strong> oracle frontier &mdash; <code>[^<]*index\.parquet</code> could not be "
                     r"matched to the dataset \([^)]*row \d+: image", html_text)
    assert "frontier-table" not in html_text


def test_paper_reference_named_honestly(full):
    text = _table_text(full["html"], "paper-table")
    for value in ("0.2023", "0.0447", "0.3009", "0.2910", "0.0204", "0.2657", "0.0507", "0.2447", "0.1144", "0.0123"):
        assert value in text
    assert "Error-rate gap (paper\u2019s \u201cDP\u201d)" in text
    assert "error-rate gap" in full["html"] and "not CelebA" in full["html"]


def test_split_and_layout_are_stated(small):
    """The dataset card and the paper section say which split (and layout) the numbers come from."""
    cfg, paths = small
    html_text, _, _ = report.build(cfg, **paths)
    assert "the dataset&#39;s own partition" in html_text or "the dataset's own partition" in html_text
    manifest = json.loads(Path(paths["dataset"]).read_text())
    manifest.update(layout="kaggle", identity_available=False,
                    split={"method": "random", "test_fraction": 0.1, "valid_fraction": 0.1, "seed": 7})
    Path(paths["dataset"]).write_text(json.dumps(manifest))
    html_text = report.build(cfg, **paths)[0]
    said = "random by image (seed 7): test 10% of all images, valid 10% of the rest for model selection"
    assert f'<p id="paper-split">Split used here: {said}.' in html_text
    assert "Kaggle copy" in html_text and "identities not available" in html_text


def test_output_is_deterministic(small):
    cfg, paths = small
    html1, figures1, _ = report.build(cfg, **paths)
    html2, figures2, _ = report.build(cfg, **paths)
    assert html1 == html2
    assert [(f.name, f.png) for f in figures1] == [(f.name, f.png) for f in figures2]


# ------------------------------------------------------------------------ generated summary


def _result(method: str, sr0: float, sr1: float, flip: float, n_boot: int = 200, seed: int = 0):
    y, p, c = ri.predictions(sr0, sr1, flip, seed)
    r = fairness.evaluate(y, p, c, privileged=0, n_boot=n_boot, seed=seed, allow_undefined=True)
    r["method"] = method
    return MethodResult(method, Path(f"{method}/metrics.json"), r, fairness.flatten(r))


@pytest.mark.parametrize("rates, fairest", [
    ({"real": (0.70, 0.30), "reweighing": (0.55, 0.50), "fgan_dp": (0.60, 0.40)}, "reweighing"),
    ({"real": (0.70, 0.30), "reweighing": (0.62, 0.40), "fgan_dp": (0.51, 0.50)}, "fgan_dp"),
])
def test_summary_names_fairest_method_and_accuracy_cost(rates, fairest):
    results = [_result(m, *r, flip=0.1 if m == "real" else 0.2, seed=k) for k, (m, r) in enumerate(rates.items())]
    s = summarize(results, level=0.95)
    assert s.fairest == fairest == s.facts["fairest"]
    best = next(m for m in results if m.method == fairest)
    base = next(m for m in results if m.method == "real")
    assert s.facts["fairest_dp"] == pytest.approx(abs(rates[fairest][0] - rates[fairest][1]))
    da = best.value("accuracy") - base.value("accuracy")
    assert s.facts["accuracy_change"] == pytest.approx(da)
    assert da < 0
    text = " ".join(s.sentences)
    assert f"Fairest by demographic-parity (DP) difference: {fairest}," in text
    assert f"a cost of {abs(da) * 100:.1f} percentage points" in text
    # large reductions with 800 rows: the DP intervals of the fairest and the baseline are disjoint
    assert s.facts["dp_overlap_with_baseline"] is False
    assert any(t.startswith("That is down from") and "intervals do not overlap" in t for t in s.sentences)


def test_summary_splits_the_gan_accuracy_cost_into_fidelity_and_fairness_term():
    results = [_result("real", 0.70, 0.30, 0.1, seed=1), _result("acgan", 0.65, 0.35, 0.25, seed=2),
               _result("fgan_dp", 0.52, 0.48, 0.35, seed=3)]
    s = summarize(results, level=0.95)
    acc = {m.method: m.value("accuracy") for m in results}
    assert s.facts["gan_fidelity_accuracy_change"] == pytest.approx(acc["acgan"] - acc["real"])
    assert s.facts["fairness_term_accuracy_change_fgan_dp"] == pytest.approx(acc["fgan_dp"] - acc["acgan"])
    text = next(t for t in s.sentences if t.startswith("Where the synthetic classifiers' accuracy goes"))
    assert f"loses {abs(acc['acgan'] - acc['real']) * 100:.1f} percentage points against 'real'" in text
    assert f"fgan_dp loses {abs(acc['fgan_dp'] - acc['acgan']) * 100:.1f} percentage points more" in text
    # without the no-fairness run there is nothing to split
    s2 = summarize([results[0], results[2]], level=0.95)
    assert "gan_fidelity_accuracy_change" not in s2.facts
    assert not any(t.startswith("Where the synthetic") for t in s2.sentences)


def test_summary_says_when_intervals_overlap():
    # 0.40 vs 0.36 DP difference on 800 rows: bootstrap intervals overlap
    results = [_result("real", 0.70, 0.30, 0.1, seed=1), _result("fgan_dp", 0.68, 0.32, 0.1, seed=2)]
    s = summarize(results, level=0.95)
    assert s.fairest == "fgan_dp"
    assert s.facts["dp_overlap_with_baseline"] is True
    assert any("95% confidence intervals overlap, so this reduction is not significant" in t for t in s.sentences)


def test_summary_judges_the_change_by_its_paired_interval():
    # the same rows (seed 1) for both classifiers: their separate DP intervals overlap, but on every
    # resample of those rows fgan_dp's gap is the smaller one
    results = [_result("real", 0.70, 0.30, 0.1, seed=1), _result("fgan_dp", 0.66, 0.34, 0.1, seed=1)]
    y, p_base, c = ri.predictions(0.70, 0.30, 0.1, seed=1)
    y2, p_new, c2 = ri.predictions(0.66, 0.34, 0.1, seed=1)
    assert (y == y2).all() and (c == c2).all()
    r = fairness.paired_difference(y, c, p_base, p_new, privileged=0, n_boot=300, seed=0)["metrics"]
    paired = {"fgan_dp": {k: {"difference": e["difference"], "difference_lo": e["lower"],
                              "difference_hi": e["upper"], "relative": e["relative"]} for k, e in r.items()}}
    assert summarize(results, level=0.95).facts["dp_overlap_with_baseline"] is True
    s = summarize(results, level=0.95, paired=paired)
    lo, hi = s.facts["dp_change_paired_interval"]
    assert hi < 0 and s.facts["dp_relative_change"] == pytest.approx(0.32 / 0.40 - 1)
    text = " ".join(s.sentences)
    assert f"20% lower; the paired 95% interval of the change, [{lo:+.3f}, {hi:+.3f}], excludes 0: " \
           "a significant reduction on this test set" in text
    assert "paired 95% interval of the change [" in text and "not a significant difference" in text


def test_summary_runner_up_overlap_and_baseline_fairest():
    results = [_result("real", 0.52, 0.50, 0.1, seed=1), _result("fgan_dp", 0.70, 0.30, 0.1, seed=2),
               _result("acgan", 0.53, 0.50, 0.1, seed=3)]
    s = summarize(results, level=0.95)
    assert s.fairest == "real"
    assert any("No debiasing method reached a lower DP difference" in t for t in s.sentences)
    assert s.facts["runner_up"] == "acgan" and s.facts["dp_overlap_with_runner_up"] is True
    assert any("do not single out real" in t for t in s.sentences)


def test_summary_leaves_constant_classifiers_out_of_the_ranking():
    """A classifier that predicts one outcome for everyone has DP difference 0: trivially, not fairly."""
    results = [_result("real", 0.70, 0.30, 0.1, seed=1), _result("acgan", 1.0, 1.0, 0.0, seed=2),
               _result("fgan_dp", 0.60, 0.45, 0.1, seed=3), _result("reweighing", 0.0, 0.0, 0.0, seed=4)]
    assert [is_constant(m) for m in results] == [False, True, False, True]
    assert results[1].value("demographic_parity_difference") == 0.0
    s = summarize(results, level=0.95)
    assert s.fairest == "fgan_dp"
    assert s.facts["constant"] == ["acgan", "reweighing"]
    assert s.sentences[0].startswith("acgan and reweighing predict the same outcome for every test image")
    assert s.facts["smallest_equal_opportunity_difference"] in ("real", "fgan_dp")
    everything = [_result("real", 1.0, 1.0, 0.0), _result("fgan_dp", 0.0, 0.0, 0.0)]
    s = summarize(everything, level=0.95)
    assert s.fairest is None
    assert "Every classifier predicts a constant outcome, so no method can be called fairest." in s.sentences
    assert s.facts["most_accurate"] == "fgan_dp"  # y=1 for 45% of the rows: always-0 is right for 55%
    assert "smallest_error_rate_gap" not in s.facts  # no non-constant classifier to rank



def test_summary_without_baseline_or_intervals():
    results = [_result("fgan_dp", 0.55, 0.45, 0.1, n_boot=0), _result("acgan", 0.70, 0.30, 0.1, n_boot=0)]
    s = summarize(results, level=None)
    assert s.fairest == "fgan_dp"
    assert any("'real' baseline" in t and "not evaluated" in t for t in s.sentences)
    assert "[" not in s.sentences[0]  # no interval to quote
    assert s.facts["constant"] == []


def test_summary_in_html_names_fairest(full):
    doc = full["doc"]
    assert doc.by_id("fairest-method")
    html_text = full["html"]
    fairest = re.search(r'id="fairest-method">([^<]+)<', html_text).group(1)
    expected = min(ri.DEFAULT_RATES, key=lambda m: abs(ri.DEFAULT_RATES[m][0] - ri.DEFAULT_RATES[m][1]))
    assert fairest == expected == "fgan_dp"
    findings = re.search(r'<ul class="findings" id="findings">(.*?)</ul>', html_text, re.S).group(1)
    assert f"Fairest by demographic-parity (DP) difference: {expected}" in findings


# ------------------------------------------------------------------------ missing / bad inputs


def test_missing_optional_parts_are_reported_not_fatal(tmp_path):
    cfg = ri.tiny_cfg(methods=["real", "fgan_dp"], runs=["fgan_dp"], n_boot=0)
    paths = ri.make_inputs(tmp_path / "in", cfg, with_optional=False)
    html_text, figures, _ = report.build(cfg, **paths, gan_dir=str(tmp_path / "gan"),
                                         synthetic_dir=str(tmp_path / "synthetic"),
                                         quality=str(tmp_path / "quality.json"),
                                         crops_summary=str(tmp_path / "crops_summary.json"))
    for missing in ("gan/fgan_dp", "synthetic/fgan_dp/samples.parquet", "quality.json", "crops_summary.json"):
        assert re.search(rf"Absent:</strong>[^<]*<code>[^<]*{re.escape(missing)}</code>", html_text), missing
    assert external_references(html_text) == []
    assert {f.name for f in figures} == {"base_rates", "tradeoff", "group_rates"}  # base rates from the manifest
    assert "No bootstrap intervals were computed" in html_text


def test_paired_comparison_absent_or_against_another_baseline(small, tmp_path):
    from fairgen.common import io

    cfg, paths = small
    assert "paired-table" in report.build(cfg, **paths)[0]
    os.remove(paths["comparison"])
    html_text, _, s = report.build(cfg, **paths)
    assert re.search(r"Absent:</strong>[^<]*<code>[^<]*comparison\.parquet</code>", html_text)
    assert "paired-table" not in html_text and "dp_change_paired_interval" not in s.facts
    table = pd.DataFrame({c: [] for c in ("method", "metric", "baseline", "value", "difference", "difference_lo",
                                          "difference_hi", "relative", "relative_lo", "relative_hi", "n_valid")})
    io.write_parquet(table, paths["comparison"], "comparison", metadata={"baseline": "reweighing"})
    with pytest.raises(DataError, match="comparison.parquet: a comparison against 'reweighing'"):
        report.build(cfg, **paths)


def test_no_gan_runs_configured(tmp_path):
    cfg = ri.tiny_cfg(methods=["real", "reweighing"], runs=[], n_boot=0)
    paths = ri.make_inputs(tmp_path / "in", cfg)
    html_text, _, s = report.build(cfg, **paths)
    assert "No GAN runs are configured" in html_text
    assert s.fairest == "reweighing"


@pytest.mark.parametrize("damage, message", [
    (lambda p: os.remove(Path(p["classifiers_dir"]) / "acgan" / "metrics.json"), r"acgan/metrics\.json: file not found"),
    (lambda p: os.remove(p["dataset"]), r"dataset\.json: file not found"),
    (lambda p: Path(p["classifiers_dir"], "real", "metrics.json").write_text("{oops"),
     r"real/metrics\.json, line 1: invalid JSON"),
    (lambda p: Path(p["classifiers_dir"], "real", "metrics.json").write_text('{"method": "real"}'),
     r"real/metrics\.json: not a fairgen\.eval\.fairness\.evaluate result"),
    (lambda p: shutil.copy(Path(p["classifiers_dir"], "real", "metrics.json"),
                           Path(p["classifiers_dir"], "acgan", "metrics.json")),
     r"acgan/metrics\.json: metrics of method 'real', expected 'acgan'"),
    (lambda p: Path(p["quality"]).write_text('{"format": "other"}'), r"quality\.json: not a fairgen quality file"),
    (lambda p: Path(p["gan_dir"], "fgan_dp", "log.jsonl").write_text('{"loss_d": 1}\n'),
     r"fgan_dp/log\.jsonl: record 1 is not an object with an integer 'step'"),
    (lambda p: Path(p["gan_dir"], "acgan", "class_grid.png").write_bytes(b"GIF89a"), r"acgan/class_grid\.png: not a PNG"),
    (lambda p: Path(p["gan_dir"], "acgan", "summary.json").write_text("[1]"), r"acgan/summary\.json: expected a JSON object"),
])
def test_bad_inputs_raise_data_error_naming_the_file(small, tmp_path, damage, message):
    cfg, paths = small
    damage(paths)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=message):
        report.audit(cfg, out_html=str(out / "r.html"), figures_dir=str(out / "fig"), **paths)
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


# ------------------------------------------------------------------------ CLI and Snakemake


def test_cli_audit(full, tmp_path, capsys):
    p = full["paths"]
    args = ["audit", "--set", "classifier.bootstrap=60", "--dataset", p["dataset"],
            "--classifiers-dir", p["classifiers_dir"], "--out-html", str(tmp_path / "r.html"),
            "--figures-dir", str(tmp_path / "fig")]
    assert cli_main(args) == 0
    html_text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<title>Fairness audit: Attractive by Male</title>" in html_text
    header, rows = rows_by_first_cell(html_text, "comparison-table")
    for method in full["cfg"]["classifier"]["methods"]:  # the classifiers it was pointed at
        assert_row_shows_metrics(header, rows[method],
                                 json.loads((Path(p["classifiers_dir"]) / method / "metrics.json").read_text()))
    assert {f.stem for f in (tmp_path / "fig").glob("*.png")} == {"tradeoff", "group_rates", "base_rates"}
    args[args.index("--classifiers-dir") + 1] = str(tmp_path / "nowhere")
    assert cli_main(args) == 2
    assert "nowhere/real/metrics.json: file not found" in capsys.readouterr().err


@pytest.mark.e2e
def test_snakemake_audit_rule_and_native_report(small, tmp_path):
    """The repository workflow's audit rule (and the paired comparison it reads) runs on existing
    stage outputs (the other stages' jobs are not allowed to run), and `snakemake --report` embeds
    its outputs."""
    work = tmp_path / "wf"
    cfg, paths = small
    src = Path(paths["dataset"]).parent.parent
    res = work / "results"
    shutil.copytree(src / "data", res / "data")
    for name in ("classifiers", "gan", "synthetic", "quality"):
        shutil.copytree(src / name, res / name)
    # the other outputs of the upstream rules, so that only the audit job is out of date
    (res / "data" / "crops.npy").write_bytes(b"")
    (res / "data" / "previews").mkdir()
    for method in cfg["classifier"]["methods"]:
        for name in ("model.pt", "curve.json"):
            (res / "classifiers" / method / name).write_bytes(b"")
    for run in cfg["gan"]["runs"]:
        (res / "gan" / run / "checkpoint.pt").write_bytes(b"")
    # the threshold_baseline rule's output (the group-threshold curve the audit draws)
    io.write_json({"points": [{"bound": 0.0, "test_accuracy": 0.6, "test_demographic_parity_difference": 0.0}]},
                  res / "classifiers" / "real_thresholds" / "curve.json")
    # the frontier rule's output (the oracle frontier of the synthetic source)
    from fairgen.stages import frontier

    assert frontier.run(cfg, str(res / "data" / Path(paths["dataset"]).name),
                        str(res / "data" / Path(paths["crops_index"]).name), str(res / "frontier" / "frontier.json")) == 0
    # the upstream jobs' benchmark files (the run-cost table); Snakemake's own columns
    bench = res / "benchmarks"
    jobs = ["dataset", "crops", "quality", "compare_classifiers", "threshold_baseline", "frontier",
            *(f"{stage}/{run}" for stage in ("train_gan", "generate") for run in SMALL["runs"]),
            *(f"classifiers/{method}" for method in SMALL["methods"])]
    for k, job in enumerate(jobs):
        (bench / job).parent.mkdir(parents=True, exist_ok=True)
        (bench / f"{job}.tsv").write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                                          f"{k + 1}.5\t0:00:0{k % 10}\t{100 + k}.0\t1.0\t1.0\t1.0\t0\t0\t90.0\t{k + 1}.3\n")
    for path in [res, *res.rglob("*")]:  # one common time: no upstream output is newer than another
        os.utime(path, (1_700_000_000, 1_700_000_000))
    for f in ("Snakefile", "config", "workflow"):
        os.symlink(REPO / f, work / f)
    (work / "extra.yaml").write_text(json.dumps({"classifier": {"methods": SMALL["methods"], "bootstrap": 0},
                                                 "gan": {"runs": SMALL["runs"]}}))
    base = [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", "config/config.yaml", "extra.yaml"]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    run = subprocess.run(base + ["--allowed-rules", "audit", "compare_classifiers", "--", "results/audit/report.html"], cwd=work,
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    html_text = (res / "audit" / "report.html").read_text()
    assert external_references(html_text) == []
    # the run-cost table: one row per upstream job, its numbers as the benchmark file has them
    _, cost_rows = rows_by_first_cell(html_text, "run-cost")
    assert set(cost_rows) == set(jobs) | {"all jobs"}
    k = jobs.index("train_gan/" + SMALL["runs"][0])
    assert [c["text"] for c in cost_rows["train_gan/" + SMALL["runs"][0]][1:]] == [f"{k + 1}.5", f"{k + 1}.3", f"{100 + k}"]
    assert 'id="frontier-table"' in html_text  # the frontier rule's output reaches the audit
    assert "results/frontier/frontier.json" in html_text  # read from the file (the provenance table names it)
    _, figures, _ = report.build(cfg, **paths)
    assert sorted(p.stem for p in (res / "audit" / "figures").glob("*.png")) == sorted(f.name for f in figures)
    assert "audit report: results/audit/report.html" in (res / "logs" / "audit.log").read_text()
    rep = subprocess.run(base + ["--report", "native.html", "--", "results/audit/report.html"], cwd=work,
                         capture_output=True, text=True, env=env, timeout=300)
    assert rep.returncode == 0, rep.stderr[-3000:]
    native = (work / "native.html").read_text()
    assert "tradeoff.png" in native and "report.html" in native


def test_sample_grid_places_samples_pixel_for_pixel():
    """Each (c, y) grid is enlarged by a whole factor and placed unresampled; an empty cell is labelled."""
    import io as _io

    import numpy as np
    from PIL import Image

    from fairgen.common import figures as report_plots

    rng = np.random.default_rng(0)
    cells = {(0, 0): rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8),
             (0, 1): rng.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8),
             (1, 0): rng.integers(0, 255, (3, 8, 8, 3), dtype=np.uint8), (1, 1): None}
    png = report_plots.sample_grid(cells, "t", ("Male = 0", "Male = 1"), "Attractive", ncol=2, panel_px=68)
    img = np.asarray(Image.open(_io.BytesIO(png)).convert("RGB"))
    grid = report_plots.tile(cells[(0, 0)], 2, 3)  # 3 rows: the largest cell needs them
    scale = round(68 / grid.shape[1])
    big = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    found = [(r, c) for r in range(img.shape[0] - big.shape[0] + 1) for c in range(img.shape[1] - big.shape[1] + 1)
             if (img[r, c] == big[0, 0]).all() and (img[r:r + big.shape[0], c:c + big.shape[1]] == big).all()]
    assert len(found) == 1


def test_pair_diagnostics_and_threshold_curve_reach_the_report(small, tmp_path):
    """The group-threshold curve joins the trade-off figure and the pair diagnostics get a table
    whose cells hold the JSON's numbers."""
    cfg, paths = small
    curve = {"points": [{"bound": 0.0, "test_accuracy": 0.61, "test_demographic_parity_difference": 0.01},
                        {"bound": 0.3, "test_accuracy": 0.74, "test_demographic_parity_difference": 0.29}]}
    diag = {"n_pairs": 123, "flip_success": {"both_members": 0.812, "reads_c0_on_c0_member": 0.9,
                                             "reads_c1_on_c1_member": 0.91, "c_reader_accuracy_real_test": 0.95},
            "identity_kept": {"agreement_pairs": 0.871, "agreement_unpaired": 0.702},
            "classifiers": {"real": {"c_sensitivity_pairs": 1.234, "c_sensitivity_pairs_signed": -1.111,
                                     "pairs_same_side_of_threshold": 0.676, "c_sensitivity_real": -0.543,
                                     "domain_separability": {"accuracy": 0.987}}}}
    io.write_json(curve, tmp_path / "curve.json")
    io.write_json(diag, tmp_path / "diag.json")
    out = tmp_path / "out"
    before = report.build(cfg, **paths)[1]
    assert report.audit(cfg, out_html=str(out / "r.html"), figures_dir=str(out / "f"), **paths,
                        thresholds=str(tmp_path / "curve.json"), pair_diagnostics=str(tmp_path / "diag.json")) == 0
    text = (out / "r.html").read_text(encoding="utf-8")
    table = re.search(r'<table id="pair-diagnostics-table">(.*?)</table>', text, re.S).group(1)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)]
    assert rows == [["real", "1.234", "-1.111", "0.676", "-0.543", "0.987"]]
    assert "0.812 of the pairs" in text and "0.871" in text and "0.702" in text
    # the trade-off figure now draws one more curve: a different picture from the one without it
    tradeoff_before = next(f.png for f in before if f.name == "tradeoff")
    assert (out / "f" / "tradeoff.png").read_bytes() != tradeoff_before

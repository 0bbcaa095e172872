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
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fairgen import __version__
from fairgen.common import figures as plots
from fairgen.common import io as fio
from fairgen.common.errors import DataError, FairgenError
from fairgen.report.run_cost import run_cost

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE = "audit.html.j2"
STYLESHEET = "audit.css"
BASELINE = "real"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL_IMAGE_PX = 320

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

# Sattigeri et al. (2019), Table 1: CelebA, c = Male, y = Attractive, groups Male=0 / Male=1.
PAPER = {
    "citation": ("P. Sattigeri, S. C. Hoffman, V. Chenthamarakshan, K. R. Varshney: Fairness GAN: "
                 "Generating datasets with fairness properties using a generative adversarial network. "
                 "IBM J. Res. Dev. 63(4/5), 2019 (ICLR 2019 SafeML workshop), Table 1"),
    "protected": "Male",
    "outcome": "Attractive",
    "rows": (
        {"method": "real", "paper_name": "No debiasing", "error_rate": 0.2023, "error_rate_gap": 0.0447,
         "equal_opportunity_difference": 0.3009, "fpr_c0": 0.4043, "fpr_c1": 0.0927, "fnr_c0": 0.1213,
         "fnr_c1": 0.4222, "error_rate_c0": 0.2196, "error_rate_c1": 0.1749},
        {"method": "fgan_dp", "paper_name": "FGAN-DP", "error_rate": 0.2910, "error_rate_gap": 0.0204,
         "equal_opportunity_difference": 0.2253},
        {"method": "fgan_eqopp", "paper_name": "FGAN-EqOpp", "error_rate": 0.2657, "error_rate_gap": 0.0507,
         "equal_opportunity_difference": 0.2253},
        {"method": "reweighing", "paper_name": "Reweighing", "error_rate": 0.2447, "error_rate_gap": 0.1144,
         "equal_opportunity_difference": 0.0123},
    ),
}
PAPER_COLUMNS = (
    ("error_rate", "Error rate"),
    ("error_rate_c0", "err (c=0)"),
    ("error_rate_c1", "err (c=1)"),
    ("error_rate_gap", "Error-rate gap (paper\u2019s \u201cDP\u201d)"),
    ("equal_opportunity_difference", "EO diff. (paper\u2019s \u201cEO\u201d)"),
    ("demographic_parity_difference", "DP diff. (not in paper)"),
)
PAPER_GROUP_COLUMNS = (
    ("fpr_c0", "FPR (c=0)"),
    ("fpr_c1", "FPR (c=1)"),
    ("fnr_c0", "FNR (c=0)"),
    ("fnr_c1", "FNR (c=1)"),
    ("error_rate_c0", "err (c=0)"),
    ("error_rate_c1", "err (c=1)"),
)

SOURCE_NAMES = {
    "synthetic": "the embedded synthetic stand-in for CelebA (rendered faces in CelebA's file format)",
    "celeba_download": "CelebA (downloaded, checksums verified)",
    "celeba_local": "CelebA (a local copy)",
}


# ============================================================================ small helpers


def fmt(v, digits: int = 3) -> str:
    """A number for a table cell; an em dash for a missing value."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "\u2014"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{int(v):,}"
    return f"{float(v):.{digits}f}"


def fmt_ci(lo, hi, digits: int = 3) -> str:
    if lo is None or hi is None:
        return ""
    return f"[{float(lo):.{digits}f}, {float(hi):.{digits}f}]"


def overlaps(a: tuple | None, b: tuple | None) -> bool | None:
    """Whether two closed intervals overlap; None when either is unknown."""
    if a is None or b is None or None in a or None in b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def group_labels(protected: str) -> tuple[str, str]:
    return f"{protected} = 0", f"{protected} = 1"


@dataclass
class Missing:
    """An optional input that is absent, shown as a notice in its section."""

    what: str
    path: str
    reason: str = "not found"


@dataclass
class Figure:
    name: str  # file stem in the figures folder
    title: str
    caption: str
    png: bytes

    @property
    def uri(self) -> str:
        return data_uri(self.png)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, from the PNG header."""
        if len(self.png) < 24 or not self.png.startswith(PNG_MAGIC):
            raise DataError(f"figure '{self.name}': not a PNG image")
        return int.from_bytes(self.png[16:20], "big"), int.from_bytes(self.png[20:24], "big")

    @property
    def small(self) -> bool:
        """A raw sample grid too small to look at 1:1; shown enlarged with crisp pixels."""
        return self.size[0] < SMALL_IMAGE_PX


@dataclass
class Inputs:
    """Every file the report read, for the provenance table."""

    files: list[tuple[str, str, Path]] = field(default_factory=list)  # (role, path shown, path)

    def add(self, role: str, path: Path) -> None:
        self.files.append((role, str(path), Path(path)))

    def rows(self) -> list[dict]:
        out = []
        for role, shown, path in self.files:
            size = path.stat().st_size
            out.append({"role": role, "path": shown, "size": f"{size:,} B", "sha256": _sha256(path)[:16]})
        return out


def _read_json(path: Path, inputs: Inputs, role: str) -> dict:
    obj = fio.read_json(path)
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    inputs.add(role, path)
    return obj


def _get(obj: dict, path: Path, *keys, types=None):
    """``obj[k1][k2]...`` or a DataError naming the file and the dotted key."""
    cur = obj
    for i, k in enumerate(keys):
        if not isinstance(cur, dict) or k not in cur:
            raise DataError(f"{path}: missing key '{'.'.join(map(str, keys[:i + 1]))}'")
        cur = cur[k]
    if types is not None and not isinstance(cur, types):
        raise DataError(f"{path}: key '{'.'.join(map(str, keys))}' has the wrong type ({type(cur).__name__})")
    return cur


def _prob(value, path: Path, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value <= 1):
        raise DataError(f"{path}: '{key}' must be a probability in [0, 1], found {value!r}")
    return float(value)


# ============================================================================ classifiers


@dataclass
class MethodResult:
    """One classifier's ``metrics.json`` (a :func:`fairgen.eval.fairness.evaluate` result + provenance)."""

    method: str
    path: Path
    result: dict
    flat: dict

    def value(self, metric: str):
        v = self.flat.get(metric)
        return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)

    def interval(self, metric: str) -> tuple[float, float] | None:
        ci = self.result.get("ci", {}).get(metric)
        if not ci or ci[0] is None or ci[1] is None:
            return None
        return float(ci[0]), float(ci[1])

    def triple(self, metric: str) -> tuple:
        ci = self.interval(metric) or (None, None)
        return self.value(metric), ci[0], ci[1]


def load_classifier(path: Path, method: str) -> MethodResult:
    from fairgen.eval.fairness import flatten

    result = fio.read_json(path)
    if not isinstance(result, dict):
        raise DataError(f"{path}: expected a JSON object (fairgen.eval.fairness.evaluate result)")
    try:
        flat = flatten(result)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    got = result.get("method", method)
    if got != method:
        raise DataError(f"{path}: metrics of method '{got}', expected '{method}'")
    for key in ("accuracy", "demographic_parity_difference"):
        if key not in flat:
            raise DataError(f"{path}: no '{key}' in the metrics")
    return MethodResult(method, path, result, flat)


def load_classifiers(methods: list[str], classifiers_dir: Path, inputs: Inputs) -> list[MethodResult]:
    if not methods:
        raise DataError("classifier.methods is empty: the audit needs at least one classifier")
    out = []
    for method in methods:
        path = classifiers_dir / method / "metrics.json"
        out.append(load_classifier(path, method))
        inputs.add(f"classifier {method}", path)
    levels = {round(float(m.result.get("bootstrap", {}).get("level", 0.95)), 6) for m in out}
    if len(levels) > 1:
        log.warning("classifier metrics use different CI levels: %s", sorted(levels))
    return out


def classifier_disparities(cfg: dict, methods: list[str], classifiers_dir: Path, inputs: Inputs,
                           labels: tuple[str, str]) -> tuple[list[dict], list[Missing]]:
    """Each classifier's test predictions through the same audit as ``fairgen audit-predictions``
    (:func:`fairgen.eval.fairness.group_audit`, groups = the protected attribute): the pass/fail table
    of disparities against the reference group at ``audit_predictions.tolerance``."""
    from fairgen.eval import fairness as F
    from fairgen.report import predictions_html as audit_report

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
        out.append({"method": method, "id": f"passfail-classifier-{k}", "table": audit_report.passfail_table(res),
                    "reference": res["reference"], "tolerance": res["tolerance"]})
    return out, missing


def ci_level(results: list[MethodResult]) -> float | None:
    for m in results:
        b = m.result.get("bootstrap") or {}
        if b.get("n_boot"):
            return float(b.get("level", 0.95))
    return None


# ============================================================================ summary


@dataclass
class Summary:
    fairest: str | None
    sentences: list[str]
    facts: dict


def _is_level(d: float) -> bool:
    """Whether a change rounds to 0.0 percentage points (as :func:`_pct_points` prints it)."""
    return abs(d) < 5e-4


def _pct_points(d: float) -> str:
    return f"{abs(d) * 100:.1f} percentage point{'s' if round(abs(d) * 100, 1) != 1 else ''}"


def _with_ci(m: MethodResult, metric: str) -> str:
    v, lo, hi = m.triple(metric)
    ci = f" {fmt_ci(lo, hi)}" if lo is not None else ""
    return f"{fmt(v)}{ci}"


def is_constant(m: MethodResult) -> bool:
    """Whether a classifier predicted the same outcome for every test row (selection rate 0 in
    both groups, or 1 in both): its DP, EO and equalized-odds differences are then trivially 0."""
    s0, s1 = m.value("selection_rate_c0"), m.value("selection_rate_c1")
    return s0 is not None and s0 == s1 and s0 in (0.0, 1.0)


def _names(methods: list[str]) -> str:
    return methods[0] if len(methods) == 1 else ", ".join(methods[:-1]) + " and " + methods[-1]


def summarize(results: list[MethodResult], level: float | None, baseline: str = BASELINE,
              paired: dict | None = None) -> Summary:
    """Plain-language findings generated from the classifier metrics.

    Fairest = smallest demographic-parity difference among the classifiers that do not predict
    a constant outcome (ties: the earlier method in the configured order; constant classifiers
    are named and left out, their zero gaps being trivial). A change against the baseline is
    called significant when its paired interval (``paired``, from ``fairgen compare``) excludes
    0; without one, only when the two methods' own intervals do not overlap (a stricter test).
    Other differences are judged by overlap of the methods' intervals.
    """
    level_txt = _level_txt(level)
    dp = "demographic_parity_difference"
    facts: dict = {"baseline": baseline if any(m.method == baseline for m in results) else None}
    sentences = []
    constant = [m for m in results if is_constant(m)]
    facts["constant"] = [m.method for m in constant]
    if constant:
        one = len(constant) == 1
        sentences.append(
            f"{_names(facts['constant'])} predict{'s' if one else ''} the same outcome for every test image: "
            f"{'its' if one else 'their'} zero DP, equal-opportunity and equalized-odds differences are trivial, "
            f"so {'it is' if one else 'they are'} left out of the fairness rankings below.")
    ranked = [m for m in results if not is_constant(m)]
    scored = [m for m in ranked if m.value(dp) is not None]
    if not scored:
        sentences.append("Every classifier predicts a constant outcome, so no method can be called fairest."
                         if not ranked else "No classifier has a defined demographic-parity difference, so no "
                         "method can be called fairest.")
        _extremes(results, ranked, sentences, facts)
        return Summary(None, sentences, facts)
    best = min(scored, key=lambda m: m.value(dp))
    facts["fairest"] = best.method
    facts["fairest_dp"] = best.value(dp)
    base = next((m for m in results if m.method == baseline), None)
    ties = [m.method for m in scored if m is not best and m.value(dp) == best.value(dp)]
    tie_txt = f" (tied with {_names(ties)})" if ties else ""
    sentences.append(f"Fairest by demographic-parity (DP) difference: {best.method}{tie_txt}, "
                     f"{_with_ci(best, dp)} (|P(\u0177=1 | c=0) \u2212 P(\u0177=1 | c=1)| on the real test split).")
    if len(results) == 1:
        sentences.append("Only one classifier was evaluated, so there is nothing to compare it with.")
        return Summary(best.method, sentences, facts)
    if base is None:
        sentences.append(f"The '{baseline}' baseline (a classifier trained on the real data without "
                         "debiasing) was not evaluated, so no accuracy cost can be stated.")
    elif best is base:
        sentences.append(f"No debiasing method reached a lower DP difference than the '{baseline}' baseline.")
    else:
        if base in constant:
            sentences.append(f"The '{baseline}' baseline predicts a constant outcome, so its DP difference is no "
                             "reference to measure a reduction against.")
        else:
            ov = overlaps(best.interval(dp), base.interval(dp))
            facts["dp_overlap_with_baseline"] = ov
            change = f"down from {_with_ci(base, dp)} for the '{baseline}' baseline"
            row = (paired or {}).get(best.method, {}).get(dp)
            if row is not None and _finite(row["difference_lo"]) is not None:
                lo, hi = float(row["difference_lo"]), float(row["difference_hi"])
                facts["dp_change_paired_interval"] = [lo, hi]
                facts["dp_relative_change"] = _finite(row["relative"])
                rel = (f", {abs(row['relative']) * 100:.0f}% lower" if _finite(row["relative"]) is not None
                       and row["relative"] < 0 else "")
                verdict = ("excludes 0: a significant reduction on this test set" if hi < 0
                           else "includes 0: not a significant reduction on this test set")
                sig = f"{rel}; the paired {level_txt}interval of the change, [{lo:+.3f}, {hi:+.3f}], {verdict}"
            elif ov is None:
                sig = " (no confidence intervals, so significance is not assessed)"
            elif ov:
                sig = (f"; the {level_txt}confidence intervals overlap, so this reduction is not "
                       "significant on this test set")
            else:
                sig = f"; the {level_txt}confidence intervals do not overlap"
            sentences.append(f"That is {change}{sig}.")
        sentences.append(_accuracy_sentence(best, base, level_txt, facts,
                                            (paired or {}).get(best.method, {}).get("accuracy")))
    others = [m for m in scored if m is not best]
    if others:
        runner = min(others, key=lambda m: m.value(dp))
        ov = overlaps(best.interval(dp), runner.interval(dp))
        facts["runner_up"] = runner.method
        facts["dp_overlap_with_runner_up"] = ov
        if ov:
            sentences.append(f"The next fairest, {runner.method} ({_with_ci(runner, dp)}), has an overlapping "
                             f"interval, so the data do not single out {best.method} as significantly fairer.")
    _decompose_gan_cost(results, base, sentences, facts)
    _extremes(results, ranked, sentences, facts)
    return Summary(best.method, sentences, facts)


def _decompose_gan_cost(results: list[MethodResult], base: MethodResult | None, sentences: list[str],
                        facts: dict) -> None:
    """Split each fairness-GAN classifier's accuracy change against the baseline into what the
    synthetic data costs at all (baseline -> the no-fairness ``acgan`` run: GAN fidelity) and
    what the fairness term costs on top (``acgan`` -> the ``fgan_*`` run)."""
    from fairgen.stages.train_gan import RUN_VARIANTS

    nofair = next((m for m in results if RUN_VARIANTS.get(m.method) == "none"), None)
    fair_runs = [m for m in results if RUN_VARIANTS.get(m.method, "none") != "none"]
    if base is None or nofair is None or not fair_runs:
        return
    a_base, a_nofair = base.value("accuracy"), nofair.value("accuracy")
    if a_base is None or a_nofair is None:
        return
    fidelity = a_nofair - a_base
    facts["gan_fidelity_accuracy_change"] = fidelity
    parts = []
    for m in fair_runs:
        a = m.value("accuracy")
        if a is None:
            continue
        facts[f"fairness_term_accuracy_change_{m.method}"] = a - a_nofair
        if _is_level(a - a_nofair):
            parts.append(f"{m.method} loses nothing more")
        else:
            parts.append(f"{m.method} {'loses' if a < a_nofair else 'gains'} {_pct_points(a - a_nofair)} more")
    if not parts:
        return
    sentences.append(
        f"Where the synthetic classifiers' accuracy goes: {nofair.method} (the same GAN without a fairness term) "
        f"{'loses' if fidelity < 0 else 'gains'} {_pct_points(fidelity)} against '{base.method}', which is the "
        f"price of training on generated images at this GAN's fidelity; from there {'; '.join(parts)} "
        "through the fairness term.")


def _extremes(results: list[MethodResult], ranked: list[MethodResult], sentences: list[str], facts: dict) -> None:
    """Name the method with the smallest of each other gap (among non-constant classifiers) and
    the most accurate one (among all)."""
    extremes = (
        ("error_rate_gap", min, "smallest_error_rate_gap", ranked,
         "Smallest error-rate gap |err(c=0) \u2212 err(c=1)| (what the paper's Table 1 calls \u201cDP\u201d)"),
        ("equal_opportunity_difference", min, "smallest_equal_opportunity_difference", ranked,
         "Smallest equal-opportunity difference |TPR(c=0) \u2212 TPR(c=1)| (the paper's \u201cEO\u201d)"),
        ("equalized_odds_difference", min, "smallest_equalized_odds_difference", ranked,
         "Smallest equalized-odds difference"),
        ("accuracy", max, "most_accurate", results, "Most accurate"),
    )
    for metric, pick, fact, pool, phrase in extremes:
        defined = [m for m in pool if m.value(metric) is not None]
        if defined:
            chosen = pick(defined, key=lambda m: m.value(metric))
            facts[fact] = chosen.method
            sentences.append(f"{phrase}: {chosen.method}, {_with_ci(chosen, metric)}.")


def _accuracy_sentence(best: MethodResult, base: MethodResult, level_txt: str, facts: dict,
                       paired: dict | None = None) -> str:
    """The fairest method's accuracy against the baseline's, with the change and its significance
    (by the paired interval of the change when ``paired`` holds it, else by overlap)."""
    da = (best.value("accuracy") or 0.0) - (base.value("accuracy") or 0.0)
    facts["accuracy_change"] = da
    acc_ov = overlaps(best.interval("accuracy"), base.interval("accuracy"))
    facts["accuracy_overlap_with_baseline"] = acc_ov
    if _is_level(da):
        acc = f"Its accuracy, {_with_ci(best, 'accuracy')}, equals the baseline's"
    else:
        acc = (f"Its accuracy is {_with_ci(best, 'accuracy')} against {_with_ci(base, 'accuracy')}: "
               f"a {'cost' if da < 0 else 'gain'} of {_pct_points(da)}")
    if paired is not None and _finite(paired["difference_lo"]) is not None:
        lo, hi = float(paired["difference_lo"]) * 100, float(paired["difference_hi"]) * 100
        facts["accuracy_change_paired_interval"] = [lo / 100, hi / 100]
        significant = lo > 0 or hi < 0
        acc += (f" (paired {level_txt}interval of the change [{lo:+.1f}, {hi:+.1f}] points: "
                f"{'a significant' if significant else 'not a significant'} difference)")
    elif acc_ov is True:
        acc += f" (the {level_txt}intervals overlap: not a significant difference)"
    elif acc_ov is False:
        acc += f" (the {level_txt}intervals do not overlap)"
    return acc + "."


# ============================================================================ dataset card


def load_manifest(path: Path, inputs: Inputs) -> dict:
    manifest = _read_json(path, inputs, "dataset manifest")
    for key in ("source", "root"):
        _get(manifest, path, key, types=str)
    return manifest


SPLIT_ORDER = ("train", "valid", "test")


def _split_counts(manifest: dict) -> dict:
    """The manifest's image count per split, in train/valid/test order."""
    v = manifest.get("splits")
    if not isinstance(v, dict):
        return {}
    return dict(sorted(v.items(), key=lambda kv: (SPLIT_ORDER.index(kv[0]) if kv[0] in SPLIT_ORDER else 9, kv[0])))


def real_base_rates(cfg: dict, manifest: dict, manifest_path: Path, crops_index: Path | None,
                    inputs: Inputs) -> tuple[list[dict], str]:
    """P(y=1 | c) per real split: from the crops index (the images actually used) when given,
    else from the manifest. Returns (rows, where the numbers come from)."""
    protected, outcome = cfg["protected"], cfg["outcome"]
    if crops_index is not None:
        df, _ = fio.read_parquet(crops_index, "crops_index", columns=["split", protected, outcome])
        inputs.add("crops index", crops_index)
        rows = []
        for split in SPLIT_ORDER:
            part = df[df["split"] == split]
            if len(part):
                rows.append(_rates_row(f"real {split}", part[protected].to_numpy(), part[outcome].to_numpy(),
                                       crops_index))
        return rows, f"crops index {crops_index}"
    rates, counts = manifest.get("base_rates"), manifest.get("group_counts") or {}
    if not isinstance(rates, dict):
        return [], "not available (no crops index given and no 'base_rates' in the manifest)"
    rows = []
    for split, r in sorted(rates.items(), key=lambda kv: SPLIT_ORDER.index(kv[0]) if kv[0] in SPLIT_ORDER else 9):
        if split == "all":
            continue
        if not isinstance(r, dict):
            raise DataError(f"{manifest_path}: 'base_rates.{split}' must be an object")
        p = [_prob(r.get(str(g)), manifest_path, f"base_rates.{split}.{g}") for g in (0, 1)]
        n = [(counts.get(split) or {}).get(str(g)) for g in (0, 1)]
        n = n if all(isinstance(v, int) for v in n) else None
        rows.append({"label": f"real {split}", "p": p, "n": n,
                     "p_c1": n[1] / sum(n) if n and sum(n) else None})
    return rows, f"manifest {manifest_path}"


def _rates_row(label: str, c, y, where) -> dict:
    c, y = np.asarray(c).astype(np.int64), np.asarray(y).astype(np.int64)
    for name, v in (("c", c), ("y", y)):
        if not np.isin(v, (0, 1)).all():
            raise DataError(f"{where}: {label}: {name} must be 0/1")
    n = [int((c == g).sum()) for g in (0, 1)]
    p = [float(y[c == g].mean()) if n[g] else None for g in (0, 1)]
    return {"label": label, "p": p, "n": n, "p_c1": float(c.mean()) if len(c) else None}


# ============================================================================ synthetic sets


@dataclass
class SyntheticSet:
    run: str
    folder: Path
    n: int
    rates: dict
    mean_y_prob: list
    checkpoint_step: int | None
    grid: Figure | None


def load_synthetic_sets(cfg: dict, runs: list[str], synthetic_dir: Path | None, inputs: Inputs,
                        labels) -> tuple[list[SyntheticSet], list[Missing]]:
    from fairgen.data.synthetic_set import SAMPLES_FILE, read_synthetic

    found, missing = [], []
    if synthetic_dir is None:
        return [], [Missing("synthetic sets", "(no --synthetic-dir given)", "not given")] if runs else []
    for run in runs:
        folder = synthetic_dir / run
        if not (folder / SAMPLES_FILE).is_file():
            missing.append(Missing(f"synthetic set '{run}'", str(folder / SAMPLES_FILE)))
            continue
        table, images, _ = read_synthetic(folder)
        inputs.add(f"synthetic set {run}", folder / SAMPLES_FILE)
        c, y = table["c"].to_numpy(), table["y"].to_numpy()
        rates = _rates_row(f"synthetic {run}", c, y, folder / SAMPLES_FILE)
        mean_prob = [float(table["y_prob"][c == g].mean()) if (c == g).any() else None for g in (0, 1)]
        steps = table["checkpoint_step"].unique()
        cells = {}
        for cc in (0, 1):
            for yy in (0, 1):
                cells[(cc, yy)] = images[np.flatnonzero((c == cc) & (y == yy))[:36]]
        grid = Figure(f"synthetic_{run}_samples", f"Synthetic set {run}: samples per (c, y)",
                      f"The first samples of the synthetic set '{run}' in each cell ({cfg['protected']}, "
                      f"{cfg['outcome']}); y is the generator's outcome output thresholded at 0.5.",
                      plots.sample_grid(cells, f"{run}: samples by ({cfg['protected']}, {cfg['outcome']})",
                                        labels, cfg["outcome"]))
        found.append(SyntheticSet(run, folder, len(table), rates, mean_prob,
                                  int(steps[0]) if len(steps) == 1 else None, grid))
    return found, missing


# ============================================================================ GAN runs


@dataclass
class GanRun:
    run: str
    folder: Path
    curves: Figure | None
    grids: list[Figure]
    last: dict
    n_records: int
    summary: dict | None = None  # the run's summary.json (fairgen.stages.train_gan)

    def row(self) -> dict:
        """Training facts and generated-vs-real label statistics for the GAN summary table."""
        s = self.summary or {}
        gen, real = s.get("generated") or {}, s.get("real_train") or {}

        def p(stats, g):
            return fmt(((stats.get("by_group") or {}).get(str(g)) or {}).get("p_y1"))

        def gap(stats):
            v = stats.get("dp_difference_c1_minus_c0")
            return "\u2014" if v is None else f"{v:+.3f}"

        wall = s.get("wall_s")
        return {"run": self.run, "steps": fmt(s.get("steps", self.last.get("step"))),
                "time": "\u2014" if wall is None else f"{wall / 60:.1f} min", "device": s.get("device", "\u2014"),
                "gen_p0": p(gen, 0), "gen_p1": p(gen, 1), "gen_gap": gap(gen), "real_gap": gap(real)}


LOG_FILE = "log.jsonl"
SUMMARY_FILE = "summary.json"
SAMPLES_DIR = "samples"
# Logged fields that are bookkeeping, not training signals.
NOT_CURVES = ("step", "time_s", "images_per_s", "lr_g", "lr_d")


def read_log(path: Path) -> list[dict]:
    """The complete records of a training ``log.jsonl`` (see :mod:`fairgen.training.logs`)."""
    from fairgen.training.logs import read_jsonl

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    records = read_jsonl(path)
    for i, r in enumerate(records, 1):
        if not isinstance(r, dict) or not isinstance(r.get("step"), int) or isinstance(r.get("step"), bool):
            raise DataError(f"{path}: record {i} is not an object with an integer 'step'")
    return records


def curve_panel(key: str) -> str:
    """Which panel of the training-curve figure a logged field belongs to."""
    k = key.lower()
    if "loss" in k or k.endswith("_ce") or "penalty" in k:
        return "losses"
    if "acc" in k or "fool" in k or "rate" in k:
        return "accuracies and rates"
    return "other signals"


def curve_series(records: list[dict]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Numeric fields of training records as curves, by panel (see :func:`curve_panel`):
    ``{"losses": {name: (step, value)}, "accuracies and rates": {...}, "other signals": {...}}``.

    Bookkeeping (learning rates, speed, time) is left out. Missing or non-finite values (a
    diverged interval logs null) leave gaps.
    """
    keys = sorted({k for r in records for k, v in r.items()
                   if k not in NOT_CURVES and isinstance(v, (int, float)) and not isinstance(v, bool)})
    steps = np.array([r["step"] for r in records], dtype=np.float64)
    panels: dict[str, dict] = {"losses": {}, "accuracies and rates": {}, "other signals": {}}
    for k in keys:
        panels[curve_panel(k)][k] = (steps, np.array([_finite_or_nan(r.get(k)) for r in records]))
    return panels


def _finite_or_nan(v) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return math.nan


def load_gan_runs(cfg: dict, runs: list[str], gan_dir: Path | None, inputs: Inputs) -> tuple[list[GanRun], list[Missing]]:
    found, missing = [], []
    if gan_dir is None:
        return [], [Missing("GAN runs", "(no --gan-dir given)", "not given")] if runs else []
    for run in runs:
        folder = gan_dir / run
        if not folder.is_dir():
            missing.append(Missing(f"GAN run '{run}'", str(folder)))
            continue
        log_path = folder / LOG_FILE
        curves, last, n_records = None, {}, 0
        if log_path.is_file():
            records = read_log(log_path)
            inputs.add(f"GAN {run} log", log_path)
            n_records = len(records)
            if records:
                last = records[-1]
                curves = Figure(f"gan_{run}_curves", f"GAN run {run}: training curves",
                                f"Interval means logged during training of '{run}' ({log_path.name}): losses, "
                                "and the discriminator/generator metrics.",
                                plots.gan_curves(curve_series(records), run))
        else:
            missing.append(Missing(f"training log of GAN run '{run}'", str(log_path)))
        grids = []
        for png in grid_files(folder):
            data = png.read_bytes()
            if not data.startswith(PNG_MAGIC):
                raise DataError(f"{png}: not a PNG file")
            inputs.add(f"GAN {run} samples", png)
            rel = png.relative_to(folder).with_suffix("")
            stem = "_".join(rel.parts)
            grids.append(Figure(f"gan_{run}_{stem}", f"GAN run {run}: {str(rel).replace('_', ' ')}",
                                f"{png.relative_to(folder)} written by the training of '{run}'.", data))
        summary = None
        if (folder / SUMMARY_FILE).is_file():
            summary = _read_json(folder / SUMMARY_FILE, inputs, f"GAN {run} summary")
        found.append(GanRun(run, folder, curves, grids, last, n_records, summary))
    return found, missing


def grid_files(folder: Path) -> list[Path]:
    """Sample grids of a GAN run folder: its top-level PNGs other than curve plots (e.g. the
    per-(c, y) grid), then the latest ``samples/step_*.png``."""
    top = sorted(p for p in folder.glob("*.png") if "curve" not in p.name.lower())
    steps = sorted((folder / SAMPLES_DIR).glob("step_*.png"))
    return top + steps[-1:]


# ============================================================================ quality


def load_quality(path: Path | None, inputs: Inputs) -> tuple[dict | None, list[Missing]]:
    if path is None:
        return None, [Missing("synthetic-data quality", "(no --quality given)", "not given")]
    if not path.is_file():
        return None, [Missing("synthetic-data quality", str(path))]
    q = _read_json(path, inputs, "quality")
    if q.get("format") != "fairgen.eval.quality":
        raise DataError(f"{path}: not a fairgen quality file (format {q.get('format')!r})")
    for key in ("extractors", "real", "runs"):
        _get(q, path, key, types=dict)
    for run, r in q["runs"].items():
        for key in ("fid", "label_statistics", "c_conditioning"):
            _get(q, path, "runs", run, key, types=dict)
    return q, []


# ============================================================================ tables


def _cell(text: str, sub: str = "", cls: str = "", title: str = "") -> dict:
    return {"text": text, "sub": sub, "cls": cls, "title": title}


def load_paired(path: Path | None, methods: list[str], inputs: Inputs) -> tuple[dict | None, list[Missing]]:
    """The paired comparison with the baseline (``fairgen compare``): ``{method: {metric: row}}``."""
    from fairgen.eval.classifier import COMPARISON_COLUMNS

    if path is None:
        return None, []
    if not path.is_file():
        return None, [Missing("paired comparison with the baseline", str(path))]
    df, meta = fio.read_parquet(path, "comparison", list(COMPARISON_COLUMNS))
    if meta.get("baseline") != BASELINE:
        raise DataError(f"{path}: a comparison against '{meta.get('baseline')}', but the report's baseline is "
                        f"'{BASELINE}'")
    out: dict[str, dict] = {}
    for row in df.to_dict("records"):
        out.setdefault(row["method"], {})[row["metric"]] = row
    unknown = sorted(set(out) - set(methods))
    if unknown:
        raise DataError(f"{path}: method(s) {', '.join(unknown)} are not in classifier.methods")
    inputs.add("paired comparison", path)
    return out, []


def _finite(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _paired_cell(row: dict | None, how: str) -> dict:
    if row is None:
        return _cell("\u2014", "", "num")
    lo, hi = _finite(row["difference_lo"]), _finite(row["difference_hi"])
    if how == "pair":
        return _cell(f"{fmt(_finite(row['baseline']))} \u2192 {fmt(_finite(row['value']))}", "", "num")
    if how == "relative":
        rel, rlo, rhi = (_finite(row[k]) for k in ("relative", "relative_lo", "relative_hi"))
        sub = f"[{rlo * 100:+.0f}%, {rhi * 100:+.0f}%]" if rlo is not None and rhi is not None else ""
        return _cell("\u2014" if rel is None else f"{rel * 100:+.0f}%", sub, "num")
    d = _finite(row["difference"])
    if how == "points":
        sub = f"[{lo * 100:+.1f}, {hi * 100:+.1f}]" if lo is not None and hi is not None else ""
        return _cell("\u2014" if d is None else f"{d * 100:+.1f}", sub, "num")
    sub = f"[{lo:+.3f}, {hi:+.3f}]" if lo is not None and hi is not None else ""
    return _cell("\u2014" if d is None else f"{d:+.3f}", sub, "num")


def paired_table(paired: dict, methods: list[str]) -> dict:
    """Each method against the baseline on the same test images (paired bootstrap intervals)."""
    columns = [{"label": "Method", "title": "training data of the classifier"}]
    columns += [{"label": label, "title": tip, "num": True} for _, label, tip, _ in PAIRED]
    rows = [[_cell(m, "", "method")] + [_paired_cell(paired[m].get(key), how) for key, _, _, how in PAIRED]
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
        row = [_cell(m.method, "baseline" if m.method == baseline else "", "method"),
               _cell(fmt(m.result.get("n")), "", "num")]
        for key, *_ in COMPARISON:
            v, lo, hi = m.triple(key)
            cls = "num best" if key in best and v is not None and v == best[key] else "num"
            row.append(_cell(fmt(v), fmt_ci(lo, hi), cls))
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
            row = [_cell(m.method if g == 0 else "", "", "method"), _cell(labels[g]),
                   _cell(fmt(m.result["groups"][str(g)].get("n")), "", "num"),
                   _cell(fmt(m.value(f"base_rate_c{g}")), "", "num")]
            for key, *_ in GROUP_RATES:
                v, lo, hi = m.triple(f"{key}_c{g}")
                row.append(_cell(fmt(v), fmt_ci(lo, hi), "num"))
            rows.append({"cells": row, "cls": "group-start" if g == 0 else ""})
    return {"columns": columns, "rows": [r["cells"] for r in rows], "row_cls": [r["cls"] for r in rows]}


def paper_table(results: list[MethodResult], columns=PAPER_COLUMNS, rows=None) -> dict:
    """Paper rows (as published, 4 decimals) each followed by our matching method's numbers."""
    ours = {m.method: m for m in results}
    header = [{"label": "Method", "title": ""}, {"label": "Source", "title": ""}]
    header += [{"label": label, "title": key, "num": True} for key, label in columns]
    out, row_cls = [], []
    for p in rows or PAPER["rows"]:
        out.append([_cell(p["paper_name"], "", "method"), _cell("paper (CelebA)", "", "nowrap")]
                   + [_cell(fmt(p.get(k), 4), "", "num") for k, _ in columns])
        row_cls.append("group-start")
        m = ours.get(p["method"])
        if m is None:
            out.append([_cell(""), _cell(f"ours: '{p['method']}' not evaluated", "", "muted nowrap")]
                       + [_cell("") for _ in columns])
        else:
            cells = [_cell(""), _cell(f"ours ({p['method']})", "", "nowrap")]
            for key, _ in columns:
                v, lo, hi = m.triple(key)
                cells.append(_cell(fmt(v, 4), fmt_ci(lo, hi), "num"))
            out.append(cells)
        row_cls.append("")
    return {"columns": header, "rows": out, "row_cls": row_cls}


# ============================================================================ rendering


def _render_html(context: dict, template: str = TEMPLATE) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=jinja2.select_autoescape(("html", "j2")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    css = (TEMPLATE_DIR / STYLESHEET).read_text(encoding="utf-8")
    return env.get_template(template).render(css=css, **context)


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


def build(cfg: dict, dataset: str | os.PathLike, classifiers_dir: str | os.PathLike,
          crops_index: str | os.PathLike | None = None, crops_summary: str | os.PathLike | None = None,
          gan_dir: str | os.PathLike | None = None, synthetic_dir: str | os.PathLike | None = None,
          quality: str | os.PathLike | None = None,
          comparison: str | os.PathLike | None = None, thresholds: str | os.PathLike | None = None,
          pair_diagnostics: str | os.PathLike | None = None,
          benchmarks: list[str | os.PathLike] | None = None,
          frontier: str | os.PathLike | None = None) -> tuple[str, list[Figure], Summary]:
    """Read every input and return ``(html, figures, summary)`` without writing anything."""
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
            crops = _read_json(Path(crops_summary), inputs, "crops summary")
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
    curve = _read_json(Path(thresholds), inputs, "group-threshold curve") if thresholds else None
    if curve:
        pts = sorted(_get(curve, Path(thresholds), "points", types=list),
                     key=lambda pt: pt["test_demographic_parity_difference"])
        reference = reference or {}
        reference.setdefault("demographic_parity_difference", []).append(
            ([pt["test_demographic_parity_difference"] for pt in pts], [pt["test_accuracy"] for pt in pts],
             "group thresholds on real (post-processing)"))
    pairs_ctx = pair_context(_read_json(Path(pair_diagnostics), inputs, "pair diagnostics")) if pair_diagnostics else None
    tradeoff_fig = Figure(
        "tradeoff", "Accuracy vs fairness",
        "Each point is one classifier evaluated on the real test split; error bars are "
        f"{_level_txt(level)}bootstrap confidence intervals. Lower on the x axis is fairer; higher on "
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
        f"{_level_txt(level)}bootstrap intervals.",
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
        "summary": summary, "level_txt": _level_txt(level),
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
    return _render_html(context), figures, summary


def _level_txt(level: float | None) -> str:
    return f"{round(level * 100):d}% " if level else ""


def _bootstrap_text(results: list[MethodResult]) -> str:
    b = next((m.result.get("bootstrap") for m in results if (m.result.get("bootstrap") or {}).get("n_boot")), None)
    if not b:
        return "No bootstrap intervals were computed (classifier.bootstrap = 0)."
    return (f"Intervals: {_level_txt(b.get('level'))}percentile bootstrap over {b['n_boot']:,} resamples of the "
            f"test rows, stratified by {b.get('stratified_by', 'c')}; absolute gaps and the min/max ratio use the "
            "folded interval of their signed quantity.")


def _training_row(m: MethodResult) -> dict:
    t = m.result.get("training") or {}
    sel = m.result.get("selection") or {}
    return {"method": m.method, "source": t.get("source", "\u2014"), "n": fmt(t.get("n")),
            "weighted": "yes" if t.get("weighted") else "no", "arch": t.get("arch", "\u2014"),
            "epochs": fmt(t.get("epochs")), "best_epoch": fmt(sel.get("best_epoch")),
            "privileged": fmt(m.result.get("privileged"))}


LAYOUT_NAMES = {"official": "the release's text files", "kaggle": "the Kaggle copy's CSV files"}


def split_text(manifest: dict) -> str:
    """Which train / valid / test split the manifest's dataset uses, in words."""
    spec = manifest.get("split") or {"method": "official"}
    if spec.get("method") == "random":
        return (f"random by image (seed {spec['seed']}): test {spec['test_fraction']:.0%} of all images, valid "
                f"{spec['valid_fraction']:.0%} of the rest for model selection")
    return "the dataset's own partition (its list_eval_partition file)"


def _dataset_context(manifest: dict, crops: dict | None, rate_rows: list[dict], rates_source: str,
                     synth: list[SyntheticSet]) -> dict:
    facts = [("Source", SOURCE_NAMES.get(manifest["source"], manifest["source"])), ("Root", manifest["root"])]
    if "n_images" in manifest:
        facts.append(("Images", fmt(manifest["n_images"])))
    if "layout" in manifest:
        facts.append(("Layout", f"{manifest['layout']} ({LAYOUT_NAMES.get(manifest['layout'], '')})"
                      + ("" if manifest.get("identity_available", True) else "; identities not available")))
    facts.append(("Split", split_text(manifest)))
    splits = _split_counts(manifest)
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


# ============================================================================ CLI target


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

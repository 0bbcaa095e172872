"""The audit's plain-language summary, generated from the classifier metrics: the fairest method by
demographic-parity difference, its accuracy cost against the baseline and whether the change is
significant (by the paired interval of ``fairgen compare``, else by overlap of the methods' own
intervals), how the fairness-GAN classifiers' accuracy change splits into GAN fidelity and the
fairness term, and which method is best on each other gap."""

from __future__ import annotations

from dataclasses import dataclass

from fairgen.report.loaders import BASELINE, MethodResult
from fairgen.report.render import finite, fmt, fmt_ci, level_text


def overlaps(a: tuple | None, b: tuple | None) -> bool | None:
    """Whether two closed intervals overlap; None when either is unknown."""
    if a is None or b is None or None in a or None in b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


@dataclass
class Summary:
    """The generated findings: the fairest method (None when no method can be called fairest), the
    sentences in order, and the facts behind them (method names, changes, interval overlaps)."""

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
    level_txt = level_text(level)
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
            if row is not None and finite(row["difference_lo"]) is not None:
                lo, hi = float(row["difference_lo"]), float(row["difference_hi"])
                facts["dp_change_paired_interval"] = [lo, hi]
                facts["dp_relative_change"] = finite(row["relative"])
                rel = (f", {abs(row['relative']) * 100:.0f}% lower" if finite(row["relative"]) is not None
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
    from fairgen.common.registry import run_variants

    variants = run_variants()
    nofair = next((m for m in results if variants.get(m.method) == "none"), None)
    fair_runs = [m for m in results if variants.get(m.method, "none") != "none"]
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
    if paired is not None and finite(paired["difference_lo"]) is not None:
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

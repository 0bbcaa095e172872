"""Group-fairness metrics for a binary classifier and a binary protected attribute ``c``.

Used by the downstream-classifier stage and the audit report. Everything is computed from
weighted confusion-matrix cells per group (and, with scores, per-group score histograms), so
the point estimate and all bootstrap resamples go through one vectorised code path.

Metric names (the keys of :func:`flatten`, the ``ci`` entries and :func:`metrics_table`
columns): overall metrics are plain (``accuracy``, ``tpr``), per-group ones end in
``_c0`` / ``_c1`` (``tpr_c1`` is the TPR of group c=1), fairness metrics are plain.

Per group and overall (:data:`COUNT_METRICS`, :data:`RATE_METRICS`, ``auc`` with scores):
``n`` rows, ``positives`` rows with y_true=1, ``weight`` total sample weight (= n without
weights); ``selection_rate`` P(ŷ=1), ``base_rate`` P(y=1), ``tpr``, ``fpr``, ``fnr``, ``tnr``,
``error_rate``, ``accuracy``, ``balanced_accuracy`` (TPR+TNR)/2, ``auc`` (ROC AUC, ties 1/2).
All rates use sample weights when given (like sklearn/fairlearn); ``n``/``positives`` are row
counts.

Fairness metrics, unsigned (max - min over the two groups, >= 0; fairlearn's conventions):

* ``demographic_parity_difference`` |SR(0) - SR(1)|  (fairlearn ``demographic_parity_difference``)
* ``demographic_parity_ratio`` min/max of SR  (fairlearn ``demographic_parity_ratio``)
* ``equal_opportunity_difference`` |TPR(0) - TPR(1)|  (fairlearn ``equal_opportunity_difference``)
* ``false_positive_rate_difference`` |FPR(0) - FPR(1)|  (fairlearn ``false_positive_rate_difference``)
* ``equalized_odds_difference`` max of the TPR and FPR gaps  (fairlearn ``equalized_odds_difference``)
* ``error_rate_gap`` |err(0) - err(1)|: what Sattigeri et al. (2019), Table 1, label
  "Demographic Parity". It is an error-rate gap, not a selection-rate gap; it is reported under
  its honest name next to the real ``demographic_parity_difference``.

Signed, AIF360 conventions, ``unprivileged - privileged`` (``privileged`` is an explicit
argument, default 1; unprivileged = 1 - privileged):

* ``statistical_parity_difference`` SR(u) - SR(p)
* ``disparate_impact`` SR(u) / SR(p)
* ``equal_opportunity_difference_signed`` TPR(u) - TPR(p) (AIF360 calls this
  ``equal_opportunity_difference``; the suffix keeps it apart from fairlearn's unsigned one)
* ``average_odds_difference`` ((FPR(u) - FPR(p)) + (TPR(u) - TPR(p))) / 2

For CelebA with c = Male and y = Attractive the data favour c=0 (female) for y=1, so callers
should say which group they treat as privileged rather than rely on the default.

Undefined metrics (a zero denominator: a group without positives has no TPR) raise
:class:`~fairgen.common.errors.DataError` naming the group and metric. With ``allow_undefined=True``
they are returned as ``None`` instead and listed, with the reason, under ``"undefined"``; a
metric is never returned as a silent NaN.

Confidence intervals (:func:`bootstrap_ci`) are percentile bootstrap intervals over resamples
of the rows drawn with replacement *within each group* (stratified by c, so both groups keep
their sizes). Metrics that fold a signed quantity (absolute gaps, the min/max ratio) get the
image of the percentile interval of the signed quantity under the fold, e.g. for
|SR(0) - SR(1)| the interval of SR(0) - SR(1), [a, b], becomes [0, max(|a|, |b|)] when it
contains 0 and [min(|a|, |b|), max(|a|, |b|)] otherwise. A plain percentile interval of |gap|
excludes 0 (and usually the point estimate) whenever the true gap is small, because |.| biases
every resample upward; the folded interval does not. ``std`` is the bootstrap standard
deviation of the metric itself.

:func:`paired_difference` compares a classifier with a baseline on the same rows: both are
evaluated on the same resamples, and the intervals are those of the differences (and of the
relative changes), not two separate intervals to be checked for overlap.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from fairgen.common.errors import DataError

log = logging.getLogger(__name__)

GROUPS = (0, 1)
# Confusion-matrix cell of a row: 2 * y_true + y_pred.
TN, FP, FN, TP = 0, 1, 2, 3

COUNT_METRICS = ("n", "positives", "weight")
RATE_METRICS = ("selection_rate", "base_rate", "tpr", "fpr", "fnr", "tnr", "error_rate",
                "accuracy", "balanced_accuracy")
SCORE_METRICS = ("auc",)
UNSIGNED_METRICS = ("demographic_parity_difference", "demographic_parity_ratio",
                    "equal_opportunity_difference", "false_positive_rate_difference",
                    "equalized_odds_difference", "error_rate_gap")
SIGNED_METRICS = ("statistical_parity_difference", "disparate_impact",
                  "equal_opportunity_difference_signed", "average_odds_difference")
FAIRNESS_METRICS = UNSIGNED_METRICS + SIGNED_METRICS

LABELS = {
    "n": "rows", "positives": "rows with y_true=1", "weight": "total sample weight",
    "selection_rate": "selection rate P(y_pred=1)", "base_rate": "base rate P(y_true=1)",
    "tpr": "true positive rate", "fpr": "false positive rate", "fnr": "false negative rate",
    "tnr": "true negative rate", "error_rate": "error rate", "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy", "auc": "ROC AUC",
    "demographic_parity_difference": "demographic parity difference |SR(0)-SR(1)|",
    "demographic_parity_ratio": "demographic parity ratio min/max SR",
    "equal_opportunity_difference": "equal opportunity difference |TPR(0)-TPR(1)|",
    "false_positive_rate_difference": "false positive rate difference |FPR(0)-FPR(1)|",
    "equalized_odds_difference": "equalized odds difference max(TPR gap, FPR gap)",
    "error_rate_gap": "error-rate gap |err(0)-err(1)| (the paper's 'Demographic Parity')",
    "statistical_parity_difference": "statistical parity difference SR(u)-SR(p)",
    "disparate_impact": "disparate impact SR(u)/SR(p)",
    "equal_opportunity_difference_signed": "equal opportunity difference TPR(u)-TPR(p)",
    "average_odds_difference": "average odds difference",
}

# Group rates each fairness metric is built from (for CI folding and undefined-reasons).
_DEPENDS = {
    "demographic_parity_difference": ("selection_rate",),
    "demographic_parity_ratio": ("selection_rate",),
    "equal_opportunity_difference": ("tpr",),
    "false_positive_rate_difference": ("fpr",),
    "equalized_odds_difference": ("tpr", "fpr"),
    "error_rate_gap": ("error_rate",),
    "statistical_parity_difference": ("selection_rate",),
    "disparate_impact": ("selection_rate",),
    "equal_opportunity_difference_signed": ("tpr",),
    "average_odds_difference": ("tpr", "fpr"),
}
# Per-group metrics that need rows of one class: y_true=1 (1) or y_true=0 (0).
_NEEDS_CLASS = {"tpr": (1,), "fnr": (1,), "fpr": (0,), "tnr": (0,),
                "balanced_accuracy": (0, 1), "auc": (0, 1)}

# Elements (sampled indices plus histogram bins) handled per bootstrap chunk; bounds memory.
_CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------
# input checks


@dataclass(frozen=True)
class _Data:
    """Validated inputs, pre-split by group for fast resampling."""

    cell: tuple[np.ndarray, np.ndarray]  # per group: confusion cell 0..3 of each row (intp)
    weight: tuple[np.ndarray, np.ndarray] | None  # per group: sample weights, None = unweighted
    hist_code: tuple[np.ndarray, np.ndarray] | None  # per group: y_true * K + score rank
    n_levels: int  # K, distinct score values (0 without scores)
    source: str

    @property
    def n(self) -> tuple[int, int]:
        return len(self.cell[0]), len(self.cell[1])


def _prefix(source: str | None) -> str:
    return f"{source}: " if source else ""


def _array(name: str, x, pre: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise DataError(f"{pre}{name} must be a 1-D array, got shape {a.shape}")
    if a.dtype == object:  # e.g. pandas nullable columns: numbers (and None) only
        bad = [i for i, v in enumerate(a) if not (v is None or isinstance(v, (numbers.Real, np.bool_)))]
        if bad:
            raise DataError(f"{pre}{name} must be numeric; row {bad[0]} is {a[bad[0]]!r}")
        a = np.array([np.nan if v is None else float(v) for v in a], dtype=np.float64)
    if a.dtype == bool:
        return a
    if a.dtype.kind not in "iuf":
        raise DataError(f"{pre}{name} must be numeric, got dtype {a.dtype}")
    return a


def _first_bad(name: str, a: np.ndarray, bad: np.ndarray, want: str, pre: str) -> None:
    if bad.any():
        rows = np.flatnonzero(bad)
        values = ", ".join(repr(v) for v in np.unique(a[rows])[:5].tolist())
        raise DataError(f"{pre}{name} must be {want}; row {rows[0]} is {a[rows[0]].item()!r} "
                        f"({len(rows)} bad row(s), values: {values})")


def _binary(name: str, x, pre: str) -> np.ndarray:
    a = _array(name, x, pre)
    if a.dtype != bool:
        _first_bad(name, a, ~((a == 0) | (a == 1)), "binary (0/1)", pre)
    return a.astype(np.intp)


def _prepare(y_true, y_pred, c, score=None, sample_weight=None, source: str | None = None) -> _Data:
    pre = _prefix(source)
    arrays = {"y_true": _binary("y_true", y_true, pre), "y_pred": _binary("y_pred", y_pred, pre),
              "c": _binary("c", c, pre)}
    if score is not None:
        arrays["score"] = _array("score", score, pre).astype(np.float64)
    if sample_weight is not None:
        arrays["sample_weight"] = _array("sample_weight", sample_weight, pre).astype(np.float64)
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"{pre}inputs differ in length: "
                        + ", ".join(f"{k}={v}" for k, v in lengths.items()))
    if lengths["y_true"] == 0:
        raise DataError(f"{pre}empty input: no rows to evaluate")
    y, p, c = arrays["y_true"], arrays["y_pred"], arrays["c"]
    s, w = arrays.get("score"), arrays.get("sample_weight")
    if s is not None:
        _first_bad("score", s, ~np.isfinite(s), "finite (no NaN/inf)", pre)
        _first_bad("score", s, (s < 0) | (s > 1), "a probability in [0, 1]", pre)
    if w is not None:
        _first_bad("sample_weight", w, ~np.isfinite(w), "finite (no NaN/inf)", pre)
        _first_bad("sample_weight", w, w < 0, "non-negative", pre)
    rows = tuple(np.flatnonzero(c == g) for g in GROUPS)
    for g in GROUPS:
        if len(rows[g]) == 0:
            raise DataError(f"{pre}only group c={1 - g} is present ({len(rows[1 - g])} rows); "
                            f"fairness metrics need rows of both groups c=0 and c=1")
        if w is not None and not w[rows[g]].sum() > 0:
            raise DataError(f"{pre}all {len(rows[g])} sample weights of group c={g} are 0")
    cell = 2 * y + p
    hist_code, k = None, 0
    if s is not None:
        levels, rank = np.unique(s, return_inverse=True)
        k = len(levels)
        code = y * k + rank.reshape(-1)
        hist_code = tuple(code[r] for r in rows)
    return _Data(cell=tuple(cell[r] for r in rows),
                 weight=None if w is None else tuple(w[r] for r in rows),
                 hist_code=hist_code, n_levels=k, source=source or "")


def _check_params(privileged, n_boot, level, seed) -> None:
    if isinstance(privileged, bool) or privileged not in GROUPS:
        raise DataError(f"privileged must be 0 or 1 (the privileged value of c), got {privileged!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 0:
        raise DataError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise DataError(f"level must be a number in (0, 1), got {level!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")


# --------------------------------------------------------------------------------------------
# vectorised metrics


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den == 0 (the metric is undefined there)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _sums(data: _Data, idx: tuple[np.ndarray, np.ndarray]):
    """Cell sums of the resamples ``idx[g]`` (B, n_g) of positions within group g.

    Returns W (B, 2, 4) weighted cell sums, N (B, 2, 4) row counts and H (B, 2, 2, K) score
    histograms [resample, group, y_true, score level] (None without scores).
    """
    b = idx[0].shape[0]
    n_cells = np.empty((b, 2, 4))
    w_cells = n_cells if data.weight is None else np.empty((b, 2, 4))
    hist = None if data.hist_code is None else np.empty((b, 2, 2, data.n_levels))
    for g in GROUPS:
        rows = idx[g]
        code = (data.cell[g][rows] + 4 * np.arange(b)[:, None]).ravel()
        n_cells[:, g] = np.bincount(code, minlength=4 * b).reshape(b, 4)
        w = None if data.weight is None else data.weight[g][rows].ravel()
        if w is not None:
            w_cells[:, g] = np.bincount(code, weights=w, minlength=4 * b).reshape(b, 4)
        if hist is not None:
            k2 = 2 * data.n_levels
            hcode = (data.hist_code[g][rows] + k2 * np.arange(b)[:, None]).ravel()
            hist[:, g] = np.bincount(hcode, weights=w, minlength=k2 * b).reshape(b, 2, data.n_levels)
    return w_cells, n_cells, hist


def _auc(hist: np.ndarray) -> np.ndarray:
    """ROC AUC from (..., 2, K) histograms over ascending score levels; ties count 1/2."""
    neg, pos = hist[..., 0, :], hist[..., 1, :]
    below = np.cumsum(neg, axis=-1) - 0.5 * neg  # negative weight strictly below + half at the level
    return _div((pos * below).sum(-1), pos.sum(-1) * neg.sum(-1))


def _rates(w: np.ndarray, n: np.ndarray, hist: np.ndarray | None) -> dict[str, np.ndarray]:
    """Counts and rates from cell sums (..., 4) (weighted w, rows n)."""
    tn, fp, fn, tp = (w[..., i] for i in (TN, FP, FN, TP))
    pos, neg = tp + fn, tn + fp
    total = pos + neg
    out = {
        "n": n.sum(-1), "positives": n[..., FN] + n[..., TP], "weight": total,
        "selection_rate": _div(tp + fp, total), "base_rate": _div(pos, total),
        "tpr": _div(tp, pos), "fpr": _div(fp, neg), "fnr": _div(fn, pos), "tnr": _div(tn, neg),
        "error_rate": _div(fp + fn, total), "accuracy": _div(tp + tn, total),
    }
    out["balanced_accuracy"] = 0.5 * (out["tpr"] + out["tnr"])
    if hist is not None:
        out["auc"] = _auc(hist)
    return out


def _metric_arrays(w: np.ndarray, n: np.ndarray, hist: np.ndarray | None,
                   privileged: int) -> dict[str, np.ndarray]:
    """All flat metrics, each an array over the leading (resample) axis."""
    out = _rates(w.sum(1), n.sum(1), None if hist is None else hist.sum(1))
    per_group = [_rates(w[:, g], n[:, g], None if hist is None else hist[:, g]) for g in GROUPS]
    for g in GROUPS:
        out.update({f"{k}_c{g}": v for k, v in per_group[g].items()})
    g0, g1 = per_group
    u, p = per_group[1 - privileged], per_group[privileged]
    tpr_gap, fpr_gap = np.abs(g0["tpr"] - g1["tpr"]), np.abs(g0["fpr"] - g1["fpr"])
    sr_lo = np.minimum(g0["selection_rate"], g1["selection_rate"])
    sr_hi = np.maximum(g0["selection_rate"], g1["selection_rate"])
    out.update({
        "demographic_parity_difference": sr_hi - sr_lo,
        "demographic_parity_ratio": _div(sr_lo, sr_hi),
        "equal_opportunity_difference": tpr_gap,
        "false_positive_rate_difference": fpr_gap,
        "equalized_odds_difference": np.maximum(tpr_gap, fpr_gap),
        "error_rate_gap": np.abs(g0["error_rate"] - g1["error_rate"]),
        "statistical_parity_difference": u["selection_rate"] - p["selection_rate"],
        "disparate_impact": _div(u["selection_rate"], p["selection_rate"]),
        "equal_opportunity_difference_signed": u["tpr"] - p["tpr"],
        "average_odds_difference": 0.5 * ((u["fpr"] - p["fpr"]) + (u["tpr"] - p["tpr"])),
    })
    return out


def _base(name: str) -> str:
    """Metric name without its group suffix: ``tpr_c1`` -> ``tpr``."""
    return name[:-3] if name[-3:] in ("_c0", "_c1") else name


def _is_count(name: str) -> bool:
    return _base(name) in COUNT_METRICS


# --------------------------------------------------------------------------------------------
# point estimate


def _point(data: _Data, privileged: int):
    w, n, hist = _sums(data, tuple(np.arange(m)[None, :] for m in data.n))
    arrays = _metric_arrays(w, n, hist, privileged)
    point = {k: (int(v[0]) if _base(k) in ("n", "positives") else float(v[0]))
             for k, v in arrays.items()}
    return point, w[0]


def _undefined_reasons(point: dict, cells: np.ndarray) -> dict[str, str]:
    """Why each NaN metric of ``point`` is undefined; ``cells`` = weighted (2, 4) cell sums."""
    reasons: dict[str, str] = {}
    scopes = [("", "overall", cells.sum(0))] + [(f"_c{g}", f"group c={g}", cells[g]) for g in GROUPS]
    for suffix, scope, wc in scopes:
        weight = {1: wc[FN] + wc[TP], 0: wc[TN] + wc[FP]}
        for metric, classes in _NEEDS_CLASS.items():
            missing = [k for k in classes if weight[k] == 0]
            if missing and f"{metric}{suffix}" in point:
                what = " or ".join(f"y_true={k}" for k in missing)
                reasons[f"{metric}{suffix}"] = (f"{LABELS[metric]} of {scope} is undefined: it has no rows "
                                                f"with {what} (or they all have sample weight 0)")
    for metric in FAIRNESS_METRICS:
        if not np.isnan(point[metric]):
            continue
        deps = [f"{d}_c{g}" for d in _DEPENDS[metric] for g in GROUPS if f"{d}_c{g}" in reasons]
        if deps:
            reasons[metric] = f"{metric} is undefined because {deps[0]} is: {reasons[deps[0]]}"
        elif metric == "disparate_impact":
            reasons[metric] = "disparate_impact is undefined: the privileged group's selection rate is 0"
        else:
            reasons[metric] = f"{metric} is undefined: the selection rate is 0 in both groups"
    missed = sorted(k for k, v in point.items() if isinstance(v, float) and np.isnan(v) and k not in reasons)
    assert not missed, f"NaN metrics without a reason: {missed}"
    return reasons


def _estimate(y_true, y_pred, c, score, sample_weight, privileged, allow_undefined, source):
    data = _prepare(y_true, y_pred, c, score, sample_weight, source)
    point, cells = _point(data, privileged)
    undefined = _undefined_reasons(point, cells)
    if undefined and not allow_undefined:
        first, *rest = undefined
        more = f"; also undefined: {', '.join(rest)}" if rest else ""
        raise DataError(f"{_prefix(source)}metric '{first}': {undefined[first]}{more} "
                        f"(pass allow_undefined=True to get None for undefined metrics)")
    return data, point, undefined


# --------------------------------------------------------------------------------------------
# bootstrap


def _fold_abs(lo: float, hi: float) -> tuple[float, float]:
    """Image of the interval [lo, hi] under |x|."""
    a, b = abs(lo), abs(hi)
    return (0.0 if lo <= 0 <= hi else min(a, b)), max(a, b)


def _fold_ratio(lo: float, hi: float) -> tuple[float, float]:
    """Image of [lo, hi] under t -> min(t, 1-t) / max(t, 1-t), t = SR(0) / (SR(0) + SR(1))."""
    f = [min(t, 1 - t) / max(t, 1 - t) for t in (lo, hi)]
    return min(f), (1.0 if lo <= 0.5 <= hi else max(f))


def _percentile(x: np.ndarray, level: float) -> tuple[float, float]:
    q = 100 * (1 - level) / 2
    lo, hi = np.percentile(x, [q, 100 - q])
    return float(lo), float(hi)


def _resample_metrics(data: _Data | list[_Data], privileged: int, n_boot: int, seed: int):
    """Metric arrays over ``n_boot`` stratified resamples of ``data``.

    Given a list of inputs over the same rows (same ``c``, so the same positions per group),
    every input is evaluated on the *same* resamples (a paired bootstrap) and a list of dicts
    comes back, one per input.
    """
    datas = data if isinstance(data, list) else [data]
    # One stream per group and a chunk size that does not depend on n_boot: the first k
    # resamples are the same for every n_boot >= k.
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(GROUPS))]
    n = datas[0].n
    per_resample = sum(n) + 4 * max(d.n_levels for d in datas) + 16
    chunk = max(1, _CHUNK_ELEMENTS // per_resample)
    parts: list[list[dict[str, np.ndarray]]] = [[] for _ in datas]
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = tuple(rng.integers(0, m, size=(b, m)) for rng, m in zip(rngs, n))
        for d, out in zip(datas, parts):
            arrays = _metric_arrays(*_sums(d, idx), privileged)
            out.append({k: v for k, v in arrays.items() if not _is_count(k)})
    boots = [{k: np.concatenate([p[k] for p in ps]) for k in ps[0]} for ps in parts]
    return boots if isinstance(data, list) else boots[0]


def _interval(name: str, boot: dict[str, np.ndarray], level: float):
    """(lower, upper, valid mask) of one metric; folded metrics use their signed quantity."""
    ok = np.isfinite(boot[name])
    if not ok.any():
        return None, None, ok
    if name == "demographic_parity_ratio":
        t = _div(boot["selection_rate_c0"], boot["selection_rate_c0"] + boot["selection_rate_c1"])
        return (*_fold_ratio(*_percentile(t[ok], level)), ok)
    if name in UNSIGNED_METRICS:  # max over the folded gaps it is built from
        folded = [_fold_abs(*_percentile((boot[f"{d}_c0"] - boot[f"{d}_c1"])[ok], level))
                  for d in _DEPENDS[name]]
        return max(f[0] for f in folded), max(f[1] for f in folded), ok
    return (*_percentile(boot[name][ok], level), ok)


def _bootstrap(data: _Data, point: dict, privileged: int, n_boot: int, level: float, seed: int):
    boot = _resample_metrics(data, privileged, n_boot, seed)
    out = {}
    for name, x in boot.items():
        lo, hi, ok = _interval(name, boot, level)
        n_valid = int(ok.sum())
        if n_valid < n_boot:
            log.warning("%s%s: defined in %d of %d bootstrap resamples (a resampled group lacked "
                        "the rows it needs); its interval uses those %d", _prefix(data.source), name,
                        n_valid, n_boot, n_valid)
        est = point[name]
        out[name] = {
            "estimate": None if np.isnan(est) else est,
            "lower": lo, "upper": hi,
            "std": float(np.std(x[ok], ddof=1)) if n_valid > 1 else None,
            "n_valid": n_valid,
        }
    return out


# --------------------------------------------------------------------------------------------
# public API


def bootstrap_ci(y_true, y_pred, c, score=None, sample_weight=None, *, privileged: int = 1,
                 n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                 allow_undefined: bool = False, source: str | None = None) -> dict[str, dict]:
    """Percentile bootstrap intervals for every rate and fairness metric (not the counts).

    Rows are resampled with replacement within each group c (both groups keep their sizes);
    all ``n_boot`` resamples are evaluated with array operations in memory-bounded chunks.
    Returns ``{metric: {"estimate", "lower", "upper", "std", "n_valid"}}`` where ``estimate``
    is the full-data value, ``std`` the bootstrap standard deviation and ``n_valid`` the number
    of resamples in which the metric was defined (a resampled group can lose all its
    positives; the interval then uses the resamples that define it and a warning is logged).
    Folded metrics (absolute gaps, min/max ratio) get the folded interval of their signed
    quantity (see the module docstring). Deterministic for a given ``seed``.
    Raises DataError on bad input or an undefined point estimate (see :func:`evaluate`).
    """
    _check_params(privileged, n_boot, level, seed)
    if n_boot < 2:
        raise DataError(f"n_boot must be at least 2 for a bootstrap interval, got {n_boot}")
    data, point, undefined = _estimate(y_true, y_pred, c, score, sample_weight, privileged,
                                       allow_undefined, source)
    return _bootstrap(data, point, privileged, n_boot, level, seed)


def evaluate(y_true, y_pred, c, score=None, sample_weight=None, *, privileged: int = 1,
             n_boot: int = 1000, level: float = 0.95, seed: int = 0,
             allow_undefined: bool = False, source: str | None = None) -> dict:
    """All metrics of one classifier, JSON-serialisable.

    ``y_true``, ``y_pred``, ``c``: 0/1 (or bool) arrays of one length; ``score``: optional
    probabilities of y=1 in [0, 1] (adds ``auc``); ``sample_weight``: optional non-negative
    weights. ``privileged``: the value of c treated as privileged by the signed metrics.
    ``n_boot``: bootstrap resamples for ``ci`` (0 = no intervals). ``source`` prefixes error
    messages (e.g. the predictions file the arrays came from).

    Returns ``{"n", "privileged", "overall": {...}, "groups": {"0": {...}, "1": {...}},
    "fairness": {...}, "ci": {metric: [lo, hi]}, "bootstrap": {...}, "undefined": {...}}``.
    ``bootstrap`` holds ``n_boot``, ``level``, ``seed``, ``std`` and ``n_valid`` per metric.

    Raises DataError for: empty input, lengths that differ, non-binary labels, a single group,
    NaN/inf or out-of-range scores or weights, a group whose weights are all 0, and any
    undefined metric (e.g. TPR of a group with no positives) -- unless ``allow_undefined``,
    in which case undefined metrics are ``None`` and ``undefined`` maps each to its reason.
    """
    _check_params(privileged, n_boot, level, seed)
    privileged, n_boot, level, seed = int(privileged), int(n_boot), float(level), int(seed)  # plain JSON types
    if n_boot == 1:
        raise DataError("n_boot must be 0 (no intervals) or at least 2, got 1")
    data, point, undefined = _estimate(y_true, y_pred, c, score, sample_weight, privileged,
                                       allow_undefined, source)
    value = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in point.items()}
    base = COUNT_METRICS + RATE_METRICS + (SCORE_METRICS if data.hist_code is not None else ())
    ci = _bootstrap(data, point, privileged, n_boot, level, seed) if n_boot else {}
    return {
        "n": value["n"],
        "privileged": privileged,
        "overall": {k: value[k] for k in base},
        "groups": {str(g): {k: value[f"{k}_c{g}"] for k in base} for g in GROUPS},
        "fairness": {k: value[k] for k in FAIRNESS_METRICS},
        "ci": {k: [v["lower"], v["upper"]] for k, v in ci.items()},
        "bootstrap": {
            "n_boot": n_boot, "level": level, "seed": seed, "stratified_by": "c",
            "method": "percentile; absolute gaps and min/max ratio folded from their signed quantity",
            "std": {k: v["std"] for k, v in ci.items()},
            "n_valid": {k: v["n_valid"] for k, v in ci.items()},
        },
        "undefined": undefined,
    }


PAIRED_METRICS = ("accuracy", "balanced_accuracy", "auc") + FAIRNESS_METRICS


def paired_difference(y_true, c, y_pred_base, y_pred, score_base=None, score=None, *, privileged: int = 1,
                      n_boot: int = 1000, level: float = 0.95, seed: int = 0, source: str | None = None) -> dict:
    """How a classifier differs from a baseline classifier on the same rows, with paired intervals.

    ``y_true`` and ``c`` are the shared test rows; ``y_pred_base`` / ``score_base`` the
    baseline's predictions, ``y_pred`` / ``score`` the compared classifier's. Every resample
    draws one set of rows (stratified by c, as :func:`bootstrap_ci`) and evaluates *both*
    classifiers on it, so the interval of a difference reflects only how the two differ on the
    same images -- narrower than comparing two separate intervals, and the right test for
    "lower than the baseline on this test set". ``auc`` is compared when both have scores.

    Returns ``{"n", "privileged", "metrics": {name: {...}}, "bootstrap": {...}, "undefined"}``
    with, per metric of :data:`PAIRED_METRICS`: ``baseline``, ``value``, ``difference``
    (value - baseline) and its percentile interval ``lower`` / ``upper``; ``relative``
    (difference / |baseline|, e.g. -0.5 for a gap halved) with ``relative_lower`` /
    ``relative_upper``; ``n_valid`` resamples in which both were defined. Differences of
    absolute gaps are not folded: a gap near 0 is biased upward in resamples, so the interval
    of a reduction towards parity leans towards less reduction (conservative). ``n_boot=0``
    gives the changes without intervals. A metric undefined for either classifier (or a relative change against a baseline of 0) is ``None``
    with its reason under ``undefined``. Raises DataError on bad input (see :func:`evaluate`).
    """
    _check_params(privileged, n_boot, level, seed)
    privileged, n_boot, level, seed = int(privileged), int(n_boot), float(level), int(seed)
    if n_boot == 1:
        raise DataError("n_boot must be 0 (no intervals) or at least 2, got 1")
    pre = _prefix(source)
    if (score_base is None) != (score is None):
        score_base = score = None  # AUC needs both
    base, p_base, und_base = _estimate(y_true, y_pred_base, c, score_base, None, privileged, True,
                                       f"{pre}baseline")
    new, p_new, und_new = _estimate(y_true, y_pred, c, score, None, privileged, True, source)
    names = [m for m in PAIRED_METRICS if m in p_base]
    empty = {name: np.full(0, np.nan) for name in names}
    boot_base, boot_new = _resample_metrics([base, new], privileged, n_boot, seed) if n_boot else (empty, empty)
    metrics, undefined = {}, {}
    for name in names:
        a, b = p_base[name], p_new[name]
        entry = dict.fromkeys(("baseline", "value", "difference", "lower", "upper", "relative",
                               "relative_lower", "relative_upper"))
        entry["n_valid"] = 0
        if np.isnan(a) or np.isnan(b):
            why = und_base.get(name) if np.isnan(a) else und_new.get(name)
            undefined[name] = f"{'the baseline' if np.isnan(a) else 'the compared classifier'}: {why}"
            metrics[name] = entry
            continue
        d = boot_new[name] - boot_base[name]
        ok = np.isfinite(d)
        entry.update(baseline=float(a), value=float(b), difference=float(b - a), n_valid=int(ok.sum()))
        if ok.sum() >= 2:
            entry["lower"], entry["upper"] = _percentile(d[ok], level)
        if a == 0:
            undefined[f"{name}.relative"] = f"{name}: the baseline's value is 0, so a relative change is undefined"
        else:
            entry["relative"] = float((b - a) / abs(a))
            rel = _div(d, np.abs(boot_base[name]))
            rok = np.isfinite(rel)
            if rok.sum() >= 2:
                entry["relative_lower"], entry["relative_upper"] = _percentile(rel[rok], level)
        metrics[name] = entry
    return {
        "n": int(sum(base.n)),
        "privileged": privileged,
        "metrics": metrics,
        "bootstrap": {"n_boot": n_boot, "level": level, "seed": seed, "stratified_by": "c", "paired": True,
                      "method": "percentile of the per-resample differences (value - baseline)"},
        "undefined": undefined,
    }


def flatten(result: dict) -> dict:
    """One :func:`evaluate` result as ``{metric: value}`` with the flat metric names."""
    try:
        flat = dict(result["overall"])
        for g in GROUPS:
            flat.update({f"{k}_c{g}": v for k, v in result["groups"][str(g)].items()})
        flat.update(result["fairness"])
        result["ci"]
    except (KeyError, TypeError) as e:
        raise DataError(f"not a fairgen.eval.fairness.evaluate result (missing {e})") from None
    return flat


def metrics_table(results: dict[str, dict]):
    """Several classifiers' :func:`evaluate` results as one DataFrame.

    One row per method (column ``method``, in the order given), then for each metric its
    value and, where intervals were computed, ``<metric>_lo`` / ``<metric>_hi``. A metric a
    method does not have (``auc`` without scores, an interval with ``n_boot=0``, an undefined
    metric under ``allow_undefined``) is missing (NaN) in that row.
    """
    import pandas as pd

    if not results:
        raise DataError("metrics_table needs at least one result")
    flats, metrics, with_ci = {}, [], set()
    for method, result in results.items():
        try:
            flats[method] = flatten(result)
        except DataError as e:
            raise DataError(f"method '{method}': {e}") from None
        metrics += [k for k in flats[method] if k not in metrics]
        with_ci |= set(result["ci"])
    columns = ["method"] + [col for k in metrics
                            for col in ((k, f"{k}_lo", f"{k}_hi") if k in with_ci else (k,))]
    rows = []
    for method, flat in flats.items():
        row = {"method": method, **flat}
        for k, (lo, hi) in results[method]["ci"].items():
            row[f"{k}_lo"], row[f"{k}_hi"] = lo, hi
        rows.append(row)
    df = pd.DataFrame(rows, columns=columns)
    for col in columns[1:]:
        if _base(col) not in ("n", "positives") or df[col].isna().any():
            df[col] = df[col].astype(np.float64)
    return df


# ============================================================================================
# k groups: any number of groups (one column or the intersection of several), for auditing a
# user's own predictions (fairgen audit-predictions) and the pipeline's classifiers alike.
#
# Metric names follow the binary case (``selection_rate``, ``tpr`` ...) plus ``precision``
# (TP / predicted positives) and ``average_precision`` (sklearn's step-wise AP) with scores.
# Between groups, fairlearn's conventions: ``difference`` = group max - group min, ``ratio`` =
# group min / group max. Against a reference group (the largest by default, or named),
# Aequitas's: ``disparity`` = metric(group) / metric(reference), and a group *passes* a metric
# at tolerance tau when tau <= disparity <= 1/tau.
#
# Bootstrap: stratified by group, as in the binary case, but drawn as a multinomial over each
# group's cells (label, prediction[, score bin]) instead of row indices: a resample of n_g rows
# with replacement has exactly Multinomial(n_g, cell shares) cell counts, and every count metric
# is a function of the cell counts, so the distribution is the same at a cost that does not grow
# with the number of rows. AUC and AP are functions of the per-label score histogram: with at
# most ``score_bins`` distinct scores the histogram is exact; with more, the resamples use
# ``score_bins`` quantile bins of the score (ties within a bin count 1/2 for AUC), and
# ``score_binning`` reports how far the binned point estimate lies from the exact one.
# ============================================================================================

K_RATE_METRICS = ("base_rate", "selection_rate", "tpr", "fpr", "fnr", "tnr", "precision", "error_rate",
                  "accuracy", "balanced_accuracy")
K_SCORE_METRICS = ("auc", "average_precision")
# Metrics judged against the reference group by default (pass/fail at the tolerance).
DISPARITY_METRICS = ("selection_rate", "tpr", "fpr", "fnr", "precision", "error_rate")
K_LABELS = {**{k: LABELS[k] for k in RATE_METRICS + SCORE_METRICS},
            "precision": "precision (positive predictive value)", "average_precision": "average precision"}
_K_NEEDS = {"tpr": "rows with label 1", "fnr": "rows with label 1", "fpr": "rows with label 0",
            "tnr": "rows with label 0", "balanced_accuracy": "rows of both labels",
            "auc": "rows of both labels", "average_precision": "rows with label 1",
            "precision": "rows predicted 1"}
SCORE_BINS = 1000
# Resample cells (resamples x groups x cells) handled per bootstrap chunk; bounds memory.
_K_CHUNK_ELEMENTS = 1 << 23


def _average_precision(hist: np.ndarray) -> np.ndarray:
    """sklearn's average precision from (..., 2, K) histograms over ascending score levels:
    sum over levels of (recall step) x (precision at that level), thresholds at every level."""
    neg, pos = hist[..., 0, :], hist[..., 1, :]
    tp = np.cumsum(pos[..., ::-1], axis=-1)[..., ::-1]  # label-1 weight at or above each level
    fp = np.cumsum(neg[..., ::-1], axis=-1)[..., ::-1]
    precision = _div(tp, tp + fp)
    step = np.where(pos > 0, pos * np.nan_to_num(precision), 0.0)
    return _div(step.sum(-1), pos.sum(-1))


def _k_rates(cells: np.ndarray, hist: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-group metrics from cell counts (..., 4) [TN, FP, FN, TP] and histograms (..., 2, K)."""
    out = _rates(cells, cells, hist)
    del out["weight"]
    out["precision"] = _div(cells[..., TP], cells[..., TP] + cells[..., FP])
    if hist is not None:
        out["average_precision"] = _average_precision(hist)
    return out


def _group_codes(group, n_y: int, n_p: int, pre: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct group labels and each row's code (hash-based: fast for text labels)."""
    import pandas as pd

    g = np.asarray(group)
    if g.ndim != 1 or not len(g) == n_y == n_p:
        raise DataError(f"{pre}y_true, y_pred and group differ in length: {n_y}, {n_p}, {len(g)}")
    if n_y == 0:
        raise DataError(f"{pre}empty input: no rows to evaluate")
    if pd.isna(g).any():
        raise DataError(f"{pre}group is missing (NaN/None) in row {int(np.flatnonzero(pd.isna(g))[0])}")
    code, labels = pd.factorize(g, sort=True)
    return np.asarray(labels), code.astype(np.intp)


@dataclass(frozen=True)
class GroupData:
    """Validated rows of one model, coded by group: the input of :func:`group_audit`."""

    labels: tuple  # group labels, in order of the codes
    counts: np.ndarray  # (k, C) row counts per group and resampling cell
    cell_kind: np.ndarray  # (C,) confusion cell 0..3 (TN, FP, FN, TP) of each resampling cell
    cell_bin: np.ndarray | None  # (C,) score bin of each cell (None without scores)
    n_bins: int
    exact: dict | None  # exact per-group "auc" / "average_precision" (k,), with scores
    binning: dict | None

    @property
    def n(self) -> np.ndarray:
        return self.counts.sum(1)


def group_data(y_true, y_pred, group, score=None, *, score_bins: int = SCORE_BINS,
               source: str | None = None) -> GroupData:
    """Check and code one model's rows: 0/1 ``y_true`` and ``y_pred``, any hashable ``group``
    labels (at least two distinct), optional ``score`` (any finite numbers: only their order
    matters for AUC and AP). Raises DataError naming the row and value of the first bad entry."""
    pre = _prefix(source)
    y, p = _binary("y_true", y_true, pre), _binary("y_pred", y_pred, pre)
    labels, code = _group_codes(group, len(y), len(p), pre)
    k = len(labels)
    if k < 2:
        raise DataError(f"{pre}group has a single value {labels[0]!r} in all {len(y)} rows; "
                        "fairness metrics compare at least two groups")
    kind = 2 * y + p
    if score is None:
        counts = np.bincount(code * 4 + kind, minlength=4 * k).reshape(k, 4).astype(np.int64)
        return GroupData(tuple(labels.tolist()), counts, np.arange(4), None, 0, None, None)
    s = _array("score", score, pre).astype(np.float64)
    if len(s) != len(y):
        raise DataError(f"{pre}score has {len(s)} rows, y_true {len(y)}")
    _first_bad("score", s, ~np.isfinite(s), "finite (no NaN/inf)", pre)
    exact = {"auc": np.empty(k), "average_precision": np.empty(k)}
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(k + 1))
    for j in range(k):
        rows = order[bounds[j]:bounds[j + 1]]
        levels, rank = np.unique(s[rows], return_inverse=True)
        h = np.bincount(y[rows] * len(levels) + rank.reshape(-1), minlength=2 * len(levels)).reshape(2, -1)
        h = h.astype(np.float64)
        exact["auc"][j], exact["average_precision"][j] = _auc(h), _average_precision(h)
    levels = np.unique(s)
    if len(levels) <= score_bins:
        bins, n_bins = np.searchsorted(levels, s), len(levels)
        binning = {"method": "exact", "bins": n_bins}
    else:
        edges = np.unique(np.quantile(s, np.linspace(0, 1, score_bins + 1)[1:-1]))
        bins, n_bins = np.searchsorted(edges, s, side="right"), len(edges) + 1
        binning = {"method": "quantile", "bins": n_bins}
    full = np.bincount((code * 4 + kind) * n_bins + bins, minlength=4 * k * n_bins).reshape(k, 4 * n_bins)
    used = np.flatnonzero(full.any(0))  # cells empty in every group can never be drawn
    data = GroupData(tuple(labels.tolist()), full[:, used].astype(np.int64), used // n_bins, used % n_bins,
                     n_bins, exact, binning)
    binned = _k_rates(*_k_cells(data, data.counts[None]))
    binning["max_abs_difference_from_exact"] = {
        m: float(np.nanmax(np.abs(binned[m][0] - exact[m]), initial=0.0)) for m in K_SCORE_METRICS}
    return data


def _k_cells(data: GroupData, counts: np.ndarray):
    """Confusion cells (B, k, 4) and score histograms (B, k, 2, bins) from cell counts (B, k, C)."""
    b, k, _ = counts.shape
    onehot = np.zeros((len(data.cell_kind), 4))
    onehot[np.arange(len(data.cell_kind)), data.cell_kind] = 1.0
    cells = counts @ onehot
    if data.cell_bin is None:
        return cells, None
    target = (data.cell_kind // 2) * data.n_bins + data.cell_bin  # (label, bin) of each cell
    order = np.argsort(target, kind="stable")
    where_, starts = np.unique(target[order], return_index=True)
    hist = np.zeros((b, k, 2 * data.n_bins))
    hist[:, :, where_] = np.add.reduceat(counts[:, :, order], starts, axis=-1)
    return cells, hist.reshape(b, k, 2, data.n_bins)


def _k_summaries(rates: dict[str, np.ndarray], metrics, ref: int) -> dict[tuple[str, str], np.ndarray]:
    """Per-group values, between-group summaries and reference comparisons, all (B, ...) arrays."""
    out = {}
    for m in metrics:
        x = rates[m]
        lo, hi = x.min(-1), x.max(-1)  # NaN when any group's value is undefined
        ref_x = x[..., ref:ref + 1]
        out.update({("group", m): x, ("min", m): lo, ("max", m): hi, ("difference", m): hi - lo,
                    ("ratio", m): _div(lo, hi), ("ref_difference", m): x - ref_x, ("disparity", m): _div(x, ref_x)})
    return out


def _k_draws(data: GroupData, n_boot: int, seed: int):
    """Yield (B, k, C) cell counts of stratified resamples in memory-bounded chunks: each group's
    rows are redrawn with replacement as one multinomial over its non-empty cells. One stream
    per group and a chunk size that does not depend on n_boot: the first resamples are the
    same for every n_boot."""
    k, n_cells = data.counts.shape
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(k)]
    per = [np.flatnonzero(data.counts[j]) for j in range(k)]
    chunk = max(1, _K_CHUNK_ELEMENTS // (k * (n_cells + 2 * data.n_bins + 16)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        draws = np.zeros((b, k, n_cells), dtype=np.int64)
        for j, (rng, cells) in enumerate(zip(rngs, per)):
            c = data.counts[j, cells]
            draws[:, j, cells] = rng.multinomial(int(c.sum()), c / c.sum(), size=b)
        yield draws


def _percentiles(x: np.ndarray, level: float):
    """Percentile interval along axis 0 ignoring NaN resamples; (lower, upper, n_valid)."""
    q = 100 * (1 - level) / 2
    ok = np.isfinite(x)
    n_valid = ok.sum(0)
    if ok.all():
        lo, hi = np.percentile(x, [q, 100 - q], axis=0)
    else:
        with warnings.catch_warnings():  # all-NaN columns: their interval is NaN (shown as None)
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(np.where(ok, x, np.nan), [q, 100 - q], axis=0)
    return lo, hi, n_valid


def _num(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _k_intervals(boot: dict, level: float, k: int) -> dict:
    """{key: (lower, upper, n_valid)} per summary; for two groups the difference and ratio get
    the folded interval of their signed quantity, exactly as :func:`bootstrap_ci` does."""
    out = {key: _percentiles(x, level) for key, x in boot.items()}
    if k == 2:
        for (what, m), x in boot.items():
            if what == "group":
                ok = np.isfinite(x).all(-1)
                if ok.sum() < 2:
                    continue
                a = _fold_abs(*_percentile(x[ok, 0] - x[ok, 1], level))
                t = _div(x[ok, 0], x[ok, 0] + x[ok, 1])
                tok = np.isfinite(t)
                out[("difference", m)] = (a[0], a[1], int(ok.sum()))
                if tok.sum() >= 2:
                    out[("ratio", m)] = (*_fold_ratio(*_percentile(t[tok], level)), int(tok.sum()))
    return out


def _verdict(value, tolerance: float) -> str:
    return "undefined" if value is None else ("pass" if tolerance <= value <= 1 / tolerance else "fail")


def _interval_verdict(lo, hi, tolerance: float) -> str:
    if lo is None or hi is None:
        return "undefined"
    if tolerance <= lo and hi <= 1 / tolerance:
        return "pass"
    if hi < tolerance or lo > 1 / tolerance:
        return "fail"
    return "uncertain"


def _check_audit_params(n_boot, level, seed, tolerance, min_group_size) -> None:
    _check_params(1, n_boot, level, seed)
    if n_boot == 1:
        raise DataError("n_boot must be 0 (no intervals) or at least 2, got 1")
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not 0 < tolerance <= 1:
        raise DataError(f"tolerance must be a number in (0, 1], got {tolerance!r}")
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, numbers.Integral) or min_group_size < 0:
        raise DataError(f"min_group_size must be a non-negative integer, got {min_group_size!r}")


def _reference_index(labels: list[str], n: np.ndarray, reference) -> tuple[int, str]:
    if reference is None:
        return int(np.argmax(n)), "majority: the largest group"
    if str(reference) not in labels:
        raise DataError(f"reference group {str(reference)!r} is not a group; groups: "
                        + ", ".join(repr(g) for g in labels[:20]))
    return labels.index(str(reference)), "given"


def group_audit(data: GroupData, *, reference=None, metrics=None, n_boot: int = 1000, level: float = 0.95,
                seed: int = 0, tolerance: float = 0.8, min_group_size: int = 30) -> dict:
    """Group metrics, between-group differences / ratios and disparities against a reference
    group, each with a stratified bootstrap interval, and pass/fail at ``tolerance``.

    ``data`` from :func:`group_data`. ``reference``: a group label (default: the largest group).
    ``metrics``: the per-group metrics reported (default all; AUC and AP need scores).
    Groups smaller than ``min_group_size`` are flagged in ``small_groups`` (never dropped).
    Undefined values (a group without positives has no TPR) are ``None`` with their reason
    under ``undefined``. Returns a JSON-serialisable dict (see the k-group notes above).
    """
    _check_audit_params(n_boot, level, seed, tolerance, min_group_size)
    n_boot, level, seed, tolerance = int(n_boot), float(level), int(seed), float(tolerance)
    labels = [str(g) for g in data.labels]
    if len(set(labels)) != len(labels):
        raise DataError(f"group labels are not distinct as text: {labels}")
    k, n = len(labels), data.n
    available = K_RATE_METRICS + (K_SCORE_METRICS if data.exact is not None else ())
    metrics = list(available if metrics is None else metrics)
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise DataError(f"unknown or unavailable metric(s) {', '.join(unknown)}; available: {', '.join(available)}")
    ref, ref_rule = _reference_index(labels, n, reference)
    point_rates = _k_rates(*_k_cells(data, data.counts[None]))
    if data.exact is not None:  # exact AUC / AP for the point estimate (the resamples may be binned)
        point_rates.update({m: v[None] for m, v in data.exact.items()})
    point = {key: v[0] for key, v in _k_summaries(point_rates, metrics, ref).items()}
    ci: dict = {}
    if n_boot:
        parts: dict = {}
        for draws in _k_draws(data, n_boot, seed):
            for key, v in _k_summaries(_k_rates(*_k_cells(data, draws)), metrics, ref).items():
                parts.setdefault(key, []).append(v)
        ci = _k_intervals({key: np.concatenate(v) for key, v in parts.items()}, level, k)

    def entry(key, j=None):
        v = point[key] if j is None else point[key][j]
        out = {"value": _num(v)}
        if key in ci:
            lo, hi, nv = ci[key]
            pick = (lambda a: a) if j is None else (lambda a: np.asarray(a)[j])
            out.update(lower=_num(pick(lo)), upper=_num(pick(hi)), n_valid=int(pick(nv)))
        return out

    undefined = {}
    by_group, vs_ref = {}, {}
    for j, g in enumerate(labels):
        by_group[g] = {"n": int(n[j]), "positives": int(data.counts[j, data.cell_kind >= 2].sum())}
        vs_ref[g] = {}
        for m in metrics:
            by_group[g][m] = entry(("group", m), j)
            if by_group[g][m]["value"] is None:
                undefined[f"{g}/{m}"] = f"{K_LABELS[m]} of group {g!r} is undefined: it has no {_K_NEEDS[m]}"
            d = {"difference": entry(("ref_difference", m), j), "disparity": entry(("disparity", m), j)}
            dis = d["disparity"]
            d["verdict"] = "reference" if j == ref else _verdict(dis["value"], tolerance)
            d["interval_verdict"] = ("reference" if j == ref else
                                     _interval_verdict(dis.get("lower"), dis.get("upper"), tolerance))
            vs_ref[g][m] = d
    between = {}
    for m in metrics:
        x = point[("group", m)]
        defined = bool(np.isfinite(x).all())
        between[m] = {"difference": entry(("difference", m)), "ratio": entry(("ratio", m)),
                      "group_min": _num(point[("min", m)]), "group_max": _num(point[("max", m)]),
                      "argmin": labels[int(np.argmin(x))] if defined else None,
                      "argmax": labels[int(np.argmax(x))] if defined else None}
    return {
        "groups": labels, "reference": labels[ref], "reference_rule": ref_rule, "metrics": metrics,
        "n": int(n.sum()), "tolerance": tolerance, "min_group_size": int(min_group_size),
        "small_groups": [g for j, g in enumerate(labels) if n[j] < min_group_size],
        "by_group": by_group, "between_groups": between, "vs_reference": vs_ref, "undefined": undefined,
        "bootstrap": {"n_boot": n_boot, "level": level, "seed": seed, "stratified_by": "group",
                      "method": "percentile; resamples drawn as per-group multinomials over the cells "
                                "(label, prediction, score bin)" + ("; with two groups the difference and "
                                "ratio are folded from their signed quantity" if k == 2 else "")},
        "score_binning": data.binning,
    }


def paired_group_audit(y_true, y_pred_a, y_pred_b, group, *, metrics=None, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0, source: str | None = None) -> dict:
    """Model B against model A on the same rows, per group and between groups, with paired
    intervals: every resample redraws each group's rows once (a multinomial over the joint
    cells (label, A's prediction, B's prediction)) and evaluates both models on it, so the
    interval of B - A reflects only how the two differ on the same rows. Count-based metrics
    only (AUC and AP are not paired here). Returns ``{"groups", "metrics", "by_group":
    {group: {metric: {a, b, difference, lower, upper}}}, "between_groups": {metric:
    {"difference"|"ratio": {...}}}, "bootstrap"}`` with B - A as ``difference``."""
    _check_audit_params(n_boot, level, seed, 0.8, 0)
    pre = _prefix(source)
    pb = _binary("y_pred (model B)", y_pred_b, pre)
    base = group_data(y_true, y_pred_a, group, source=source)  # checks labels, A and the groups
    if len(pb) != int(base.n.sum()):
        raise DataError(f"{pre}model B has {len(pb)} rows, model A {int(base.n.sum())}")
    y = _binary("y_true", y_true, pre)
    pa = _binary("y_pred", y_pred_a, pre)
    _, code = _group_codes(group, len(y), len(pa), pre)
    k = len(base.labels)
    counts = np.bincount(code * 8 + 4 * y + 2 * pa + pb, minlength=8 * k).reshape(k, 8)
    j = np.arange(8)
    da = GroupData(base.labels, counts, (j // 4) * 2 + (j // 2) % 2, None, 0, None, None)
    db = GroupData(base.labels, counts, (j // 4) * 2 + j % 2, None, 0, None, None)
    metrics = list(K_RATE_METRICS if metrics is None else metrics)
    bad = [m for m in metrics if m not in K_RATE_METRICS]
    if bad:
        raise DataError(f"paired comparison: metric(s) {', '.join(bad)} are not count-based; "
                        f"available: {', '.join(K_RATE_METRICS)}")

    def summaries(d, c):
        return _k_summaries(_k_rates(*_k_cells(d, c)), metrics, 0)

    pa_, pb_ = summaries(da, counts[None]), summaries(db, counts[None])
    diffs: dict = {}
    if n_boot:
        for draws in _k_draws(da, int(n_boot), int(seed)):
            sa, sb = summaries(da, draws), summaries(db, draws)
            for key in sa:
                diffs.setdefault(key, []).append(sb[key] - sa[key])
    ci = {key: _percentiles(np.concatenate(v), float(level)) for key, v in diffs.items()}
    labels = [str(g) for g in base.labels]

    def entry(key, jj=None):
        pick = (lambda a: a[0]) if jj is None else (lambda a: a[0][jj])
        a, b = _num(pick(pa_[key])), _num(pick(pb_[key]))
        out = {"a": a, "b": b, "difference": None if a is None or b is None else b - a}
        if key in ci:
            lo, hi, nv = ci[key]
            at = (lambda v: v) if jj is None else (lambda v: np.asarray(v)[jj])
            out.update(lower=_num(at(lo)), upper=_num(at(hi)), n_valid=int(at(nv)))
        return out

    return {
        "groups": labels, "metrics": metrics, "n": int(counts.sum()),
        "by_group": {g: {m: entry(("group", m), jj) for m in metrics} for jj, g in enumerate(labels)},
        "between_groups": {m: {"difference": entry(("difference", m)), "ratio": entry(("ratio", m))}
                           for m in metrics},
        "bootstrap": {"n_boot": int(n_boot), "level": float(level), "seed": int(seed), "paired": True,
                      "stratified_by": "group",
                      "method": "percentile of the per-resample differences (B - A); resamples drawn as "
                                "per-group multinomials over the cells (label, A's prediction, B's prediction)"},
    }

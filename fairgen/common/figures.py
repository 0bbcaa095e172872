"""Figures of the reports (the audit, the predictions audit, the sweep page) and of the trade-off
stage (matplotlib, Agg backend), each returned as PNG bytes.

Every function takes plain numbers (already read and validated by the caller, e.g.
:mod:`fairgen.report.loaders`) and returns the encoded PNG, so a report can both write it to the
figures folder and inline it as
a data URI. The look is shared: one colour per protected group, one per method, light grid,
no top/right spines. PNGs carry no timestamp, so the same numbers give the same bytes.
"""

from __future__ import annotations

import functools
import io
import math
from typing import Sequence

import numpy as np

# Okabe-Ito palette (colour-blind safe).
GROUP_COLORS = ("#E69F00", "#0072B2")  # c=0, c=1
METHOD_COLORS = ("#444444", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                 "#F0E442")
REAL_COLOR = "#7f7f7f"
DPI = 130

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.edgecolor": "#888888",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


def _render(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _styled(func):
    """Run a figure function inside the report's style (matplotlib rcParams context)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(_STYLE):
            return func(*args, **kwargs)

    return wrapper


def _figure(nrows: int, ncols: int, width: float, height: float):
    """A pyplot-free Figure (Agg canvas on savefig): no global figure state, no GUI backend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _legend(ax, **kwargs):
    return ax.legend(**kwargs)


def _err(value: float | None, lo: float | None, hi: float | None) -> tuple[float, float]:
    """Non-negative (below, above) error-bar lengths; 0 where the interval is missing."""
    if value is None or lo is None or hi is None:
        return 0.0, 0.0
    return max(value - lo, 0.0), max(hi - value, 0.0)


def _nan(v):
    return np.nan if v is None else float(v)


@_styled
def base_rates(rows: Sequence[dict], group_labels: Sequence[str], outcome: str) -> bytes:
    """Grouped bars of P(y=1 | c) per dataset. ``rows``: ``{"label", "p": [p0, p1], "n": [n0, n1]}``."""
    n = len(rows)
    fig, axes = _figure(1, 1, max(5.0, 1.05 * n + 2.2), 3.0)
    ax = axes[0, 0]
    x = np.arange(n)
    width = 0.38
    for g in (0, 1):
        values = [_nan(r["p"][g]) for r in rows]
        bars = ax.bar(x + (g - 0.5) * width, values, width, color=GROUP_COLORS[g], label=group_labels[g])
        for rect, v in zip(bars, values):
            if np.isfinite(v):
                ax.annotate(f"{v:.2f}", (rect.get_x() + rect.get_width() / 2, v), xytext=(0, 2),
                            textcoords="offset points", ha="center", va="bottom", fontsize=8, color="#333333")
    ax.set_xticks(x, [r["label"] for r in rows], rotation=20 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel(f"P({outcome} = 1 | group)")
    ax.set_title(f"Base rate of {outcome} per group")
    _legend(ax, loc="upper right", ncol=2)
    return _render(fig)


@_styled
def gan_curves(series: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], run: str,
               unit_interval: Sequence[str] = ("accuracies and rates",)) -> bytes:
    """Training curves of one GAN run: one panel per non-empty series family
    (``{panel: {name: (step, value)}}``); panels named in ``unit_interval`` get a [0, 1] axis.
    Series ending in ``_fake`` are dashed, so real/fake pairs read at a glance."""
    panels = [(title, lines) for title, lines in series.items() if lines]
    ncols = max(1, len(panels))
    fig, axes = _figure(1, ncols, 4.2 * ncols, 3.6)
    for ax, (title, lines) in zip(axes.flat, panels):
        colors = _line_colors(len(lines))
        for color, (name, (step, value)) in zip(colors, lines.items()):
            ax.plot(step, value, lw=1.3, color=color, ls="--" if name.endswith("_fake") else "-", label=name)
        ax.set_title(f"{run}: {title}")
        ax.set_xlabel("training step")
        if title in unit_interval:
            ax.set_ylim(-0.02, 1.02)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2 if len(lines) > 3 else 1, fontsize=8)
    return _render(fig)


def _line_colors(n: int) -> list:
    if n <= len(METHOD_COLORS):
        return list(METHOD_COLORS[:n])
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


@_styled
def tradeoff(points: Sequence[dict], fairness: Sequence[tuple[str, str]], baseline: str | None,
             reference: dict | None = None) -> bytes:
    """Accuracy against each fairness metric, one point per method with CI error bars.

    ``points``: ``{"method", "accuracy": (v, lo, hi), <metric>: (v, lo, hi), ...}``;
    ``fairness``: ``[(metric key, axis label), ...]`` (lower is fairer); ``reference``:
    ``{metric key: [(xs, ys, label), ...]}``, curves drawn behind the points on that metric's panel
    (the oracle frontier of the synthetic data, the group-threshold baseline).
    """
    ncols = len(fairness)
    fig, axes = _figure(1, ncols, 4.0 * ncols, 3.4)
    legend: dict[str, object] = {}
    for ax, (key, label) in zip(axes.flat, fairness):
        labels_at: dict[tuple[float, float], list[str]] = {}
        right = max([p[key][2] or p[key][0] or 0.0 for p in points if p[key][0] is not None] or [0.0])
        for style, (xs, ys, ref_label) in zip(("--", ":", "-."), (reference or {}).get(key, [])):
            # beyond its last point a reference is flat (an unconstrained optimum): draw it on to
            # the rightmost point or interval end
            if xs and right > xs[-1]:
                xs, ys = [*xs, right], [*ys, ys[-1]]
            handle = ax.plot(xs, ys, style, color="#777777", lw=1.3, zorder=2, label=ref_label)[0]
            legend.setdefault(ref_label, handle)
        for k, p in enumerate(points):
            fx, flo, fhi = p[key]
            ay, alo, ahi = p["accuracy"]
            if fx is None or ay is None:
                continue
            is_base = p["method"] == baseline
            color = REAL_COLOR if is_base else METHOD_COLORS[(k + 1) % len(METHOD_COLORS)]
            xerr = np.array(_err(fx, flo, fhi)).reshape(2, 1)
            yerr = np.array(_err(ay, alo, ahi)).reshape(2, 1)
            handle = ax.errorbar(fx, ay, xerr=xerr, yerr=yerr, fmt="s" if is_base else "o", ms=6, color=color,
                                 ecolor=color, elinewidth=1.0, capsize=2.5, label=p["method"], zorder=3)
            legend.setdefault(p["method"], handle)
            # methods at the same point share one label instead of overprinting each other
            labels_at.setdefault((round(fx, 4), round(ay, 4)), []).append(p["method"])
        for (fx, ay), names in labels_at.items():
            ax.annotate(", ".join(names), (fx, ay), xytext=(5, 4), textcoords="offset points", fontsize=8.5,
                        color="#222222")
        ax.set_xlabel(f"{label}  (lower is fairer)")
        ax.set_ylabel("accuracy")
        ax.set_xlim(-0.04 * max(right, 0.05), None)
        ax.set_title(f"Accuracy vs {label}")
    if legend:
        order = [p["method"] for p in points if p["method"] in legend]
        order += [name for name in legend if name not in order]
        fig.legend([legend[m] for m in order], order, loc="outside lower center", ncol=min(len(order), 6))
    return _render(fig)


@_styled
def group_rates(methods: Sequence[str], rates: Sequence[tuple[str, str]], values: dict,
                group_labels: Sequence[str]) -> bytes:
    """Per-group rates per method: one panel per rate, bars c=0 / c=1 with CI error bars.

    ``values[(method, rate, group)] = (v, lo, hi)``.
    """
    ncols = min(3, len(rates))
    nrows = math.ceil(len(rates) / ncols)
    fig, axes = _figure(nrows, ncols, 4.0 * ncols, 2.7 * nrows)
    x = np.arange(len(methods))
    width = 0.38
    for ax, (rate, label) in zip(axes.flat, rates):
        for g in (0, 1):
            vals = [values.get((m, rate, g), (None, None, None)) for m in methods]
            heights = [_nan(v[0]) for v in vals]
            errs = np.array([_err(*v) for v in vals]).T if vals else None
            ax.bar(x + (g - 0.5) * width, heights, width, color=GROUP_COLORS[g], label=group_labels[g],
                   yerr=errs, error_kw={"elinewidth": 0.9, "capsize": 2, "ecolor": "#333333"})
        ax.set_xticks(x, methods, rotation=25, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_title(label)
    for ax in list(axes.flat)[len(rates):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=2)
    return _render(fig)


@_styled
def fid_bars(runs: Sequence[str], values: dict, reference: dict, label: str, group_labels: Sequence[str]) -> bytes:
    """FID per run: overall and per group; dashed lines = the real-vs-real reference.

    ``values[(run, part)]`` and ``reference[part]`` with part in ("overall", "0", "1").
    """
    parts = (("overall", "all images", "#555555"), ("0", group_labels[0], GROUP_COLORS[0]),
             ("1", group_labels[1], GROUP_COLORS[1]))
    fig, axes = _figure(1, 1, max(5.0, 1.4 * len(runs) + 2.5), 3.0)
    ax = axes[0, 0]
    x = np.arange(len(runs))
    width = 0.26
    for k, (part, name, color) in enumerate(parts):
        heights = [_nan(values.get((r, part))) for r in runs]
        ax.bar(x + (k - 1) * width, heights, width, color=color, label=name)
        ref = reference.get(part)
        if ref is not None:
            ax.axhline(ref, color=color, lw=1.0, ls="--", alpha=0.8, label=f"{name}: real vs real")
    ax.set_xticks(x, runs)
    ax.set_ylabel(label)
    ax.set_ylim(bottom=0)
    ax.set_title(f"{label} per synthetic set")
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _render(fig)


@_styled
def attribute_coverage(attributes: Sequence[str], real: Sequence[float], runs: dict[str, Sequence[float]],
                       dropped: dict[str, set]) -> bytes:
    """Each attribute's rate in the real images (grey bar) and in each synthetic set (dots), as
    one real-trained classifier reads them; a dot ringed in red marks a look the set dropped.

    ``real[k]`` and ``runs[run][k]`` are the rates of ``attributes[k]``; ``dropped[run]`` the
    attribute names reported as dropped for that run.
    """
    n = len(attributes)
    fig, axes = _figure(1, 1, 7.5, max(2.5, 0.26 * n + 1.2))
    ax = axes[0, 0]
    ypos = np.arange(n)[::-1]
    ax.barh(ypos, [_nan(v) for v in real], height=0.7, color="#d9d9d9", label="real images")
    colors = _line_colors(len(runs) + 1)[1:]
    offsets = np.linspace(-0.22, 0.22, len(runs)) if len(runs) > 1 else [0.0]
    for (run, values), color, off in zip(runs.items(), colors, offsets):
        ax.scatter([_nan(v) for v in values], ypos + off, s=18, color=color, zorder=3, label=run)
        hit = [k for k, a in enumerate(attributes) if a in dropped.get(run, set())]
        if hit:
            ax.scatter([_nan(values[k]) for k in hit], ypos[hit] + off, s=70, facecolors="none",
                       edgecolors="#d62728", linewidths=1.3, zorder=4)
    if any(dropped.values()):
        ax.scatter([], [], s=70, facecolors="none", edgecolors="#d62728", linewidths=1.3, label="dropped look")
    ax.set_yticks(ypos, attributes)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of images with the attribute (real-trained attribute classifier)")
    ax.set_title("Attribute coverage: real vs synthetic")
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _render(fig)


@_styled
def sample_grid(cells: dict[tuple[int, int], np.ndarray], title: str, group_labels: Sequence[str],
                outcome: str, ncol: int = 6, panel_px: int = 400) -> bytes:
    """A 2x2 panel of image grids, one per (c, y): ``cells[(c, y)]`` is uint8 (N, H, W, 3).

    The grids are placed pixel for pixel (``figimage``), enlarged by a whole factor so a panel
    is about ``panel_px`` wide: crisp samples with no resampling blur, and a PNG that
    compresses well. Labels are drawn around them.
    """
    from matplotlib.figure import Figure

    present = [v for v in cells.values() if v is not None and len(v)]
    nrow = max([-(-len(v) // ncol) for v in present] or [1])
    shape = present[0].shape[1:] if present else (8, 8, 3)
    blank = tile(np.full((1, *shape), 255, dtype=np.uint8), ncol, nrow)
    scale = max(1, round(panel_px / blank.shape[1]))
    ph, pw = blank.shape[0] * scale, blank.shape[1] * scale
    margin, title_h, label_h, gutter = 12, 40, 26, 18
    width = 2 * pw + gutter + 2 * margin
    height = title_h + 2 * (label_h + ph) + gutter + margin
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    fig.text(0.5, 1 - 14 / height, title, ha="center", va="top", fontsize=12, fontweight="bold")
    for (c, y) in [(c, y) for c in (0, 1) for y in (0, 1)]:
        x0 = margin + y * (pw + gutter)
        top = title_h + c * (label_h + ph + gutter)  # from the top edge
        fig.text((x0 + pw / 2) / width, 1 - (top + 4) / height, f"{group_labels[c]}, {outcome} = {y}",
                 ha="center", va="top", fontsize=10)
        images = cells.get((c, y))
        grid = tile(images, ncol, nrow) if images is not None and len(images) else np.full_like(blank, 238)
        big = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
        fig.figimage(big, xo=x0, yo=height - (top + label_h + ph), origin="upper")
        if images is None or len(images) == 0:
            fig.text((x0 + pw / 2) / width, 1 - (top + label_h + ph / 2) / height, "no samples", ha="center",
                     va="center", color="#888888", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def tile(images: np.ndarray, ncol: int, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Up to ``ncol * nrow`` uint8 images (N, H, W, 3) as one white-padded grid array of
    ``ncol`` columns and ``nrow`` rows (default: as many as the images need); empty slots are white."""
    import torch
    from torchvision.utils import make_grid

    images = np.asarray(images)
    nrow = nrow or -(-len(images) // ncol)
    images = images[: ncol * nrow]
    blank = np.full((ncol * nrow - len(images), *images.shape[1:]), 255, dtype=np.uint8)
    batch = torch.from_numpy(np.ascontiguousarray(np.concatenate([images, blank]))).permute(0, 3, 1, 2)
    grid = make_grid(batch, nrow=ncol, padding=pad, pad_value=255)
    return grid.permute(1, 2, 0).numpy()


def _plain(text: str) -> str:
    """A label matplotlib shows verbatim (a '$' would start mathtext)."""
    return str(text).replace("$", r"\$")


@_styled
def disparity(groups: Sequence[str], metrics: Sequence[tuple[str, str]], values: dict, reference: str,
              tolerance: float, small: Sequence[str] = ()) -> bytes:
    """Each group's disparity (metric / the reference group's) per metric, with its interval as
    an error bar, on a log axis with the tolerance band [tolerance, 1/tolerance] shaded.

    ``values[(metric, group)] = (disparity, lo, hi)`` (None where undefined). Groups outside
    the band are drawn in red, small groups (``small``) hollow.
    """
    from matplotlib.ticker import NullFormatter

    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    height = 0.9 + 0.28 * len(groups)
    fig, axes = _figure(nrows, ncols, 4.1 * ncols, height * nrows)
    y = np.arange(len(groups))[::-1]
    band = (tolerance, 1 / tolerance)
    for ax, (metric, label) in zip(axes.flat, metrics):
        ax.axvspan(*band, color="#d9efe2", zorder=0, label=f"tolerance band [{band[0]:.2f}, {band[1]:.2f}]")
        ax.axvline(1.0, color="#888888", lw=0.8)
        finite = [1.0, *band]
        for yi, g in zip(y, groups):
            v, lo, hi = values.get((metric, g), (None, None, None))
            if v is None or v <= 0:
                ax.text(1.0, yi, "undefined" if v is None else "0", ha="center", va="center", fontsize=7,
                        color="#666666")
                continue
            inside = band[0] <= v <= band[1]
            color = "#1b7f4b" if inside else "#c0392b"
            err = np.array([_err(v, lo, hi)]).T if lo is not None and lo > 0 else None
            ax.errorbar([v], [yi], xerr=err, fmt="o", color=color, ms=5, elinewidth=1, capsize=2,
                        mfc="white" if g in small else color)
            finite += [x for x in (v, lo, hi) if x is not None and x > 0]
        lo_x, hi_x = min(finite), max(finite)
        ax.set_xscale("log")
        ax.set_xlim(lo_x / 1.15, hi_x * 1.15)
        ax.set_xticks([band[0], 1.0, band[1]], [f"{band[0]:.2f}", "1", f"{band[1]:.2f}"])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(y, [_plain(g) + (" (ref)" if g == reference else "") for g in groups])
        ax.set_ylim(-0.7, len(groups) - 0.3)
        ax.set_title(_plain(label))
        ax.grid(axis="y", visible=False)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles[:1], labels[:1], loc="outside lower center")
    return _render(fig)


@_styled
def tradeoff_curves(result: dict) -> bytes:
    """Accuracy against DP difference (``fairgen tradeoff``): each point family as a line in knob
    order with its knob values written beside the points, the group-threshold curve of the real
    classifier, the oracle frontier when given, and real / reweighing as squares."""
    fig, axes = _figure(1, 1, 7.5, 5.0)
    ax = axes.flat[0]
    curve = sorted(result["threshold_curve"], key=lambda p: p["dp"])
    ax.plot([p["dp"] for p in curve], [p["accuracy"] for p in curve], "-", color="#999999", lw=1.5,
            label="group thresholds on real (post-processing)", zorder=2)
    if result.get("frontier"):
        fr = sorted(result["frontier"], key=lambda p: p["dp"])
        ax.plot([p["dp"] for p in fr], [p["accuracy"] for p in fr], "--", color="#777777", lw=1.2,
                label="oracle frontier (expected accuracy)", zorder=2)
    families: dict[str, list[dict]] = {}
    for p in result["points"]:
        families.setdefault(p["family"], []).append(p)
    k = 0
    for fam, pts in families.items():
        if fam in ("real", "reweighing"):
            color = REAL_COLOR if fam == "real" else "#000000"
            p = pts[0]
            ax.plot(p["demographic_parity_difference"], p["accuracy"], "s", ms=8, color=color, label=fam, zorder=4)
            continue
        k += 1
        color = METHOD_COLORS[k % len(METHOD_COLORS)]
        pts = sorted(pts, key=lambda p: (p["knob"] is None, p["knob"] or 0.0))
        xs = [p["demographic_parity_difference"] for p in pts]
        ys = [p["accuracy"] for p in pts]
        ax.plot(xs, ys, "o-" if len(pts) > 1 else "o", color=color, ms=5, lw=1.2, label=fam, zorder=3)
        for p, x, y in zip(pts, xs, ys):
            if p["knob"] is not None:
                ax.annotate(f"{p['knob']:g}", (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7.5,
                            color=color)
            if p.get("dominates_both_baselines"):
                ax.plot(x, y, "*", ms=14, color="#D55E00", zorder=5)
    ax.set_xlabel("demographic parity difference (lower is fairer)")
    ax.set_ylabel("accuracy on the real test split")
    ax.set_title("Accuracy vs DP difference: debiasing points and baselines")
    _legend(ax, loc="lower right", fontsize=8)
    return _render(fig)


@_styled
def lambda_sweep(runs, summary, key_metrics: Sequence[tuple]) -> bytes:
    """The sweep report's figure for one (protected, outcome) pair: one panel per key metric
    (``(key, label, tip, better)``) against lambda_fair. ``runs``: the pair's rows of the sweep's
    runs table (columns method, lambda_fair, and each metric); ``summary``: its mean/std per
    (method, lambda_fair, metric). Lambda-dependent methods are mean +/- std lines over the swept
    values with each seed as a dot; lambda-free methods (lambda_fair NaN) a band (mean +/- std)."""
    lams = sorted(x for x in runs["lambda_fair"].unique() if math.isfinite(x))
    pos = {lam: i for i, lam in enumerate(lams)}
    methods = list(dict.fromkeys(runs["method"]))
    colors = dict(zip(methods, _line_colors(len(methods))))
    ncols = len(key_metrics)
    fig, axes = _figure(1, ncols, 3.6 * ncols, 3.3)
    handles = {}
    width = max(len(lams) - 1, 1)
    for ax, (key, label, _, better) in zip(axes.flat, key_metrics):
        for method in methods:
            mine = summary[(summary["method"] == method) & (summary["metric"] == key)]
            seeds = runs[runs["method"] == method]
            color = colors[method]
            free = mine[mine["lambda_fair"].isna()]
            if len(free) and math.isfinite(free["mean"].iloc[0]):
                m, s = free["mean"].iloc[0], free["std"].iloc[0]
                handles[method] = ax.axhline(m, color=color, lw=1.4, ls="--", label=method)
                if math.isfinite(s):
                    ax.axhspan(m - s, m + s, color=color, alpha=0.12, lw=0)
            dep = mine[mine["lambda_fair"].notna()].sort_values("lambda_fair")
            if len(dep):
                x = np.array([pos[v] for v in dep["lambda_fair"]], dtype=float)
                handles[method] = ax.errorbar(x, dep["mean"], yerr=np.nan_to_num(dep["std"].to_numpy()),
                                              color=color, marker="o", ms=5, lw=1.4, capsize=3, label=method)
                pts = seeds[seeds["lambda_fair"].notna()]
                jitter = (np.arange(len(pts)) % 5 - 2) * 0.02 * width
                ax.plot(np.array([pos[v] for v in pts["lambda_fair"]]) + jitter, pts[key], ".", color=color,
                        alpha=0.5, ms=4)
        ax.set_xticks(range(len(lams)), [format(v, "g") for v in lams])
        ax.set_xlim(-0.4, len(lams) - 0.6)
        ax.set_xlabel("gan.lambda_fair")
        ax.set_title(f"{label} ({better} is better)")
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(len(handles), 6))
    return _render(fig)

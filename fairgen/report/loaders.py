"""Reading the audit's inputs: the dataset manifest and real base rates, every classifier's
``metrics.json``, the paired comparison with the baseline, the synthetic sets, the GAN runs (training
log, summary, sample grids) and the quality file. Each loader validates what it reads (a malformed
file is a :class:`~fairgen.common.errors.DataError` naming it), records the file in :class:`Inputs`
for the provenance table, and reports an absent optional input as :class:`Missing`."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fairgen.common import figures as plots
from fairgen.common import io as fio
from fairgen.common.errors import DataError
from fairgen.eval.quality import FORMAT as QUALITY_FORMAT
from fairgen.report.render import PNG_MAGIC, Figure, file_sha256, fmt

log = logging.getLogger(__name__)

BASELINE = "real"  # the classifier every other one is compared with (trained on the real data, no debiasing)


@dataclass
class Missing:
    """An optional input that is absent, shown as a notice in its section."""

    what: str
    path: str
    reason: str = "not found"


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
            out.append({"role": role, "path": shown, "size": f"{size:,} B", "sha256": file_sha256(path)[:16]})
        return out


def read_json_object(path: Path, inputs: Inputs, role: str) -> dict:
    obj = fio.read_json(path)
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    inputs.add(role, path)
    return obj


def get_key(obj: dict, path: Path, *keys, types=None):
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


def ci_level(results: list[MethodResult]) -> float | None:
    for m in results:
        b = m.result.get("bootstrap") or {}
        if b.get("n_boot"):
            return float(b.get("level", 0.95))
    return None


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


# ============================================================================ dataset card


def load_manifest(path: Path, inputs: Inputs) -> dict:
    manifest = read_json_object(path, inputs, "dataset manifest")
    for key in ("source", "root"):
        get_key(manifest, path, key, types=str)
    return manifest


SPLIT_ORDER = ("train", "valid", "test")


def split_counts(manifest: dict) -> dict:
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
    """One synthetic set (``fairgen generate``): its size, P(y=1 | c), mean outcome probability per
    group, the checkpoint step it was drawn from and its per-(c, y) sample grid."""

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
    """One GAN run folder: its training curves, sample grids, last logged record and summary."""

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
            summary = read_json_object(folder / SUMMARY_FILE, inputs, f"GAN {run} summary")
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
    q = read_json_object(path, inputs, "quality")
    if q.get("format") != QUALITY_FORMAT:
        raise DataError(f"{path}: not a fairgen quality file (format {q.get('format')!r})")
    for key in ("extractors", "real", "runs"):
        get_key(q, path, key, types=dict)
    for run, r in q["runs"].items():
        for key in ("fid", "label_statistics", "c_conditioning"):
            get_key(q, path, "runs", run, key, types=dict)
    return q, []


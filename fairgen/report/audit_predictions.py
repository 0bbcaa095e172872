"""Audit a user's own predictions file: ``fairgen audit-predictions``.

Reads a CSV or Parquet file with one row per (model,) scored item: a 0/1 label column, a score
column (thresholded at ``--threshold``, default 0.5) or a 0/1 prediction column, and one or
more group columns. Every group column is audited on its own; with ``--intersect`` also their
combination (intersectional groups). ``--model COL`` holds several models in one file (each
model's rows in the same order); ``--compare A B`` adds paired intervals of B - A on the same
rows. The defaults read an Aequitas-shaped file as it is: ``score``, ``label_value`` and every
other column as a group column.

Writes into ``--out-dir`` (the folder appears complete or not at all): ``metrics.parquet`` and
``metrics.csv`` (one row per model, attribute, group or between-group summary, and metric),
``audit.json`` (everything, with provenance) and ``report.html`` (self-contained: inline CSS,
figures as data URIs). The metrics are those of :func:`fairgen.eval.fairness.group_audit`.

Bad input stops with a :class:`~fairgen.common.errors.DataError` naming the file, column, row and
value, before anything is written.
"""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from fairgen import __version__
from fairgen.common import io as fio
from fairgen.common.errors import DataError
from fairgen.eval import fairness as F
from fairgen.report.render import file_sha256

log = logging.getLogger(__name__)

SEP = ", "  # between the parts of an intersectional group label: "race=a, sex=F"
TABLE_KIND = "audit_metrics"


# ============================================================================ reading


def read_table(path: Path, columns: list[str] | None = None):
    """A CSV or Parquet file as a DataFrame (only ``columns`` when given; they must exist)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            _require(path, names, columns)
            df = pq.read_table(path, columns=columns).to_pandas()
        elif suffix in (".csv", ".txt") or suffix == ".gz":
            names = list(pd.read_csv(path, nrows=0).columns)
            _require(path, names, columns)
            df = pd.read_csv(path, usecols=columns, engine="pyarrow" if _has_pyarrow_csv() else "c")
        else:
            raise DataError(f"{path}: unknown file type '{suffix}' (expected .csv or .parquet)")
    except DataError:
        raise
    except Exception as e:  # pandas / pyarrow raise many types for unreadable files
        raise DataError(f"{path}: not a readable {suffix.lstrip('.')} file ({e})") from None
    if len(df) == 0:
        raise DataError(f"{path}: the file has no rows: nothing to audit")
    return df


def _has_pyarrow_csv() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:  # pragma: no cover
        return False
    return True


def _require(path: Path, names: list[str], columns: list[str] | None) -> None:
    missing = [c for c in (columns or []) if c not in names]
    if missing:
        raise DataError(f"{path}: column(s) {', '.join(repr(c) for c in missing)} not found; "
                        f"the file has: {', '.join(repr(c) for c in names)}")


def _where(path: Path, column: str, row: int) -> str:
    return f"{path}: column {column!r}, row {row} (0-based, header not counted)"


def _no_nan(path: Path, df, columns: list[str]) -> None:
    for col in columns:
        bad = df[col].isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{_where(path, col, row)}: missing value (NaN/empty) in a used column; "
                            f"{int(bad.sum())} such row(s)")


def _zero_one(path: Path, df, column: str) -> np.ndarray:
    s = df[column]
    if s.dtype == bool:
        return s.to_numpy().astype(np.intp)
    values = s.to_numpy()
    ok = np.zeros(len(values), dtype=bool)
    if values.dtype.kind in "iuf":
        ok = (values == 0) | (values == 1)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        others = ", ".join(repr(v) for v in list(dict.fromkeys(values[~ok].tolist()))[:5])
        raise DataError(f"{_where(path, column, row)}: value {values[row]!r} is not 0 or 1 "
                        f"({int((~ok).sum())} such row(s); values: {others})")
    return values.astype(np.intp)


def _scores(path: Path, df, column: str, threshold: float | None) -> np.ndarray:
    s = df[column].to_numpy()
    if s.dtype.kind not in "iufb":
        raise DataError(f"{path}: column {column!r} must be numeric scores, found dtype {s.dtype} "
                        f"(row 0 is {s[0]!r})")
    s = s.astype(np.float64)
    bad = ~np.isfinite(s)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{_where(path, column, row)}: score {s[row]!r} is not finite")
    if threshold is None:
        bad = (s < 0) | (s > 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{_where(path, column, row)}: score {s[row]!r} is outside [0, 1] "
                            f"({int(bad.sum())} such row(s)); pass --threshold T to audit scores on "
                            "another scale (predicted 1 when score >= T)")
    return s


def _group_labels(path: Path, df, column: str) -> np.ndarray:
    values = df[column].astype(str)
    first = values.iloc[0]
    if (values == first).all():
        raise DataError(f"{path}: group column {column!r} has a single value {first!r} in all {len(values)} "
                        "rows; a fairness audit compares at least two groups")
    return values.to_numpy(dtype=object)


def _intersection(columns: list[str], df) -> np.ndarray:
    """Intersectional group labels ``"race=a, sex=F"`` of several group columns."""
    out = f"{columns[0]}=" + df[columns[0]].astype(str)
    for col in columns[1:]:
        out = out + f"{SEP}{col}=" + df[col].astype(str)
    return out.to_numpy(dtype=object)


# ============================================================================ options


def _options(cfg: dict, **given) -> dict:
    """The options of one audit: the command-line values over config ``audit_predictions``."""
    section = dict(cfg.get("audit_predictions") or {})
    opts = {k: (v if v not in (None, [], ()) else section.get(k)) for k, v in given.items()}
    if opts.get("prediction"):
        if given.get("score"):
            raise DataError("give either --score (with an optional --threshold) or --prediction, not both")
        opts["score"] = None
    elif opts.get("threshold") is not None and not opts.get("score"):
        raise DataError("--threshold needs --score")
    if not opts.get("prediction") and not opts.get("score"):
        raise DataError("give --score COL or --prediction COL")
    compare = opts.get("compare")
    if compare:
        if len(compare) != 2 or compare[0] == compare[1]:
            raise DataError(f"--compare needs two different model names, got {compare}")
        if not opts.get("model"):
            raise DataError("--compare needs --model COL (the column naming the model of each row)")
    reference = {}
    for item in opts.get("reference") or []:
        col, eq, value = str(item).partition("=")
        if not eq:
            col, value = "", str(item)
        reference[col] = value
    opts["reference"] = reference
    return opts


def _reference_for(reference: dict, attribute: str, single: bool):
    if attribute in reference:
        return reference[attribute]
    if single and "" in reference:
        return reference[""]
    return None


# ============================================================================ auditing


def audit_frame(df, path: Path, opts: dict) -> dict:
    """Validate the used columns of ``df`` and audit every model and attribute."""
    label, score, pred, model_col = opts["label"], opts.get("score"), opts.get("prediction"), opts.get("model")
    used = [label, score or pred] + ([model_col] if model_col else [])
    groups = list(opts.get("group") or [])
    if not groups:  # Aequitas's convention: every other column is an attribute
        groups = [c for c in df.columns if c not in used]
        if not groups:
            raise DataError(f"{path}: no group column: give --group COL (the file has only "
                            f"{', '.join(repr(c) for c in df.columns)})")
    dup = [g for g in groups if g in used]
    if dup:
        raise DataError(f"column {dup[0]!r} cannot be both a group column and the label/score/prediction/model")
    _no_nan(path, df, used + groups)
    y = _zero_one(path, df, label)
    if score:
        threshold = opts.get("threshold")
        s = _scores(path, df, score, threshold)
        p = (s >= (0.5 if threshold is None else threshold)).astype(np.intp)
    else:
        s, p = None, _zero_one(path, df, pred)
    labels = {g: _group_labels(path, df, g) for g in groups}
    attributes = {g: labels[g] for g in groups}
    if opts.get("intersect"):
        if len(groups) < 2:
            raise DataError("--intersect needs at least two --group columns")
        attributes[" & ".join(groups)] = _intersection(groups, df)
    models = {None: np.arange(len(df))}
    if model_col:
        names = df[model_col].astype(str).to_numpy()
        models = {m: np.flatnonzero(names == m) for m in dict.fromkeys(names.tolist())}
    for col, value in opts["reference"].items():
        if col == "" and len(groups) != 1:
            raise DataError(f"{path}: --reference {value!r} names no column; with several group columns "
                            "give COL=VALUE")
        if col and col not in attributes:
            raise DataError(f"{path}: --reference {col}={value}: {col!r} is not an audited group column; "
                            f"they are: {', '.join(repr(a) for a in attributes)}")
        values = pd.unique(attributes[col or groups[0]])
        if value not in values:
            raise DataError(f"{path}: reference group {value!r} does not occur in group column "
                            f"{col or groups[0]!r}; its groups: {', '.join(repr(v) for v in sorted(values)[:20])}")
    if opts.get("compare"):  # before the work: a bad comparison must fail fast
        _check_same_rows(path, opts, models, y, attributes)
    from tqdm import tqdm

    out = {"models": {}, "attributes": list(attributes), "rows": len(df)}
    common = dict(n_boot=opts["n_boot"], level=opts["level"], seed=opts["seed"])
    metrics = list(F.K_RATE_METRICS + (F.K_SCORE_METRICS if s is not None else ()))
    single = len(groups) == 1
    jobs = [(m, attr) for m in models for attr in attributes]
    for m, attr in tqdm(jobs, desc="audit", unit="audit", disable=None, leave=False):
        rows = models[m]
        source = f"{path}" + ("" if m is None else f", model {m!r}") + f", attribute {attr!r}"
        values = attributes[attr][rows]
        if len(pd.unique(values)) < 2:
            raise DataError(f"{source}: a single group {values[0]!r} in this model's {len(rows)} rows")
        data = F.group_data(y[rows], p[rows], values, None if s is None else s[rows],
                            score_bins=opts["score_bins"], source=source)
        res = F.group_audit(data, reference=_reference_for(opts["reference"], attr, single and attr in groups),
                            metrics=metrics, tolerance=opts["tolerance"], min_group_size=opts["min_group_size"],
                            **common)
        res["disparity_metrics"] = [d for d in opts["disparity_metrics"] if d in metrics]
        out["models"].setdefault("all rows" if m is None else m, {})[attr] = res
    if opts.get("compare"):
        a, b = opts["compare"]
        out["comparison"] = {"a": a, "b": b, "attributes": {
            attr: F.paired_group_audit(y[models[a]], p[models[a]], p[models[b]], lab[models[a]], source=f"{path}",
                                       **common) for attr, lab in attributes.items()}}
    return out


def _check_same_rows(path: Path, opts: dict, models: dict, y, attributes: dict) -> None:
    """--compare A B: both models must be scored on the same rows (count, labels, groups, order)."""
    a, b = opts["compare"]
    for name in (a, b):
        if name not in models:
            raise DataError(f"{path}: --compare model {name!r} is not in column {opts['model']!r}; "
                            f"models: {', '.join(repr(m) for m in models)}")
    ra, rb = models[a], models[b]
    if len(ra) != len(rb):
        raise DataError(f"{path}: models {a!r} ({len(ra)} rows) and {b!r} ({len(rb)} rows) do not have the "
                        "same rows; --compare needs both models scored on the same rows, in the same order")
    for what, col in [("label", y)] + [(f"group column {g!r}", v) for g, v in attributes.items()]:
        diff = np.flatnonzero(col[ra] != col[rb])
        if len(diff):
            i = int(diff[0])
            raise DataError(f"{path}: models {a!r} and {b!r} do not have the same rows: their row {i} "
                            f"(file rows {int(ra[i])} and {int(rb[i])}) differs in the {what} "
                            f"({col[ra[i]]!r} vs {col[rb[i]]!r}); --compare needs the same rows in the same order")


# ============================================================================ outputs


def metrics_table(result: dict):
    """The audit as one long table: a row per (model, attribute, scope, group, metric)."""
    rows = []
    for model, per in result["models"].items():
        for attr, res in per.items():
            small = set(res["small_groups"])
            for g, metrics in res["by_group"].items():
                for m in res["metrics"]:
                    v, d = metrics[m], res["vs_reference"][g][m]
                    rows.append({
                        "model": model, "attribute": attr, "scope": "group", "group": g, "metric": m,
                        "value": v["value"], "lower": v.get("lower"), "upper": v.get("upper"),
                        "n": metrics["n"], "small_group": g in small, "reference_group": res["reference"],
                        "difference_vs_reference": d["difference"]["value"],
                        "difference_vs_reference_lower": d["difference"].get("lower"),
                        "difference_vs_reference_upper": d["difference"].get("upper"),
                        "disparity": d["disparity"]["value"], "disparity_lower": d["disparity"].get("lower"),
                        "disparity_upper": d["disparity"].get("upper"),
                        "verdict": d["verdict"] if m in res["disparity_metrics"] else "",
                        "interval_verdict": d["interval_verdict"] if m in res["disparity_metrics"] else ""})
            for m in res["metrics"]:
                for scope in ("difference", "ratio"):
                    v = res["between_groups"][m][scope]
                    rows.append({"model": model, "attribute": attr, "scope": scope, "group": "", "metric": m,
                                 "value": v["value"], "lower": v.get("lower"), "upper": v.get("upper"),
                                 "n": res["n"], "small_group": False, "reference_group": res["reference"],
                                 "verdict": "", "interval_verdict": ""})
    df = pd.DataFrame(rows)
    for col in df.columns:
        if col not in ("model", "attribute", "scope", "group", "metric", "reference_group", "verdict",
                       "interval_verdict", "small_group", "n"):
            df[col] = df[col].astype(np.float64)
    return df


def _provenance(path: Path, opts: dict, n_rows: int) -> dict:
    shown = {k: v for k, v in opts.items() if k not in ("reference",)}
    shown["reference"] = [f"{k}={v}" if k else v for k, v in opts["reference"].items()]
    return {"input": str(path), "input_sha256": file_sha256(path), "input_bytes": path.stat().st_size,
            "rows": n_rows, "options": shown, "fairgen": __version__, "python": platform.python_version(),
            "numpy": np.__version__}


def run(cfg: dict, predictions: str, out_dir: str, label=None, score=None, threshold=None, prediction=None,
        group=None, intersect=False, model=None, compare=None, reference=None, tolerance=None,
        min_group_size=None, n_boot=None, level=None, seed=None) -> int:
    """``fairgen audit-predictions``: see the module docstring."""
    from fairgen.report import predictions_html

    opts = _options(cfg, label=label, score=score, threshold=threshold, prediction=prediction, group=group,
                    intersect=intersect, model=model, compare=compare, reference=reference, tolerance=tolerance,
                    min_group_size=min_group_size, n_boot=n_boot, level=level, seed=seed)
    section = cfg.get("audit_predictions") or {}
    opts["score_bins"] = section.get("score_bins", F.SCORE_BINS)
    opts["disparity_metrics"] = list(section.get("disparity_metrics", F.DISPARITY_METRICS))
    path = Path(predictions)
    used = [opts["label"], opts.get("score") or opts.get("prediction")] + list(opts.get("group") or [])
    used += [opts["model"]] if opts.get("model") else []
    df = read_table(path, columns=None if not opts.get("group") else list(dict.fromkeys(used)))
    log.info("%s: %d rows, %d columns", path, len(df), df.shape[1])
    result = audit_frame(df, path, opts)
    result["provenance"] = _provenance(path, opts, len(df))
    table = metrics_table(result)
    html, figures = predictions_html.render(result)
    with fio.atomic_path(out_dir, is_dir=True) as tmp:
        (tmp / "figures").mkdir()
        for fig in figures:
            (tmp / "figures" / f"{fig.name}.png").write_bytes(fig.png)
        fio.write_parquet(table, tmp / "metrics.parquet", TABLE_KIND,
                          metadata={"input_sha256": result["provenance"]["input_sha256"]})
        table.to_csv(tmp / "metrics.csv", index=False)
        fio.write_json(result, tmp / "audit.json")
        (tmp / "report.html").write_text(html, encoding="utf-8")
    verdicts = table.loc[table["verdict"].isin(["pass", "fail"]), "verdict"].value_counts().to_dict()
    log.info("wrote %s (report.html, audit.json, metrics.parquet/csv, figures/): %d pass, %d fail at tolerance %.2f",
             out_dir, verdicts.get("pass", 0), verdicts.get("fail", 0), opts["tolerance"])
    return 0


# ============================================================================ example file


def example_predictions(cfg: dict, out: str, rows: int = 20_000, seed: int = 0, models: int = 1) -> int:
    """``fairgen example-predictions``: a seeded SYNTHETIC predictions file in Aequitas's shape
    (``score``, ``label_value``, group columns ``race`` (4 values) and ``sex`` (2)), with group-
    dependent base rates and a score that is less informative for the smallest group. With
    ``models`` > 1 a ``model`` column holds that many models scored on the same rows
    (``model_0`` the noisiest). Nothing in it is real data."""
    if rows < 1 or models < 1:
        raise DataError(f"--rows and --models must be at least 1, got {rows} and {models}")
    rng = np.random.default_rng(seed)
    race = rng.choice(np.array(["group_a", "group_b", "group_c", "group_d"]), size=rows, p=[0.55, 0.25, 0.15, 0.05])
    sex = rng.choice(np.array(["female", "male"]), size=rows, p=[0.5, 0.5])
    base = {"group_a": 0.35, "group_b": 0.30, "group_c": 0.25, "group_d": 0.20}
    p = np.vectorize(base.get)(race) + np.where(sex == "male", 0.05, -0.05)
    y = (rng.random(rows) < p).astype(np.int64)
    noise = np.where(race == "group_d", 1.6, 1.0)
    frames = []
    for m in range(models):
        logit = 1.6 * (2 * y - 1) + (noise + 0.4 * (models - 1 - m)) * rng.standard_normal(rows) - 0.4
        frame = pd.DataFrame({"score": np.round(1 / (1 + np.exp(-logit)), 4), "label_value": y,
                              "race": race, "sex": sex})
        if models > 1:
            frame.insert(0, "model", f"model_{m}")
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    path = Path(out)
    with fio.atomic_path(path) as tmp:
        if path.suffix.lower() in (".parquet", ".pq"):
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    log.info("wrote %s: %d rows of SYNTHETIC predictions (seed %d)", os.fspath(path), len(df), seed)
    return 0

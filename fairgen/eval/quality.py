"""Quality of synthetic data: FID (overall and per group c), label statistics, c-conditioning,
attribute coverage.

``fairgen quality`` (:mod:`fairgen.stages.quality`, through :func:`evaluate_quality`) evaluates every synthetic set against the real crops and writes,
into the output folder:

* ``quality.json`` -- everything below, one object for all runs;
* ``summary.tsv``  -- one row per run and FID extractor, for people and the Snakemake report;
* ``cache/own_cnn-<key>.pt`` -- the trained own-CNN extractor (reused while data and settings
  are unchanged; see :func:`fairgen.eval.features.load_or_train_own_cnn`).

Measures
--------
FID
    Frechet distance between Gaussians fitted to features of ``quality.n_samples`` real images
    of the ``quality.real_split`` split and of ``quality.n_samples`` synthetic images (seeded
    random subsets; fewer if fewer exist), overall and per group c (real images with c=g against
    synthetic images generated with c=g). Computed with the own-CNN features always, and with
    Inception v3 features too when ``quality.inception_weights`` names a local file. Each FID
    entry carries its ``label`` -- "FID (own-CNN features)" or "FID (Inception v3)" -- because
    the two scales are unrelated, and own-CNN numbers are not comparable to published FID.
    ``reference`` gives the same FID between a real train subset and the real evaluation subset:
    the value a perfect generator would reach at these sample sizes.
label statistics
    P(y=1 | c) in the real train split and in each synthetic set (from its thresholded ``y``;
    the mean ``y_prob`` is reported too), the synthetic-minus-real gap per group, and in both
    sets the signed demographic-parity difference P(y=1|c=1) - P(y=1|c=0).
c-conditioning accuracy
    Fraction of (evaluated) synthetic images whose c predicted by the own CNN's c head -- trained
    on real train crops -- equals the c they were generated with; overall and per c. The same
    head's accuracy on real evaluation images is reported as ``classifier_accuracy_real`` (the
    ceiling to read it against). ``y_agreement`` does the same with the y head and the
    generated y.
outcome seen in the images
    ``images_outcome``: :func:`label_statistics` of the own CNN's y head (trained on real train
    crops) thresholded at 0.5, on the evaluated synthetic images and, in ``real``, on the real
    evaluation images. Set against the generated labels it tells whether a generator balanced
    the groups' outcomes by changing the labels (its images keep the real gap) or by changing
    the faces (the gap the y head sees shrinks too).
attribute coverage (``quality.attribute_coverage``, on by default)
    A second CNN of the same architecture and settings, trained on the real train crops to read
    every other CelebA attribute of the crops index (one logit each; attributes constant in the
    train split are left out), reads the real evaluation images and each synthetic set. For each
    attribute: its true and read rate in the real images, the reader's balanced accuracy there
    (``trusted`` when >= 0.75 with >= 10 images of each value), and its read rate per synthetic
    set. A look -- the rarer value of a trusted attribute in the real images, e.g. glasses, or
    *not* young -- is ``dropped`` by a set when the real images show it in >= 2% of cases and the
    set in less than a quarter as many. Both rates come from the same reader, so its own errors
    largely cancel. A classifier trained on a set that lacks a look cannot learn what it says
    about the outcome.

``quality.json`` schema (format_version 1)::

    {"format": "fairgen.quality", "format_version": 1, "protected": str, "outcome": str,
     "real_split": "test"|"valid", "n_samples": int, "seed": int,
     "extractors": {key: {"label", "note", "feature_dim", "weights", ...}},   # key: own_cnn | inception_v3
     "classifier_accuracy_real": {"c": AGR, "y": AGR},   # own-CNN heads on the real eval images
     "warnings": [str],            # e.g. a c classifier too weak to judge c-conditioning
     "real": {"label_statistics": LS, "n_eval": int,
              "reference_fid": {key: FIDR}},           # real train subset vs real eval subset
     "runs": {run: {"folder": str, "n_synthetic": int, "n_evaluated": int,
                    "fid": {key: FIDR},
                    "label_statistics": {"real_train": LS, "synthetic": LS, "gap_synthetic_minus_real": {...}},
                    "c_conditioning": AGR + {"chance", "classifier"},
                    "y_agreement": AGR + {"classifier"},
                    "images_outcome": LS + {"classifier"}}}}   # also in "real" (real eval images)
    AGR = {"accuracy", "balanced_accuracy", "n", "by_group": {"0": float|null, "1": ...}}
    FIDR = {"label": str, "overall": {"value", "n_real", "n_synthetic"},
            "by_group": {"0": {...same...}, "1": {...}}}   # value null when a side has < 2 images
    LS = {"n": int, "by_group": {"0": {"n", "p_y1", "mean_y_prob"?}, "1": {...}},
          "p_y1": float, "dp_difference_c1_minus_c0": float|null}
    "attribute_coverage": null | {"classifier": str, "attributes": [str], "info": {...weights, settings},
                           "rule": {"min_look_rate", "dropped_ratio", "min_balanced_accuracy", "min_positives"},
                           "real": {attr: {"true": PR, "predicted": PR, "balanced_accuracy": float|null,
                                           "n_positive": int, "trusted": bool}}}
    runs[run]["attribute_coverage"] = {"prevalence": {attr: PR + {"ratio_rarer_value": float|null}},
                                       "dropped": [{"attribute", "value": 0|1, "real", "synthetic"}]}  # worst first
    PR = {"overall": float, "0": float|null, "1": float|null}   # share of images with the attribute
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fairgen.common.config import seed_for
from fairgen.common.errors import DataError
from fairgen.common.io import atomic_path, write_json
from fairgen.data.crops import binary_column, check_pairing, load_crops_array, read_crops
from fairgen.eval import features as feat

log = logging.getLogger(__name__)

FORMAT = "fairgen.quality"  # the file format's tag (kept when the module moved)
FORMAT_VERSION = 1
GROUPS = (0, 1)
OUTPUT_JSON = "quality.json"
OUTPUT_TSV = "summary.tsv"
CACHE_DIR = "cache"
C_HEAD = "own-CNN c head trained on real train crops"
Y_HEAD = "own-CNN y head trained on real train crops"


# ------------------------------------------------------------------------- Frechet distance


def _check_features(features) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must be a 2-d (N, D) array, got shape {f.shape}")
    if len(f) < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {len(f)}")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or infinite values")
    return f


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, n-1) covariance of ``features`` (N, D), in float64."""
    f = _check_features(features)
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a (numerically) positive semi-definite matrix."""
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

        ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))

    ``tr((sigma1 sigma2)^(1/2))`` is computed as the sum of square roots of the eigenvalues of
    the symmetric PSD matrix ``sigma1^(1/2) sigma2 sigma1^(1/2)`` (same spectrum), with
    ``eigh`` throughout: no general matrix square root, so no spurious imaginary parts, and
    eigenvalues that round-off pushes below zero are clipped to zero. Singular covariances
    (fewer samples than dimensions) are fine. The result is clipped at 0 (it is >= 0 exactly).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu1 {mu1.shape}, sigma1 {s1.shape}, mu2 {mu2.shape}, sigma2 {s2.shape}")
    for name, a in (("mu1", mu1), ("mu2", mu2), ("sigma1", s1), ("sigma2", s2)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    root1 = _psd_sqrt(s1)
    middle = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N_a, D) and (N_b, D).

    With fewer samples than dimensions (e.g. a per-group FID on 2048-d Inception features) the
    covariances are low-rank and the trace term is computed from the centred data instead of
    two D x D eigen-decompositions: with A, B the centred feature matrices,
    ``tr((S_a S_b)^(1/2)) = ||A B^T||_* / sqrt((N_a - 1)(N_b - 1))`` (the nonzero eigenvalues of
    S_a S_b are the squared singular values of A B^T over (N_a - 1)(N_b - 1)). Same value,
    O(N_a N_b min(N_a, N_b)) instead of O(D^3).
    """
    a, b = _check_features(features_a), _check_features(features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    if max(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    ca, cb = a - mu_a, b - mu_b
    na, nb = len(a) - 1, len(b) - 1
    tr_covmean = float(np.linalg.svd(ca @ cb.T, compute_uv=False).sum()) / np.sqrt(na * nb)
    diff = mu_a - mu_b
    value = float(diff @ diff + (ca * ca).sum() / na + (cb * cb).sum() / nb - 2.0 * tr_covmean)
    return max(value, 0.0)


def _fid_entry(fa: np.ndarray, fb: np.ndarray) -> dict:
    value = fid(fa, fb) if len(fa) >= 2 and len(fb) >= 2 else None
    return {"value": value, "n_real": int(len(fa)), "n_synthetic": int(len(fb))}


def fid_by_group(real_features: np.ndarray, real_c, synth_features: np.ndarray, synth_c,
                 label: str | None = None) -> dict:
    """FID overall and per group c (real c=g vs synthetic c=g); ``value`` is None where either
    side of a group has fewer than 2 images."""
    real_c, synth_c = np.asarray(real_c).reshape(-1), np.asarray(synth_c).reshape(-1)
    if len(real_c) != len(real_features) or len(synth_c) != len(synth_features):
        raise ValueError("fid_by_group: features and c labels differ in length")
    out = {"overall": _fid_entry(real_features, synth_features),
           "by_group": {str(g): _fid_entry(real_features[real_c == g], synth_features[synth_c == g])
                        for g in GROUPS}}
    if label is not None:
        out = {"label": label, **out}
    return out


# --------------------------------------------------------------------- label statistics etc.


def _p(x: np.ndarray):
    return float(x.mean()) if len(x) else None


def label_statistics(c, y, y_prob=None) -> dict:
    """P(y=1 | c) per group c in {0, 1}, overall P(y=1), and P(y=1|c=1) - P(y=1|c=0).

    Probabilities of an empty group are None (and so is the difference)."""
    c, y = np.asarray(c).reshape(-1), np.asarray(y).reshape(-1)
    if len(c) != len(y):
        raise ValueError(f"label_statistics: {len(c)} c labels but {len(y)} y labels")
    for name, v in (("c", c), ("y", y)):
        if not np.isin(v, (0, 1)).all():
            raise ValueError(f"label_statistics: {name} must be 0/1")
    groups = {}
    for g in GROUPS:
        m = c == g
        groups[str(g)] = {"n": int(m.sum()), "p_y1": _p(y[m])}
        if y_prob is not None:
            groups[str(g)]["mean_y_prob"] = _p(np.asarray(y_prob, np.float64).reshape(-1)[m])
    p0, p1 = groups["0"]["p_y1"], groups["1"]["p_y1"]
    return {"n": int(len(y)), "p_y1": _p(y), "by_group": groups,
            "dp_difference_c1_minus_c0": None if p0 is None or p1 is None else p1 - p0}


def label_gap(real: dict, synthetic: dict) -> dict:
    """Synthetic-minus-real differences of two :func:`label_statistics` results."""
    def sub(a, b):
        return None if a is None or b is None else a - b

    return {"by_group": {str(g): {"p_y1": sub(synthetic["by_group"][str(g)]["p_y1"], real["by_group"][str(g)]["p_y1"])}
                         for g in GROUPS},
            "p_y1": sub(synthetic["p_y1"], real["p_y1"]),
            "dp_difference_c1_minus_c0": sub(synthetic["dp_difference_c1_minus_c0"], real["dp_difference_c1_minus_c0"])}


def agreement(p_pred, target, threshold: float = 0.5) -> dict:
    """Fraction of images whose thresholded predicted probability equals ``target`` (0/1),
    overall and per target value, and the balanced accuracy (mean over the target values
    present; 0.5 for a constant prediction). For c this is the c-conditioning accuracy."""
    p_pred, target = np.asarray(p_pred, np.float64).reshape(-1), np.asarray(target).reshape(-1)
    if len(p_pred) != len(target):
        raise ValueError(f"agreement: {len(p_pred)} predictions but {len(target)} targets")
    hit = (p_pred >= threshold).astype(np.int64) == target
    by_group = {str(g): _p(hit[target == g]) for g in GROUPS}
    present = [v for v in by_group.values() if v is not None]
    return {"accuracy": _p(hit), "n": int(len(hit)), "by_group": by_group,
            "balanced_accuracy": float(np.mean(present)) if present else None}


# A c classifier below this balanced accuracy on real images cannot judge c-conditioning.
MIN_CLASSIFIER_BALANCED_ACCURACY = 0.75


def classifier_warnings(accuracy_real_c: dict, split: str) -> list[str]:
    """Warnings about the real-trained c classifier (empty when it is informative)."""
    bal = accuracy_real_c.get("balanced_accuracy")
    if bal is None or bal >= MIN_CLASSIFIER_BALANCED_ACCURACY:
        return []
    return [f"the own-CNN c classifier reaches balanced accuracy {bal:.3f} on real {split} images "
            f"(chance 0.5, needed {MIN_CLASSIFIER_BALANCED_ACCURACY}): c-conditioning accuracy is not "
            "informative; it needs more real training data"]


# ----------------------------------------------------------------------- attribute coverage

ATTR_HEAD = "own-CNN attribute classifier trained on real train crops"
# An attribute's look counts as dropped when the real images show it in at least MIN_LOOK_RATE of
# cases and the synthetic ones in less than DROPPED_RATIO of the real rate (both as read by the
# attribute classifier, so its own bias cancels), read only from attributes the classifier reads
# well on real images (balanced accuracy >= MIN_CLASSIFIER_BALANCED_ACCURACY, >= MIN_POSITIVES
# images of each value).
MIN_LOOK_RATE = 0.02
DROPPED_RATIO = 0.25
MIN_POSITIVES = 10


def attribute_columns(df, cfg: dict, train_rows: np.ndarray, where: str) -> list[str]:
    """CelebA attributes of the crops index other than the protected attribute and the outcome,
    in CelebA's order, that vary in the train split (a constant one teaches nothing). DataError
    (naming the row) for a value other than 0/1."""
    from fairgen.data.celeba import ATTRIBUTE_NAMES

    names = []
    for a in ATTRIBUTE_NAMES:
        if a in (cfg["protected"], cfg["outcome"]) or a not in df.columns:
            continue
        v = df[a].to_numpy()
        bad = np.flatnonzero(~np.isin(v, (0, 1)))
        if bad.size:
            raise DataError(f"{where}, row {int(bad[0])}: column '{a}' must be 0/1, found {v[bad[0]]!r}")
        if len(np.unique(v[train_rows])) == 2:
            names.append(a)
    return names


def prevalence(flags: np.ndarray, c) -> dict:
    """``{"overall", "0", "1"}``: the fraction of 1s of a 0/1 vector, overall and per group c
    (None for an empty group)."""
    flags, c = np.asarray(flags).reshape(-1), np.asarray(c).reshape(-1)
    return {"overall": _p(flags), **{str(g): _p(flags[c == g]) for g in GROUPS}}


def attribute_coverage_real(probs: np.ndarray, labels: np.ndarray, c, names) -> dict:
    """Per attribute on real evaluation images: the true prevalence, the classifier's
    (thresholded at 0.5), its balanced accuracy, and whether it is ``trusted``."""
    out = {}
    for k, a in enumerate(names):
        agr = agreement(probs[:, k], labels[:, k])
        n_pos = int(labels[:, k].sum())
        bal = agr["balanced_accuracy"] if 0 < n_pos < len(labels) else None
        out[a] = {"true": prevalence(labels[:, k], c), "predicted": prevalence(probs[:, k] >= 0.5, c),
                  "balanced_accuracy": bal, "n_positive": n_pos,
                  "trusted": bool(bal is not None and bal >= MIN_CLASSIFIER_BALANCED_ACCURACY
                                  and min(n_pos, len(labels) - n_pos) >= MIN_POSITIVES)}
    return out


def attribute_coverage_run(probs: np.ndarray, c, real: dict, names) -> dict:
    """Per attribute on one synthetic set: the classifier's prevalence (by generated c), the
    synthetic-to-real ratio of the rarer value, and the ``dropped`` looks: for each trusted
    attribute the rarer value in the real images (1 if its real rate is <= 0.5, else 0) when the
    synthetic rate of that value is below ``DROPPED_RATIO`` times the real one (real rate >=
    ``MIN_LOOK_RATE``), worst first."""
    prev, dropped = {}, []
    for k, a in enumerate(names):
        prev[a] = prevalence(probs[:, k] >= 0.5, c)
        r_all, s_all = real[a]["predicted"]["overall"], prev[a]["overall"]
        if r_all is None or s_all is None:
            continue
        value = 1 if r_all <= 0.5 else 0
        r, s = (r_all, s_all) if value == 1 else (1.0 - r_all, 1.0 - s_all)
        prev[a]["ratio_rarer_value"] = s / r if r > 0 else None
        if real[a]["trusted"] and r >= MIN_LOOK_RATE and s < DROPPED_RATIO * r:
            dropped.append({"attribute": a, "value": value, "real": r, "synthetic": s})
    dropped.sort(key=lambda d: d["synthetic"] / d["real"])
    return {"prevalence": prev, "dropped": dropped}


def dropped_label(d: dict) -> str:
    """``Eyeglasses=1`` style name of a dropped look."""
    return f"{d['attribute']}={d['value']}"


# --------------------------------------------------------------------------------- pipeline


def _subsample(n_total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a random subset of size min(n, n_total)."""
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(rng.choice(n_total, size=n, replace=False))


def load_real(array, index, cfg):
    """(images, index DataFrame, where) of the real crops: from paths through the one crops loader
    (:func:`fairgen.data.crops.read_crops`), or from a DataFrame already in memory with an array
    or the path of one (a selection: no recorded fingerprint to check, only the row count).
    Checks 0/1 labels."""
    import pandas as pd

    protected, outcome = cfg["protected"], cfg["outcome"]
    columns = ["image_id", "split", protected, outcome]
    if isinstance(index, pd.DataFrame):
        df, where_index = index, "crops index"
        missing = [c for c in columns[1:] if c not in df.columns]
        if missing:
            raise DataError(f"crops index: missing column(s) {', '.join(missing)}")
        if isinstance(array, np.ndarray):
            images, where_array = array, "crops array"
        else:
            images, where_array = load_crops_array(array), str(array)
        feat.check_images(images, where_array)
        check_pairing(images, len(df), {}, where_array, where_index)
    else:  # read_crops checks the array itself
        images, df, _ = read_crops(array, index, columns=columns)
        where_index = str(index)
    for col in (protected, outcome):
        binary_column(df, col, where_index)
    return images, df.reset_index(drop=True), where_index


def build_extractors(cfg: dict, train_images: np.ndarray, train_c, train_y, cache_dir, progress=True) -> dict:
    """``{key: extractor}``: the own CNN (always, trained or cached) and Inception v3 when
    ``quality.inception_weights`` is set. Keys are those of :data:`fairgen.eval.features.LABELS`.
    The Inception file is loaded first, so a bad path fails before any training."""
    from fairgen.common.runtime import resolve_device

    weights = cfg["quality"]["inception_weights"]
    inception = feat.InceptionExtractor.from_file(
        weights, resolve_device(cfg["device"]), cfg["quality"]["batch_size"]) if weights else None
    out = {feat.OWN_CNN: feat.load_or_train_own_cnn(cfg, train_images, train_c, train_y, cache_dir, progress)}
    if inception is not None:
        out[feat.INCEPTION] = inception
    return out


def describe(extractors: dict, images: np.ndarray, progress: bool = True) -> dict:
    """Features of ``images`` under every extractor plus the own CNN's c/y probabilities."""
    own = extractors[feat.OWN_CNN].run(images, progress)
    out = {"features": {feat.OWN_CNN: own["features"]}, "p_c": own["p_c"], "p_y": own["p_y"]}
    for key, ex in extractors.items():
        if key != feat.OWN_CNN:
            out["features"][key] = ex.features(images, progress)
    return out


def evaluate_synthetic(extractors: dict, real_eval: dict, real_eval_c, real_train_stats: dict,
                       images: np.ndarray, c, y, y_prob=None, rows=None, progress: bool = True) -> dict:
    """All measures for one synthetic set against described real images.

    ``real_eval`` is :func:`describe` of the real evaluation images, ``real_eval_c`` their c,
    ``real_train_stats`` :func:`label_statistics` of the real train split. ``c``/``y``/``y_prob``
    label the whole synthetic set (label statistics use them all); ``images`` are the evaluated
    images (FID, agreements), which are the samples at positions ``rows`` (all when None).
    """
    c, y = np.asarray(c).reshape(-1), np.asarray(y).reshape(-1)
    rows = np.arange(len(c)) if rows is None else np.asarray(rows)
    if len(images) != len(rows):
        raise ValueError(f"evaluate_synthetic: {len(images)} images for {len(rows)} rows")
    synth = describe(extractors, images, progress)
    syn_stats = label_statistics(c, y, y_prob)
    return {
        "n_synthetic": int(len(c)), "n_evaluated": int(len(rows)),
        "fid": {key: fid_by_group(real_eval["features"][key], real_eval_c, synth["features"][key], c[rows],
                                  label=feat.LABELS[key])
                for key in extractors},
        "label_statistics": {"real_train": real_train_stats, "synthetic": syn_stats,
                             "gap_synthetic_minus_real": label_gap(real_train_stats, syn_stats)},
        "c_conditioning": {**agreement(synth["p_c"], c[rows]), "chance": 0.5,
                           "classifier": C_HEAD},
        "y_agreement": {**agreement(synth["p_y"], y[rows]), "classifier": Y_HEAD},
        "images_outcome": images_outcome(synth["p_y"], c[rows]),
    }


def images_outcome(p_y, c) -> dict:
    """:func:`label_statistics` of the y head's thresholded predictions ``p_y`` for images of group ``c``."""
    return {**label_statistics(c, (np.asarray(p_y).reshape(-1) >= 0.5).astype(np.int64)), "classifier": Y_HEAD}


def evaluate_quality(cfg: dict, array, index, synthetic_dirs: dict, out, progress: bool = True) -> dict:
    """Evaluate every synthetic set in ``synthetic_dirs`` (run name -> folder) against the real
    crops (``array``/``index``: paths, or an array and a DataFrame) and write ``quality.json``
    and ``summary.tsv`` into the folder ``out`` (schema in the module docstring). Returns the
    JSON object."""
    q = cfg["quality"]
    protected, outcome = cfg["protected"], cfg["outcome"]
    out = Path(out)
    images, df, where_index = load_real(array, index, cfg)
    split = df["split"].astype(str).to_numpy()
    c_all, y_all = df[protected].to_numpy().astype(np.int64), df[outcome].to_numpy().astype(np.int64)
    train = np.flatnonzero(split == "train")
    evals = np.flatnonzero(split == q["real_split"])
    for name, rows in (("train", train), (q["real_split"], evals)):
        if len(rows) < 2:
            raise DataError(f"{where_index}: split '{name}' has {len(rows)} images; quality needs at least 2")
    rng = np.random.default_rng(seed_for(cfg, "quality"))
    n = q["n_samples"]
    # Read (and check) every synthetic set before anything expensive; keep only what is used.
    # Each run's subset has its own seed: it does not depend on which other runs are evaluated.
    runs = {name: _read_run(folder, images.shape[1:], n, np.random.default_rng(seed_for(cfg, f"quality:{name}")))
            for name, folder in synthetic_dirs.items()}
    # Own-CNN training set: the real train split, capped (seeded subset) as OWN_CNN_TRAINING says.
    cap = feat.OWN_CNN_TRAINING["max_train"]
    cnn_rows = train[_subsample(len(train), cap, rng)] if cap else train
    names = attribute_columns(df, cfg, train, where_index) if q["attribute_coverage"] else []  # checked first
    attrs = df[names].to_numpy().astype(np.uint8) if names else None
    cnn_images = np.asarray(images[cnn_rows])
    extractors = build_extractors(cfg, cnn_images, c_all[cnn_rows], y_all[cnn_rows], out / CACHE_DIR, progress)
    attr_clf = feat.load_or_train_attribute_cnn(cfg, cnn_images, attrs[cnn_rows], names, out / CACHE_DIR,
                                                progress) if names else None
    del cnn_images

    eval_rows = evals[_subsample(len(evals), n, rng)]
    ref_rows = train[_subsample(len(train), n, rng)]
    eval_images = np.asarray(images[eval_rows])  # read once: FID, the heads and the attribute reader
    real_eval = describe(extractors, eval_images, progress)
    real_ref = describe(extractors, np.asarray(images[ref_rows]), progress)
    eval_c = c_all[eval_rows]
    train_stats = label_statistics(c_all[train], y_all[train])
    acc_c = agreement(real_eval["p_c"], eval_c)
    result = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "protected": protected, "outcome": outcome, "real_split": q["real_split"],
        "n_samples": n, "seed": int(cfg["seed"]),
        "device": str(extractors[feat.OWN_CNN].device), "precision": "fp32",  # this stage never autocasts
        "extractors": {key: {"label": feat.LABELS[key], "note": feat.NOTES[key],
                             "feature_dim": int(ex.feature_dim), **ex.info}
                       for key, ex in extractors.items()},
        "classifier_accuracy_real": {"c": acc_c, "y": agreement(real_eval["p_y"], y_all[eval_rows])},
        "warnings": classifier_warnings(acc_c, q["real_split"]),
        "real": {"label_statistics": train_stats, "n_eval": int(len(eval_rows)),
                 "images_outcome": images_outcome(real_eval["p_y"], eval_c),
                 "reference_fid": {key: fid_by_group(real_eval["features"][key], eval_c,
                                                     real_ref["features"][key], c_all[ref_rows],
                                                     label=feat.LABELS[key])
                                   for key in extractors}},
        "attribute_coverage": None,
        "runs": {},
    }
    if attr_clf is not None:
        result["attribute_coverage"] = {
            "classifier": ATTR_HEAD, "attributes": names, "info": attr_clf.info,
            "rule": {"min_look_rate": MIN_LOOK_RATE, "dropped_ratio": DROPPED_RATIO,
                     "min_balanced_accuracy": MIN_CLASSIFIER_BALANCED_ACCURACY, "min_positives": MIN_POSITIVES},
            "real": attribute_coverage_real(attr_clf.predict(eval_images, progress),
                                            attrs[eval_rows], eval_c, names)}
    for w in result["warnings"]:
        log.warning("%s", w)
    for run_name, r in runs.items():
        log.info("quality of %s: %d of %d synthetic samples", run_name, len(r["rows"]), len(r["c"]))
        result["runs"][run_name] = {
            "folder": r["folder"],
            **evaluate_synthetic(extractors, real_eval, eval_c, train_stats, r["images"], r["c"], r["y"],
                                 r["y_prob"], r["rows"], progress)}
        if attr_clf is not None:
            cov = attribute_coverage_run(attr_clf.predict(r["images"], progress), r["c"][r["rows"]],
                                         result["attribute_coverage"]["real"], names)
            result["runs"][run_name]["attribute_coverage"] = cov
            log.info("quality of %s: looks of the real images missing from the synthetic ones: %s", run_name,
                     ", ".join(f"{dropped_label(d)} (real {d['real']:.3f}, synthetic {d['synthetic']:.3f})"
                               for d in cov["dropped"]) or "none")
    write_json(result, out / OUTPUT_JSON)
    write_summary(result, out / OUTPUT_TSV)
    return result


def _read_run(folder, image_shape: tuple, n: int, rng: np.random.Generator) -> dict:
    """A synthetic set's labels and a seeded subset of at most ``n`` of its images."""
    from fairgen.data.synthetic_set import read_synthetic

    table, images, _ = read_synthetic(folder)
    if images.shape[1:] != tuple(image_shape):
        raise DataError(f"{folder}: synthetic images are {images.shape[2]}x{images.shape[1]} "
                        f"but the real crops are {image_shape[1]}x{image_shape[0]}")
    rows = _subsample(len(table), n, rng)
    return {"folder": str(folder), "rows": rows, "images": np.ascontiguousarray(images[rows]),
            "c": table["c"].to_numpy(), "y": table["y"].to_numpy(), "y_prob": table["y_prob"].to_numpy()}


def summary_rows(result: dict) -> list[dict]:
    """One flat row per (run, extractor) of a quality result (the reference row first)."""
    def fmt(v):
        return "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)

    def seen(images_outcome: dict) -> dict:  # P(y=1 | c) as the real-trained y head sees it in the images
        return {f"p_yhat1_c{g}": fmt(images_outcome["by_group"][str(g)]["p_y1"]) for g in GROUPS}

    rows = []
    for key, ref in result["real"]["reference_fid"].items():
        rows.append({"run": "real train (reference)", "measure": ref["label"],
                     "fid": fmt(ref["overall"]["value"]),
                     **{f"fid_c{g}": fmt(ref["by_group"][str(g)]["value"]) for g in GROUPS},
                     "c_conditioning_accuracy": "", "p_y1_c0": fmt(result["real"]["label_statistics"]["by_group"]["0"]["p_y1"]),
                     "p_y1_c1": fmt(result["real"]["label_statistics"]["by_group"]["1"]["p_y1"]),
                     **seen(result["real"]["images_outcome"]), "n_synthetic": "", "dropped_looks": ""})
    for run_name, r in result["runs"].items():
        stats = r["label_statistics"]["synthetic"]["by_group"]
        cov = r.get("attribute_coverage")
        dropped = "" if cov is None else ";".join(dropped_label(d) for d in cov["dropped"]) or "none"
        for key, f in r["fid"].items():
            rows.append({"run": run_name, "measure": f["label"], "fid": fmt(f["overall"]["value"]),
                         **{f"fid_c{g}": fmt(f["by_group"][str(g)]["value"]) for g in GROUPS},
                         "c_conditioning_accuracy": fmt(r["c_conditioning"]["accuracy"]),
                         "p_y1_c0": fmt(stats["0"]["p_y1"]), "p_y1_c1": fmt(stats["1"]["p_y1"]),
                         **seen(r["images_outcome"]), "n_synthetic": str(r["n_synthetic"]),
                         "dropped_looks": dropped})
    return rows


def write_summary(result: dict, path) -> None:
    rows = summary_rows(result)
    header = list(rows[0]) if rows else ["run", "measure"]
    lines = ["\t".join(header)] + ["\t".join(row[h] for h in header) for row in rows]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def parse_synthetic(items: list[str]) -> dict:
    runs = {}
    for item in items:
        if "=" in item:
            name, folder = item.split("=", 1)
        else:
            name, folder = Path(item.rstrip("/\\")).name, item
        if not name or not folder:
            raise DataError(f"--synthetic '{item}': expected RUN=FOLDER or FOLDER")
        if name in runs:
            raise DataError(f"--synthetic: run '{name}' given twice ({runs[name]} and {folder})")
        runs[name] = folder
    return runs

"""``fairgen pair-diagnostics``: what limits debiasing with counterfactual pairs.

On the first ``min(len(set), 2000)`` pairs of a pair set (:mod:`fairgen.pairs`) and the real
test split, it measures:

* **flip success** -- a c reader trained on the real train crops (the own CNN of
  :mod:`fairgen.features`, its c output; cached) reads c=0 on G(z, 0) and c=1 on G(z, 1): the
  share of pairs where both members read as requested, and its accuracy on real test images;
* **identity kept** -- the attribute reader (every other CelebA attribute, trained on the real
  train crops; cached) agrees across a pair: the mean over attributes of the share of pairs
  whose members get the same 0/1 reading, against the same share for unpaired members
  (G(z, 0) beside G(z', 1) of another pair), the level of agreement that owes nothing to z;
* per downstream classifier (``model.pt`` of ``fairgen train-classifier``):

  - **c-sensitivity on pairs**: mean |logit f(G(z,1)) - logit f(G(z,0))| and its signed mean;
  - **c-sensitivity on real images**: within each true outcome y, the mean logit of real test
    images with c=1 minus that with c=0, averaged over y (the group gap the classifier adds
    beyond the outcome; real images have no counterfactual, so this is the closest reading);
  - **domain separability**: held-out accuracy of a logistic-regression probe on the
    classifier's penultimate features telling real test images from generated pair members
    (balanced; 0.5 = the features cannot tell them apart).

Writes one JSON file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from fairgen import io
from fairgen.config import seed_for
from fairgen.errors import DataError

log = logging.getLogger(__name__)

MAX_PAIRS = 2000


def domain_probe(real_features: np.ndarray, generated_features: np.ndarray, seed: int) -> dict:
    """Held-out accuracy of a logistic regression telling real (1) from generated (0) features:
    as many of each (the smaller count), half of each for fitting and half for scoring."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(real_features), len(generated_features))
    if n < 4:
        raise DataError(f"domain probe: needs at least 4 real and 4 generated images, got {len(real_features)} "
                        f"and {len(generated_features)}")
    r = real_features[rng.permutation(len(real_features))[:n]]
    g = generated_features[rng.permutation(len(generated_features))[:n]]
    half = n // 2
    x_fit = np.concatenate([r[:half], g[:half]])
    y_fit = np.r_[np.ones(half), np.zeros(half)]
    x_eval = np.concatenate([r[half:], g[half:]])
    y_eval = np.r_[np.ones(n - half), np.zeros(n - half)]
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(x_fit, y_fit)
    return {"accuracy": float(probe.score(x_eval, y_eval)), "n_per_domain": int(n),
            "probe": "standardised logistic regression, fit on half of each domain, scored on the other half"}


def c_sensitivity_real(logits: np.ndarray, y: np.ndarray, c: np.ndarray) -> float | None:
    """Mean over y of (mean logit at c=1 - mean logit at c=0) among real images with that y."""
    gaps = [logits[(y == v) & (c == 1)].mean() - logits[(y == v) & (c == 0)].mean()
            for v in (0, 1) if ((y == v) & (c == 1)).any() and ((y == v) & (c == 0)).any()]
    return float(np.mean(gaps)) if gaps else None


def diagnose(cfg: dict, array: str | os.PathLike, index: str | os.PathLike, pairs: str | os.PathLike,
             classifier: list[str], out_json: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
             progress: bool = True) -> dict:
    """Measure the module docstring's diagnostics and write them to ``out_json``."""
    from fairgen.classifiers import _Runner, embed, load_model, load_real
    from fairgen.features import load_or_train_attribute_cnn, load_or_train_own_cnn
    from fairgen.pairs import read_pairs
    from fairgen.quality import attribute_columns
    from fairgen.runtime import resolve_device

    cache_dir = Path(cache_dir) if cache_dir else Path(out_json).parent / "cache"
    real = load_real(cfg, array, index)
    train, test = real["train"], real["test"]
    pair_set = read_pairs(pairs)
    pair_set = pair_set.take(min(len(pair_set), MAX_PAIRS))
    n = len(pair_set)
    if n < 4:
        raise DataError(f"{pairs}: {n} pairs; the diagnostics need at least 4")
    result: dict = {"pairs": str(pairs), "n_pairs": n, "real_test": len(test)}

    own = load_or_train_own_cnn(cfg, train.images, train.c, train.y, cache_dir, progress)
    p0 = own.run(pair_set.images0, progress)["p_c"]
    p1 = own.run(pair_set.images1, progress)["p_c"]
    pt = own.run(test.images, progress)["p_c"]
    result["flip_success"] = {
        "both_members": float(np.mean((p0 < 0.5) & (p1 >= 0.5))),
        "reads_c0_on_c0_member": float(np.mean(p0 < 0.5)),
        "reads_c1_on_c1_member": float(np.mean(p1 >= 0.5)),
        "c_reader_accuracy_real_test": float(np.mean((pt >= 0.5) == test.c)),
        "c_reader": "own CNN (c output) trained on the real train crops",
    }

    df, _ = io.read_parquet(index, "crops_index")
    train_rows = np.flatnonzero(df["split"].astype(str).to_numpy() == "train")
    names = attribute_columns(df, cfg, train_rows, str(index))
    if names:
        labels = df[names].to_numpy()[train_rows].astype(np.float32)
        reader = load_or_train_attribute_cnn(cfg, train.images, labels, names, cache_dir, progress)
        a0 = reader.predict(pair_set.images0, progress) >= 0.5
        a1 = reader.predict(pair_set.images1, progress) >= 0.5
        shuffle = np.random.default_rng(seed_for(cfg, "pair_diagnostics/unpaired")).permutation(n)
        per_attr = (a0 == a1).mean(axis=0)
        unpaired = (a0 == a1[shuffle]).mean(axis=0)
        result["identity_kept"] = {
            "agreement_pairs": float(per_attr.mean()), "agreement_unpaired": float(unpaired.mean()),
            "per_attribute": {a: {"pairs": float(p), "unpaired": float(u)} for a, p, u in zip(names, per_attr, unpaired)},
            "attributes": list(names),
        }
    else:
        result["identity_kept"] = None
        log.warning("%s: no attribute besides %s and %s varies in the train split; identity not measured",
                    index, cfg["protected"], cfg["outcome"])

    device = resolve_device(cfg["device"])
    result["classifiers"] = {}
    loaded = [(path, *load_model(path)) for path in classifier]
    methods = [saved.get("method", str(path)) for path, _, saved in loaded]
    for (path, model, _), method in zip(loaded, methods):
        if methods.count(method) > 1:
            method = f"{method} ({Path(path).parent.name})"  # several models of one method: name their folders
        runner = _Runner(model, device, cfg["precision"], cfg["classifier"]["batch_size"])
        l0, f0 = embed(runner, pair_set.images0, f"{method} pairs c=0", progress)
        l1, f1 = embed(runner, pair_set.images1, f"{method} pairs c=1", progress)
        lt, ft = embed(runner, test.images, f"{method} real test", progress)
        result["classifiers"][method] = {
            "model": str(path),
            "c_sensitivity_pairs": float(np.mean(np.abs(l1 - l0))),
            "c_sensitivity_pairs_signed": float(np.mean(l1 - l0)),
            "pairs_same_side_of_threshold": float(np.mean((l0 >= 0) == (l1 >= 0))),
            "c_sensitivity_real": c_sensitivity_real(lt, test.y, test.c),
            "domain_separability": domain_probe(ft, np.concatenate([f0, f1]), seed_for(cfg, f"pair_diagnostics/{method}")),
        }
        d = result["classifiers"][method]
        log.info("%s: c-sensitivity pairs %.3f (signed %+.3f), real %+.3f; domain probe accuracy %.3f", method,
                 d["c_sensitivity_pairs"], d["c_sensitivity_pairs_signed"], d["c_sensitivity_real"] or float("nan"),
                 d["domain_separability"]["accuracy"])
    io.write_json(result, out_json)
    return result

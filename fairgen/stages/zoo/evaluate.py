"""``fairgen zoo-evaluate`` (rule ``zoo_evaluate``): FID in the zoo classifier's feature space,
conditional accuracy, class coverage and a per-class sample grid of one zoo run."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from fairgen.common.config import seed_for
from fairgen.common.errors import CheckpointError, DataError
from fairgen.common.io import write_json
from fairgen.common.seeds import derive_seed
from fairgen.data import zoo_data
from fairgen.eval.zoo import (
    FID_LABEL,
    FID_NOTE,
    GRID,
    METRICS,
    MODEL_OF,
    check_run,
    class_accuracy,
    class_grid,
    coverage,
    generate,
    is_conditional,
    load_classifier,
    read_data,
)

log = logging.getLogger(__name__)


def evaluate(cfg: dict, model: str, checkpoint: str, data: str, classifier: str, out_dir: str) -> int:
    """CLI ``zoo-evaluate``: score run ``model``'s checkpoint with the dataset's real-data classifier
    (module docstring) and draw its per-class grid. Writes ``metrics.json`` and ``grid.png``."""
    from fairgen.common.runtime import resolve_device
    from fairgen.eval.quality import fid
    from fairgen.training import gan_from_checkpoint, load_checkpoint

    run = check_run(model)
    device = resolve_device(cfg["device"])
    ev = cfg["zoo"]["eval"]
    ck = load_checkpoint(checkpoint)
    if ck["model"]["name"] != MODEL_OF[run] or ck["train"].get("extra", {}).get("zoo_run") != run:
        raise CheckpointError(f"{checkpoint}: checkpoint of model '{ck['model']['name']}' (zoo run "
                              f"{ck['train'].get('extra', {}).get('zoo_run')!r}), not of zoo run '{run}'")
    gan = gan_from_checkpoint(ck, checkpoint, device)
    real = read_data(cfg, data, cfg["zoo"][run]["dataset"])
    if ck["train"]["extra"].get("dataset") != real.info["dataset"]:
        raise CheckpointError(f"{checkpoint}: trained on '{ck['train']['extra'].get('dataset')}', evaluated "
                              f"against '{real.info['dataset']}'")
    clf = load_classifier(classifier, device, ev["batch_size"])
    real = zoo_data.conform(real, *clf.shape)
    if clf.meta["fingerprint"] != zoo_data.fingerprint(real.images, real.labels):
        raise DataError(f"{classifier}: this classifier was trained on other data than {data} "
                        f"(retrain it with 'fairgen zoo-classifier')")
    k = real.n_classes
    conditional = is_conditional(gan)
    if conditional and gan.n_classes != k:
        raise DataError(f"{checkpoint}: model has {gan.n_classes} classes, dataset {data} has {k}")
    seed = seed_for(cfg, f"zoo_eval_{run}")  # generation noise
    m = min(ev["n_samples"], len(real.labels) // 2)
    if m < 2:
        raise DataError(f"{data}: need at least 4 real images for FID, got {len(real.labels)}")
    # the real reference / floor subsets depend on the dataset only: every run on it is compared
    # with the same real images
    perm = np.random.default_rng(seed_for(cfg, f"zoo_eval_real_{real.info['dataset']}")).permutation(len(real.labels))
    ref, floor = perm[:m], perm[m:2 * m]
    asked = real.labels[ref] if conditional else None
    t0 = time.perf_counter()
    fake = generate(gan, m, labels=asked, seed=seed, device=device, batch_size=ev["batch_size"], progress=True)
    out_real = clf.run(real.images[np.concatenate([ref, floor])])
    out_fake = clf.run(fake, progress=True)
    f_ref, f_floor = out_real["features"][:m], out_real["features"][m:]
    pred = out_fake["probs"].argmax(1)
    metrics = {
        "run": run, "model": gan.name, "dataset": real.info["dataset"], "standin": bool(real.info.get("standin")),
        "checkpoint": str(checkpoint), "step": int(ck["step"]), "conditional": conditional, "n_classes": k,
        "class_names": real.class_names, "chance": 1.0 / k, "n_per_side": int(m), "seed": int(seed),
        "fid": {"label": FID_LABEL, "note": FID_NOTE, "value": fid(f_ref, out_fake["features"]),
                "real_floor": fid(f_ref, f_floor), "n_real": int(m), "n_generated": int(m)},
        "coverage": coverage(pred, k),
        "mean_confidence": float(out_fake["probs"].max(1).mean()),
        "classifier": {"path": str(classifier), "dataset": clf.meta["dataset"], "n_train": clf.meta["n_train"],
                       "shape": [clf.meta["size"], clf.meta["size"], clf.meta["channels"]]},
        "real_accuracy_on_reference": float((out_real["probs"][:m].argmax(1) == real.labels[ref]).mean()),
    }
    if conditional:
        cond = class_accuracy(pred, asked, k)
        confusion = np.zeros((k, k), np.int64)
        np.add.at(confusion, (asked, pred), 1)
        metrics["conditional_accuracy"] = {**cond, "confusion": confusion.tolist()}
    # per-class grid: a row per class (conditional: requested; otherwise: predicted)
    cols = ev["grid_columns"]
    if conditional:
        grid_labels = np.repeat(np.arange(k), cols)
        grid_imgs = generate(gan, len(grid_labels), labels=grid_labels, seed=derive_seed(seed, "grid"), device=device,
                             batch_size=ev["batch_size"])
        rows = [grid_imgs[grid_labels == c] for c in range(k)]
        row_labels = [f"{name}" for name in real.class_names]
    else:
        rows = [fake[pred == c][:cols] for c in range(k)]
        row_labels = [f"{name} (pred.)" for name in real.class_names]
    out = Path(out_dir)
    class_grid(rows, row_labels, cols, out / GRID)
    metrics["grid"] = {"path": str(out / GRID), "rows": k, "columns": cols,
                       "row_meaning": "requested class" if conditional else "class predicted by the classifier"}
    metrics["eval_s"] = time.perf_counter() - t0
    write_json(metrics, out / METRICS)
    acc = metrics.get("conditional_accuracy", {}).get("accuracy")
    log.info("zoo %s: %s %.3f (real floor %.3f)%s", run, FID_LABEL, metrics["fid"]["value"],
             metrics["fid"]["real_floor"], f", conditional accuracy {acc:.3f}" if acc is not None else "")
    return 0

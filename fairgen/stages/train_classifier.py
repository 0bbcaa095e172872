"""``fairgen train-classifier`` (rule ``train_classifier``): train one downstream method's outcome
classifier (:mod:`fairgen.eval.classifier`), pick the epoch by real-valid accuracy, audit it on the
real test split (:mod:`fairgen.eval.fairness`) and write predictions, metrics, model and curve."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from fairgen.common import io
from fairgen.common.config import seed_for
from fairgen.common.errors import DataError
from fairgen.eval.classifier import (
    PAIR_METHODS,
    PRIVILEGED_RULE,
    SELECTION,
    build_model,
    fit,
    load_real,
    pair_training,
    privileged_group,
    training_data,
)
from fairgen.eval.cnn import Runner

log = logging.getLogger(__name__)


def train_classifier(cfg: dict, method: str, array: str, index: str, synthetic: list | None = None,
                     out_dir: str = ".", pairs: str | None = None, label_model: str | None = None,
                     progress: bool = True) -> dict:
    """Train the outcome classifier of ``method`` and audit it on the real test split.

    Writes predictions.parquet, metrics.json, model.pt and curve.json into ``out_dir`` and
    returns the metrics dict. See the module docstring.
    """
    import pandas as pd
    import torch

    from fairgen.common import runtime
    from fairgen.common.runtime import resolve_device
    from fairgen.eval import fairness

    synthetic = list(synthetic or [])
    cc = cfg["classifier"]
    out_dir = Path(out_dir)
    real = load_real(cfg, array, index)
    test = real["test"]
    for g in (0, 1):
        if not (test.c == g).any():
            raise DataError(f"{index}: the test split has only group {cfg['protected']}={1 - g} "
                            f"({len(test)} rows); fairness metrics need both groups")
    privileged, base_rates = privileged_group(real["train"])
    train = training_data(cfg, method, real, synthetic)
    # the pair methods start from real's initial weights and see real's batches (order, flips)
    seed = seed_for(cfg, "classifier/" + ("real" if method in PAIR_METHODS else method))
    device = resolve_device(cfg["device"])
    train, pair_terms, pair_info = pair_training(cfg, method, train, pairs, label_model, device)
    resolution = int(train.images.shape[1])
    torch.manual_seed(seed)
    model = build_model(cc["arch"], resolution, cc["width"])
    runner = Runner(model, device, cfg["precision"], cc["batch_size"])
    log.info("method %s: training %s on %d images (%s), %d epochs on %s (%s)", method, cc["arch"], len(train),
             train.source, cc["epochs"], device, cfg["precision"])
    t0 = time.perf_counter()
    curve, best_epoch = fit(cfg, runner, train, real["valid"], seed, progress, pair_terms)
    train_seconds = time.perf_counter() - t0

    score = runner.predict(runner.tensor(test.images), "test", progress)
    y_pred = (score >= cc["threshold"]).astype(np.int64)
    pred_path = out_dir / "predictions.parquet"
    # evaluate first: a DataError here leaves no partial set of outputs behind
    result = fairness.evaluate(test.y, y_pred, test.c, score=score, privileged=privileged, n_boot=cc["bootstrap"],
                               level=cc["ci_level"], seed=seed_for(cfg, f"bootstrap/{method}"),
                               allow_undefined=True, source=str(pred_path))
    for name, why in result["undefined"].items():
        log.warning("method %s: %s is undefined on the test split (%s)", method, name, why)
    result.update({
        "method": method,
        "privileged_rule": PRIVILEGED_RULE,
        "train_base_rates": base_rates,
        "protected": cfg["protected"], "outcome": cfg["outcome"],
        "threshold": cc["threshold"],
        "evaluated_on": f"real test split ({len(test)} images)",
        "selection": {"criterion": SELECTION, "best_epoch": best_epoch,
                      "valid_accuracy": curve[best_epoch - 1]["valid_accuracy"]},
        "training": {"source": train.source, "n": len(train), "weighted": train.weight is not None,
                     "arch": cc["arch"], "epochs": cc["epochs"], "seed": seed, "device": str(device),
                     "precision": cfg["precision"], "threads": torch.get_num_threads(),
                     "runtime_notes": runtime.record().get("notes", []), "seconds": train_seconds,
                     "pairs": pair_info},
    })

    out_dir.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(out_dir / "model.pt") as tmp:
        torch.save({"state_dict": {k: v.cpu() for k, v in runner.model.state_dict().items()},
                    "arch": cc["arch"], "resolution": resolution, "width": cc["width"], "method": method,
                    "precision": cfg["precision"]}, tmp)
    io.write_json({"method": method, "selection": SELECTION, "best_epoch": best_epoch, "epochs": curve},
                  out_dir / "curve.json")
    preds = pd.DataFrame({"image_id": test.image_id, "c": test.c, "y_true": test.y, "score": score, "y_pred": y_pred})
    io.write_parquet(preds, pred_path, "predictions",
                     metadata={"method": method, "arch": cc["arch"], "threshold": cc["threshold"],
                               "best_epoch": best_epoch, "privileged": privileged, "protected": cfg["protected"], "outcome": cfg["outcome"]})
    io.write_json(result, out_dir / "metrics.json")
    log.info("method %s: test accuracy %.4f, demographic parity difference %.4f, equal opportunity difference %s",
             method, result["overall"]["accuracy"], result["fairness"]["demographic_parity_difference"],
             result["fairness"]["equal_opportunity_difference"])
    return result

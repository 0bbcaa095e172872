"""``fairgen zoo-classifier`` (rule ``zoo_classifier``): the seeded small CNN that evaluates the zoo
runs of one dataset, trained on its real images (:mod:`fairgen.eval.zoo`)."""

from __future__ import annotations

import logging
from pathlib import Path

from fairgen.common.io import atomic_path, write_json
from fairgen.data import zoo_data
from fairgen.eval.zoo import (
    CLASSIFIER_FILE,
    CLASSIFIER_METRICS,
    classifier_settings,
    fit_classifier,
    read_data,
)

log = logging.getLogger(__name__)


def train_classifier(cfg: dict, data: str, out_dir: str) -> int:
    """CLI ``zoo-classifier``: the evaluation classifier of the dataset in ``data`` (trained on its
    real images at the family's evaluation shape; a ``model.pt`` in ``out_dir`` trained with the
    same settings on the same data is reused)."""
    import torch

    from fairgen.common.runtime import resolve_device

    real = read_data(cfg, data)
    real = zoo_data.conform(real, *zoo_data.FAMILY_SHAPE[zoo_data.FAMILY[real.info["dataset"]]])
    settings = classifier_settings(cfg)
    out = Path(out_dir)
    path = out / CLASSIFIER_FILE
    fp = zoo_data.fingerprint(real.images, real.labels)
    if path.exists() and (out / CLASSIFIER_METRICS).exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob["meta"]["settings"] == settings and blob["meta"]["fingerprint"] == fp:
                log.info("zoo classifier: %s is up to date (same settings and data); reusing it", path)
                return 0
        except Exception as e:  # our own cache: a bad file is retrained
            log.warning("%s: unreadable (%s); retraining", path, e)
    device = resolve_device(cfg["device"])
    runner, metrics = fit_classifier(real, settings, device)
    with atomic_path(path) as tmp:
        torch.save({"state_dict": {k: v.cpu() for k, v in runner.model.state_dict().items()},
                    "meta": runner.meta, "metrics": metrics}, tmp)
    write_json(metrics, out / CLASSIFIER_METRICS)
    log.info("zoo classifier (%s): held-out accuracy %.4f on %d images", real.info["dataset"],
             metrics.get("holdout_accuracy") or float("nan"), metrics["n_holdout"])
    return 0

"""``fairgen relabel`` (a diagnostic command, no rule): copy a synthetic set with its labels replaced by a
trained classifier's reading of each image (optionally shifted per group to equal positive rates)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fairgen.common import io
from fairgen.common.errors import DataError
from fairgen.eval.classifier import load_model
from fairgen.eval.cnn import Runner

log = logging.getLogger(__name__)


def relabel_synthetic(cfg: dict, synthetic: str, classifier: str, out_dir: str, parity: bool = False,
                      progress: bool = True) -> dict:
    """A diagnostic: the synthetic set in ``synthetic`` with its labels replaced by a trained
    outcome classifier's reading of each image (``model.pt`` of ``fairgen train-classifier``,
    normally ``--method real``); images, c, model name, step and seed are kept.

    Training a classifier on the result separates the two things a synthetic set can get wrong:
    if it does much better on the real test split than the set's own labels do, the generated
    labels, not the images, limit it. With ``parity``, each group's scores are shifted on the logit
    scale so that both groups have the classifier's overall positive rate (the groups' ranking
    within themselves is kept): the labels a demographic-parity repair of that classifier would give.
    Writes ``out_dir`` atomically; returns the summary stored in its metadata (``relabel``).
    """
    from fairgen.common.runtime import resolve_device
    from fairgen.data.synthetic_set import (
        labels_from_prob,
        rate_by_group,
        read_synthetic,
        write_synthetic,
    )

    table, images, meta = read_synthetic(synthetic)
    path = Path(classifier)
    model, ck = load_model(path)
    if ck["resolution"] != images.shape[1]:
        raise DataError(f"{path}: classifier trained on {ck['resolution']} px images, the synthetic set "
                        f"{synthetic} has {images.shape[1]} px")
    device = resolve_device(cfg["device"])
    runner = Runner(model, device, cfg["precision"], cfg["classifier"]["batch_size"])
    score = runner.predict(runner.tensor(images), "relabel", progress)
    c = table["c"].to_numpy(np.int64)
    logit = np.log(np.clip(score, 1e-7, 1.0)) - np.log(np.clip(1.0 - score, 1e-7, 1.0))
    rate = float(np.mean(labels_from_prob(score)))  # at the synthetic format's label threshold
    shifts = {}
    if parity:
        for g in (0, 1):
            if not (c == g).any():
                raise DataError(f"{synthetic}: no samples of group c={g}, so parity is undefined")
            # the logit above which a fraction `rate` of the group lies becomes the 0.5 boundary
            shifts[str(g)] = float(np.quantile(logit[c == g], 1.0 - rate))
            logit[c == g] -= shifts[str(g)]
    y_prob = 1.0 / (1.0 + np.exp(-logit))
    y_new, y_old = labels_from_prob(y_prob), table["y"].to_numpy(np.int64)

    summary = {"source": str(synthetic), "classifier": str(path), "classifier_method": ck.get("method"),
               "parity": bool(parity), "classifier_positive_rate": rate, "logit_shift": shifts,
               "p_y1_given_c_before": rate_by_group(y_old, c), "p_y1_given_c_after": rate_by_group(y_new, c),
               "agreement_with_generated_labels": float(np.mean(y_new == y_old))}
    model_name = str(table["model"].iloc[0])
    with io.atomic_path(Path(out_dir), is_dir=True) as tmp:
        write_synthetic(tmp, images, c, y_prob, model=model_name, checkpoint_step=int(table["checkpoint_step"].iloc[0]),
                        seed=int(table["seed"].iloc[0]), metadata={**meta, "relabel": summary}, progress=progress)
    log.info("relabelled %s with %s%s: P(y=1|c) %s -> %s (agreement with the generated labels %.3f)", synthetic,
             path, " (parity)" if parity else "", summary["p_y1_given_c_before"], summary["p_y1_given_c_after"],
             summary["agreement_with_generated_labels"])
    return summary

"""``fairgen generate`` (rule ``generate``): sample a synthetic dataset from a Fairness GAN checkpoint
(c split exactly by ``generate.protected_ratio``) and write it in the format of
:mod:`fairgen.data.synthetic_set`, with preview sheets per (c, y)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from fairgen.common import io
from fairgen.common.config import seed_for
from fairgen.training.sampling import (
    PREVIEW_DIR,
    Y_PROB_RULE,
    balanced_groups,
    load_conditional_gan,
    realism_scores,
    sample,
    select_stratified,
    write_previews,
)

log = logging.getLogger(__name__)


def generate(cfg: dict, run: str, checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
             progress: bool = True) -> dict:
    """Sample the synthetic dataset of GAN run ``run`` from ``checkpoint`` into ``out_dir``.

    Returns a summary (also stored in the samples table's metadata). Raises CheckpointError /
    FormatVersionError for a bad checkpoint or one trained as another run than ``run``, and
    DataError for a model without c-conditioning or outcome output, or one that generates NaN.
    """
    import torch

    from fairgen.data.synthetic_set import (
        labels_from_prob,
        rate_by_group,
        write_synthetic,
    )

    t0 = time.perf_counter()
    gc = cfg["generate"]
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    gan, step, weights, device = load_conditional_gan(cfg, run, checkpoint)
    seed = seed_for(cfg, f"generate/{run}")
    n, k = gc["n_samples"], gc["experimental"]["oversample"]
    c = balanced_groups(n * k, gc["protected_ratio"], seed)
    log.info("run %s: %d samples (%d with %s=1) from %s (step %d) on %s", run, len(c), int(c.sum()),
             cfg["protected"], checkpoint, step, device)
    images, y_prob = sample(gan, c, batch_size=gc["batch_size"], seed=seed, device=device,
                            precision=cfg["precision"], progress=progress, source=str(checkpoint))
    selection = None
    if k > 1:
        scores = realism_scores(gan, images, y_prob, c, batch_size=gc["batch_size"], device=device,
                                precision=cfg["precision"], progress=progress, source=str(checkpoint))
        n1 = int(round(n * gc["protected_ratio"]))
        cand_y = labels_from_prob(y_prob)
        keep = select_stratified(scores, c, cand_y, {0: n - n1, 1: n1})
        selection = {"oversample": k, "candidates": len(c), "score": "discriminator image head S_X (logit)",
                     "p_y1_given_c_candidates": rate_by_group(cand_y, c),
                     "mean_score_candidates": float(scores.mean()), "mean_score_kept": float(scores[keep].mean())}
        images, y_prob, c = images[keep], y_prob[keep], c[keep]
        log.info("run %s: kept %d of %d candidates (mean S_X %.3f -> %.3f)", run, len(keep), len(scores),
                 selection["mean_score_candidates"], selection["mean_score_kept"])
    y = labels_from_prob(y_prob)
    summary = {
        "run": run, "checkpoint": str(checkpoint), "checkpoint_step": step,
        "generator_weights": weights, "model_name": gan.name, "model_config": gan.config,
        "protected": cfg["protected"], "outcome": cfg["outcome"],
        "n_samples": len(c), "protected_ratio": gc["protected_ratio"],
        "counts": {f"c{cv}_y{yv}": int(np.sum((c == cv) & (y == yv))) for cv in (0, 1) for yv in (0, 1)},
        "p_y1_given_c": rate_by_group(y, c),
        "y_prob_rule": Y_PROB_RULE, "seed": seed, "batch_size": gc["batch_size"],
        "device": str(device), "precision": cfg["precision"], "threads": torch.get_num_threads(),
        "image_shape": list(images.shape[1:]),
        "selection": selection,
    }
    with io.atomic_path(out_dir, is_dir=True) as tmp:
        summary["previews"] = [f"{PREVIEW_DIR}/{p}" for p in write_previews(tmp / PREVIEW_DIR, images, c, y)]
        summary["seconds"] = round(time.perf_counter() - t0, 3)
        write_synthetic(tmp, images, c, y_prob, model=run, checkpoint_step=step, seed=seed,
                        metadata={"generation": summary}, progress=progress)
    log.info("run %s: wrote %s (P(y=1|c=0)=%s, P(y=1|c=1)=%s) in %.1fs", run, out_dir,
             summary["p_y1_given_c"]["0"], summary["p_y1_given_c"]["1"], time.perf_counter() - t0)
    return summary

"""``fairgen generate-pairs`` (rule ``generate_pairs``): counterfactual pairs G(z, c=0), G(z, c=1) from
a GAN checkpoint, written as a pair set (:mod:`fairgen.data.pairs`)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from fairgen.common import io
from fairgen.common.config import seed_for
from fairgen.data.crops import contact_sheet
from fairgen.data.pairs import LABEL_RULES, PREVIEW, PREVIEW_PAIRS
from fairgen.data.synthetic_set import labels_from_prob, rate_by_group, write_synthetic
from fairgen.training.sampling import load_conditional_gan, sample_pairs

log = logging.getLogger(__name__)


def generate_pairs(cfg: dict, run: str, checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                   progress: bool = True) -> dict:
    """Write the counterfactual pair set of GAN run ``run`` (``pairs.n_pairs`` pairs) into
    ``out_dir`` atomically; returns its summary (also in the table's metadata, ``pairs``)."""
    t0 = time.perf_counter()
    pc = cfg["pairs"]
    gan, step, weights, device = load_conditional_gan(cfg, run, checkpoint)
    seed = seed_for(cfg, f"pairs/{run}")
    n = pc["n_pairs"]
    log.info("run %s: %d counterfactual pairs from %s (step %d) on %s", run, n, checkpoint, step, device)
    t_sample = time.perf_counter()
    images, y_prob = sample_pairs(gan, n, batch_size=pc["batch_size"], seed=seed, device=device,
                                  precision=cfg["precision"], progress=progress, source=str(checkpoint))
    sample_seconds = time.perf_counter() - t_sample
    c = np.tile([0, 1], n).astype(np.int64)
    pair_id = np.repeat(np.arange(n, dtype=np.int64), 2)
    y = labels_from_prob(y_prob)
    summary = {
        "run": run, "checkpoint": str(checkpoint), "checkpoint_step": step, "generator_weights": weights,
        "n_pairs": n, "members": "rows 2k (c=0) and 2k+1 (c=1) share pair_id k and the noise z",
        "member_labels": "y_prob / y of each row: the generator's own outcome for that member",
        "label_rules": LABEL_RULES,
        "p_y1_given_c": rate_by_group(y, c),
        "generator_label_agreement": float(np.mean(y[0::2] == y[1::2])),
        "seed": seed, "batch_size": pc["batch_size"], "device": str(device), "precision": cfg["precision"],
        "image_shape": list(images.shape[1:]),
        "sample_seconds": round(sample_seconds, 3),
        "images_per_second": round(len(images) / max(sample_seconds, 1e-9), 1),
    }
    with io.atomic_path(Path(out_dir), is_dir=True) as tmp:
        (tmp / PREVIEW).parent.mkdir()
        contact_sheet(images[:2 * PREVIEW_PAIRS], cols=8).save(tmp / PREVIEW)
        summary["preview"] = PREVIEW
        write_synthetic(tmp, images, c, y_prob, model=run, checkpoint_step=step, seed=seed,
                        metadata={"pairs": summary}, pair_id=pair_id, progress=progress)
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    log.info("run %s: wrote %d pairs to %s; sampling %.0f images/s; generator labels agree within a pair "
             "for %.1f%%", run, n, out_dir, summary["images_per_second"], 100 * summary["generator_label_agreement"])
    return summary

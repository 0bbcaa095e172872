"""Counterfactual pairs: the same noise drawn through a c-conditional generator at c=0 and at c=1.

``fairgen generate-pairs`` samples ``pairs.n_pairs`` noise draws z from a GAN checkpoint and
writes both members G(z, c=0) and G(z, c=1) of every pair into one dataset folder in the format
of :mod:`fairgen.synthetic_data`, with the extra column ``pair_id`` (rows 2k and 2k+1 are pair k,
c=0 first). Each member's ``y_prob``/``y`` is the generator's own outcome for that member; the
pair's label is not fixed here: the classifier methods that use the pairs decide it
(:data:`LABEL_RULES`) and the set's metadata (``pairs``) records how the members were made and
what G's own labels say. No GAN is trained here.

:func:`read_pairs` reads such a folder back as a :class:`PairSet` and refuses a broken one (a
pair_id with one member or with more than two, or two members with the same c).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fairgen import io
from fairgen.config import seed_for
from fairgen.errors import DataError

log = logging.getLogger(__name__)

PREVIEW = "previews/pairs.png"  # the first pairs, four a row: G(z, c=0) then G(z, c=1)
PREVIEW_PAIRS = 32

# How a pair's two members get the one label that real_plus_pairs trains them with.
LABEL_RULES = {
    "generator": "mean of the generator's own y_prob over the pair's two members, >= 0.5",
    "real_classifier": "mean of the real classifier's score over the pair's two members, >= 0.5",
}


@dataclass
class PairSet:
    """``n`` pairs: ``images0[k]`` = G(z_k, c=0), ``images1[k]`` = G(z_k, c=1) (uint8 NHWC)."""

    images0: np.ndarray
    images1: np.ndarray
    y_prob0: np.ndarray
    y_prob1: np.ndarray
    pair_id: np.ndarray
    model: str
    source: str

    def __len__(self) -> int:
        return len(self.pair_id)

    def take(self, n: int) -> "PairSet":
        """The first ``n`` pairs (the set's order is already random: one noise draw per pair)."""
        if n > len(self):
            raise DataError(f"{self.source}: {n} pairs asked for, the set holds {len(self)}")
        return PairSet(self.images0[:n], self.images1[:n], self.y_prob0[:n], self.y_prob1[:n],
                       self.pair_id[:n], self.model, self.source)


def read_pairs(folder: str | os.PathLike) -> PairSet:
    """The counterfactual pair set in ``folder``; DataError (naming the file and pair) for a
    set without ``pair_id``, a pair with other than two members, or two members with the same c."""
    from fairgen.synthetic_data import PAIR_COLUMN, SAMPLES_FILE, read_synthetic

    table, images, _ = read_synthetic(folder)
    where = Path(folder) / SAMPLES_FILE
    if PAIR_COLUMN not in table.columns:
        raise DataError(f"{where}: not a counterfactual pair set (no '{PAIR_COLUMN}' column; "
                        "make one with 'fairgen generate-pairs')")
    pid = table[PAIR_COLUMN].to_numpy()
    c = table["c"].to_numpy()
    ids, first, counts = np.unique(pid, return_index=True, return_counts=True)
    bad = np.flatnonzero(counts != 2)
    if bad.size:
        k = bad[0]
        raise DataError(f"{where}: pair_id {ids[k]} has {counts[k]} member(s) (row {first[k]}); every pair "
                        "needs exactly two, one with c=0 and one with c=1")
    order = np.lexsort((c, pid))  # by pair, c=0 before c=1
    c0, c1 = order[0::2], order[1::2]
    same = np.flatnonzero(c[c0] == c[c1])
    if same.size:
        k = same[0]
        raise DataError(f"{where}: pair_id {pid[c0[k]]} has both members at c={c[c0[k]]} (rows {c0[k]} and "
                        f"{c1[k]}); a counterfactual pair needs one member at c=0 and one at c=1")
    # pairs in the order of their first row
    by_first = np.argsort(np.minimum(c0, c1), kind="stable")
    c0, c1 = c0[by_first], c1[by_first]
    y_prob = table["y_prob"].to_numpy(np.float64)
    return PairSet(images[c0], images[c1], y_prob[c0], y_prob[c1], pid[c0].astype(np.int64),
                   str(table["model"].iloc[0]), f"pairs {folder}")


def sample_pairs(gan, n_pairs: int, *, batch_size: int, seed: int, device, precision: str = "fp32",
                 progress: bool = True, source: str = "generator"):
    """``n_pairs`` pairs (G(z, 0), G(z, 1)) of ``gan``: images (2n, H, W, 3) uint8 and y_prob (2n,),
    rows 2k (c=0) and 2k+1 (c=1) from the same noise. One forward pass per batch of pairs, on
    2 * batch_size rows, so a pair costs what two independent samples cost."""
    import torch

    from fairgen.generation import run_generator

    def latents(start, stop, gen):
        # rows start..stop of the interleaved set are pairs start/2 .. stop/2: one z each, twice
        m = (stop - start) // 2
        z_only = gan.sample_latent(m, gen, device, c=torch.zeros(m, dtype=torch.long, device=device))
        latent = {k: v.repeat_interleave(2, dim=0) for k, v in z_only.items()}
        latent["c"] = torch.tensor([0, 1], device=device).repeat(m)
        return latent

    return run_generator(gan, 2 * n_pairs, latents, batch_size=2 * batch_size, seed=seed, device=device,
                         precision=precision, progress=progress, source=source, desc="generate pairs")


def generate_pairs(cfg: dict, run: str, checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                   progress: bool = True) -> dict:
    """Write the counterfactual pair set of GAN run ``run`` (``pairs.n_pairs`` pairs) into
    ``out_dir`` atomically; returns its summary (also in the table's metadata, ``pairs``)."""
    from fairgen.data.crops import contact_sheet
    from fairgen.generation import load_conditional_gan
    from fairgen.synthetic_data import rate_by_group, write_synthetic

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
    y = (y_prob >= 0.5).astype(np.int64)
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

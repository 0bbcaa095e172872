"""Sampling from a trained Fairness GAN checkpoint: the logic of ``fairgen generate``
(:mod:`fairgen.stages.generate`), which writes a synthetic dataset, and of ``fairgen generate-pairs``
(:func:`sample_pairs`).

The checkpoint is loaded with ``torch.load(weights_only=True)`` and the model is rebuilt from
the name and config stored in it (:func:`fairgen.training.checkpoint.load_gan`), with G's moving
average when the run kept one (``gan.experimental.ema_decay``; the summary's ``generator_weights`` says
``ema`` or ``trained``). The model must
be conditioned on the protected attribute ``c`` and output an outcome ``y`` next to the image
(the Fairness GAN's G(z, c) -> (x, y), y in (-1, 1) from a tanh; y > 0 means outcome 1).

``generate.n_samples`` samples are drawn with exactly ``round(n * generate.protected_ratio)``
of them at c=1 (the c values shuffled with the stage seed), in batches of
``generate.batch_size``. Each sample's ``y_prob = (y + 1) / 2`` clipped to [0, 1] and its label
``y = y_prob >= 0.5``. With ``generate.experimental.oversample`` k > 1, k times as many candidates are drawn
(the same exact c ratio) and :func:`select_stratified` keeps the n that the GAN's discriminator
finds most real (:func:`realism_scores`), within each (c, y) cell. The stage writes the result as a
dataset folder in the format of :mod:`fairgen.data.synthetic_set`, atomically as a whole, plus
``previews/c{c}_y{y}.png`` contact sheets of up to 64 samples of each (c, y) cell
(:func:`write_previews`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from fairgen.common.errors import CheckpointError, DataError

PREVIEW_DIR = "previews"
PREVIEW_PER_CELL = 64
Y_PROB_RULE = "y_prob = (y + 1) / 2 clipped to [0, 1] (y in (-1, 1) from G's tanh); label y = y_prob >= 0.5"


def balanced_groups(n: int, protected_ratio: float, seed: int) -> np.ndarray:
    """``n`` values of c with exactly ``round(n * protected_ratio)`` ones, in a seeded random order."""
    n1 = int(round(n * protected_ratio))
    c = np.zeros(n, dtype=np.int64)
    c[:n1] = 1
    np.random.default_rng(seed).shuffle(c)
    return c


@contextlib.contextmanager
def inference(gan, device, precision: str):
    """``gan`` in eval mode under ``torch.inference_mode`` (its train/eval state restored after);
    yields the ``torch.autocast`` keyword arguments for the forward passes (bf16 with ``precision``)."""
    import torch

    was_training = gan.training
    gan.eval()
    try:
        with torch.inference_mode():
            yield dict(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    finally:
        gan.train(was_training)


def sample(gan, c: np.ndarray, *, batch_size: int, seed: int, device, precision: str = "fp32",
           progress: bool = True, source: str = "generator") -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8 NHWC) and y_prob of ``gan`` conditioned on ``c``, in batches.

    Noise comes from one ``torch.Generator`` seeded with ``seed`` on ``device``, so a given
    (checkpoint, c, seed, batch size, device) gives the same samples.
    """
    import torch

    def latents(start, stop, gen):
        return gan.sample_latent(stop - start, gen, device, c=torch.from_numpy(c[start:stop]).to(device))

    return run_generator(gan, len(c), latents, batch_size=batch_size, seed=seed, device=device,
                         precision=precision, progress=progress, source=source, desc="generate")


def run_generator(gan, n: int, latents, *, batch_size: int, seed: int, device, precision: str = "fp32",
                  progress: bool = True, source: str = "generator", desc: str = "generate"):
    """Images (uint8 NHWC) and y_prob (``(y + 1) / 2`` clipped) of ``gan`` on the latents that
    ``latents(start, stop, gen)`` draws for rows ``start:stop`` from the ``torch.Generator``
    ``gen`` (seeded with ``seed`` on ``device``), ``batch_size`` rows at a time, in eval mode."""
    import torch
    from tqdm import tqdm

    gen = torch.Generator(device=device).manual_seed(seed)
    images, y_prob = [], []
    with inference(gan, device, precision) as autocast:
        for start in tqdm(range(0, n, batch_size), desc=desc, unit="batch", disable=not progress):
            latent = latents(start, min(start + batch_size, n), gen)
            with torch.autocast(**autocast):
                out = gan.generate(latent)
            x, y = check_output(gan, out, start // batch_size, source)
            images.append(to_uint8(x))
            y_prob.append(((y + 1) / 2).clamp(0, 1).double().cpu())
    return torch.cat(images).numpy(), torch.cat(y_prob).numpy()


def check_output(gan, out: dict, batch: int, source: str):
    """The images ``x`` (float NCHW) and outcome ``y`` (float, flat) of one ``gan.generate`` call;
    DataError for a model without RGB images or without an outcome, or for NaN/inf output."""
    import torch

    x, y = out.get("x"), out.get("y")
    if x is None or x.ndim != 4 or x.shape[1] != 3:
        raise DataError(f"{source}: expected RGB images (N, 3, H, W) in 'x', got "
                        f"{None if x is None else tuple(x.shape)}")
    if y is None:
        raise DataError(f"{source}: model '{gan.name}' generates no outcome 'y' "
                        f"(outputs: {', '.join(sorted(out))})")
    x, y = x.float(), y.float().reshape(-1)
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise DataError(f"{source}: the generator produced NaN/inf in batch {batch} (a diverged checkpoint?)")
    return x, y


def to_uint8(x):
    """Generated images in [-1, 1] (NCHW) as uint8 NHWC on the host."""
    import torch

    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


def realism_scores(gan, images: np.ndarray, y_prob: np.ndarray, c: np.ndarray, *, batch_size: int, device,
                   precision: str = "fp32", progress: bool = True, source: str = "generator") -> np.ndarray:
    """The model's realism score (``gan.realism``, e.g. the Fairness GAN's S_X logits) of each
    generated sample, scored on the saved uint8 images (what the dataset will hold)."""
    import torch
    from tqdm import tqdm

    if not callable(getattr(gan, "realism", None)):
        raise DataError(f"{source}: model '{gan.name}' has no discriminator realism score; "
                        "generate.experimental.oversample > 1 needs one (set it to 1)")
    out = []
    with inference(gan, device, precision) as autocast:
        for start in tqdm(range(0, len(c), batch_size), desc="score", unit="batch", disable=not progress):
            sl = slice(start, start + batch_size)
            x = torch.tensor(images[sl], device=device).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
            batch = {"x": x, "y": torch.tensor(2.0 * y_prob[sl] - 1.0, device=device).float(),
                     "c": torch.tensor(c[sl], device=device)}
            with torch.autocast(**autocast):
                out.append(gan.realism(batch).float().reshape(-1).cpu())
    scores = torch.cat(out).numpy().astype(np.float64)
    if not np.isfinite(scores).all():
        raise DataError(f"{source}: the discriminator's realism score is NaN/inf for some samples")
    return scores


def select_stratified(scores: np.ndarray, c: np.ndarray, y: np.ndarray, n_keep: dict[int, int]) -> np.ndarray:
    """Indices (ascending) of the highest-scoring samples: ``n_keep[g]`` of group g, split between
    its y=1 and y=0 cells in the cell's share of the group (rounded; the y=0 cell takes the rest),
    the top scores within each cell (ties: the earlier sample)."""
    keep = []
    for g in (0, 1):
        group = c == g
        m = int(group.sum())
        if n_keep.get(g, 0) > m:
            raise ValueError(f"cannot keep {n_keep[g]} samples of group c={g}: only {m} candidates")
        if not n_keep.get(g, 0):
            continue
        k1 = int(round(n_keep[g] * (group & (y == 1)).sum() / m))
        for yv, k in ((1, k1), (0, n_keep[g] - k1)):
            cell = np.flatnonzero(group & (y == yv))
            keep.append(cell[np.argsort(-scores[cell], kind="stable")[:k]])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def write_previews(folder: Path, images: np.ndarray, c: np.ndarray, y: np.ndarray) -> list[str]:
    """A contact sheet ``c{c}_y{y}.png`` of up to 64 samples of each (c, y) cell that occurs."""
    from fairgen.data.crops import contact_sheet

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for cv in (0, 1):
        for yv in (0, 1):
            rows = np.flatnonzero((c == cv) & (y == yv))[:PREVIEW_PER_CELL]
            if rows.size:
                name = f"c{cv}_y{yv}.png"
                contact_sheet(images[rows]).save(folder / name)
                written.append(name)
    return written


def load_conditional_gan(cfg: dict, run: str, checkpoint: str | os.PathLike):
    """``(gan, step, generator_weights, device)`` of the checkpoint of GAN run ``run``, on the
    configured device. CheckpointError for a bad checkpoint or one trained as another run, and
    DataError for a model that is not conditioned on the protected attribute c."""
    from fairgen.common.runtime import resolve_device
    from fairgen.training.checkpoint import (
        gan_from_checkpoint,
        generator_weights,
        load_checkpoint,
    )

    checkpoint = Path(checkpoint)
    device = resolve_device(cfg["device"])
    ck = load_checkpoint(checkpoint)
    step = int(ck["step"])
    weights = generator_weights(ck)
    trained_as = ((ck.get("train") or {}).get("extra") or {}).get("run")
    if trained_as is not None and trained_as != run:  # e.g. the acgan checkpoint given for fgan_dp
        raise CheckpointError(f"{checkpoint}: checkpoint of GAN run '{trained_as}', not of run '{run}'")
    gan = gan_from_checkpoint(ck, checkpoint, device)
    del ck
    if "c" not in gan.cond_keys:
        raise DataError(f"{checkpoint}: model '{gan.name}' is not conditioned on the protected attribute c "
                        f"(its conditioning: {', '.join(gan.cond_keys) or 'none'})")
    return gan, step, weights, device


def sample_pairs(gan, n_pairs: int, *, batch_size: int, seed: int, device, precision: str = "fp32",
                 progress: bool = True, source: str = "generator"):
    """``n_pairs`` pairs (G(z, 0), G(z, 1)) of ``gan``: images (2n, H, W, 3) uint8 and y_prob (2n,),
    rows 2k (c=0) and 2k+1 (c=1) from the same noise. One forward pass per batch of pairs, on
    2 * batch_size rows, so a pair costs what two independent samples cost."""
    import torch

    def latents(start, stop, gen):
        # rows start..stop of the interleaved set are pairs start/2 .. stop/2: one z each, twice
        m = (stop - start) // 2
        z_only = gan.sample_latent(m, gen, device, c=torch.zeros(m, dtype=torch.long, device=device))
        latent = {k: v.repeat_interleave(2, dim=0) for k, v in z_only.items()}
        latent["c"] = torch.tensor([0, 1], device=device).repeat(m)
        return latent

    return run_generator(gan, 2 * n_pairs, latents, batch_size=2 * batch_size, seed=seed, device=device,
                         precision=precision, progress=progress, source=source, desc="generate pairs")

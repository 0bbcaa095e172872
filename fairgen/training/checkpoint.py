"""GAN training checkpoints: plain, ``torch.load(weights_only=True)``-safe dicts written atomically.

Layout (format version :data:`FORMAT_VERSION`, kind ``gan_checkpoint``)::

    {
      "kind": "gan_checkpoint", "format_version": 1, "fairgen_version": "0.1.0",
      "model": {"name": str, "config": dict},        # fairgen.models.build(name, **config)
      "train": dict,                                  # the TrainConfig fields that shape the run
      "step": int,                                    # generator steps done
      "G": state_dict, "D": state_dict,
      "G_ema": state_dict | None,                     # moving average of G (TrainConfig.ema_decay)
      "opt_g": state_dict, "opt_d": state_dict,
      "sched_g": state_dict | None, "sched_d": state_dict | None,
      "rng": {"torch": ByteTensor, "cuda": [ByteTensor, ...], "numpy": {...}, "python": {...}},
      "noise_generator": {"device": str, "state": ByteTensor},   # latents
      "batches": dict,                                # the batch source's sampler state
      "fixed_latent": {key: Tensor},                  # sample-grid latents
      "elapsed_s": float,
    }

Only tensors, numbers, strings, None, lists and dicts appear, so loading never executes code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairgen import __version__
from fairgen.common.errors import CheckpointError, FormatVersionError
from fairgen.common.io import FORMAT_VERSIONS, atomic_path

KIND = "gan_checkpoint"
FORMAT_VERSION = FORMAT_VERSIONS[KIND]


# ---------------------------------------------------------------------------------------- RNG
def capture_rng() -> dict[str, Any]:
    """Global RNG states (torch CPU, every CUDA device if CUDA is initialised, numpy, python)."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() and torch.cuda.is_initialized()
        else [],
        "numpy": {"name": str(np_name), "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "python": {"version": int(py_version), "state": [int(v) for v in py_state], "gauss_next": py_gauss},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# ---------------------------------------------------------------------------------------- save/load
def save_checkpoint(ckpt: dict[str, Any], path: str | Path) -> Path:
    """Write ``ckpt`` atomically (a crash mid-write leaves the previous file untouched)."""
    path = Path(path)
    ckpt = {"kind": KIND, "format_version": FORMAT_VERSION, "fairgen_version": __version__, **ckpt}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint with ``torch.load(weights_only=True)``.

    Raises CheckpointError (missing, unreadable or corrupted file, not a fairgen GAN checkpoint)
    or FormatVersionError (written by another checkpoint format version).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # zip/pickle/EOF/runtime errors all mean the same thing here
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupted or truncated?): "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != KIND:
        raise CheckpointError(f"{path}: not a fairgen GAN checkpoint (kind "
                              f"{ckpt.get('kind') if isinstance(ckpt, dict) else type(ckpt).__name__!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise FormatVersionError(f"{path}: GAN checkpoint format version {ckpt.get('format_version')} is not "
                                 f"supported (this fairgen reads version {FORMAT_VERSION})")
    return ckpt


def _diff(a: dict, b: dict) -> str:
    keys = sorted(set(a) | set(b))
    return ", ".join(f"{k}: {a.get(k, '(missing)')!r} vs {b.get(k, '(missing)')!r}" for k in keys if a.get(k) != b.get(k))


def check_model(ckpt: dict[str, Any], gan, path: str | Path) -> None:
    """CheckpointError unless ``ckpt`` was written for a model with ``gan``'s name and config."""
    m = ckpt.get("model", {})
    if m.get("name") != gan.name:
        raise CheckpointError(f"{path}: checkpoint is for model '{m.get('name')}', not '{gan.name}'")
    if m.get("config") != gan.config:
        raise CheckpointError(f"{path}: checkpoint is for another '{gan.name}' configuration "
                              f"(checkpoint vs this run: {_diff(m.get('config') or {}, gan.config)})")


def check_train(ckpt: dict[str, Any], train: dict[str, Any], path: str | Path) -> None:
    """CheckpointError unless the checkpoint's training settings equal ``train``."""
    if ckpt.get("train") != train:
        raise CheckpointError(f"{path}: checkpoint was written with other training settings, so resuming "
                              f"would not reproduce one run (checkpoint vs this run: {_diff(ckpt.get('train') or {}, train)}); "
                              f"use the same settings or another output folder")


def generator_weights(ckpt: dict[str, Any]) -> str:
    """Which G weights sampling uses: ``ema`` (the moving average, when the checkpoint has one)
    or ``trained`` (G's last weights)."""
    return "ema" if isinstance(ckpt.get("G_ema"), dict) else "trained"


def load_gan(path: str | Path, device: str | torch.device = "cpu", eval_mode: bool = True):
    """Rebuild the model stored in a checkpoint (``fairgen.models.build``) with the weights that
    samples are drawn from: G's moving average when the checkpoint has one (``G_ema``), else G's
    last weights (see :func:`generator_weights`); D as trained."""
    return gan_from_checkpoint(load_checkpoint(path, map_location=device), path, device, eval_mode)


def gan_from_checkpoint(ckpt: dict[str, Any], path: str | Path, device: str | torch.device = "cpu",
                        eval_mode: bool = True):
    """:func:`load_gan` for a checkpoint dict already read by :func:`load_checkpoint` from ``path``
    (named in errors), so a caller that inspects the checkpoint first reads the file once."""
    from fairgen.models import build

    m = ckpt["model"]
    try:
        gan = build(m["name"], **m["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot rebuild model '{m['name']}' from its config: {e}") from None
    gan.G.load_state_dict(ckpt["G_ema"] if generator_weights(ckpt) == "ema" else ckpt["G"])
    gan.D.load_state_dict(ckpt["D"])
    gan.to(device)
    return gan.eval() if eval_mode else gan

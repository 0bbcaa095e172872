"""Training batches straight from tensors in memory: no DataLoader, no worker processes, no
per-step host synchronisation.

A batch source implements :class:`BatchSource`: the trainer calls ``bind(device, seed)`` once
(move the data to the device, create the seeded ``torch.Generator`` on that device), then
``sample(n)`` every step (indices drawn on the device, images converted on the fly), and
``state_dict`` / ``load_state_dict`` to checkpoint and restore the generator.

:class:`ArrayBatches` serves image arrays (uint8 or float) and their labels;
:class:`RingOfGaussians` serves the 2-D data of the toy GAN (:mod:`fairgen.models.toy`).
"""

from __future__ import annotations

import math
from typing import Mapping, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from fairgen.common.errors import DataError

#: dtype of the conventional label keys (others: float if the array is float, long otherwise)
LABEL_DTYPES = {"c": torch.long, "label": torch.long, "y": torch.float32}


@runtime_checkable
class BatchSource(Protocol):
    """What the trainer needs from a data source."""

    def bind(self, device: torch.device, seed: int) -> None:
        """Move the data to ``device`` (once) and seed the sampling generator (on ``device``)."""

    def sample(self, n: int) -> dict[str, Tensor]:
        """A batch of ``n`` examples as a dict of device tensors (see fairgen.models.base)."""

    def state_dict(self) -> dict[str, Tensor]:
        """The sampler's RNG state (weights_only-safe tensors)."""

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Restore :meth:`state_dict`."""


class SeededSource:
    """Base for sources drawing with one ``torch.Generator`` on the bound device."""

    device: torch.device | None = None
    generator: torch.Generator | None = None

    def _bind_generator(self, device: torch.device, seed: int) -> None:
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))

    def _require_bound(self) -> torch.Generator:
        if self.generator is None:
            raise RuntimeError(f"{type(self).__name__}.bind(device, seed) must be called before sampling")
        return self.generator

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self._require_bound().get_state()}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        self._require_bound().set_state(state["generator"].cpu())


class ArrayBatches(SeededSource):
    """Random batches (with replacement across steps, i.i.d. uniform indices) from packed images.

    Args:
        images: uint8 array or tensor (N, H, W, C), C in {1, 3}. Kept as is on CPU (no copy of a
            writable array) and copied to the device once by :meth:`bind`.
        labels: optional per-image arrays of length N, e.g. ``{'c': ..., 'y': ..., 'label': ...}``;
            ``c``/``label`` become long, ``y`` float32 (see :data:`LABEL_DTYPES`).
        name: what to call the data in error messages (e.g. the .npy path).

    ``sample(n)`` returns ``{'x': float (n, C, H, W) in [-1, 1], channels_last, **labels}``.
    The (N, H, W, C) layout permuted to NCHW *is* channels_last, so no transpose copy happens.
    """

    def __init__(self, images, labels: Mapping[str, object] | None = None, name: str = "images"):
        imgs = torch.from_numpy(_writable(images)) if isinstance(images, np.ndarray) else torch.as_tensor(images)
        if imgs.dtype != torch.uint8 or imgs.ndim != 4 or imgs.shape[-1] not in (1, 3):
            raise DataError(f"{name}: expected uint8 images of shape (N, H, W, C) with C in (1, 3), "
                            f"got {tuple(imgs.shape)} {imgs.dtype}")
        if imgs.shape[0] == 0:
            raise DataError(f"{name}: no images")
        self.name = name
        self.images = imgs.contiguous()
        self.labels: dict[str, Tensor] = {}
        for key, arr in (labels or {}).items():
            t = torch.from_numpy(_writable(arr)) if isinstance(arr, np.ndarray) else torch.as_tensor(arr)
            if t.ndim != 1 or t.shape[0] != imgs.shape[0]:
                raise DataError(f"{name}: label '{key}' has shape {tuple(t.shape)}, expected ({imgs.shape[0]},)")
            dtype = LABEL_DTYPES.get(key, torch.float32 if t.is_floating_point() else torch.long)
            self.labels[key] = t.to(dtype)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def keys(self) -> tuple[str, ...]:
        return ("x", *self.labels)

    def bind(self, device: torch.device, seed: int) -> None:
        device = torch.device(device)
        self.images = self.images.to(device)
        self.labels = {k: v.to(device) for k, v in self.labels.items()}
        self._bind_generator(device, seed)

    def sample(self, n: int) -> dict[str, Tensor]:
        gen = self._require_bound()
        idx = torch.randint(len(self), (n,), generator=gen, device=self.device)
        return self.take(idx)

    def take(self, idx: Tensor) -> dict[str, Tensor]:
        """The batch of the given indices (device tensor), converted like :meth:`sample`."""
        batch = {"x": to_float_images(self.images.index_select(0, idx))}
        for k, v in self.labels.items():
            batch[k] = v.index_select(0, idx)
        return batch


def to_float_images(u8_nhwc: Tensor) -> Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) channels_last in [-1, 1] (v / 127.5 - 1)."""
    return u8_nhwc.permute(0, 3, 1, 2).to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8_images(x: Tensor) -> Tensor:
    """Inverse of :func:`to_float_images`: float (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C), rounded."""
    return ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _writable(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous writable view/copy (torch.from_numpy warns on read-only memmaps)."""
    arr = np.asarray(arr)
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr, copy=True, order="C")
    return arr


class RingOfGaussians(SeededSource):
    """``n_modes`` isotropic Gaussians (std ``std``) evenly spaced on a circle of ``radius``.

    Metz et al. use std 0.02; the default here is 0.05 (neighbouring modes still ~30 std apart), which makes
    "high quality" (within 3 std of a centre) reachable in a CPU-test budget.
    """

    keys = ("x",)

    def __init__(self, n_modes: int = 8, radius: float = 2.0, std: float = 0.05):
        self.n_modes, self.radius, self.std = n_modes, radius, std
        angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
        self.centers = (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()

    def bind(self, device: torch.device, seed: int) -> None:
        self._bind_generator(device, seed)
        self.centers = self.centers.to(self.device)

    def sample(self, n: int) -> dict[str, Tensor]:
        gen = self._require_bound()
        mode = torch.randint(self.n_modes, (n,), generator=gen, device=self.device)
        noise = torch.randn(n, 2, generator=gen, device=self.device) * self.std
        return {"x": self.centers.index_select(0, mode) + noise}

    def mode_stats(self, points: Tensor, n_std: float = 3.0, min_share: float = 0.25) -> dict[str, float]:
        """Quality of generated ``points`` (N, 2):

        * ``high_quality``: fraction of points within ``n_std`` std of their nearest mode centre;
        * ``modes_covered``: number of modes that received at least ``min_share`` of the
          high-quality points a perfect generator would put there (``min_share * N / n_modes``);
        * ``per_mode``: high-quality point count per mode.
        """
        points = points.detach().float().cpu()
        d = torch.cdist(points, self.centers.cpu())
        dist, nearest = d.min(dim=1)
        good = dist <= n_std * self.std
        counts = torch.bincount(nearest[good], minlength=self.n_modes)
        need = min_share * points.shape[0] / self.n_modes
        return {"high_quality": float(good.float().mean()), "modes_covered": int((counts >= need).sum()),
                "per_mode": counts.tolist()}

"""Training batches straight from tensors in memory: no DataLoader, no worker processes, no
per-step host synchronisation.

A batch source implements :class:`BatchSource`: the trainer calls ``bind(device, seed)`` once
(move the data to the device, create the seeded ``torch.Generator`` on that device), then
``sample(n)`` every step (indices drawn on the device, images converted on the fly), and
``state_dict`` / ``load_state_dict`` to checkpoint and restore the generator.
"""

from __future__ import annotations

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

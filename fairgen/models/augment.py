"""Differentiable augmentation of the discriminator's input (DiffAugment, Zhao et al., NeurIPS 2020).

The same random transform family is applied to every image the discriminator sees, real and fake,
in D's step *and* in G's step; each op is differentiable in the pixels, so G's gradient flows back
through it. D then cannot memorise the real images (it never sees the same one twice), and because
G is judged only through the transforms it is not asked to draw them: the generated distribution
stays the data's as long as the transforms are the same for real and fake.

Ops, each drawn independently per image from the global torch RNG (seeded and checkpointed by the
trainer), on float NCHW images in [-1, 1]:

``color``        brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around the pixel's channel
                 mean) and contrast (x U(0.5, 1.5) around the image mean), as in the paper.
``translation``  an integer shift of up to 1/8 of the side in each direction, zero padded.
``cutout``       a square of half the side, at a uniform position (clipped at the border), set to 0.

No Python branch depends on tensor values, so an augmented step adds no host sync.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: the ops in the order :func:`diff_augment` applies them (the paper's order)
OPS = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _color(x: Tensor) -> Tensor:
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def _translation(x: Tensor, ratio: float = TRANSLATION_RATIO) -> Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    # output pixel (i, j) reads input pixel (i - dy, j - dx) of the zero-padded image
    iy = (torch.arange(h, device=x.device).view(1, h, 1) - dy + sh).expand(n, h, w)
    ix = (torch.arange(w, device=x.device).view(1, 1, w) - dx + sw).expand(n, h, w)
    padded = torch.nn.functional.pad(x, (sw, sw, sh, sh))
    out = padded[torch.arange(n, device=x.device).view(n, 1, 1), :, iy, ix]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2)


def _cutout(x: Tensor, ratio: float = CUTOUT_RATIO) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # top-left corner such that the square's centre is uniform over the image (clipped at borders)
    y0 = torch.randint(0, h, (n, 1, 1), device=x.device) - ch // 2
    x0 = torch.randint(0, w, (n, 1, 1), device=x.device) - cw // 2
    yy = torch.arange(h, device=x.device).view(1, h, 1)
    xx = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (yy >= y0) & (yy < y0 + ch) & (xx >= x0) & (xx < x0 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_FUNCS = {"color": _color, "translation": _translation, "cutout": _cutout}


def check_policy(policy) -> tuple[str, ...]:
    """``policy`` (an iterable of op names) as a tuple in :data:`OPS` order; ValueError naming an
    unknown or repeated op."""
    policy = list(policy)
    unknown = [p for p in policy if p not in OPS]
    if unknown:
        raise ValueError(f"DiffAugment: unknown op(s) {unknown}; choose from {', '.join(OPS)}")
    if len(set(policy)) != len(policy):
        raise ValueError(f"DiffAugment: repeated op in {policy}")
    return tuple(op for op in OPS if op in policy)


def diff_augment(x: Tensor, policy: tuple[str, ...]) -> Tensor:
    """Apply the ops of ``policy`` (see :func:`check_policy`) to the batch ``x``; ``()`` returns
    ``x`` itself. The result keeps ``x``'s memory format."""
    if not policy:
        return x
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for op in policy:
        x = _FUNCS[op](x)
    return x.contiguous(memory_format=fmt)

"""2-D toy GAN: MLP G and D on a mixture of Gaussians on a ring (Metz et al. 2017's unrolled-GAN
benchmark; mode coverage / sample quality measured as in VEEGAN, Srivastava et al. 2017).

:class:`RingOfGaussians` is a :class:`fairgen.data.batches.BatchSource`, so the toy GAN
trains with the same :class:`fairgen.training.Trainer` as every image GAN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fairgen.data.batches import SeededSource
from fairgen.models.base import GAN, Batch, register
from fairgen.models.vanilla import mlp


@register
class ToyGAN(GAN):
    """MLP GAN on 2-D points: G ``z -> [Linear-BN-ReLU] x g_layers -> Linear -> 2``,
    D ``2 -> [Linear-ReLU] x d_layers -> Linear -> 1 logit``.

    Defaults are tuned for :class:`RingOfGaussians` (see tests/test_toy_gan.py). Batch norm in G
    (as in DCGAN's generator) matters: without it, PyTorch's default init makes G's initial output
    a near point mass (std ~0.03 against a ring of radius 2), the whole cloud follows one gradient
    direction and collapsed onto one or two modes in all ~15 lr/batch/init settings we tried. With it, G first spreads
    over the ring and then sharpens onto the modes. G learns faster than D (Adam 1e-3 vs 5e-4).
    """

    name = "toy"
    DEFAULT_OPTIM = {"lr_g": 1e-3, "lr_d": 5e-4, "betas": (0.5, 0.999)}

    def __init__(self, z_dim: int = 16, hidden: int = 128, g_layers: int = 3, d_layers: int = 3,
                 leaky_slope: float = 0.0, data_dim: int = 2, g_batchnorm: bool = True,
                 loss: str = "non_saturating"):
        G = mlp([z_dim, *[hidden] * g_layers, data_dim], leaky_slope, batchnorm=g_batchnorm)
        D = mlp([data_dim, *[hidden] * d_layers, 1], leaky_slope)
        super().__init__(G, D, z_dim=z_dim, loss=loss,
                         config=dict(z_dim=z_dim, hidden=hidden, g_layers=g_layers, d_layers=d_layers,
                                     leaky_slope=leaky_slope, data_dim=data_dim, g_batchnorm=g_batchnorm,
                                     loss=loss))

    def generate(self, latent: Batch) -> Batch:
        return {"x": self.G(latent["z"])}


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

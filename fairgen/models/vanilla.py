"""Vanilla MLP GAN (Goodfellow et al. 2014 style), the original internship report's MNIST setting by default:
G: z(100) -> 128 -> LeakyReLU(0.01) -> 784 -> tanh, reshaped to (1, 28, 28);
D: 784 -> 128 -> LeakyReLU(0.01) -> 1 logit.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from fairgen.models.base import GAN, Batch, register


def mlp(sizes: list[int], slope: float, out_act: nn.Module | None = None, batchnorm: bool = False) -> nn.Sequential:
    """Linear layers of ``sizes`` with [BatchNorm1d and] LeakyReLU(``slope``) (ReLU if slope is 0)
    between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.LeakyReLU(slope) if slope else nn.ReLU())
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class _ImageMLP(nn.Module):
    def __init__(self, net: nn.Module, img_shape: tuple[int, ...]):
        super().__init__()
        self.net, self.img_shape = net, tuple(img_shape)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).reshape(z.shape[0], *self.img_shape)


@register
class VanillaGAN(GAN):
    """MLP G and D on flattened images.

    Args:
        z_dim: noise size. hidden: list of hidden sizes (same for G and D; ``[128]`` = one layer).
        leaky_slope: LeakyReLU negative slope. img_shape: (C, H, W) of the images.
        loss: adversarial loss name (:mod:`fairgen.models.losses`).
    """

    name = "vanilla"
    DEFAULT_OPTIM = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999)}

    def __init__(self, z_dim: int = 100, hidden: list[int] | int = (128,), leaky_slope: float = 0.01,
                 img_shape: list[int] = (1, 28, 28), loss: str = "non_saturating"):
        hidden = [int(hidden)] if isinstance(hidden, int) else [int(h) for h in hidden]
        img_shape = [int(s) for s in img_shape]
        n = math.prod(img_shape)
        G = _ImageMLP(mlp([z_dim, *hidden, n], leaky_slope, nn.Tanh()), img_shape)
        D = nn.Sequential(nn.Flatten(), mlp([n, *hidden, 1], leaky_slope))
        super().__init__(G, D, z_dim=z_dim, loss=loss,
                         config=dict(z_dim=z_dim, hidden=hidden, leaky_slope=leaky_slope,
                                     img_shape=img_shape, loss=loss))

    def generate(self, latent: Batch) -> Batch:
        return {"x": self.G(latent["z"])}

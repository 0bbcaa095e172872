"""Conditional GAN (Mirza & Osindero 2014) on the 28x28 DCGAN backbone of :mod:`fairgen.models.dcgan`.

The class label enters G as a learned embedding concatenated to z, and D as a learned embedding
mapped by a linear layer to one extra 28x28 input channel. D scores the (image, label) pair, so
the adversarial loss alone teaches G to respect the label.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fairgen.models.base import Batch, ClassConditionalGAN, register
from fairgen.models.dcgan import Discriminator28, Generator28, init_28


class _CondG(nn.Module):
    def __init__(self, z_dim, n_classes, embed_dim, body: nn.Module):
        super().__init__()
        self.embed = nn.Embedding(n_classes, embed_dim)
        self.body = body

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        return self.body(torch.cat([z, self.embed(label).to(z.dtype)], dim=1))


class _CondD(nn.Module):
    def __init__(self, n_classes, embed_dim, img_hw: int, body: nn.Module):
        super().__init__()
        self.embed = nn.Embedding(n_classes, embed_dim)
        self.to_map = nn.Linear(embed_dim, img_hw * img_hw)
        self.img_hw = img_hw
        self.body = body

    def forward(self, x: Tensor, label: Tensor) -> Tensor:
        m = self.to_map(self.embed(label)).reshape(x.shape[0], 1, self.img_hw, self.img_hw)
        return self.body(torch.cat([x, m.to(x.dtype)], dim=1))


@register
class ConditionalGAN(ClassConditionalGAN):
    """Label-conditional 28x28 GAN. Latent/batches carry ``'label'`` (long, 0..n_classes-1).

    Args: as :class:`fairgen.models.dcgan.DCGAN28` (including ``init``, which also covers the label
    embeddings) plus ``n_classes`` and ``embed_dim`` (label embedding size, in G and in D).
    """

    name = "cgan"
    DEFAULT_OPTIM = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999)}

    def __init__(self, z_dim: int = 100, n_classes: int = 10, embed_dim: int = 50, channels: int = 1,
                 g_widths: list[int] = (256, 128, 64), g_kernel_size: int = 3, d_widths: list[int] = (64, 128),
                 d_kernel_size: int = 5, leaky_slope: float = 0.3, dropout: float = 0.3,
                 loss: str = "non_saturating", init: str = "xavier"):
        G = init_28(_CondG(z_dim, n_classes, embed_dim, Generator28(z_dim + embed_dim, channels, g_widths,
                                                                    g_kernel_size, leaky_slope)), init)
        D = init_28(_CondD(n_classes, embed_dim, 28, Discriminator28(channels + 1, d_widths, d_kernel_size,
                                                                     leaky_slope, dropout)), init)
        super().__init__(G, D, z_dim=z_dim, loss=loss,
                         config=dict(z_dim=z_dim, n_classes=n_classes, embed_dim=embed_dim, channels=channels,
                                     g_widths=list(g_widths), g_kernel_size=g_kernel_size, d_widths=list(d_widths),
                                     d_kernel_size=d_kernel_size, leaky_slope=leaky_slope, dropout=dropout,
                                     loss=loss, init=init))
        self.n_classes = n_classes

    def discriminate(self, batch: Batch) -> Tensor:
        return self.D(batch["x"], batch["label"])

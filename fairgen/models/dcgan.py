"""DCGANs (Radford et al. 2016).

* :class:`DCGAN64` (``dcgan64``): the pytorch/examples ``dcgan/main.py`` architecture. G is a
  transposed-conv stack ``z -> ngf*8 (4x4) -> ngf*4 -> ngf*2 -> ngf -> channels (64x64)`` with
  BN + ReLU and a tanh output; D is the mirror conv stack with LeakyReLU(0.2) and BN (not on the
  first layer) ending in a 4x4 conv to one logit (no sigmoid: the losses take logits). Weights
  ~ N(0, 0.02), BN gains ~ N(1, 0.02). ``img_size`` 32/64/128 drops/adds one stride-2 stage.
* :class:`DCGAN28` (``dcgan``, the zoo run of that name): the original internship report's 28x28 MNIST DCGAN (the TensorFlow DCGAN
  tutorial design with 3x3 transposed convs): G ``Linear(z, 7*7*256, no bias) -> BN -> LeakyReLU
  -> (256, 7, 7) -> ConvT 3x3 128 s1 -> BN -> LeakyReLU -> ConvT 3x3 64 s2 -> BN -> LeakyReLU ->
  ConvT 3x3 1 s2 -> tanh``; D ``Conv 5x5 64 s2 -> LeakyReLU -> Dropout -> Conv 5x5 128 s2 ->
  LeakyReLU -> Dropout -> Linear(128*7*7, 1)``. LeakyReLU slope 0.3 is Keras' default, which
  the tutorial uses. :class:`Generator28` / :class:`Discriminator28` are reused by the cGAN.
  Weights are initialised like Keras' (glorot-uniform, ``init="xavier"``) by default; see :data:`INITS_28`.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from fairgen.models.base import GAN, Batch, register
from fairgen.models.layers import init_normal_, init_xavier_

#: weight initialisations of the 28x28 models: Keras' glorot-uniform (what the TensorFlow tutorial
#: gets by default), the DCGAN paper's N(0, 0.02), or PyTorch's layer defaults. PyTorch's default
#: for ConvTranspose2d computes fan-in from the output channels, so the single-channel output layer
#: starts ~3x too large, saturates tanh, and D wins within ~100 steps: hence not the default.
INITS_28 = ("xavier", "normal", "torch")


def init_28(module: nn.Module, init: str) -> nn.Module:
    """Initialise ``module`` in place by one of :data:`INITS_28`; returns it."""
    if init == "xavier":
        return init_xavier_(module)
    if init == "normal":
        return init_normal_(module)
    if init == "torch":
        return module
    raise ValueError(f"init must be one of {', '.join(INITS_28)}, got {init!r}")


def _n_stages(img_size: int) -> int:
    n = int(round(math.log2(img_size))) - 2
    if img_size < 16 or 2 ** (n + 2) != img_size:
        raise ValueError(f"DCGAN64 img_size must be a power of two >= 16, got {img_size}")
    return n


class DCGANGenerator(nn.Module):
    """pytorch/examples DCGAN generator: (N, z_dim) -> (N, channels, img_size, img_size) in [-1, 1]."""

    def __init__(self, z_dim: int = 100, ngf: int = 64, channels: int = 3, img_size: int = 64):
        super().__init__()
        n = _n_stages(img_size)
        ch = [ngf * 2 ** i for i in reversed(range(n))]  # 64x64: ngf*8, ngf*4, ngf*2, ngf
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, ch[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch[0]), nn.ReLU(True)]
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.main(z.reshape(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """pytorch/examples DCGAN discriminator without the final sigmoid: images -> (N,) logits."""

    def __init__(self, ndf: int = 64, channels: int = 3, img_size: int = 64):
        super().__init__()
        n = _n_stages(img_size)
        ch = [ndf * 2 ** i for i in range(n)]  # 64x64: ndf, ndf*2, ndf*4, ndf*8
        layers: list[nn.Module] = [nn.Conv2d(channels, ch[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(ch[-1], 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x).reshape(-1)


@register
class DCGAN64(GAN):
    """pytorch/examples DCGAN (see module docstring). Its BCE training with real labels for G is
    the ``non_saturating`` loss here. Adam(2e-4, betas (0.5, 0.999)) as in the example."""

    name = "dcgan64"
    DEFAULT_OPTIM = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999)}

    def __init__(self, z_dim: int = 100, ngf: int = 64, ndf: int = 64, channels: int = 3, img_size: int = 64,
                 loss: str = "non_saturating", init_std: float = 0.02):
        G = init_normal_(DCGANGenerator(z_dim, ngf, channels, img_size), init_std)
        D = init_normal_(DCGANDiscriminator(ndf, channels, img_size), init_std)
        super().__init__(G, D, z_dim=z_dim, loss=loss,
                         config=dict(z_dim=z_dim, ngf=ngf, ndf=ndf, channels=channels, img_size=img_size,
                                     loss=loss, init_std=init_std))

    def generate(self, latent: Batch) -> Batch:
        return {"x": self.G(latent["z"])}


class Generator28(nn.Module):
    """28x28 DCGAN generator body: (N, in_dim) -> (N, channels, 28, 28) in [-1, 1]."""

    def __init__(self, in_dim: int, channels: int = 1, widths: list[int] = (256, 128, 64), kernel_size: int = 3,
                 leaky_slope: float = 0.3):
        super().__init__()
        w0, w1, w2 = widths
        k, p = kernel_size, kernel_size // 2
        self.w0 = w0
        self.fc = nn.Sequential(nn.Linear(in_dim, 7 * 7 * w0, bias=False), nn.BatchNorm1d(7 * 7 * w0),
                                nn.LeakyReLU(leaky_slope))
        self.conv = nn.Sequential(
            nn.ConvTranspose2d(w0, w1, k, 1, p, bias=False), nn.BatchNorm2d(w1), nn.LeakyReLU(leaky_slope),
            nn.ConvTranspose2d(w1, w2, k, 2, p, output_padding=1, bias=False), nn.BatchNorm2d(w2),
            nn.LeakyReLU(leaky_slope),
            nn.ConvTranspose2d(w2, channels, k, 2, p, output_padding=1, bias=False), nn.Tanh(),
        )

    def forward(self, h: Tensor) -> Tensor:
        return self.conv(self.fc(h).reshape(h.shape[0], self.w0, 7, 7))


class Discriminator28(nn.Module):
    """28x28 DCGAN discriminator body: (N, in_channels, 28, 28) -> (N,) logits."""

    def __init__(self, in_channels: int = 1, widths: list[int] = (64, 128), kernel_size: int = 5,
                 leaky_slope: float = 0.3, dropout: float = 0.3):
        super().__init__()
        w0, w1 = widths
        k, p = kernel_size, kernel_size // 2
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, w0, k, 2, p), nn.LeakyReLU(leaky_slope), nn.Dropout(dropout),
            nn.Conv2d(w0, w1, k, 2, p), nn.LeakyReLU(leaky_slope), nn.Dropout(dropout),
            nn.Flatten(), nn.Linear(w1 * 7 * 7, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x).reshape(-1)


@register
class DCGAN28(GAN):
    """The original internship report's 28x28 MNIST DCGAN (see module docstring); Adam(1e-4), Keras betas."""

    name = "dcgan"
    DEFAULT_OPTIM = {"lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.9, 0.999)}

    def __init__(self, z_dim: int = 100, channels: int = 1, g_widths: list[int] = (256, 128, 64),
                 g_kernel_size: int = 3, d_widths: list[int] = (64, 128), d_kernel_size: int = 5,
                 leaky_slope: float = 0.3, dropout: float = 0.3, loss: str = "non_saturating", init: str = "xavier"):
        G = init_28(Generator28(z_dim, channels, g_widths, g_kernel_size, leaky_slope), init)
        D = init_28(Discriminator28(channels, d_widths, d_kernel_size, leaky_slope, dropout), init)
        super().__init__(G, D, z_dim=z_dim, loss=loss,
                         config=dict(z_dim=z_dim, channels=channels, g_widths=list(g_widths),
                                     g_kernel_size=g_kernel_size, d_widths=list(d_widths),
                                     d_kernel_size=d_kernel_size, leaky_slope=leaky_slope, dropout=dropout,
                                     loss=loss, init=init))

    def generate(self, latent: Batch) -> Batch:
        return {"x": self.G(latent["z"])}

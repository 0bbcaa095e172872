"""2-D toy GAN: MLP G and D on a mixture of Gaussians on a ring (Metz et al. 2017's unrolled-GAN
benchmark; mode coverage / sample quality measured as in VEEGAN, Srivastava et al. 2017).

Its data, :class:`fairgen.training.batches.RingOfGaussians`, is a batch source like the image
arrays, so the toy GAN trains with the same :class:`fairgen.training.Trainer` as every image GAN.
"""

from __future__ import annotations

from fairgen.models.base import GAN, Batch, register
from fairgen.models.vanilla import mlp


@register
class ToyGAN(GAN):
    """MLP GAN on 2-D points: G ``z -> [Linear-BN-ReLU] x g_layers -> Linear -> 2``,
    D ``2 -> [Linear-ReLU] x d_layers -> Linear -> 1 logit``.

    Defaults are tuned for :class:`fairgen.training.batches.RingOfGaussians` (see tests/test_toy_gan.py). Batch norm in G
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

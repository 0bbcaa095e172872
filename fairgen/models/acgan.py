"""AC-GAN (Odena et al. 2017), the CIFAR-10 32x32x3 architecture of the paper and the original internship report.

G: ``[z, one_hot(label)] -> Linear -> ReLU -> (384, 4, 4) -> ConvT 5x5 192 s2 -> BN -> ReLU ->
ConvT 5x5 96 s2 -> BN -> ReLU -> ConvT 5x5 3 s2 -> tanh`` (4 -> 8 -> 16 -> 32).
D: six 3x3 convs 16, 32, 64, 128, 256, 512 with strides 2, 1, 2, 1, 2, 1, LeakyReLU(0.2) and
Dropout(0.5) after each, BN on all but the first; one linear layer on the 4x4x512 features gives
1 source logit + ``n_classes`` class logits.
D minimises ``L_source + aux_weight * (CE(real) + CE(fake))``; G minimises
``L_source(G) + aux_weight * CE(fake)`` (both try to make generated images classifiable).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fairgen.models.base import (
    Batch,
    ClassConditionalGAN,
    accuracy_fake,
    accuracy_real,
    class_accuracy,
    register,
)
from fairgen.models.layers import init_normal_


class ACGANGenerator(nn.Module):
    def __init__(self, z_dim: int, n_classes: int, channels: int, g_linear: int, g_widths: list[int],
                 kernel_size: int):
        super().__init__()
        self.n_classes, self.g_linear = n_classes, g_linear
        self.fc = nn.Sequential(nn.Linear(z_dim + n_classes, g_linear * 4 * 4), nn.ReLU(True))
        k, p = kernel_size, kernel_size // 2
        ch = [g_linear, *g_widths]
        layers: list[nn.Module] = []
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(a, b, k, 2, p, output_padding=1, bias=False), nn.BatchNorm2d(b),
                       nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], channels, k, 2, p, output_padding=1), nn.Tanh()]
        self.conv = nn.Sequential(*layers)

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        h = torch.cat([z, F.one_hot(label, self.n_classes).to(z.dtype)], dim=1)
        return self.conv(self.fc(h).reshape(z.shape[0], self.g_linear, 4, 4))


class ACGANDiscriminator(nn.Module):
    def __init__(self, n_classes: int, channels: int, img_size: int, d_widths: list[int], dropout: float,
                 leaky_slope: float):
        super().__init__()
        layers: list[nn.Module] = []
        size, ch = img_size, channels
        for i, w in enumerate(d_widths):
            stride = 2 if i % 2 == 0 else 1
            layers.append(nn.Conv2d(ch, w, 3, stride, 1))
            if i > 0:
                layers.append(nn.BatchNorm2d(w))
            layers += [nn.LeakyReLU(leaky_slope, inplace=True), nn.Dropout(dropout)]
            size = (size + 1) // stride if stride == 2 else size
            ch = w
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(ch * size * size, 1 + n_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.head(self.features(x))
        return out[:, 0], out[:, 1:]


@register
class ACGAN(ClassConditionalGAN):
    """Auxiliary-classifier GAN; latent/batches carry ``'label'`` (long). See module docstring."""

    name = "acgan"
    DEFAULT_OPTIM = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999)}

    def __init__(self, z_dim: int = 100, n_classes: int = 10, channels: int = 3, img_size: int = 32,
                 g_linear: int = 384, g_widths: list[int] = (192, 96), kernel_size: int = 5,
                 d_widths: list[int] = (16, 32, 64, 128, 256, 512), dropout: float = 0.5, leaky_slope: float = 0.2,
                 aux_weight: float = 1.0, loss: str = "non_saturating", init_std: float = 0.02):
        if img_size != 4 * 2 ** (len(g_widths) + 1):
            raise ValueError(f"ACGAN: img_size {img_size} needs {img_size} = 4 * 2**(len(g_widths)+1)")
        G = init_normal_(ACGANGenerator(z_dim, n_classes, channels, g_linear, list(g_widths), kernel_size), init_std)
        D = init_normal_(ACGANDiscriminator(n_classes, channels, img_size, list(d_widths), dropout, leaky_slope),
                         init_std)
        super().__init__(G, D, z_dim=z_dim, loss=loss,
                         config=dict(z_dim=z_dim, n_classes=n_classes, channels=channels, img_size=img_size,
                                     g_linear=g_linear, g_widths=list(g_widths), kernel_size=kernel_size,
                                     d_widths=list(d_widths), dropout=dropout, leaky_slope=leaky_slope,
                                     aux_weight=aux_weight, loss=loss, init_std=init_std))
        self.n_classes = n_classes
        self.aux_weight = float(aux_weight)

    def discriminate(self, batch: Batch) -> Tensor:
        return self.D(batch["x"])[0]

    def d_loss(self, real: Batch, latent: Batch, fake: Batch | None = None):
        fake = self.fake_for_d(latent, fake)
        src_r, cls_r = self.D(real["x"])
        src_f, cls_f = self.D(fake["x"])
        ce = F.cross_entropy(cls_r.float(), real["label"]) + F.cross_entropy(cls_f.float(), fake["label"])
        loss = self.loss_fn.d_loss(src_r, src_f) + self.aux_weight * ce
        return loss, {"acc_real": accuracy_real(src_r), "acc_fake": accuracy_fake(src_f),
                      "cls_acc_real": class_accuracy(cls_r, real["label"]),
                      "cls_acc_fake": class_accuracy(cls_f, fake["label"])}

    def g_loss(self, latent: Batch, real: Batch | None = None, fake: Batch | None = None):
        fake = self.fake_for_g(latent, fake)
        src_f, cls_f = self.D(fake["x"])
        loss = self.loss_fn.g_loss(src_f) + self.aux_weight * F.cross_entropy(cls_f.float(), fake["label"])
        return loss, {"fool_rate": accuracy_real(src_f), "cls_acc_fake": class_accuracy(cls_f, fake["label"])}

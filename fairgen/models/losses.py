"""Adversarial GAN losses as interchangeable parts, selectable by name.

Each loss is a pair ``d_loss(real_logits, fake_logits)`` / ``g_loss(fake_logits)`` on raw
discriminator logits (no sigmoid in D). With ``D(x) = sigmoid(l)``:

=================  ==========================================  =============================
name               discriminator minimises                      generator minimises
=================  ==========================================  =============================
``minimax``        ``-log D(x) - log(1 - D(G(z)))`` (BCE)       ``log(1 - D(G(z)))`` (saturating)
``non_saturating`` same BCE                                     ``-log D(G(z))``
``hinge``          ``relu(1 - l_real) + relu(1 + l_fake)``      ``-l_fake``
=================  ==========================================  =============================

(means over the batch). Log-sigmoid terms use ``softplus`` so large logits neither overflow
nor lose precision: ``-log sigmoid(l) = softplus(-l)`` and ``-log(1 - sigmoid(l)) = softplus(l)``.
Logits are promoted to float32 first, so the losses are exact under bf16 autocast too.
``bce`` and ``saturating`` are accepted aliases of ``non_saturating`` and ``minimax``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn.functional as F
from torch import Tensor


def bce_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``mean(-log D(x_real)) + mean(-log(1 - D(x_fake)))``: binary cross-entropy, real=1, fake=0."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def minimax_g_loss(fake_logits: Tensor) -> Tensor:
    """Saturating generator loss ``mean(log(1 - D(G(z)))) = mean(-softplus(l))`` (to minimise)."""
    return -F.softplus(fake_logits.float()).mean()


def non_saturating_g_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss ``mean(-log D(G(z))) = mean(softplus(-l))``."""
    return F.softplus(-fake_logits.float()).mean()


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``mean(relu(1 - l_real)) + mean(relu(1 + l_fake))``."""
    return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()


def hinge_g_loss(fake_logits: Tensor) -> Tensor:
    """``mean(-l_fake)``."""
    return -fake_logits.float().mean()


@dataclass(frozen=True)
class GANLoss:
    """A named (discriminator loss, generator loss) pair."""

    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss("minimax", bce_d_loss, minimax_g_loss),
    "non_saturating": GANLoss("non_saturating", bce_d_loss, non_saturating_g_loss),
    "hinge": GANLoss("hinge", hinge_d_loss, hinge_g_loss),
}
ALIASES = {"bce": "non_saturating", "saturating": "minimax", "ns": "non_saturating"}


def get(name: str) -> GANLoss:
    """The loss called ``name`` (see the module docstring); ValueError listing the choices otherwise."""
    key = ALIASES.get(name, name)
    if key not in LOSSES:
        raise ValueError(f"unknown GAN loss '{name}'; choose one of {', '.join(sorted(LOSSES) + sorted(ALIASES))}")
    return LOSSES[key]

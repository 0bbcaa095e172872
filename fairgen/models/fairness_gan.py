"""The Fairness GAN (Sattigeri, Hoffman, Chenthamarakshan, Varshney 2019).

An auxiliary-classifier GAN that generates an image *and* its outcome label, ``G(z, c) -> (x, y)``,
and is trained so that the generated (x, y) pairs look real while y reveals as little as
possible about the protected attribute c (demographic parity, variant ``dp``) or reveals little
about c among positive outcomes (equality of opportunity, variant ``eqopp``). Variant ``none``
drops the fairness term: the same model as an AC-GAN that also generates y (the ``acgan`` run).

Generator (:class:`FairnessGenerator`)
    image path: ``Linear(z) -> (C0, 4, 4)``, then 3 (32x32) or 4 (64x64) upsampling ResNet blocks
    with batch norm conditioned on c (:class:`fairgen.models.layers.GBlock`), then
    ``BN-ReLU-conv3x3-tanh``. y path: two dense layers ``Linear-ReLU-Linear`` and a tanh, from z
    only as in the paper (``y_from_c=True`` also feeds one-hot c to it), or (``y_path='image'``)
    from the spatial mean of the ``BN-ReLU`` features that the last convolution renders, so that
    the outcome is read off what G draws instead of being paired with it by D alone. Consequence of the
    paper's design: with y a function of z alone and z drawn independently of c, the generated y
    is independent of the conditioning c *by construction* (see :func:`FairnessGAN.generate`);
    only ``y_from_c=True`` lets G reproduce (or not) the data's P(y | c), and is what the fairness
    term then has to fight.

Discriminator (:class:`FairnessDiscriminator`)
    shared trunk ``phi(x)``: spectrally normalised ResNet down blocks, ReLU, global sum pooling.
    Heads, all logits:

    * ``sj`` -- joint real/fake of (x, y) by projection ``y * V_Y.phi(x) + V_X.phi(x)`` (S_J; of
      (x, y, c) with ``sj_given_c``, adding a projection on a (c, y) cell embedding),
    * ``sx`` -- real/fake of x alone, linear on phi (S_X; of (x, c) by projection with ``sx_given_c``),
    * ``cx`` -- c from x, linear on phi,
    * ``yx`` -- y from x, linear on phi (beyond the paper: see "Outcome consistency" below),
    * ``cy`` -- c from y, two dense ReLU layers on y (and a linear output).

    Every layer on phi is spectrally normalised. The c-from-y MLP is not: it is a 1-D classifier
    trained on real data only, and a Lipschitz-1 bound per layer would cap its logit slope at 1
    per unit of y, making it under-confident (with CelebA-like rates, P(Male) = 0.42 and
    P(Attractive | Male) = 0.25 vs 0.65 otherwise, the logit of P(Male | y) changes by about 1.7
    over the 1.6 between the softened labels -0.8 and 0.8).

Objective (the paper writes log-likelihoods ``L``; here everything is a loss to *minimise*)
    Real y in {0, 1} is mapped to ``(2y - 1) * y_soft + N(0, y_noise^2)`` noise (paper:
    +-0.8, noise 0.01, read here as the standard deviation). Source terms use the hinge loss,
    class terms binary cross-entropy (CE).

    * D: ``hinge(sj_real, sj_fake) + hinge(sx_real, sx_fake) + CE(cx(x_real), c) +
      CE(cy(y_real), c) + CE(yx(x_real), y)`` -- i.e. it maximises L_SJ^R + L_SJ^F + L_SX^R +
      L_SX^F + L_C^R + L_DP^R (and the y-from-x term); the class heads learn from *real* data only.
    * G: ``-sj_fake - sx_fake + lambda_cx * CE(cx(x_fake), c) + lambda_yx * CE(yx(x_fake), p)
      + lambda_label * CE(p, sigmoid(yx(x_fake))) + lambda_fair * P`` (p: G's own soft outcome,
      see below; the first argument of CE is the one that moves) with the
      fairness penalty ``P`` of :func:`fairness_penalty` (``lambda_fair`` is ignored for variant
      ``none``). ``+CE(cx)`` is the paper's ``-L_C^F``: G wants its image classifiable as the c
      it was asked for. ``P`` is the paper's ``+L_DP^F``: G wants y *not* to give c away.

What the fairness term can do, given that the c-from-y head is trained on real data only (so it
is a fixed estimate of the real P(c | y), not an adversary that adapts to G):

* paper design (``y_from_c=False``): y cannot depend on c anyway, so the term cannot change the
  generated label gap; per z it pulls y toward where the head's P(c=1 | y) equals 1 - P(c=1),
  i.e. it only shifts the marginal P(y = 1).
* ``y_from_c=True``: the term pushes each group's y toward the other group's typical y. It has
  no fixed point at parity -- pushed far enough it reverses the bias -- and is held back by the
  joint head S_J, which wants (x, y) pairs like the real, biased ones; ``lambda_fair`` sets the
  balance (docs/experiments.md records it reversing the bias).

Outcome consistency (``lambda_yx``, beyond the paper). In the paper only the joint head's
projection ``y * V_Y.phi(x)`` ties a generated y to its image: one direction in D's feature
space, and a weak tie. The ``yx`` head, trained on real (x, y) like ``cx`` is
on real (x, c), gives G the AC-GAN term for y as well: the image should be classified (by a
real-data classifier) as the outcome G generated with it, ``CE(yx(x_fake), (y_fake + 1) / 2)``
with the target detached, so the term moves the image toward its label and not the label toward
the image. With a fairness term this is what makes debiasing reach the pixels: a generated
positive in the group the data disfavours must then *look* like a positive.

Relabelling (``lambda_label``, beyond the paper) is the reverse tie: G's *label* should agree
with the ``yx`` head's reading of G's own image (:func:`label_loss`), the image held fixed. With
the paper's y path (``y`` from z and c) no y term reaches the image path except through S_J's
projection, so a fairness term then balances the groups' outcomes the way reweighing does: by
moving each group's labels against what the image shows, not by redrawing the faces (which a
downstream classifier would learn to read exactly as in the biased real data). That needs the
faces of each group to stay that group's: the paper's S_X judges x alone, so G may still give
the disfavoured group the other group's outcome-raising features, with only ``cx`` (c from x)
resisting. ``sx_given_c=True`` makes S_X a projection discriminator on c,
``S_X(x, c) = V_X.phi(x) + e_c.phi(x)``, so each group's fakes must match that group's real
faces. What each of these terms did downstream is in docs/experiments.md.

``penalty='rate_gap'`` (:func:`rate_gap_penalty`) measures the fairness term on the generated
batch itself, as a squared gap between the groups' outcome rates: zero exactly at parity, so it
pulls toward parity and stops there, and ``lambda_fair`` sets how far against S_J.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fairgen.models.augment import check_policy, diff_augment
from fairgen.models.base import (
    GAN,
    Batch,
    accuracy_fake,
    accuracy_real,
    class_accuracy,
    register,
)
from fairgen.models.layers import (
    DBlock,
    GBlock,
    MinibatchStdDev,
    init_xavier_,
    sn_embedding,
    sn_linear,
)

#: fairness variants: demographic parity, equality of opportunity, no fairness term
VARIANTS = ("dp", "eqopp", "none")
#: how G's fairness term is measured: the paper's c-from-y head, or the batch's own rate gap
PENALTIES = ("cy_head", "rate_gap")
#: what G's outcome head reads: the noise z (the paper) or the features that render the image
Y_PATHS = ("noise", "image")
#: supported image sizes -> number of 2x up/down-sampling ResNet blocks from/to 4x4
RESOLUTION_BLOCKS = {32: 3, 64: 4}
#: the protected attribute is binary
N_GROUPS = 2


def _blocks_for(resolution: int) -> int:
    if resolution not in RESOLUTION_BLOCKS:
        raise ValueError(f"FairnessGAN: resolution {resolution} is not supported "
                         f"(choose one of {', '.join(map(str, RESOLUTION_BLOCKS))})")
    return RESOLUTION_BLOCKS[resolution]


class FairnessGenerator(nn.Module):
    """``G(z, c) -> (x, y)``: images in [-1, 1] (N, 3, R, R) and outcomes in (-1, 1) (N,)."""

    def __init__(self, z_dim: int, resolution: int, width: int, y_from_c: bool, y_hidden: int,
                 y_path: str = "noise"):
        super().__init__()
        if y_path not in Y_PATHS:
            raise ValueError(f"FairnessGenerator: y_path must be one of {', '.join(Y_PATHS)}, got {y_path!r}")
        self.y_path = y_path
        n = _blocks_for(resolution)
        # channels: width * [2^(n-1) at 4x4, then 2^(n-1), ..., 2, 1 after each block]
        chans = [width * 2 ** (n - 1)] + [width * 2 ** (n - 1 - i) for i in range(n)]
        self.c0 = chans[0]
        self.y_from_c = bool(y_from_c)
        self.fc = nn.Linear(z_dim, 4 * 4 * chans[0])
        self.blocks = nn.ModuleList(GBlock(a, b, num_classes=N_GROUPS) for a, b in zip(chans[:-1], chans[1:]))
        self.out_bn = nn.BatchNorm2d(chans[-1])
        self.out_conv = nn.Conv2d(chans[-1], 3, 3, padding=1)
        y_in = chans[-1] if y_path == "image" else z_dim
        self.y_net = nn.Sequential(nn.Linear(y_in + (N_GROUPS if y_from_c else 0), y_hidden), nn.ReLU(),
                                   nn.Linear(y_hidden, 1))

    def forward(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        h = self.fc(z).reshape(z.shape[0], self.c0, 4, 4)
        for block in self.blocks:
            h = block(h, c)
        feat = F.relu(self.out_bn(h))
        x = torch.tanh(self.out_conv(feat))
        y_in = feat.mean(dim=(2, 3)) if self.y_path == "image" else z
        if self.y_from_c:
            y_in = torch.cat([y_in, F.one_hot(c, N_GROUPS).to(y_in.dtype)], dim=1)
        y = torch.tanh(self.y_net(y_in)).reshape(-1)
        return x, y


class FairnessDiscriminator(nn.Module):
    """``D(x, y) -> {'sj', 'sx', 'cx', 'yx', 'cy'}``, each (N,) logits (see the module docstring)."""

    def __init__(self, resolution: int, width: int, cy_hidden: int, sx_given_c: bool = False,
                 sj_given_c: bool = False, mbstd_group: int = 0):
        super().__init__()
        n = _blocks_for(resolution)
        chans = [width * 2 ** i for i in range(n)]  # after each downsampling block
        blocks = [DBlock(3, chans[0], preactivation=False)]
        blocks += [DBlock(a, b) for a, b in zip(chans[:-1], chans[1:])]
        # beyond the paper: a minibatch standard deviation map before the last block (mbstd_group)
        if mbstd_group:
            blocks.append(MinibatchStdDev(mbstd_group))
        blocks.append(DBlock(chans[-1] + (1 if mbstd_group else 0), chans[-1], downsample=False))  # one more at 4x4
        self.trunk = nn.Sequential(*blocks)
        feat = chans[-1]
        self.sx = sn_linear(feat, 1)               # V_X of S_X
        self.sj_x = sn_linear(feat, 1)             # V_X of S_J
        self.sj_y = sn_linear(feat, 1, bias=False)  # V_Y of S_J (projection with y)
        self.cx = sn_linear(feat, 1)
        self.cy = nn.Sequential(nn.Linear(1, cy_hidden), nn.ReLU(), nn.Linear(cy_hidden, cy_hidden), nn.ReLU(),
                                nn.Linear(cy_hidden, 1))
        self.yx = sn_linear(feat, 1)  # y from x (beyond the paper, see lambda_yx); last, so the
        # other heads' initial weights are those of the paper's four-head D for the same seed
        # S_X given c (beyond the paper): projection of phi on a c embedding, as in a projection cGAN
        self.sx_c = sn_embedding(N_GROUPS, feat) if sx_given_c else None
        # S_J given c (beyond the paper): projection of phi on a (c, y) cell embedding, the outcome's
        # probability mixing the cell's y=0 and y=1 rows (row 2c + y), so an image generated with
        # (c, y) must look like real images of that cell -- not of the other group's cell
        self.sj_cy = sn_embedding(2 * N_GROUPS, feat) if sj_given_c else None

    def features(self, x: Tensor) -> Tensor:
        """phi(x): the trunk's ReLU features summed over space, (N, F)."""
        return F.relu(self.trunk(x)).sum(dim=(2, 3))

    def forward(self, x: Tensor, y: Tensor, c: Tensor | None = None) -> dict[str, Tensor]:
        """All heads' logits; ``c`` (N,) is needed only when S_X or S_J is conditional
        (``sx_given_c``, ``sj_given_c``)."""
        phi = self.features(x)
        y_col = y.reshape(-1, 1).to(phi.dtype)
        sx = self.sx(phi).reshape(-1)
        sj = (self.sj_x(phi) + y_col * self.sj_y(phi)).reshape(-1)
        for name, head in (("sx_given_c", self.sx_c), ("sj_given_c", self.sj_cy)):
            if head is not None and c is None:
                raise ValueError(f"FairnessDiscriminator: {name} needs the images' c")
        if self.sx_c is not None:
            sx = sx + (self.sx_c(c).to(phi.dtype) * phi).sum(dim=1)
        if self.sj_cy is not None:
            q = outcome_prob(y).reshape(-1, 1).to(phi.dtype)
            cell = (1.0 - q) * self.sj_cy(2 * c) + q * self.sj_cy(2 * c + 1)
            sj = sj + (cell.to(phi.dtype) * phi).sum(dim=1)
        return {
            "sj": sj,
            "sx": sx,
            "cx": self.cx(phi).reshape(-1),
            "yx": self.yx(phi).reshape(-1),
            "cy": self.cy(y_col).reshape(-1),
        }


def outcome_prob(y: Tensor) -> Tensor:
    """G's outcome ``y`` in (-1, 1) (tanh) as a soft outcome ``p = (y + 1) / 2`` in [0, 1], float32."""
    return ((y.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def fairness_penalty(cy_logits: Tensor, c: Tensor, y_fake: Tensor, variant: str) -> Tensor:
    """G's fairness penalty: how much the c-from-y head still recovers c from generated y.

    ``dp``: ``mean_i CE(cy_i, 1 - c_i)``; ``eqopp``: ``mean_i w_i * CE(cy_i, 1 - c_i)`` with
    ``w_i = (y_i + 1) / 2`` (y_fake mapped from (-1, 1) to [0, 1], detached).

    Why cross-entropy against the *flipped* group rather than the paper's literal "minimise the
    log-likelihood of c" (= maximise ``CE(cy, c)``): both push each generated y in the same
    direction (away from the value that, in the real data, goes with its group), but their
    gradients differ exactly like the saturating vs. non-saturating GAN losses. With ``q`` the
    head's probability of the sample's true group, d/d(logit) of ``-CE(cy, c)`` has magnitude
    ``1 - q``: it pushes hardest on samples whose y already hides c (q small) and hardly at all
    on the stereotypical ones (q near 1), and it is unbounded as q -> 0. ``CE(cy, 1 - c)`` has
    magnitude ``q``: strongest on the samples whose y gives c away, fading as y stops doing so;
    it is >= 0, and 0 only if the head is sure of the wrong group. (Targets of 0.5 or of P(c)
    were rejected: they do not depend on the sample's own c, so they would make y *uncertain*
    -- drift to the head's undecided region between the two label values -- instead of
    decoupling it from c.)

    The eqopp weight is detached: it selects which samples count (equality of opportunity is
    about the positive outcomes), it is not something G should lower; otherwise G could cut the
    penalty by simply generating fewer positive labels.
    """
    if variant not in ("dp", "eqopp"):
        raise ValueError(f"fairness_penalty: variant must be dp or eqopp, got {variant!r}")
    ce = F.binary_cross_entropy_with_logits(cy_logits.float(), 1.0 - c.float(), reduction="none")
    if variant == "eqopp":
        ce = ce * outcome_prob(y_fake.detach())
    return ce.mean()


def rate_gap_penalty(c: Tensor, y_fake: Tensor, variant: str) -> Tensor:
    """G's fairness penalty measured on the generated batch itself: a squared rate gap.

    With ``p = (y + 1) / 2`` the soft outcome of each sample,

    * ``dp``: ``(mean(p | c = 1) - mean(p | c = 0))^2``, the squared demographic-parity gap;
    * ``eqopp``: ``(sum(p * c) / sum(p) - mean(c))^2``, how far the protected group's share among
      the (soft) positive outcomes is from its share in the batch.

    Unlike the c-from-y head (:func:`fairness_penalty`, a fixed estimate of the *real* P(c | y)
    that keeps rewarding G for pushing each group's y toward the other group's until the bias is
    reversed), this penalty is zero exactly at parity, so ``lambda_fair`` sets how close to parity
    the data is pulled against the joint head's wish for realistic (x, y) pairs. For a binary
    outcome, a group share among positives equal to the overall share is the same condition as
    demographic parity; the two variants differ in how they weight samples (eqopp only moves
    samples through the positive side). An empty group in the batch contributes no penalty.
    """
    if variant not in ("dp", "eqopp"):
        raise ValueError(f"rate_gap_penalty: variant must be dp or eqopp, got {variant!r}")
    p = outcome_prob(y_fake)
    g1 = (c == 1).float()
    g0 = 1.0 - g1
    if variant == "dp":  # (no Python branch on the group sizes: that would be a host sync per step)
        n1, n0 = g1.sum(), g0.sum()
        gap = (p * g1).sum() / n1.clamp_min(1.0) - (p * g0).sum() / n0.clamp_min(1.0)
        gap = torch.where((n1 > 0) & (n0 > 0), gap, torch.zeros_like(gap))
    else:
        gap = (p * g1).sum() / p.sum().clamp_min(1e-6) - g1.mean()
    return gap.square()


def label_loss(yx_logits: Tensor, y_fake: Tensor) -> Tensor:
    """G's label term: ``CE(p, sigmoid(yx))`` with ``p = (y_fake + 1) / 2`` G's soft outcome and
    the y-from-x head's reading of the generated image as the (detached) target.

    The reverse of the ``lambda_yx`` term: the *label* moves toward what a real-data classifier
    sees in the image, never the image toward the label. With the fairness term pulling the
    groups' outcome rates together, G then reaches parity by relabelling (shifting each group's
    labels against the head's reading) instead of by redrawing faces.
    """
    p = outcome_prob(y_fake).clamp(1e-6, 1.0 - 1e-6)
    q = torch.sigmoid(yx_logits.detach().float())
    # written out rather than F.binary_cross_entropy, which autocast refuses (bf16 runs)
    return -(q * p.log() + (1.0 - q) * (1.0 - p).log()).mean()


def label_gap(y: Tensor, c: Tensor) -> Tensor:
    """``P(y > 0 | c = 1) - P(y > 0 | c = 0)`` of one batch (y in (-1, 1); an empty group counts as
    rate 0 rather than NaN, so a rare all-one-group batch cannot poison the logged average)."""
    pos = (y.detach() > 0).float()
    g1 = (c == 1).float()
    g0 = 1.0 - g1
    return (pos * g1).sum() / g1.sum().clamp_min(1.0) - (pos * g0).sum() / g0.sum().clamp_min(1.0)


@register
class FairnessGAN(GAN):
    """The Fairness GAN; latents carry ``'c'``, batches ``'x'``, ``'c'`` and ``'y'``.

    Args:
        resolution: 32 or 64 (the crops' size).
        z_dim: noise size.
        width: base channel count of G and D (G's last block and D's first have ``width``).
        variant: ``dp``, ``eqopp`` or ``none`` (see :func:`fairness_penalty`).
        lambda_fair: weight of the fairness penalty in G's loss (paper: 1).
        lambda_cx: weight of G's c-from-x term (paper: 1).
        lambda_yx: weight of G's y-from-x consistency term (0: the paper; D's ``yx`` head is
            trained on real data either way, and its accuracy on fakes is logged).
        y_soft, y_noise: real y in {0, 1} becomes ``(2y - 1) * y_soft`` plus N(0, y_noise^2).
        y_from_c: also feed c to G's y path (the paper feeds z only).
        p_c: P(c = 1) used when :meth:`sample_latent` is not given c (the training data's rate;
            during training the trainer passes each real batch's c, so fakes follow the data).
        y_hidden, cy_hidden: width of G's y path and of D's c-from-y MLP.
        loss: adversarial loss of the source heads (paper: hinge).
        y_path: what G's outcome head reads: ``noise`` (z, the paper) or ``image`` (the spatially
            averaged last feature map of the image path, the one the output convolution turns into
            pixels, so y is a function of what G draws; c reaches it through the conditional
            batch norm whatever ``y_from_c`` says).
        penalty: how the fairness term is measured: ``cy_head`` (the paper: D's c-from-y head,
            :func:`fairness_penalty`) or ``rate_gap`` (the generated batch's squared rate gap,
            :func:`rate_gap_penalty`).
        mbstd_group: 0 (the paper) or the group size of a minibatch standard deviation map before
            D's last block (:class:`~fairgen.models.layers.MinibatchStdDev`). D's real and fake
            halves are concatenated in one pass, so each half's size must be a multiple of it.
        diffaugment: ops of :mod:`fairgen.models.augment` (``color``, ``translation``, ``cutout``)
            applied to every image D sees, real and fake, in D's and G's steps (empty: the paper).
            :meth:`realism` (the oversampling score) reads unaugmented images.
    """

    name = "fairness_gan"
    cond_keys = ("c",)
    cond_classes: ClassVar[dict[str, int]] = {"c": N_GROUPS}
    data_keys = ("x", "c", "y")
    DEFAULT_OPTIM = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.0, 0.9)}

    def __init__(self, resolution: int = 64, z_dim: int = 128, width: int = 64, variant: str = "dp",
                 lambda_fair: float = 1.0, lambda_cx: float = 1.0, lambda_yx: float = 0.0, y_soft: float = 0.8, y_noise: float = 0.01,
                 y_from_c: bool = False, p_c: float = 0.5, y_hidden: int = 128, cy_hidden: int = 64,
                 loss: str = "hinge", penalty: str = "cy_head", y_path: str = "noise", lambda_label: float = 0.0,
                 sx_given_c: bool = False, sj_given_c: bool = False, mbstd_group: int = 0,
                 diffaugment: list[str] | tuple[str, ...] = ()):
        if variant not in VARIANTS:
            raise ValueError(f"FairnessGAN: variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if penalty not in PENALTIES:
            raise ValueError(f"FairnessGAN: penalty must be one of {', '.join(PENALTIES)}, got {penalty!r}")
        if not 0.0 <= p_c <= 1.0:
            raise ValueError(f"FairnessGAN: p_c must be in [0, 1], got {p_c}")
        if not 0.0 < y_soft <= 1.0 or min(y_noise, lambda_fair, lambda_cx, lambda_yx, lambda_label) < 0:
            raise ValueError("FairnessGAN: need 0 < y_soft <= 1 and y_noise, lambda_fair, lambda_cx, lambda_yx, "
                             "lambda_label >= 0")
        if mbstd_group == 1 or mbstd_group < 0:
            raise ValueError(f"FairnessGAN: mbstd_group must be 0 (off) or >= 2, got {mbstd_group}")
        augment = check_policy(diffaugment)
        G = init_xavier_(FairnessGenerator(z_dim, resolution, width, y_from_c, y_hidden, y_path))
        D = init_xavier_(FairnessDiscriminator(resolution, width, cy_hidden, sx_given_c, sj_given_c, mbstd_group))
        super().__init__(G, D, z_dim=z_dim, loss=loss, config=dict(
            resolution=resolution, z_dim=z_dim, width=width, variant=variant, lambda_fair=lambda_fair,
            lambda_cx=lambda_cx, lambda_yx=lambda_yx, y_soft=y_soft, y_noise=y_noise, y_from_c=y_from_c, p_c=p_c,
            y_hidden=y_hidden, cy_hidden=cy_hidden, loss=loss, penalty=penalty, y_path=y_path,
            lambda_label=lambda_label, sx_given_c=bool(sx_given_c), sj_given_c=bool(sj_given_c),
            mbstd_group=int(mbstd_group), diffaugment=list(augment)))
        self.augment = augment
        self.variant = variant
        self.lambda_fair = float(lambda_fair)
        self.lambda_cx = float(lambda_cx)
        self.lambda_yx = float(lambda_yx)
        self.lambda_label = float(lambda_label)
        self.y_soft = float(y_soft)
        self.y_noise = float(y_noise)
        self.p_c = float(p_c)
        self.penalty = penalty

    # ------------------------------------------------------------------ latents
    def sample_condition(self, key: str, n: int, generator: torch.Generator | None,
                         device: torch.device) -> Tensor:
        """c ~ Bernoulli(p_c) when no c is given (p_c = the training data's P(c = 1))."""
        if key != "c":
            return super().sample_condition(key, n, generator, device)
        return (torch.rand(n, generator=generator, device=device) < self.p_c).long()

    def fixed_latent(self, n: int, generator: torch.Generator, device: torch.device) -> Batch:
        """Grid latents: the first half of the grid (rows, ``sample_grid_nrow`` per row) at c=0,
        the second half at c=1 with the *same* noise, so row r and row r + rows/2 differ only in c."""
        half = (n + 1) // 2
        z = torch.randn(half, self.z_dim, generator=generator, device=device)
        c = (torch.arange(n, device=device) >= half).long()
        return {"z": torch.cat([z, z])[:n], "c": c}

    # ------------------------------------------------------------------ forward
    def generate(self, latent: Batch) -> Batch:
        """``{'x': (N, 3, R, R) in [-1, 1], 'y': (N,) in (-1, 1) (> 0 = outcome 1), 'c': latent c}``."""
        x, y = self.G(latent["z"], latent["c"])
        return {"x": x, "y": y, "c": latent["c"]}

    def soften(self, y: Tensor) -> Tensor:
        """Real y in {0, 1} -> ``(2y - 1) * y_soft + N(0, y_noise^2)`` (global torch RNG)."""
        y = y.float()
        return (2.0 * y - 1.0) * self.y_soft + self.y_noise * torch.randn_like(y)

    def discriminate(self, batch: Batch) -> Tensor:
        """The joint (x, y) source logits S_J, with ``batch['y']`` on G's scale (-1, 1): pass a
        real batch's y through :meth:`soften` first."""
        return self.D(batch["x"], batch["y"], batch.get("c"))["sj"]

    def realism(self, batch: Batch) -> Tensor:
        """D's image real/fake logits S_X of generated ``batch`` (x, c; higher = more real), the
        score ``generate.experimental.oversample`` keeps samples by."""
        return self.D(batch["x"], batch["y"].float(), batch["c"])["sx"]

    def _heads(self, real: Batch, fake: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """D's heads on real (softened y) and fake in one forward pass (D has no batch norm)."""
        n = real["x"].shape[0]
        out = self.D(diff_augment(torch.cat([real["x"], fake["x"]]), self.augment),
                     torch.cat([self.soften(real["y"]), fake["y"].float()]), torch.cat([real["c"], fake["c"]]))
        return {k: v[:n] for k, v in out.items()}, {k: v[n:] for k, v in out.items()}

    # ------------------------------------------------------------------ objective
    def d_loss(self, real: Batch, latent: Batch, fake: Batch | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        fake = self.fake_for_d(latent, fake)
        r, f = self._heads(real, fake)
        adv = self.loss_fn.d_loss(r["sj"], f["sj"]) + self.loss_fn.d_loss(r["sx"], f["sx"])
        c_real = real["c"].float()
        cls = (F.binary_cross_entropy_with_logits(r["cx"].float(), c_real)
               + F.binary_cross_entropy_with_logits(r["cy"].float(), c_real)
               + F.binary_cross_entropy_with_logits(r["yx"].float(), real["y"].float()))
        metrics = {
            "sj_real": r["sj"].detach().float().mean(), "sj_fake": f["sj"].detach().float().mean(),
            "sx_real": r["sx"].detach().float().mean(), "sx_fake": f["sx"].detach().float().mean(),
            "sj_acc_real": accuracy_real(r["sj"]), "sj_acc_fake": accuracy_fake(f["sj"]),
            "sx_acc_real": accuracy_real(r["sx"]), "sx_acc_fake": accuracy_fake(f["sx"]),
            "cx_acc_real": class_accuracy(r["cx"], real["c"]), "cx_acc_fake": class_accuracy(f["cx"], fake["c"]),
            "cy_acc_real": class_accuracy(r["cy"], real["c"]), "cy_acc_fake": class_accuracy(f["cy"], fake["c"]),
            "yx_acc_real": class_accuracy(r["yx"], real["y"]),
            "yx_acc_fake": class_accuracy(f["yx"], (fake["y"].detach() > 0).long()),
            "y_gap_real": label_gap(2.0 * real["y"].float() - 1.0, real["c"]),
            "y_gap_fake": label_gap(fake["y"], fake["c"]),
            "y_rate_fake": (fake["y"].detach() > 0).float().mean(),
        }
        return adv + cls, metrics

    def g_loss(self, latent: Batch, real: Batch | None = None,
               fake: Batch | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        fake = self.fake_for_g(latent, fake)
        f = self.D(diff_augment(fake["x"], self.augment), fake["y"], fake["c"])
        adv = self.loss_fn.g_loss(f["sj"]) + self.loss_fn.g_loss(f["sx"])
        cx = F.binary_cross_entropy_with_logits(f["cx"].float(), fake["c"].float())
        p_fake = outcome_prob(fake["y"])
        yx = F.binary_cross_entropy_with_logits(f["yx"].float(), p_fake.detach())
        label = label_loss(f["yx"], fake["y"])
        fair_variant = "eqopp" if self.variant == "eqopp" else "dp"
        if self.penalty == "rate_gap":
            fair = rate_gap_penalty(fake["c"], fake["y"], fair_variant)
        else:
            fair = fairness_penalty(f["cy"], fake["c"], fake["y"], fair_variant)
        loss = adv + self.lambda_cx * cx + self.lambda_yx * yx + self.lambda_label * label
        if self.variant != "none":
            loss = loss + self.lambda_fair * fair
        metrics = {
            "fool_sj": accuracy_real(f["sj"]), "fool_sx": accuracy_real(f["sx"]),
            "cx_ce": cx.detach(), "yx_ce": yx.detach(), "label_ce": label.detach(), "fair_penalty": fair.detach(),
            "cx_acc_fake": class_accuracy(f["cx"], fake["c"]), "cy_acc_fake": class_accuracy(f["cy"], fake["c"]),
        }
        return loss, metrics

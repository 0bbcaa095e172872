"""The GAN contract shared by every model in fairgen and the one :class:`~fairgen.training.Trainer`.

A :class:`GAN` is an ``nn.Module`` bundling a generator ``self.G``, a discriminator ``self.D``
(every discriminator-side head, e.g. auxiliary classifiers, lives inside ``D``) and its
objective. The trainer only ever calls the methods below; it never looks inside G or D.

Batches (real and fake) are ``dict[str, Tensor]`` with these conventional keys:

``'x'``      float images in [-1, 1], NCHW, channels_last memory format (or (N, d) for toy data)
``'c'``      long (N,), protected attribute / group (0 or 1)
``'y'``      float (N,), outcome in {0, 1} for real data (generated ``'y'`` may be continuous)
``'label'``  long (N,), class label

A latent is a ``dict[str, Tensor]`` holding ``'z'`` (float (N, z_dim) standard normal noise) plus
the conditioning inputs named in :attr:`GAN.cond_keys` (e.g. ``'c'`` or ``'label'``).

One training iteration of the trainer (``n_dis`` discriminator steps, then one generator step)::

    for i in range(n_dis):
        real = batches.sample(B)                                   # dict on device
        latent = gan.sample_latent(B, noise_gen, device, **gan.condition_from(real))
        fake = gan.generate(latent) if i == n_dis - 1 else None   # built WITH grad, reused below
        loss_d, m_d = gan.d_loss(real, latent, fake)               # must not backprop into G
        opt_d.zero_grad(); loss_d.backward(); opt_d.step()
    with D.requires_grad_(False):                                  # no weight grads for D here
        loss_g, m_g = gan.g_loss(latent, real, fake)
    opt_g.zero_grad(); loss_g.backward(); opt_g.step()

So a subclass must guarantee:

* ``d_loss`` uses ``self.fake_for_d(latent, fake)`` (detached / generated under ``no_grad``) and
  ``g_loss`` uses ``self.fake_for_g(latent, fake)`` (with grad) -- never ``fake`` directly. Passing
  ``fake`` lets the trainer run G's forward pass once per iteration, as pytorch/examples' DCGAN does.
* Losses are scalar tensors; metrics are **0-dim detached tensors** (e.g. head accuracies). No
  ``.item()``, ``.cpu()``, ``print`` or data-dependent Python branching inside the step: the trainer
  accumulates metrics on the device and reads them only at log time.
* Everything stochastic takes the ``generator`` passed in (latents) or the global torch RNG
  (dropout, spectral-norm init), which the trainer seeds and checkpoints.
* ``config`` holds exactly the constructor keyword arguments (JSON-able primitives, lists, dicts),
  so ``fairgen.models.build(gan.name, **gan.config)`` rebuilds an identical architecture; it is
  written into checkpoints and compared on load/resume.

Register a subclass with :func:`register` so ``fairgen.models.build(name, **kwargs)`` finds it.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from fairgen.models import losses as losses_mod

Batch = dict[str, Tensor]

#: name -> GAN subclass; filled by :func:`register`.
MODEL_REGISTRY: dict[str, type["GAN"]] = {}


def register(cls: type["GAN"]) -> type["GAN"]:
    """Class decorator: make ``cls`` buildable as ``fairgen.models.build(cls.name, ...)``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a non-empty class attribute 'name' to be registered")
    other = MODEL_REGISTRY.get(cls.name)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise TypeError(f"GAN name '{cls.name}' is used by both {other.__qualname__} and {cls.__qualname__}")
    MODEL_REGISTRY[cls.name] = cls
    return cls


class GAN(nn.Module):
    """Base class: ``G``, ``D`` and the objective. See the module docstring for the contract.

    Subclasses set the class attributes and implement :meth:`generate`; unconditional models
    (and models whose D takes ``(x, conditioning)``) get :meth:`d_loss` / :meth:`g_loss` for free
    by overriding :meth:`discriminate` only.

    Args:
        G, D: the two networks.
        z_dim: size of the noise vector ``latent['z']``.
        loss: name of the adversarial loss in :mod:`fairgen.models.losses` (``minimax``,
            ``non_saturating``, ``hinge``; ``bce`` is an alias of ``non_saturating``).
        config: the subclass's constructor keyword arguments (see :attr:`config`).
    """

    #: registry / checkpoint name of the model
    name: ClassVar[str] = ""
    #: conditioning keys carried in the latent and in generated batches (e.g. ('label',))
    cond_keys: ClassVar[tuple[str, ...]] = ()
    #: number of classes of each categorical conditioning key, used to draw it uniformly when no
    #: value is given (override :meth:`sample_condition` for other priors / continuous keys)
    cond_classes: ClassVar[dict[str, int]] = {}
    #: keys a real batch must provide (checked once by the trainer before training)
    data_keys: ClassVar[tuple[str, ...]] = ("x",)
    #: Adam defaults for this model (the trainer uses them unless told otherwise)
    DEFAULT_OPTIM: ClassVar[dict[str, Any]] = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999)}

    def __init__(self, G: nn.Module, D: nn.Module, *, z_dim: int, loss: str, config: dict[str, Any]):
        super().__init__()
        self.G = G
        self.D = D
        self.z_dim = int(z_dim)
        self.loss_fn = losses_mod.get(loss)
        try:
            # canonical, JSON-able copy (tuples -> lists) so saved and rebuilt configs compare equal
            self._config = json.loads(json.dumps(config))
        except TypeError as e:
            raise TypeError(f"{type(self).__name__}: config must be JSON-serialisable ({e})") from None

    # ------------------------------------------------------------------ identity
    @property
    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (a copy), enough to rebuild the architecture."""
        return json.loads(json.dumps(self._config))

    @property
    def default_optim(self) -> dict[str, Any]:
        """``{'lr_g', 'lr_d', 'betas'}`` for Adam; the trainer uses these unless overridden."""
        d = dict(self.DEFAULT_OPTIM)
        d["betas"] = tuple(d["betas"])
        return d

    def extra_repr(self) -> str:
        return f"name={self.name!r}, z_dim={self.z_dim}, loss={self.loss_fn.name!r}"

    # ------------------------------------------------------------------ latents
    def sample_latent(self, n: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None, **cond: Tensor | int | float) -> Batch:
        """Draw ``n`` latents: ``{'z': (n, z_dim) N(0, 1)}`` plus every key in :attr:`cond_keys`.

        A conditioning value passed in ``cond`` (tensor of length ``n`` or a scalar, broadcast) is
        used as is; a missing one is drawn by :meth:`sample_condition`. ``generator`` must live on
        ``device`` (a CUDA generator for CUDA). The trainer passes the real batch's conditioning
        (:meth:`condition_from`), so during training conditioning follows the data distribution.
        """
        unknown = set(cond) - set(self.cond_keys)
        if unknown:
            raise ValueError(f"{self.name}: unknown conditioning {sorted(unknown)}; "
                             f"this model takes {list(self.cond_keys) or 'none'}")
        device = torch.device(device) if device is not None else self._device()
        latent = {"z": torch.randn(n, self.z_dim, generator=generator, device=device)}
        for key in self.cond_keys:
            if key in cond:
                v = torch.as_tensor(cond[key], device=device)
                latent[key] = v.expand(n).clone() if v.ndim == 0 else v
                if latent[key].shape[0] != n:
                    raise ValueError(f"{self.name}: conditioning '{key}' has {latent[key].shape[0]} rows, expected {n}")
            else:
                latent[key] = self.sample_condition(key, n, generator, device)
        return latent

    def sample_condition(self, key: str, n: int, generator: torch.Generator | None,
                         device: torch.device) -> Tensor:
        """Prior for a conditioning key when none is given: uniform over :attr:`cond_classes`."""
        if key not in self.cond_classes:
            raise NotImplementedError(f"{self.name}: no prior for conditioning '{key}'; pass it explicitly")
        return torch.randint(self.cond_classes[key], (n,), generator=generator, device=device)

    def condition_from(self, real: Batch) -> dict[str, Tensor]:
        """The conditioning of a real batch, for ``sample_latent(..., **gan.condition_from(real))``."""
        return {k: real[k] for k in self.cond_keys}

    @property
    def sample_grid_nrow(self) -> int:
        """Images per row in sample grids (conditional models: one class per column)."""
        return 8

    def fixed_latent(self, n: int, generator: torch.Generator, device: torch.device) -> Batch:
        """Latents for the sample grids (drawn once per run and checkpointed). Conditional models
        override this to lay the conditioning out along the grid (e.g. one class per row)."""
        return self.sample_latent(n, generator, device)

    # ------------------------------------------------------------------ forward
    def generate(self, latent: Batch) -> Batch:
        """``{'x': images in [-1, 1] (NCHW) or points, plus generated outputs such as 'y'}``;
        the latent's conditioning keys are passed through so the result looks like a real batch."""
        raise NotImplementedError

    def discriminate(self, batch: Batch) -> Tensor:
        """Source logits (N,) of ``D`` for a real or generated batch (default: ``D(batch['x'])``)."""
        return self.D(batch["x"]).reshape(-1)

    def fake_for_d(self, latent: Batch, fake: Batch | None) -> Batch:
        """The generated batch for the D step: ``fake`` detached, or generated without grad."""
        if fake is None:
            with torch.no_grad():
                fake = self.generate(latent)
        return {k: v.detach() for k, v in fake.items()}

    def fake_for_g(self, latent: Batch, fake: Batch | None) -> Batch:
        """The generated batch for the G step: ``fake`` (with grad) or a fresh ``generate``."""
        return self.generate(latent) if fake is None else fake

    # ------------------------------------------------------------------ objective
    def d_loss(self, real: Batch, latent: Batch, fake: Batch | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator loss and metrics (0-dim detached tensors).

        Default: the adversarial loss on :meth:`discriminate` logits (real and fake passed through
        D separately, so D's batch-norm statistics stay per-source as in DCGAN); metrics
        ``acc_real`` / ``acc_fake`` are the fractions D classifies correctly (logit > 0 = real).
        """
        fake = self.fake_for_d(latent, fake)
        real_logits = self.discriminate(real)
        fake_logits = self.discriminate(fake)
        loss = self.loss_fn.d_loss(real_logits, fake_logits)
        return loss, {"acc_real": accuracy_real(real_logits), "acc_fake": accuracy_fake(fake_logits)}

    def g_loss(self, latent: Batch, real: Batch | None = None,
               fake: Batch | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Generator loss and metrics; ``real`` is available for objectives that need it."""
        fake = self.fake_for_g(latent, fake)
        fake_logits = self.discriminate(fake)
        loss = self.loss_fn.g_loss(fake_logits)
        return loss, {"fool_rate": accuracy_real(fake_logits)}

    # ------------------------------------------------------------------ helpers
    def _device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")


class ClassConditionalGAN(GAN):
    """A GAN whose G is ``G(z, label)`` for one categorical conditioning key (``label_key``).

    Subclasses call ``super().__init__(...)`` and then set ``self.n_classes``. Labels are drawn
    uniformly when not given, and sample grids show one class per column.
    """

    label_key: ClassVar[str] = "label"
    cond_keys = ("label",)
    data_keys = ("x", "label")
    n_classes: int

    @property
    def cond_classes(self) -> dict[str, int]:  # type: ignore[override]
        return {self.label_key: self.n_classes}

    @property
    def sample_grid_nrow(self) -> int:
        return self.n_classes

    def fixed_latent(self, n: int, generator: torch.Generator, device: torch.device) -> Batch:
        """Labels ``0, 1, ..., n_classes - 1`` repeated: one class per grid column."""
        labels = torch.arange(n, device=device) % self.n_classes
        return self.sample_latent(n, generator, device, **{self.label_key: labels})

    def generate(self, latent: Batch) -> Batch:
        return {"x": self.G(latent["z"], latent[self.label_key]), self.label_key: latent[self.label_key]}


def accuracy_real(logits: Tensor) -> Tensor:
    """Fraction of logits > 0 (called real), as a detached 0-dim float tensor."""
    return (logits.detach() > 0).float().mean()


def accuracy_fake(logits: Tensor) -> Tensor:
    """Fraction of logits <= 0 (called fake), as a detached 0-dim float tensor."""
    return (logits.detach() <= 0).float().mean()


def class_accuracy(logits: Tensor, target: Tensor) -> Tensor:
    """Top-1 accuracy of (N, K) class logits (or (N,) binary logits vs 0/1 targets), 0-dim."""
    logits = logits.detach()
    if logits.ndim == 1 or logits.shape[-1] == 1:
        pred = (logits.reshape(-1) > 0).long()
        return (pred == target.reshape(-1).round().long()).float().mean()
    return (logits.argmax(dim=-1) == target).float().mean()

"""GAN models. ``build(name, **kwargs)`` constructs any registered model by name.

Built-in models (module, registry name):

* ``vanilla``      -- :class:`fairgen.models.vanilla.VanillaGAN`, MLP GAN
* ``dcgan64``      -- :class:`fairgen.models.dcgan.DCGAN64`, pytorch/examples 64x64 DCGAN
* ``dcgan``        -- :class:`fairgen.models.dcgan.DCGAN28`, 28x28 MNIST DCGAN (the zoo run ``dcgan``)
* ``cgan``         -- :class:`fairgen.models.cgan.ConditionalGAN`, label-conditional 28x28 GAN
* ``acgan``        -- :class:`fairgen.models.acgan.ACGAN`, 32x32 auxiliary-classifier GAN
* ``toy``          -- :class:`fairgen.models.toy.ToyGAN`, 2-D MLP GAN (8 Gaussians on a ring)

Other modules (e.g. ``fairgen.models.fairness_gan``) register themselves with
:func:`fairgen.models.base.register` on import; ``build`` imports the known ones lazily.
"""

from __future__ import annotations

import importlib
import importlib.util

from fairgen.models.base import GAN, MODEL_REGISTRY, register

#: modules whose import registers models; imported on first use of build()/available()
MODEL_MODULES = ("vanilla", "dcgan", "cgan", "acgan", "toy", "fairness_gan")

#: names models were registered under before: checkpoints keep the name they were written with
RENAMED = {"dcgan_mnist": "dcgan"}  # the 28x28 DCGAN, named after its zoo run since 2026-12-08

__all__ = ["GAN", "MODEL_REGISTRY", "register", "build", "available", "model_class"]


def _import_all() -> None:
    for mod in MODEL_MODULES:
        full = f"{__name__}.{mod}"
        if importlib.util.find_spec(full) is not None:  # a module may not exist in a slim install
            importlib.import_module(full)


def available() -> list[str]:
    """Names accepted by :func:`build`."""
    _import_all()
    return sorted(MODEL_REGISTRY)


def model_class(name: str) -> type[GAN]:
    """The GAN subclass registered as ``name`` or once registered under it (:data:`RENAMED`);
    ValueError listing the choices otherwise."""
    name = RENAMED.get(name, name)
    if name not in MODEL_REGISTRY:
        _import_all()
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown GAN model '{name}'; available: {', '.join(sorted(MODEL_REGISTRY))}")
    return MODEL_REGISTRY[name]


def build(name: str, **kwargs) -> GAN:
    """Construct the model registered as ``name`` with its constructor keyword arguments."""
    return model_class(name)(**kwargs)

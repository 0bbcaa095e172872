"""The one small-CNN stack of the evaluators: a network builder, a runner and a fit loop.

Its users, each with its own options:

* the downstream outcome classifiers (:mod:`fairgen.eval.classifier`): the builder's defaults
  (``arch: cnn``); the runner and the fit loop also drive the ``resnet18`` arch;
* the own-CNN FID feature extractor and the attribute reader (:mod:`fairgen.eval.features`):
  4 stages of one conv each, no dropout, batch-norm momentum 0.3, one sigmoid output per label;
* the zoo's real-data evaluation classifier (:mod:`fairgen.eval.zoo`): 3 stages, dropout 0.3,
  softmax over the classes, a step budget with a cosine learning-rate schedule and affine jitter.

**Network** (:func:`build_cnn`, a :class:`torch.nn.Sequential` with ``features()`` and ``head``):
``stages`` stages of ``convs`` x (conv3x3-BN-ReLU) and a 2x2 max-pool, with width, 2 width,
4 width, ... channels (at most 8 width); a last conv3x3-BN-ReLU block; global average pooling;
flatten; dropout; the linear ``head`` with ``n_out`` outputs. ``features(x)`` is the input of
the head: the pooled last block (after dropout, which acts only in training), ``feature_dim``
wide. By default the stages follow the input size: one per factor 2 until about 4x4 remains
(2 for 16 px, 4 for 64 px, at most 5).

**Runner** (:class:`Runner`): a model on a device, fed from uint8 NHWC arrays: images become
float NCHW in [-1, 1] (``x / 127.5 - 1``) batch by batch on the device, optionally mirrored and
translated; logits, probabilities (sigmoid per output, or softmax over them) and penultimate
features (the input of the model's last linear layer, so any model with a linear output layer
works) come back in batches as float64 arrays; ``precision: bf16`` runs the forward passes
under bf16 autocast; on CUDA the model and batches are channels-last.

**Fit loop** (:func:`fit`): Adam (optionally with weight decay) over the parameters of the
model and of whatever else the loss trains. Each epoch draws from ONE CPU generator seeded with
``seed``, in this order: a random order of the training images, a flip per image (with
``flips``) and a shift per image (with ``shift``); consecutive batch-size slices of that order
are the batches (a last slice of one image is skipped: batch norm needs two). An ``augment``
hook may change each float batch further with the same generator. The loss is pluggable:
``loss(x, idx)`` gets the batch and the training rows it holds and returns the loss and
statistics to sum per epoch. The budget is whole epochs or optimiser steps (epochs follow each
other until the steps are done); ``schedule="cosine"`` anneals the learning rate to 0 over that
budget, step by step. ``on_epoch`` runs after each epoch (validation, keeping the best weights).
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np

from fairgen.common.errors import ConfigError, DataError

OUTPUTS = ("logits", "probs", "features")
ACTIVATIONS = ("sigmoid", "softmax")


# ------------------------------------------------------------------------------------ network


def default_stages(size: int) -> int:
    """Downsampling stages for ``size`` px inputs: one per factor 2 until about 4x4 remains
    (2 for 16 px, 3 for 32 px, 4 for 64 px; at least 1, at most 5)."""
    return max(1, min(5, int(math.log2(max(size, 8))) - 2))


@functools.cache
def _network_class():
    import torch.nn as nn

    class SmallCNN(nn.Sequential):
        """The small CNN of :func:`build_cnn`: a Sequential whose last layer is the linear head."""

        @property
        def head(self):
            """The linear output layer."""
            return self[-1]

        @property
        def feature_dim(self) -> int:
            return self[-1].in_features

        def features(self, x):
            """The penultimate features of float NCHW input ``x`` in [-1, 1]: the head's input."""
            for layer in list(self)[:-1]:
                x = layer(x)
            return x

    return SmallCNN


def build_cnn(size: int | None = None, *, channels: int = 3, n_out: int = 1, width: int = 32,
              stages: int | None = None, convs: int = 2, dropout: float = 0.2, bn_momentum: float = 0.1):
    """The small CNN (module docstring) for ``channels``-channel inputs of ``size`` px (which
    sets ``stages`` when that is not given), with ``n_out`` outputs. ``bn_momentum``: the batch
    norms' running-statistics momentum (PyTorch's default 0.1; higher follows the last batches
    more closely, for short training at a high learning rate). The defaults are the downstream
    outcome classifier's network. Layers are built in order, so the same global torch seed gives
    the same initial weights."""
    import torch.nn as nn

    if stages is None:
        if size is None:
            raise ValueError("build_cnn: give the input size or the number of stages")
        stages = default_stages(size)

    def conv_bn_relu(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, momentum=bn_momentum),
                nn.ReLU(inplace=True)]

    layers, cin = [], channels
    for i in range(stages):
        cout = width * min(2 ** i, 8)
        for k in range(convs):
            layers += conv_bn_relu(cin if k == 0 else cout, cout)
        layers.append(nn.MaxPool2d(2))
        cin = cout
    layers += conv_bn_relu(cin, cin) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                        nn.Linear(cin, n_out)]
    return _network_class()(*layers)


def last_linear(model):
    """The model's last ``nn.Linear`` (a small CNN's head, ResNet's ``fc``): its input is the
    model's penultimate representation."""
    import torch.nn as nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"model {type(model).__name__} has no linear output layer")
    return linears[-1]


# ------------------------------------------------------------------------------------- runner


def translate(x, shift):
    """Each image of ``x`` (B, C, H, W) moved by ``shift[b] = (dy, dx)`` pixels, edges repeated:
    ``out[b, :, i, j] = x[b, :, clamp(i - dy), clamp(j - dx)]``. Gathers on the device (no sync)."""
    import torch

    b, _, h, w = x.shape
    rows = (torch.arange(h, device=x.device)[None, :] - shift[:, :1]).clamp_(0, h - 1)  # (B, H)
    cols = (torch.arange(w, device=x.device)[None, :] - shift[:, 1:]).clamp_(0, w - 1)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return x.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class Runner:
    """``model`` on ``device`` fed from uint8 NHWC images in batches of ``batch_size`` (module
    docstring). ``precision`` ``bf16`` autocasts the forward passes. ``activation`` turns logits
    into probabilities: ``sigmoid`` (independent binary outputs) or ``softmax`` (classes). With
    ``squeeze``, a model with ONE output gives logits and probabilities of shape (N,), not (N, 1)."""

    def __init__(self, model, device, precision: str = "fp32", batch_size: int = 128,
                 activation: str = "sigmoid", squeeze: bool = True):
        import torch

        if activation not in ACTIVATIONS:
            raise ValueError(f"Runner: activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.torch = torch
        device = torch.device(device)
        # channels_last suits cuDNN (and bf16 tensor cores); CPU batch norm is faster on NCHW
        self.memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        self.model = model.to(device, memory_format=self.memory_format)
        self.device = device
        self.batch_size = batch_size
        self.activation = activation
        self.squeeze = squeeze
        self.autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def tensor(self, images: np.ndarray):
        """The whole uint8 array on the device, once (a few hundred MB for CelebA at 64 px)."""
        return self.torch.from_numpy(np.ascontiguousarray(images)).to(self.device)

    def batch(self, images_t, idx, flip=None, shift=None):
        """``images_t[idx]`` as the model's float input in [-1, 1]; ``flip`` (bool per image)
        mirrors, ``shift`` ((B, 2) int pixels, rows then columns) translates each image with its
        border pixels repeated."""
        x = images_t[idx].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        if shift is not None:
            x = translate(x, shift)
        x = x.contiguous(memory_format=self.memory_format)
        if flip is not None and flip.any():
            x[flip] = x[flip].flip(-1)
        return x

    def _shaped(self, out):
        return out.reshape(-1) if self.squeeze and out.shape[1] == 1 else out

    def logits(self, x, features: bool = False):
        """The model's logits of the batch ``x`` (from :meth:`batch`); with ``features``, also the
        penultimate features (the input of the model's last linear layer)."""
        if not features:
            with self.torch.autocast(**self.autocast):
                return self._shaped(self.model(x).float())
        seen = []
        hook = last_linear(self.model).register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        try:
            with self.torch.autocast(**self.autocast):
                out = self._shaped(self.model(x).float())
        finally:
            hook.remove()
        return out, seen[0].float()

    def probabilities(self, logits):
        """``logits`` (from :meth:`logits`) as probabilities, by the runner's activation."""
        if self.activation == "softmax":
            return self.torch.softmax(logits, dim=1)
        return self.torch.sigmoid(logits)

    def run(self, images, outputs=("probs",), desc: str = "predict", progress: bool = True) -> dict:
        """``{name: float64 array}`` for each of ``outputs`` (``logits``, ``probs``, ``features``)
        of every image, with the model in eval mode. ``images``: a uint8 NHWC array (moved to the
        device batch by batch) or its :meth:`tensor`."""
        from tqdm import tqdm

        torch = self.torch
        unknown = [o for o in outputs if o not in OUTPUTS]
        if unknown:
            raise ValueError(f"Runner.run: unknown outputs {unknown} (choose from {OUTPUTS})")
        want_features = "features" in outputs
        on_device = isinstance(images, torch.Tensor)
        got = {name: [] for name in outputs}
        n = len(images)
        self.model.eval()
        with torch.inference_mode():
            starts = range(0, n, self.batch_size)
            for start in tqdm(starts, desc=desc, unit="batch", disable=not progress or len(starts) <= 1, leave=False):
                stop = min(start + self.batch_size, n)
                if on_device:
                    chunk, idx = images, torch.arange(start, stop, device=self.device)
                else:
                    chunk, idx = self.tensor(images[start:stop]), torch.arange(stop - start, device=self.device)
                out = self.logits(self.batch(chunk, idx), features=want_features)
                logits, feats = out if want_features else (out, None)
                if "logits" in got:
                    got["logits"].append(logits.cpu())
                if "probs" in got:
                    got["probs"].append(self.probabilities(logits).cpu())
                if want_features:
                    got["features"].append(feats.cpu())
        head = last_linear(self.model)
        empty = {"features": (0, head.in_features),
                 "logits": (0,) if self.squeeze and head.out_features == 1 else (0, head.out_features)}
        return {name: torch.cat(parts).double().numpy() if parts else np.zeros(empty.get(name, empty["logits"]))
                for name, parts in got.items()}

    def predict(self, images, desc: str = "predict", progress: bool = True) -> np.ndarray:
        """Probabilities of every image (see :meth:`run`): (N,) for one squeezed output, else (N, K)."""
        return self.run(images, ("probs",), desc, progress)["probs"]


# ----------------------------------------------------------------------------------- fit loop


def fit(runner: Runner, images, loss, *, seed: int, lr: float, weight_decay: float = 0.0,
        epochs: int | None = None, steps: int | None = None, flips: bool = False, shift: int = 0,
        augment=None, schedule: str | None = None, extra_params=(), on_epoch=None, desc: str = "epoch",
        progress: bool = True) -> list[dict]:
    """Train ``runner.model`` on ``images`` (uint8 NHWC, or their :meth:`Runner.tensor`) for
    ``epochs`` epochs or ``steps`` optimiser steps (exactly one), as the module docstring says.

    ``loss(x, idx)`` gets the float batch (after flips, shifts and ``augment(x, generator)``) and
    the device tensor of the training rows it holds; it runs the model (``runner.logits``) and
    returns ``(loss tensor, {name: tensor})``: the statistics are summed on the device over the
    epoch's steps (one host sync per epoch). ``extra_params`` are trained with the model (e.g. a
    head of the loss). ``schedule``: None or ``"cosine"``. After every epoch, ``on_epoch(record)``
    gets ``{"epoch", "seen" (images), "steps", "started" (time.perf_counter() at its start),
    "sums": {name: float sum of each statistic}}``; the list of these records is returned.
    """
    import torch
    from tqdm import tqdm

    if (epochs is None) == (steps is None):
        raise ValueError("fit: give exactly one of epochs and steps")
    if schedule not in (None, "cosine"):
        raise ValueError(f"fit: unknown schedule {schedule!r} (None or 'cosine')")
    model, device = runner.model, runner.device
    images_t = images if isinstance(images, torch.Tensor) else runner.tensor(images)
    n, bs = len(images_t), runner.batch_size
    per_epoch = n // bs + (n % bs >= 2)  # batches of at least two images
    if per_epoch == 0:
        raise DataError(f"fit: need at least 2 training images, got {n}")
    total = steps if steps is not None else epochs * per_epoch
    n_epochs = epochs if epochs is not None else -(-steps // per_epoch)
    opt = torch.optim.Adam(list(model.parameters()) + list(extra_params), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total) if schedule == "cosine" else None
    gen = torch.Generator().manual_seed(seed)
    records, done = [], 0
    for epoch in range(1, n_epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=gen)
        flip = torch.rand(n, generator=gen) < 0.5 if flips else None
        shifts = torch.randint(-shift, shift + 1, (n, 2), generator=gen) if shift else None
        sums, seen, epoch_steps = {}, 0, 0
        for start in tqdm(range(0, n, bs), desc=f"{desc} {epoch}/{n_epochs}", unit="batch", disable=not progress,
                          leave=False):
            if done == total:
                break
            idx = order[start:start + bs].to(device)
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            x = runner.batch(images_t, idx, flip[start:start + bs].to(device) if flip is not None else None,
                             shifts[start:start + bs].to(device) if shifts is not None else None)
            if augment is not None:
                x = augment(x, gen)
            value, stats = loss(x, idx)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            if sched is not None:
                sched.step()
            for name, v in stats.items():
                sums[name] = sums[name] + v if name in sums else v
            seen += len(idx)
            epoch_steps += 1
            done += 1
        records.append({"epoch": epoch, "seen": seen, "steps": epoch_steps, "started": started,
                        "sums": {name: float(v) for name, v in sums.items()}})
        if on_epoch is not None:
            on_epoch(records[-1])
    return records

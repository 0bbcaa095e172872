"""Feature extractors for FID, and the real-trained classifiers behind c-conditioning accuracy
and attribute coverage.

Two extractors, both mapping a packed uint8 image array ``(N, H, W, 3)`` to float64 features:

* :class:`InceptionExtractor` -- torchvision's Inception v3 with weights read from a LOCAL file
  (``quality.inception_weights``; nothing is ever downloaded). Images are resized to 299x299
  (bilinear), ImageNet-normalised, and the 2048-d pool3 activations (after the global average
  pool, before ``fc``) are the features. The model is built with ``transform_input=True``,
  exactly as torchvision builds it for its own pretrained weights, so ImageNet-normalised input
  reaches the network in the range those weights expect. Label: ``"FID (Inception v3)"``.
* :class:`OwnCNNExtractor` -- the project's own compact CNN (:func:`own_network`: the shared
  small CNN of :mod:`fairgen.eval.cnn` with 4 stages of one conv each and no dropout), trained
  here with the shared fit loop on the REAL train crops to classify the protected attribute c
  and the outcome y (two logits, one shared trunk). Its penultimate layer (the global-average-
  pooled last conv block) gives the features. Label: ``"FID (own-CNN features)"`` -- such
  numbers are NOT comparable to published FID values, and every report says so.

The own CNN is always trained (it is also the c classifier for c-conditioning accuracy: the
fraction of generated images whose predicted c equals the c they were generated for); the
Inception extractor is added when weights are configured. Trained own-CNN weights are cached
under a key that covers the training settings and the exact training data, so re-running the
quality step for a new synthetic set does not retrain it.

:class:`AttributeClassifier` is the same network with one logit per dataset attribute (all but c
and y), trained and cached the same way: the reader behind the quality step's attribute coverage
(which looks of the real faces a generator dropped). Both run on the shared
:class:`fairgen.eval.cnn.Runner` (uint8 images scaled to [-1, 1], fp32, in batches).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from fairgen.common.config import seed_for
from fairgen.common.errors import ConfigError, DataError
from fairgen.eval.cnn import Runner, build_cnn, fit

log = logging.getLogger(__name__)

OWN_CNN = "own_cnn"
INCEPTION = "inception_v3"
LABELS = {
    OWN_CNN: "FID (own-CNN features)",
    INCEPTION: "FID (Inception v3)",
}
NOTES = {
    OWN_CNN: (
        "Frechet distance in the feature space of the project's own CNN trained on the real train "
        "crops (penultimate layer). Not comparable to published FID values; only comparable between "
        "runs evaluated with the same extractor weights and the same sample sizes."
    ),
    INCEPTION: (
        "Frechet distance of torchvision Inception v3 pool3 features (images resized to 299). Uses "
        "the configured weights file; published FID uses the TF-Inception port and other sample "
        "sizes/resolutions, so compare with care. FID is biased upwards for small n."
    ),
}
# Bump when the own CNN's architecture or training procedure changes: invalidates cached weights.
# 2: the shared small-CNN stack (fairgen.eval.cnn): its network, input scaling and fit loop
OWN_CNN_VERSION = 2
#: training of the own CNN (and of the attribute reader, which shares it): evaluator internals,
#: not user configuration; at most ``max_train`` real train crops (a seeded subset), 0 = all
OWN_CNN_TRAINING = {"width": 32, "epochs": 3, "lr": 0.001, "max_train": 20000}
ATTRIBUTE_CNN_VERSION = 2  # bumped with OWN_CNN_VERSION (same network and loop)
#: downsampling stages of the own CNN (fixed, whatever the input size: 8 x width features)
OWN_CNN_STAGES = 4
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_images(images: np.ndarray, what: str) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        shape = getattr(images, "shape", None)
        dtype = getattr(images, "dtype", type(images).__name__)
        raise DataError(f"{what}: expected a uint8 array of shape (N, H, W, 3), got {dtype} {shape}")


def _to_tensor(batch: np.ndarray, device):
    """uint8 NHWC -> float32 NCHW in [0, 1] on ``device``."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def _batches(n: int, batch_size: int, desc: str, progress: bool):
    from tqdm import tqdm

    starts = range(0, n, batch_size)
    return tqdm(starts, desc=desc, unit="batch", disable=not progress or len(starts) <= 1, leave=False)


# ----------------------------------------------------------------------------------- own CNN


def own_network(width: int, n_out: int):
    """The own CNN: the shared small CNN (:func:`fairgen.eval.cnn.build_cnn`) with
    :data:`OWN_CNN_STAGES` stages of one conv3x3-BN-ReLU each (width w, 2w, 4w, 8w), no dropout and
    ``n_out`` logits ([c, y] for the own CNN, one per attribute for the attribute reader); its
    features are the 8w-d global-average-pooled last block. Works for any input size >= 16.

    Its batch norms' running statistics have momentum 0.3 (PyTorch's default is 0.1): the own CNN
    trains for few steps at a high learning rate, and with 0.1 the statistics used in eval mode
    lagged the weights (in the tiny quality tests the attribute reader ranked glasses perfectly,
    AUC 1.0, while the positives' probabilities stayed near 0.4)."""
    return build_cnn(width=width, n_out=n_out, stages=OWN_CNN_STAGES, convs=1, dropout=0.0, bn_momentum=0.3)


def train_own_cnn(images: np.ndarray, c: np.ndarray, y: np.ndarray, *, width: int = 32, epochs: int = 3,
                  lr: float = 1e-3, batch_size: int = 128, seed: int = 0, device="cpu", progress: bool = True):
    """Train the own CNN (:func:`own_network`) to predict c and y (binary cross-entropy on both logits).

    Seeded: the same inputs and seed give the same weights on the same device. Random
    horizontal flips (faces are roughly symmetric; c and y do not change under a flip).
    Returns ``(model in eval mode, history)`` where history holds the mean loss per epoch.
    """
    n = len(images)
    c = np.asarray(c).astype(np.float32).reshape(-1)
    y = np.asarray(y).astype(np.float32).reshape(-1)
    if len(c) != n or len(y) != n:
        raise DataError(f"own-CNN training: {n} images but {len(c)} c labels and {len(y)} y labels")
    return train_multilabel_cnn(images, np.stack([c, y], axis=1), ("c", "y"), what="own-CNN", width=width,
                                epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device,
                                progress=progress)


def train_multilabel_cnn(images: np.ndarray, targets: np.ndarray, names, *, what: str, width: int = 32,
                         epochs: int = 3, lr: float = 1e-3, batch_size: int = 128, seed: int = 0, device="cpu",
                         progress: bool = True):
    """Train an own CNN (:func:`own_network`) with one logit per column of the 0/1 ``targets``
    (N, K), named ``names`` (for errors), by binary cross-entropy with the shared fit loop
    (:func:`fairgen.eval.cnn.fit`: Adam, seeded batches, random horizontal flips);
    :func:`train_own_cnn` is this function with the columns [c, y]. Returns ``(model in eval
    mode, history)``, history holding the mean loss per epoch."""
    import torch
    import torch.nn.functional as F

    check_images(images, f"{what} training images")
    n = len(images)
    targets = np.asarray(targets, dtype=np.float32)
    if targets.ndim != 2 or len(targets) != n or targets.shape[1] != len(names):
        raise DataError(f"{what} training: {n} images but labels of shape {targets.shape} for "
                        f"{len(names)} targets")
    if n < 2:
        raise DataError(f"{what} training: need at least 2 real train images, got {n}")
    for k, name in enumerate(names):
        if not np.isin(targets[:, k], (0.0, 1.0)).all():
            raise DataError(f"{what} training: labels {name} must be 0/1")
    torch.manual_seed(seed)
    runner = Runner(own_network(width, len(names)), device, "fp32", batch_size, squeeze=False)
    targets_t = torch.from_numpy(targets).to(runner.device)

    def loss(x, idx):
        value = F.binary_cross_entropy_with_logits(runner.logits(x), targets_t[idx])
        return value, {"loss": value.detach() * len(idx)}

    def on_epoch(r: dict) -> None:
        log.info("%s epoch %d/%d: loss %.4f", what, r["epoch"], epochs, r["sums"]["loss"] / max(r["seen"], 1))

    records = fit(runner, images, loss, seed=seed, lr=lr, epochs=epochs, flips=True, on_epoch=on_epoch,
                  desc=f"{what} epoch", progress=progress)
    return runner.model.eval(), [r["sums"]["loss"] / max(r["seen"], 1) for r in records]


@dataclass
class Extractor:
    """A feature extractor: a torch model on ``device``, batched; ``info`` goes into reports.
    Subclasses set ``key`` (one of :data:`LABELS`) and implement ``features(images, progress)``
    returning float64 ``(N, feature_dim)``."""

    model: object
    device: object = "cpu"
    batch_size: int = 128
    info: dict = field(default_factory=dict)
    key: ClassVar[str]

    @property
    def label(self) -> str:
        return LABELS[self.key]


@dataclass
class OwnCNNExtractor(Extractor):
    """Features and c/y predictions of a trained own CNN (:func:`own_network`), run by the shared
    :class:`fairgen.eval.cnn.Runner` (fp32)."""

    key = OWN_CNN

    def __post_init__(self):
        self.runner = Runner(self.model, self.device, "fp32", self.batch_size, squeeze=False)

    @property
    def feature_dim(self) -> int:
        return self.model.feature_dim

    def run(self, images: np.ndarray, progress: bool = True) -> dict:
        """``{"features": (N, D) float64, "p_c": (N,), "p_y": (N,)}`` (probabilities of 1)."""
        check_images(images, "own-CNN input")
        out = self.runner.run(images, ("features", "probs"), "own-CNN features", progress)
        return {"features": out["features"], "p_c": out["probs"][:, 0], "p_y": out["probs"][:, 1]}

    def features(self, images: np.ndarray, progress: bool = True) -> np.ndarray:
        return self.run(images, progress)["features"]


def _fingerprint(images: np.ndarray, *labels: np.ndarray, chunk: int = 2048) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(images.shape).encode())
    for start in range(0, len(images), chunk):
        h.update(np.ascontiguousarray(images[start:start + chunk]).tobytes())
    for lab in labels:
        h.update(np.ascontiguousarray(lab, dtype=np.uint8).tobytes())
    return h.hexdigest()


def own_cnn_settings(cfg: dict) -> dict:
    t = OWN_CNN_TRAINING
    return {"width": t["width"], "epochs": t["epochs"], "lr": t["lr"],
            "batch_size": cfg["quality"]["batch_size"], "seed": seed_for(cfg, "quality_own_cnn")}


def load_or_train_own_cnn(cfg: dict, images: np.ndarray, c: np.ndarray, y: np.ndarray,
                          cache_dir: str | os.PathLike, progress: bool = True) -> OwnCNNExtractor:
    """The own-CNN extractor trained on ``images`` (real train crops) with labels c, y.

    Weights are cached in ``cache_dir`` as ``own_cnn-<key>.pt``; the key hashes the training
    settings, the architecture version and the training data itself, so a cache hit is exactly
    the model this call would train. An unreadable cache file is retrained (and replaced).
    """
    from fairgen.common.runtime import resolve_device

    settings = own_cnn_settings(cfg)
    device = resolve_device(cfg["device"])
    model, meta = _cached_cnn(
        "own_cnn", {"version": OWN_CNN_VERSION, **settings, "data": _fingerprint(images, c, y)}, settings, 2,
        lambda: train_own_cnn(images, c, y, device=device, progress=progress, **settings),
        len(images), cache_dir, device)
    return OwnCNNExtractor(model, device, settings["batch_size"], meta)


def _cached_cnn(kind: str, key_src: dict, settings: dict, n_out: int, train, n_train: int,
                cache_dir: str | os.PathLike, device) -> tuple[object, dict]:
    """``(model in eval mode on device, meta)``: an own CNN with ``n_out`` logits loaded
    from ``cache_dir/<kind>-<key>.pt`` (the key hashes ``key_src``), or trained by ``train()``
    (which returns ``(model, history)``) and cached there. A bad cache file is retrained."""
    import torch

    from fairgen.common.io import atomic_path

    key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"{kind}-{key}.pt"
    model = own_network(settings["width"], n_out)
    if path.exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(blob["state_dict"])
            log.info("%s weights loaded from cache %s", kind, path)
            return model.eval().to(device), {**blob["meta"], "weights": str(path)}
        except Exception as e:  # our own cache: a bad file is rebuilt, not fatal
            log.warning("%s: unreadable cached %s weights (%s); retraining", path, kind, e)
    log.info("training %s on %d real train crops (%s)", kind, n_train, settings)
    model, history = train()
    meta = {"settings": settings, "version": key_src["version"], "n_train": int(n_train),
            "loss_per_epoch": history, "key": key}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "meta": meta}, tmp)
    return model, {**meta, "weights": str(path)}


# ------------------------------------------------------------------------ attribute classifier


@dataclass
class AttributeClassifier:
    """An own CNN (:func:`own_network`) with one logit per attribute of ``names``, trained on real
    train crops with their 0/1 attribute labels (the attribute-coverage measure of
    :mod:`fairgen.eval.quality`), run by the shared :class:`fairgen.eval.cnn.Runner` (fp32)."""

    model: object
    names: tuple
    device: object = "cpu"
    batch_size: int = 128
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.runner = Runner(self.model, self.device, "fp32", self.batch_size, squeeze=False)

    def predict(self, images: np.ndarray, progress: bool = True) -> np.ndarray:
        """P(attribute = 1) for every image, float64 ``(N, len(names))``."""
        check_images(images, "attribute classifier input")
        return self.runner.predict(images, "attribute classifier", progress)


def load_or_train_attribute_cnn(cfg: dict, images: np.ndarray, labels: np.ndarray, names,
                                cache_dir: str | os.PathLike, progress: bool = True) -> AttributeClassifier:
    """The attribute classifier trained on ``images`` (real train crops) with ``labels`` (N, K)
    for attributes ``names``: the own CNN's architecture and settings (``quality.cnn_*``) with its
    own seed; cached in ``cache_dir`` like :func:`load_or_train_own_cnn`."""
    from fairgen.common.runtime import resolve_device

    names = tuple(names)
    settings = {**own_cnn_settings(cfg), "seed": seed_for(cfg, "quality_attribute_cnn")}
    device = resolve_device(cfg["device"])
    model, meta = _cached_cnn(
        "attribute_cnn", {"version": ATTRIBUTE_CNN_VERSION, **settings, "names": list(names),
                          "data": _fingerprint(images, labels)}, settings, len(names),
        lambda: train_multilabel_cnn(images, labels, names, what="attribute classifier", device=device,
                                     progress=progress, **settings),
        len(images), cache_dir, device)
    return AttributeClassifier(model, names, device, settings["batch_size"], meta)


# --------------------------------------------------------------------------------- Inception


class InceptionExtractor(Extractor):
    """torchvision Inception v3, pool3 (2048-d) features, weights from a local file."""

    key = INCEPTION
    feature_dim = 2048

    @classmethod
    def from_file(cls, path: str | os.PathLike, device="cpu", batch_size: int = 64) -> "InceptionExtractor":
        import torch
        import torch.nn as nn
        from torchvision.models import inception_v3

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config key 'quality.inception_weights': weights file not found: {path} "
                              "(fairgen never downloads weights; give a local torchvision Inception v3 "
                              "state-dict file, or null to use own-CNN features)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise DataError(f"{path}: not a readable PyTorch weights file ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise DataError(f"{path}: expected an Inception v3 state dict (parameter name -> tensor), "
                            f"found {type(state).__name__}")
        aux = any(k.startswith("AuxLogits.") for k in state)
        fc = state.get("fc.weight")
        num_classes = int(fc.shape[0]) if isinstance(fc, torch.Tensor) and fc.ndim == 2 else 1000
        model = inception_v3(weights=None, aux_logits=aux, init_weights=False, transform_input=True,
                             num_classes=num_classes)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            missing, unexpected = _key_mismatch(model.state_dict(), state)
            raise DataError(
                f"{path}: not torchvision Inception v3 weights ({len(missing)} missing keys e.g. "
                f"{missing[:3]}, {len(unexpected)} unexpected e.g. {unexpected[:3]}"
                + ("" if missing or unexpected else f"; {str(e).splitlines()[-1].strip()}") + ")"
            ) from None
        model.fc = nn.Identity()  # forward() now returns the 2048-d pool3 features
        model.eval().to(device)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return cls(model, device, batch_size, {"weights": str(path), "weights_sha256": digest})

    def features(self, images: np.ndarray, progress: bool = True) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        check_images(images, "Inception input")
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        out = []
        with torch.inference_mode():
            for start in _batches(len(images), self.batch_size, "Inception features", progress):
                x = _to_tensor(images[start:start + self.batch_size], self.device)
                if x.shape[-2:] != (299, 299):
                    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
                out.append(self.model((x - mean) / std).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.feature_dim))


def _key_mismatch(expected: dict, got: dict) -> tuple[list, list]:
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    return missing, unexpected

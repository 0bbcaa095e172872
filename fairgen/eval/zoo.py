"""The seed-GAN zoo: vanilla GAN, DCGAN and conditional GAN on MNIST-style digits, AC-GAN on
CIFAR-10-style images, all trained with the project's one :class:`fairgen.training.Trainer`.

Runs (``zoo.runs``; each has its own config section ``zoo.<run>``):

============== =============================== ==========================================
run            model (``fairgen.models``)      data (``zoo.<run>.dataset``)
============== =============================== ==========================================
vanilla        ``vanilla`` (MLP, 28x28x1)      digits | mnist
dcgan          ``dcgan`` (28x28x1)             digits | mnist
cgan           ``cgan`` (label-conditional)    digits | mnist
acgan          ``acgan`` (32x32x3)             cifar_standin | cifar10
acgan_digits   ``acgan`` (32x32, 3 channels)   digits | mnist (grey replicated to 3 channels)
============== =============================== ==========================================

``acgan_digits`` exists because the AC-GAN is the original internship report's CIFAR model: to check that its
samples are the requested class with a classifier trained on REAL data, it also runs on the real
digits, upsampled to the seed architecture's 32x32x3 (``zoo.acgan_digits.model.channels: 1``
gives a 1-channel variant); the stand-in CIFAR classes are synthetic, so a classifier trained on
them says less.

Defaults (``zoo.<run>``) keep the original internship report's architectures, batch sizes and AC-GAN optimiser
(Adam 2e-4, beta1 0.5) except where measurement on the digits said otherwise: the vanilla GAN uses
lr 2e-4 (at the seed's 1e-3 it collapsed to one blob), every run decays its learning rate linearly
to 0 (so the evaluated last checkpoint is not caught mid-oscillation; without it the DCGAN's FID
went from 246 at step 600 to 665 at step 1000), and step counts are sized for a few CPU minutes.

Stages (one CLI subcommand each, one Snakemake rule each; layout under ``results/zoo``)::

    zoo-data        data/{dataset}/{images,labels}.npy, info.json        fairgen.data.zoo_data
    zoo-classifier  classifier/{dataset}/model.pt, metrics.json          real-data evaluation CNN
    zoo-train       {run}/train/checkpoint.pt, log.jsonl, train.json, loss_curve.png, samples/
    zoo-evaluate    {run}/eval/metrics.json, grid.png
    zoo-report      report.html (self-contained), summary.json

Evaluation
----------
The *evaluation classifier* of a dataset is the shared small CNN of :mod:`fairgen.eval.cnn`
(:func:`classifier_network`: 3 stages of two conv3x3-BN-ReLU blocks, global average pooling,
dropout 0.3, one logit per class) trained, seeded, with the shared fit loop (a step budget, cosine
learning-rate schedule, affine jitter, flips for CIFAR) on the REAL images of that dataset (a
stratified ``zoo.eval.holdout_fraction`` is held out to report its own accuracy) at the dataset
family's evaluation shape (digits: 28x28x1, CIFAR: 32x32x3; generated images of other shapes are
resized / converted to it), and run by the shared runner (:class:`ClassifierRunner`). For every
run it gives

* **conditional accuracy** (cgan, acgan*): the fraction of generated images the classifier assigns
  to the class they were generated for, overall and per class (chance = 1 / n_classes);
* **FID (zoo-classifier features)**: the Frechet distance (:func:`fairgen.eval.quality.fid`) between
  Gaussians fitted to the classifier's penultimate-layer features of ``m = min(n_samples,
  N_real // 2)`` real images and of ``m`` generated ones (conditional models are asked for the
  labels of those real images). ``fid.real_floor`` is the same distance between those real images
  and a disjoint real subset of size ``m``: what a perfect generator would score at this sample
  size. The real subsets are drawn per dataset (seeded), so all runs on a dataset are compared with
  the same real images. Numbers are comparable between runs on the same dataset only, and NOT with
  published FID values;
* **class coverage** (every run): the predicted-class histogram of the samples, the number of
  classes holding at least half their fair share, and the effective number of classes
  ``exp(entropy)`` -- mode collapse shows here.

Each run's ``grid.png`` has a row per class: for conditional models the images generated for
that class, for unconditional ones the first samples the classifier assigns to it (labelled
"predicted").
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from fairgen.common.config import seed_for
from fairgen.common.errors import ConfigError, DataError
from fairgen.common.io import atomic_path
from fairgen.common.registry import ZOO_RUNS
from fairgen.data import zoo_data
from fairgen.eval import cnn
from fairgen.eval.cnn import Runner, build_cnn

log = logging.getLogger(__name__)

RUNS = tuple(run.name for run in ZOO_RUNS)  # fairgen.common.registry.ZOO_RUNS
#: registry name in fairgen.models of each run's model
MODEL_OF = {run.name: run.model for run in ZOO_RUNS}
#: (image size, channels) each run trains at unless its ``model`` kwargs say otherwise
RUN_SHAPE = {"vanilla": (28, 1), "dcgan": (28, 1), "cgan": (28, 1), "acgan": (32, 3), "acgan_digits": (32, 3)}
#: 2: the shared small CNN (fairgen.eval.cnn: 3 stages, global average pooling) and its fit loop
CLASSIFIER_VERSION = 2
#: the real-data evaluation classifier's network and training: evaluator internals, not user configuration
EVAL_CLASSIFIER = {"steps": 600, "batch_size": 64, "lr": 0.001, "width": 32, "stages": 3, "dropout": 0.3}
FID_LABEL = "FID (zoo-classifier features)"
FID_NOTE = ("Frechet distance between Gaussians fitted to the penultimate-layer features of the dataset's "
            "real-data evaluation classifier, for real and generated images (same count m on both sides). "
            "Comparable only between runs on the same dataset; not comparable to published (Inception) FID.")
TRAIN_DIR, EVAL_DIR = "train", "eval"
TRAIN_SUMMARY, METRICS, GRID = "train.json", "metrics.json", "grid.png"
CLASSIFIER_FILE, CLASSIFIER_METRICS = "model.pt", "metrics.json"


# =========================================================================== config helpers


def check_run(run: str) -> str:
    if run not in RUNS:
        raise ConfigError(f"unknown zoo run '{run}'; choose one of {', '.join(RUNS)}")
    return run


def run_shape(cfg: dict, run: str) -> tuple[int, int]:
    """(size, channels) the run's model works at: its default, or what ``zoo.<run>.model`` sets."""
    size, channels = RUN_SHAPE[check_run(run)]
    kw = cfg["zoo"][run]["model"]
    if run == "vanilla" and "img_shape" in kw:
        shape = kw["img_shape"]
        if not (isinstance(shape, list) and len(shape) == 3 and shape[1] == shape[2]):
            raise ConfigError(f"config key 'zoo.vanilla.model.img_shape': expected [C, S, S], got {shape!r}")
        channels, size = int(shape[0]), int(shape[1])
    channels = int(kw.get("channels", channels))
    size = int(kw.get("img_size", size))
    if channels not in (1, 3):
        raise ConfigError(f"config key 'zoo.{run}.model.channels': must be 1 or 3, got {channels}")
    return size, channels


def model_kwargs(cfg: dict, run: str, size: int, channels: int, n_classes: int) -> dict:
    """Constructor kwargs of the run's model: ``zoo.<run>.model`` plus the data's shape/classes."""
    kw = dict(cfg["zoo"][run]["model"])
    name = MODEL_OF[run]
    if name == "vanilla":
        kw["img_shape"] = [channels, size, size]
    else:
        kw["channels"] = channels
    if name == "acgan":
        kw["img_size"] = size
    if name in ("cgan", "acgan"):
        kw["n_classes"] = n_classes
    return kw


def build_model(cfg: dict, run: str, size: int, channels: int, n_classes: int):
    """The run's GAN (ConfigError naming ``zoo.<run>.model`` for bad constructor arguments)."""
    from fairgen.models import build

    kw = model_kwargs(cfg, run, size, channels, n_classes)
    try:
        return build(MODEL_OF[run], **kw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config key 'zoo.{run}.model': cannot build model '{MODEL_OF[run]}' with {kw}: {e}") from None


def is_conditional(gan) -> bool:
    return "label" in getattr(gan, "cond_keys", ())


def train_config(cfg: dict, run: str, extra: dict | None = None):
    """:class:`fairgen.training.TrainConfig` of a run (null lr/betas: the model's defaults)."""
    from fairgen.training import TrainConfig

    s, z = cfg["zoo"][run], cfg["zoo"]
    return TrainConfig(
        steps=s["steps"], batch_size=s["batch_size"], lr_g=s["lr"], lr_d=s["lr"],
        betas=tuple(s["betas"]) if s["betas"] is not None else None, lr_decay=s["lr_decay"],
        device=cfg["device"], precision=cfg["precision"], seed=seed_for(cfg, f"zoo_{run}"),
        log_every=z["log_every"], sample_every=z["sample_every"], checkpoint_every=z["checkpoint_every"],
        n_fixed=100, extra={"zoo_run": run, **(extra or {})},
    )


def read_data(cfg: dict, folder, expect_dataset: str | None = None) -> zoo_data.ZooData:
    data = zoo_data.read(folder)
    got = data.info.get("dataset")
    if expect_dataset is not None and got != expect_dataset:
        raise DataError(f"{folder}: holds dataset '{got}', but the config asks for '{expect_dataset}'")
    if got not in zoo_data.FAMILY:
        raise DataError(f"{folder}: unknown dataset '{got}' in {zoo_data.INFO}")
    return data


# =========================================================================== evaluation classifier


def classifier_network(settings: dict, channels: int, n_classes: int):
    """The evaluation classifier: the shared small CNN (:func:`fairgen.eval.cnn.build_cnn`) with
    ``settings``' width, stages and dropout (:data:`EVAL_CLASSIFIER`), ``channels`` input channels
    and one logit per class; its FID features are the global-average-pooled last conv block."""
    return build_cnn(channels=channels, n_out=n_classes, width=settings["width"], stages=settings["stages"],
                     dropout=settings["dropout"])


def _jitter(x, gen):
    """The zoo classifier's augmentation hook (:func:`fairgen.eval.cnn.fit`): random affine jitter
    per image (rotation +-10 deg, scale 0.9..1.1, shift +-2 px; outside the image is black), drawn
    from ``gen`` (CPU). ``x`` float (N, C, S, S) in [-1, 1]."""
    import torch
    import torch.nn.functional as F

    n, size = x.shape[0], x.shape[-1]
    u = (torch.rand(n, 4, generator=gen) * 2 - 1).to(x.device)
    angle, scale = u[:, 0] * math.radians(10), 1 + 0.1 * u[:, 1]
    shift = u[:, 2:] * (4.0 / size)  # 2 px in normalised [-1, 1] coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, holdout) index arrays: ``round(fraction * n_k)`` of each class k held out (at least
    one when the class has two or more images), chosen with ``seed``."""
    rng = np.random.default_rng(seed)
    train, hold = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_hold = min(len(idx) - 1, max(1, int(round(fraction * len(idx))))) if len(idx) > 1 else 0
        hold.append(idx[:n_hold])
        train.append(idx[n_hold:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(hold))


class ClassifierRunner:
    """A trained evaluation classifier (:func:`classifier_network`) on the shared
    :class:`fairgen.eval.cnn.Runner` (fp32, softmax over the classes), plus what it was trained on
    (``meta``). It is also a FID feature extractor with the interface of
    :mod:`fairgen.eval.features` (``key``, ``label``, ``feature_dim``, ``features(images)``)."""

    key = "zoo_classifier"
    label = FID_LABEL

    def __init__(self, model, meta: dict, device, batch_size: int = 250):
        self.model, self.meta = model, meta
        self.runner = Runner(model, device, "fp32", batch_size, activation="softmax")

    @property
    def feature_dim(self) -> int:
        return int(self.model.feature_dim)

    def features(self, images: np.ndarray, progress: bool = False) -> np.ndarray:
        return self.run(images, progress)["features"]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.meta["size"]), int(self.meta["channels"])

    def conform(self, images: np.ndarray) -> np.ndarray:
        """Images at the classifier's size and channel count."""
        size, channels = self.shape
        return zoo_data.set_channels(zoo_data.resize_images(images, size), channels)

    def run(self, images: np.ndarray, progress: bool = False) -> dict:
        """``{"features": (N, D) float64, "probs": (N, K) float64}`` for uint8 (N, H, W, C) images."""
        return self.runner.run(self.conform(images), ("features", "probs"), "classify", progress)


def classifier_settings(cfg: dict) -> dict:
    return {**EVAL_CLASSIFIER, "holdout_fraction": cfg["zoo"]["eval"]["holdout_fraction"],
            "seed": seed_for(cfg, "zoo_classifier"), "version": CLASSIFIER_VERSION}


def fit_classifier(real: zoo_data.ZooData, settings: dict, device, progress: bool = True):
    """Train the evaluation classifier on ``real`` (already at its evaluation shape) with the
    shared fit loop (:func:`fairgen.eval.cnn.fit`): ``settings["steps"]`` Adam steps of
    cross-entropy with a cosine learning-rate schedule, affine jitter and, for flip-invariant
    data (CIFAR), random horizontal flips.

    Returns ``(ClassifierRunner, metrics)``; metrics hold the held-out accuracy overall and per class.
    """
    import torch
    import torch.nn.functional as F

    from fairgen.training import seed_everything

    seed = settings["seed"]
    train_idx, hold_idx = stratified_holdout(real.labels, settings["holdout_fraction"], seed)
    if len(train_idx) < 2:
        raise DataError(f"zoo classifier: need at least 2 training images, got {len(train_idx)}")
    seed_everything(seed)
    trainer = Runner(classifier_network(settings, real.channels, real.n_classes), device, "fp32",
                     min(settings["batch_size"], len(train_idx)), activation="softmax")
    y_t = torch.from_numpy(real.labels[train_idx]).to(trainer.device)

    def loss(x, idx):
        value = F.cross_entropy(trainer.logits(x), y_t[idx])
        return value, {"loss": value.detach() * len(idx)}

    t0 = time.perf_counter()
    records = cnn.fit(trainer, real.images[train_idx], loss, seed=seed, lr=settings["lr"], steps=settings["steps"],
                      flips=zoo_data.FAMILY[real.info["dataset"]] == "cifar", augment=_jitter, schedule="cosine",
                      desc="zoo classifier epoch", progress=progress)
    model = trainer.model.eval()
    meta = {"dataset": real.info["dataset"], "size": real.size, "channels": real.channels,
            "n_classes": real.n_classes, "class_names": real.class_names, "settings": settings,
            "fingerprint": zoo_data.fingerprint(real.images, real.labels),
            "n_train": int(len(train_idx)), "n_holdout": int(len(hold_idx))}
    runner = ClassifierRunner(model, meta, device)
    last = [r for r in records if r["steps"] == records[0]["steps"]][-1]  # the last whole epoch
    metrics = {"dataset": meta["dataset"], "n_train": meta["n_train"], "n_holdout": meta["n_holdout"],
               "train_s": time.perf_counter() - t0, "shape": [real.size, real.size, real.channels],
               "final_loss": last["sums"]["loss"] / last["seen"]}  # mean training loss of the last whole epoch
    if len(hold_idx):
        pred = runner.run(real.images[hold_idx])["probs"].argmax(1)
        metrics.update(class_accuracy(pred, real.labels[hold_idx], real.n_classes, key="holdout_accuracy"))
    return runner, metrics


def class_accuracy(pred: np.ndarray, target: np.ndarray, n_classes: int, key: str = "accuracy") -> dict:
    """``{key: overall, key + "_by_class": [per class or None], "n": ...}``."""
    pred, target = np.asarray(pred), np.asarray(target)
    by_class = []
    for k in range(n_classes):
        m = target == k
        by_class.append(float((pred[m] == k).mean()) if m.any() else None)
    return {key: float((pred == target).mean()) if len(target) else None, f"{key}_by_class": by_class,
            "n": int(len(target))}


def load_classifier(path: str | os.PathLike, device="cpu", batch_size: int = 250) -> ClassifierRunner:
    """A classifier written by ``fairgen zoo-classifier`` (:mod:`fairgen.stages.zoo.classifier`;
    DataError naming the file otherwise)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: zoo classifier not found (run 'fairgen zoo-classifier')")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = blob["meta"]
        if meta["settings"].get("version") != CLASSIFIER_VERSION:
            raise DataError(f"{path}: zoo classifier version {meta['settings'].get('version')} is not supported "
                            f"(this fairgen uses version {CLASSIFIER_VERSION}); retrain it")
        model = classifier_network(meta["settings"], meta["channels"], meta["n_classes"])
        model.load_state_dict(blob["state_dict"])
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: not a readable zoo classifier ({type(e).__name__}: {e})") from None
    return ClassifierRunner(model.to(device).eval(), meta, device, batch_size)


# =========================================================================== evaluation


def generate(gan, n: int, *, labels: np.ndarray | None, seed: int, device, batch_size: int,
             progress: bool = False) -> np.ndarray:
    """``n`` uint8 (N, H, W, C) images from ``gan`` (eval mode), asking a conditional model for
    ``labels``; noise from one ``torch.Generator`` seeded with ``seed``."""
    import torch
    from tqdm.auto import tqdm

    from fairgen.training import to_uint8_images

    gen = torch.Generator(device=device).manual_seed(int(seed))
    out = []
    gan.eval()
    with torch.inference_mode():
        starts = range(0, n, batch_size)
        for start in tqdm(starts, desc=f"generate {gan.name}", unit="batch", disable=not progress or len(starts) < 4):
            m = min(batch_size, n - start)
            cond = {}
            if labels is not None:
                cond["label"] = torch.from_numpy(np.asarray(labels[start:start + m], np.int64)).to(device)
            x = gan.generate(gan.sample_latent(m, gen, device, **cond))["x"].float()
            if not torch.isfinite(x).all():
                raise DataError(f"generator '{gan.name}' produced NaN/inf (a diverged checkpoint?)")
            out.append(to_uint8_images(x).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.uint8)


def coverage(pred: np.ndarray, n_classes: int) -> dict:
    """Predicted-class histogram, classes with >= half their fair share, effective class count."""
    counts = np.bincount(np.asarray(pred, np.int64), minlength=n_classes)
    p = counts / max(counts.sum(), 1)
    nz = p[p > 0]
    return {"predicted_counts": counts.tolist(),
            "classes_covered": int((p >= 0.5 / n_classes).sum()),
            "effective_classes": float(np.exp(-(nz * np.log(nz)).sum())) if len(nz) else 0.0}


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def class_grid(rows: list[np.ndarray], row_labels: list[str], columns: int, path: str | os.PathLike,
               scale: int = 2) -> tuple[int, int]:
    """A PNG of one row per class: ``rows[k]`` holds up to ``columns`` uint8 (n, S, S, C) images of
    class k (fewer leave the row's end empty), labelled on the left. Returns (n_rows, n_columns)."""
    from PIL import Image, ImageDraw

    shapes = {r.shape[1:] for r in rows if len(r)}
    if len(shapes) > 1:
        raise ValueError(f"class_grid: rows of different image shapes {shapes}")
    size, _, ch = shapes.pop() if shapes else (8, 8, 1)
    cell, pad = size * scale, 2
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin = max(int(probe.textlength(t, font=font)) for t in row_labels) + 8 if row_labels else 0
    width = margin + columns * (cell + pad) + pad
    height = len(rows) * (cell + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, (images, label) in enumerate(zip(rows, row_labels)):
        y = pad + r * (cell + pad)
        draw.text((4, y + cell / 2), label, fill=(0, 0, 0), font=font, anchor="lm")
        for c, img in enumerate(images[:columns]):
            tile = Image.fromarray(img[..., 0] if ch == 1 else img, "L" if ch == 1 else "RGB").convert("RGB")
            canvas.paste(tile.resize((cell, cell), Image.NEAREST), (margin + pad + c * (cell + pad), y))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return len(rows), columns

"""The seed-GAN zoo: vanilla GAN, DCGAN and conditional GAN on MNIST-style digits, AC-GAN on
CIFAR-10-style images, all trained with the project's one :class:`fairgen.training.Trainer`.

Runs (``zoo.runs``; each has its own config section ``zoo.<run>``):

============== =============================== ==========================================
run            model (``fairgen.models``)      data (``zoo.<run>.dataset``)
============== =============================== ==========================================
vanilla        ``vanilla`` (MLP, 28x28x1)      digits | mnist
dcgan          ``dcgan_mnist`` (28x28x1)       digits | mnist
cgan           ``cgan`` (label-conditional)    digits | mnist
acgan          ``acgan`` (32x32x3)             cifar_standin | cifar10
acgan_digits   ``acgan`` (32x32, 3 channels)   digits | mnist (grey replicated to 3 channels)
============== =============================== ==========================================

``acgan_digits`` exists because the AC-GAN is the seed report's CIFAR model: to check that its
samples are the requested class with a classifier trained on REAL data, it also runs on the real
digits, upsampled to the seed architecture's 32x32x3 (``zoo.acgan_digits.model.channels: 1``
gives a 1-channel variant); the stand-in CIFAR classes are synthetic, so a classifier trained on
them says less.

Defaults (``zoo.<run>``) keep the seed report's architectures, batch sizes and AC-GAN optimiser
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
The *evaluation classifier* of a dataset is a small CNN (:class:`ZooClassifier`) trained, seeded,
on the REAL images of that dataset (a stratified ``zoo.eval.holdout_fraction`` is held out to
report its own accuracy) at the dataset family's evaluation shape (digits: 28x28x1, CIFAR: 32x32x3;
generated images of other shapes are resized / converted to it). For every run it gives

* **conditional accuracy** (cgan, acgan*): the fraction of generated images the classifier assigns
  to the class they were generated for, overall and per class (chance = 1 / n_classes);
* **FID (zoo-classifier features)**: the Frechet distance (:func:`fairgen.quality.fid`) between
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

import base64
import html
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from fairgen.config import seed_for
from fairgen.data import zoo_data
from fairgen.errors import CheckpointError, ConfigError, DataError
from fairgen.io import atomic_path, read_json, write_json
from fairgen.registry import ZOO_RUNS

log = logging.getLogger(__name__)

RUNS = tuple(run.name for run in ZOO_RUNS)  # fairgen.registry.ZOO_RUNS
#: registry name in fairgen.models of each run's model
MODEL_OF = {run.name: run.model for run in ZOO_RUNS}
#: (image size, channels) each run trains at unless its ``model`` kwargs say otherwise
RUN_SHAPE = {"vanilla": (28, 1), "dcgan": (28, 1), "cgan": (28, 1), "acgan": (32, 3), "acgan_digits": (32, 3)}
CLASSIFIER_VERSION = 1
#: the real-data evaluation classifier's training: evaluator internals, not user configuration
EVAL_CLASSIFIER = {"steps": 600, "batch_size": 64, "lr": 0.001, "width": 32}
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


def _read_data(cfg: dict, folder, expect_dataset: str | None = None) -> zoo_data.ZooData:
    data = zoo_data.read(folder)
    got = data.info.get("dataset")
    if expect_dataset is not None and got != expect_dataset:
        raise DataError(f"{folder}: holds dataset '{got}', but the config asks for '{expect_dataset}'")
    if got not in zoo_data.FAMILY:
        raise DataError(f"{folder}: unknown dataset '{got}' in {zoo_data.INFO}")
    return data


# =========================================================================== training


def train(cfg: dict, model: str, data: str, out_dir: str) -> int:
    """CLI ``zoo-train``: train zoo run ``model`` on the prepared dataset folder ``data``.

    Writes into ``out_dir`` what the trainer writes (checkpoint.pt, log.jsonl, samples/,
    loss_curve.png) plus ``train.json`` (the trainer's summary, run, dataset and data shape).
    Until then the resumable state is in ``OUT.state`` beside ``out_dir`` (not among the rule's
    outputs, which Snakemake deletes before a rerun); running again after an interruption resumes
    from it, and it is removed once ``train.json`` is written.
    """
    from fairgen.training import ArrayBatches, Trainer, seed_everything
    from fairgen.training.trainer import default_state_dir

    run = check_run(model)
    settings = cfg["zoo"][run]
    size, channels = run_shape(cfg, run)
    real = _read_data(cfg, data, settings["dataset"])
    real = zoo_data.conform(real, size, channels)
    tc = train_config(cfg, run, {"dataset": real.info["dataset"],
                                 "data_fingerprint": zoo_data.fingerprint(real.images, real.labels)})
    seed_everything(tc.seed)  # reproducible initial weights
    gan = build_model(cfg, run, size, channels, real.n_classes)
    log.info("zoo %s: model %s on %s %s (%d images), %d steps of batch %d", run, gan.name, real.info["dataset"],
             list(real.images.shape[1:]), len(real.labels), tc.steps, tc.batch_size)
    trainer = Trainer(gan, ArrayBatches(real.images, {"label": real.labels}, name=str(data)), out_dir, tc,
                      state_dir=default_state_dir(out_dir))
    summary = trainer.fit()
    summary.update(run=run, dataset=real.info["dataset"], image_shape=[size, size, channels],
                   n_real=int(len(real.labels)), class_names=real.class_names)
    write_json(summary, Path(out_dir) / TRAIN_SUMMARY)
    trainer.clear_state()  # every output is written: nothing left to resume
    log.info("zoo %s: %d steps in %.1f s", run, summary["steps"], summary["wall_s"])
    return 0


# =========================================================================== evaluation classifier


def _classifier_module(width: int, channels: int, size: int, n_classes: int, dropout: float = 0.3):
    import torch.nn as nn

    class ZooClassifier(nn.Module):
        """Small CNN: [conv3x3-BN-ReLU x2, maxpool] x2 (width, 2 x width channels), then a
        linear feature layer of 4 x width units (ReLU; the FID features) and a linear class head."""

        def __init__(self):
            super().__init__()

            def block(cin, cout):
                return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

            w = width
            self.trunk = nn.Sequential(*block(channels, w), *block(w, w), nn.MaxPool2d(2),
                                       *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2), nn.Flatten(),
                                       nn.Linear(2 * w * (size // 4) ** 2, 4 * w), nn.ReLU(inplace=True))
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * w, n_classes))
            self.feature_dim = 4 * w

        def features(self, x):
            return self.trunk(x)

        def forward(self, x):
            return self.head(self.trunk(x))

    return ZooClassifier()


def _augment(x, gen, flips: bool):
    """Random affine jitter per image (rotation +-10 deg, scale 0.9..1.1, shift +-2 px) and, for
    flip-invariant data, random horizontal flips. ``x`` float (N, C, S, S) in [-1, 1]."""
    import torch
    import torch.nn.functional as F

    n, size = x.shape[0], x.shape[-1]
    u = torch.rand(n, 4, generator=gen, device=x.device) * 2 - 1
    angle, scale = u[:, 0] * math.radians(10), 1 + 0.1 * u[:, 1]
    shift = u[:, 2:] * (4.0 / size)  # 2 px in normalised [-1, 1] coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    if flips:
        flip = torch.rand(n, generator=gen, device=x.device) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out


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


def _to_float(images_u8: np.ndarray, device):
    import torch

    from fairgen.training import to_float_images

    return to_float_images(torch.from_numpy(np.ascontiguousarray(images_u8)).to(device))


class ClassifierRunner:
    """A trained :class:`ZooClassifier` plus what it was trained on (``meta``). It is also a FID
    feature extractor with the interface of :mod:`fairgen.features` (``key``, ``label``,
    ``feature_dim``, ``features(images)``)."""

    key = "zoo_classifier"
    label = FID_LABEL

    def __init__(self, model, meta: dict, device, batch_size: int = 250):
        self.model, self.meta, self.device, self.batch_size = model, meta, device, batch_size

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
        import torch
        from tqdm.auto import tqdm

        images = self.conform(images)
        feats, probs = [], []
        self.model.eval()
        with torch.inference_mode():
            starts = range(0, len(images), self.batch_size)
            for start in tqdm(starts, desc="classify", unit="batch", disable=not progress or len(starts) < 4):
                f = self.model.features(_to_float(images[start:start + self.batch_size], self.device))
                feats.append(f.double().cpu().numpy())
                probs.append(torch.softmax(self.model.head(f).double(), dim=1).cpu().numpy())
        k = int(self.meta["n_classes"])
        if not feats:
            return {"features": np.zeros((0, self.model.feature_dim)), "probs": np.zeros((0, k))}
        return {"features": np.concatenate(feats), "probs": np.concatenate(probs)}


def classifier_settings(cfg: dict) -> dict:
    return {**EVAL_CLASSIFIER, "holdout_fraction": cfg["zoo"]["eval"]["holdout_fraction"],
            "seed": seed_for(cfg, "zoo_classifier"), "version": CLASSIFIER_VERSION}


def fit_classifier(real: zoo_data.ZooData, settings: dict, device, progress: bool = True):
    """Train the evaluation classifier on ``real`` (already at its evaluation shape).

    Returns ``(ClassifierRunner, metrics)``; metrics hold the held-out accuracy overall and per class.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from fairgen.training import seed_everything

    seed = settings["seed"]
    train_idx, hold_idx = stratified_holdout(real.labels, settings["holdout_fraction"], seed)
    if len(train_idx) < 2:
        raise DataError(f"zoo classifier: need at least 2 training images, got {len(train_idx)}")
    seed_everything(seed)
    model = _classifier_module(settings["width"], real.channels, real.size, real.n_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings["steps"])
    x_all = _to_float(real.images[train_idx], device)
    y_all = torch.from_numpy(real.labels[train_idx]).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    flips = zoo_data.FAMILY[real.info["dataset"]] == "cifar"
    bs = min(settings["batch_size"], len(train_idx))
    losses = []
    model.train()
    t0 = time.perf_counter()
    for _ in tqdm(range(settings["steps"]), desc="zoo classifier", unit="step", disable=not progress,
                  mininterval=1.0):
        idx = torch.randint(len(train_idx), (bs,), generator=gen, device=device)
        loss = F.cross_entropy(model(_augment(x_all[idx], gen, flips)), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach())
    model.eval()
    meta = {"dataset": real.info["dataset"], "size": real.size, "channels": real.channels,
            "n_classes": real.n_classes, "class_names": real.class_names, "settings": settings,
            "fingerprint": zoo_data.fingerprint(real.images, real.labels),
            "n_train": int(len(train_idx)), "n_holdout": int(len(hold_idx))}
    runner = ClassifierRunner(model, meta, device)
    metrics = {"dataset": meta["dataset"], "n_train": meta["n_train"], "n_holdout": meta["n_holdout"],
               "train_s": time.perf_counter() - t0, "shape": [real.size, real.size, real.channels],
               "final_loss": float(torch.stack(losses[-50:]).mean()) if losses else None}
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


def train_classifier(cfg: dict, data: str, out_dir: str) -> int:
    """CLI ``zoo-classifier``: the evaluation classifier of the dataset in ``data`` (trained on its
    real images at the family's evaluation shape; a ``model.pt`` in ``out_dir`` trained with the
    same settings on the same data is reused)."""
    import torch

    from fairgen.runtime import resolve_device

    real = _read_data(cfg, data)
    real = zoo_data.conform(real, *zoo_data.FAMILY_SHAPE[zoo_data.FAMILY[real.info["dataset"]]])
    settings = classifier_settings(cfg)
    out = Path(out_dir)
    path = out / CLASSIFIER_FILE
    fp = zoo_data.fingerprint(real.images, real.labels)
    if path.exists() and (out / CLASSIFIER_METRICS).exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob["meta"]["settings"] == settings and blob["meta"]["fingerprint"] == fp:
                log.info("zoo classifier: %s is up to date (same settings and data); reusing it", path)
                return 0
        except Exception as e:  # our own cache: a bad file is retrained
            log.warning("%s: unreadable (%s); retraining", path, e)
    device = resolve_device(cfg["device"])
    runner, metrics = fit_classifier(real, settings, device)
    with atomic_path(path) as tmp:
        torch.save({"state_dict": {k: v.cpu() for k, v in runner.model.state_dict().items()},
                    "meta": runner.meta, "metrics": metrics}, tmp)
    write_json(metrics, out / CLASSIFIER_METRICS)
    log.info("zoo classifier (%s): held-out accuracy %.4f on %d images", real.info["dataset"],
             metrics.get("holdout_accuracy") or float("nan"), metrics["n_holdout"])
    return 0


def load_classifier(path: str | os.PathLike, device="cpu", batch_size: int = 250) -> ClassifierRunner:
    """A classifier written by :func:`train_classifier` (DataError naming the file otherwise)."""
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
        model = _classifier_module(meta["settings"]["width"], meta["channels"], meta["size"], meta["n_classes"])
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


def evaluate(cfg: dict, model: str, checkpoint: str, data: str, classifier: str, out_dir: str) -> int:
    """CLI ``zoo-evaluate``: score run ``model``'s checkpoint with the dataset's real-data classifier
    (module docstring) and draw its per-class grid. Writes ``metrics.json`` and ``grid.png``."""
    from fairgen.quality import fid
    from fairgen.runtime import resolve_device
    from fairgen.training import gan_from_checkpoint, load_checkpoint

    run = check_run(model)
    device = resolve_device(cfg["device"])
    ev = cfg["zoo"]["eval"]
    ck = load_checkpoint(checkpoint)
    if ck["model"]["name"] != MODEL_OF[run] or ck["train"].get("extra", {}).get("zoo_run") != run:
        raise CheckpointError(f"{checkpoint}: checkpoint of model '{ck['model']['name']}' (zoo run "
                              f"{ck['train'].get('extra', {}).get('zoo_run')!r}), not of zoo run '{run}'")
    gan = gan_from_checkpoint(ck, checkpoint, device)
    real = _read_data(cfg, data, cfg["zoo"][run]["dataset"])
    if ck["train"]["extra"].get("dataset") != real.info["dataset"]:
        raise CheckpointError(f"{checkpoint}: trained on '{ck['train']['extra'].get('dataset')}', evaluated "
                              f"against '{real.info['dataset']}'")
    clf = load_classifier(classifier, device, ev["batch_size"])
    real = zoo_data.conform(real, *clf.shape)
    if clf.meta["fingerprint"] != zoo_data.fingerprint(real.images, real.labels):
        raise DataError(f"{classifier}: this classifier was trained on other data than {data} "
                        f"(retrain it with 'fairgen zoo-classifier')")
    k = real.n_classes
    conditional = is_conditional(gan)
    if conditional and gan.n_classes != k:
        raise DataError(f"{checkpoint}: model has {gan.n_classes} classes, dataset {data} has {k}")
    seed = seed_for(cfg, f"zoo_eval_{run}")  # generation noise
    m = min(ev["n_samples"], len(real.labels) // 2)
    if m < 2:
        raise DataError(f"{data}: need at least 4 real images for FID, got {len(real.labels)}")
    # the real reference / floor subsets depend on the dataset only: every run on it is compared
    # with the same real images
    perm = np.random.default_rng(seed_for(cfg, f"zoo_eval_real_{real.info['dataset']}")).permutation(len(real.labels))
    ref, floor = perm[:m], perm[m:2 * m]
    asked = real.labels[ref] if conditional else None
    t0 = time.perf_counter()
    fake = generate(gan, m, labels=asked, seed=seed, device=device, batch_size=ev["batch_size"], progress=True)
    out_real = clf.run(real.images[np.concatenate([ref, floor])])
    out_fake = clf.run(fake, progress=True)
    f_ref, f_floor = out_real["features"][:m], out_real["features"][m:]
    pred = out_fake["probs"].argmax(1)
    metrics = {
        "run": run, "model": gan.name, "dataset": real.info["dataset"], "standin": bool(real.info.get("standin")),
        "checkpoint": str(checkpoint), "step": int(ck["step"]), "conditional": conditional, "n_classes": k,
        "class_names": real.class_names, "chance": 1.0 / k, "n_per_side": int(m), "seed": int(seed),
        "fid": {"label": FID_LABEL, "note": FID_NOTE, "value": fid(f_ref, out_fake["features"]),
                "real_floor": fid(f_ref, f_floor), "n_real": int(m), "n_generated": int(m)},
        "coverage": coverage(pred, k),
        "mean_confidence": float(out_fake["probs"].max(1).mean()),
        "classifier": {"path": str(classifier), "dataset": clf.meta["dataset"], "n_train": clf.meta["n_train"],
                       "shape": [clf.meta["size"], clf.meta["size"], clf.meta["channels"]]},
        "real_accuracy_on_reference": float((out_real["probs"][:m].argmax(1) == real.labels[ref]).mean()),
    }
    if conditional:
        cond = class_accuracy(pred, asked, k)
        confusion = np.zeros((k, k), np.int64)
        np.add.at(confusion, (asked, pred), 1)
        metrics["conditional_accuracy"] = {**cond, "confusion": confusion.tolist()}
    # per-class grid: a row per class (conditional: requested; otherwise: predicted)
    cols = ev["grid_columns"]
    if conditional:
        grid_labels = np.repeat(np.arange(k), cols)
        grid_imgs = generate(gan, len(grid_labels), labels=grid_labels, seed=seed + 1, device=device,
                             batch_size=ev["batch_size"])
        rows = [grid_imgs[grid_labels == c] for c in range(k)]
        row_labels = [f"{name}" for name in real.class_names]
    else:
        rows = [fake[pred == c][:cols] for c in range(k)]
        row_labels = [f"{name} (pred.)" for name in real.class_names]
    out = Path(out_dir)
    class_grid(rows, row_labels, cols, out / GRID)
    metrics["grid"] = {"path": str(out / GRID), "rows": k, "columns": cols,
                       "row_meaning": "requested class" if conditional else "class predicted by the classifier"}
    metrics["eval_s"] = time.perf_counter() - t0
    write_json(metrics, out / METRICS)
    acc = metrics.get("conditional_accuracy", {}).get("accuracy")
    log.info("zoo %s: %s %.3f (real floor %.3f)%s", run, FID_LABEL, metrics["fid"]["value"],
             metrics["fid"]["real_floor"], f", conditional accuracy {acc:.3f}" if acc is not None else "")
    return 0


# =========================================================================== report


def _png_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _pct_text(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _pct(v) -> str:
    return "&ndash;" if v is None else _pct_text(v)


def collect(cfg: dict, zoo_dir: str | os.PathLike) -> dict:
    """Everything the report shows, read from ``zoo_dir`` for the configured runs (DataError
    naming the first missing or invalid file)."""
    zoo_dir = Path(zoo_dir)
    runs, classifiers = {}, {}
    for run in cfg["zoo"]["runs"]:
        tdir, edir = zoo_dir / run / TRAIN_DIR, zoo_dir / run / EVAL_DIR
        train_summary, metrics = read_json(tdir / TRAIN_SUMMARY), read_json(edir / METRICS)
        for key in ("fid", "coverage", "dataset"):
            if key not in metrics:
                raise DataError(f"{edir / METRICS}: missing '{key}'")
        ds = metrics["dataset"]
        if ds not in classifiers:
            classifiers[ds] = read_json(zoo_dir / "classifier" / ds / CLASSIFIER_METRICS)
        runs[run] = {"train": train_summary, "metrics": metrics, "grid": edir / GRID,
                     "loss_curve": tdir / "loss_curve.png"}
    return {"runs": runs, "classifiers": classifiers}


def findings(collected: dict) -> list[str]:
    """Plain-language statements generated from the numbers (plain text)."""
    out = []
    runs = collected["runs"]
    for run, r in runs.items():
        m = r["metrics"]
        ca = m.get("conditional_accuracy")
        if ca:
            clf = collected["classifiers"].get(m["dataset"], {})
            out.append(f"{run} on {m['dataset']}: {_pct_text(ca['accuracy'])} of {ca['n']} samples are classified "
                       f"as the requested class by the real-data classifier (chance {_pct_text(m['chance'])}; the "
                       f"classifier's own held-out accuracy on real images {_pct_text(clf.get('holdout_accuracy'))}).")
    by_ds: dict[str, list[tuple[float, str]]] = {}
    for run, r in runs.items():
        by_ds.setdefault(r["metrics"]["dataset"], []).append((r["metrics"]["fid"]["value"], run))
    for ds, items in by_ds.items():
        if len(items) < 2:
            continue
        items.sort()
        floor = min(runs[run]["metrics"]["fid"]["real_floor"] for _, run in items)
        ranking = " < ".join(f"{run} {v:.2f}" for v, run in items)
        out.append(f"{FID_LABEL} on {ds} (lower is better; real-vs-real floor {floor:.2f}): {ranking}.")
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.note{color:#555;font-size:.92em}
.warn{background:#fff4e0;border-left:4px solid #e8a33c;padding:.5em 1em}
.figs{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}.figs figure{margin:0}
img.grid{image-rendering:pixelated;max-width:100%}img.curve{max-width:520px}
figcaption{font-size:.85em;color:#555}
"""


def render_report(cfg: dict, collected: dict) -> str:
    """The zoo report as one self-contained HTML page (inline CSS, images as data URIs)."""
    from fairgen import __version__

    runs, classifiers = collected["runs"], collected["classifiers"]
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>fairgen seed-GAN zoo</title>"
             f"<style>{_CSS}</style></head><body><h1>Seed-GAN zoo</h1>"
             f"<p class='note'>fairgen {esc(__version__)}; every model trained with the project's one GAN trainer "
             f"(<code>fairgen.training.Trainer</code>); seed {cfg['seed']}.</p>"]
    notes = {r["metrics"]["dataset"]: r["metrics"] for r in runs.values()}
    if any(m.get("standin") for m in notes.values()):
        parts.append(f"<p class='warn'>{esc(zoo_data.STANDIN_NOTE)}</p>")
    if "digits" in notes:
        parts.append(f"<p class='note'>digits: {esc(zoo_data.DIGITS_NOTE)}</p>")
    parts.append("<h2>Findings</h2><ul>" + "".join(f"<li>{esc(f)}</li>" for f in findings(collected)) + "</ul>")
    parts.append(f"<h2>Results</h2><p class='note'>{esc(FID_NOTE)}</p><table><tr><th class='l'>run</th>"
                 "<th class='l'>model</th><th class='l'>dataset</th><th>steps</th><th>train time</th>"
                 f"<th>n per side</th><th>{esc(FID_LABEL)}</th><th>real floor</th><th>cond. accuracy</th><th>chance</th>"
                 "<th>classes covered</th><th>effective classes</th></tr>")
    for run, r in runs.items():
        m, t = r["metrics"], r["train"]
        ca = m.get("conditional_accuracy")
        parts.append(
            f"<tr><td class='l'>{esc(run)}</td><td class='l'>{esc(m['model'])}</td><td class='l'>{esc(m['dataset'])}"
            f"</td><td>{t.get('steps')}</td><td>{_fmt(t.get('wall_s'), 0)} s</td><td>{m['fid']['n_generated']}</td>"
            f"<td>{_fmt(m['fid']['value'], 2)}</td>"
            f"<td>{_fmt(m['fid']['real_floor'], 2)}</td><td>{_pct(ca['accuracy']) if ca else '&ndash;'}</td>"
            f"<td>{_pct(m['chance'])}</td><td>{m['coverage']['classes_covered']} / {m['n_classes']}</td>"
            f"<td>{_fmt(m['coverage']['effective_classes'], 2)}</td></tr>")
    parts.append("</table><p class='note'>n per side: generated images scored, and real images they are compared "
                 "with (the same real images for every run on a dataset); real floor: FID between those real images "
                 "and as many other real ones; classes covered: predicted classes holding at least half their fair "
                 "share of the samples; effective classes: exp(entropy) of the predicted-class histogram.</p>")
    parts.append("<h2>Evaluation classifiers</h2><table><tr><th class='l'>dataset</th><th>input</th>"
                 "<th>train images</th><th>held-out images</th><th>held-out accuracy</th></tr>")
    for ds, c in classifiers.items():
        parts.append(f"<tr><td class='l'>{esc(ds)}</td><td>{'x'.join(str(s) for s in c.get('shape', []))}</td>"
                     f"<td>{c.get('n_train')}</td><td>{c.get('n_holdout')}</td>"
                     f"<td>{_pct(c.get('holdout_accuracy'))}</td></tr>")
    parts.append("</table>")
    for run, r in runs.items():
        m, t = r["metrics"], r["train"]
        train = t.get("train", {})
        parts.append(f"<h2>{esc(run)}: {esc(m['model'])} on {esc(m['dataset'])}</h2><p class='note'>"
                     f"{t.get('steps')} steps, batch {train.get('batch_size')}, Adam lr {train.get('lr_g')} betas "
                     f"{train.get('betas')}, {_fmt(t.get('images_per_s'), 0)} images/s on {esc(str(t.get('device')))}; "
                     f"image shape {t.get('image_shape')}.</p>")
        ca = m.get("conditional_accuracy")
        if ca:
            names = m["class_names"]
            parts.append("<table><tr><th class='l'>requested class</th>" +
                         "".join(f"<th>{esc(str(n))}</th>" for n in names) +
                         "</tr><tr><td class='l'>classified as requested</td>" +
                         "".join(f"<td>{_pct(v)}</td>" for v in ca["accuracy_by_class"]) + "</tr></table>")
        figs = []
        grid = _png_uri(r["grid"])
        if grid:
            figs.append(f"<figure><img class='grid' src='{grid}' alt='{esc(run)} samples, a row per class'>"
                        f"<figcaption>a row per {esc(m['grid']['row_meaning'])}</figcaption></figure>")
        curve = _png_uri(r["loss_curve"])
        if curve:
            figs.append(f"<figure><img class='curve' src='{curve}' alt='{esc(run)} training curves'>"
                        f"<figcaption>training losses and discriminator metrics</figcaption></figure>")
        parts.append("<div class='figs'>" + "".join(figs) + "</div>")
    parts.append("</body></html>\n")
    return "".join(parts)


def report(cfg: dict, zoo_dir: str, out_html: str, out_json: str | None = None) -> int:
    """CLI ``zoo-report``: the self-contained HTML zoo report (and all its numbers as JSON)."""
    collected = collect(cfg, zoo_dir)
    page = render_report(cfg, collected)
    with atomic_path(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    if out_json:
        summary = {"format": "fairgen.zoo_summary", "format_version": 1, "findings": findings(collected),
                   "classifiers": collected["classifiers"],
                   "runs": {run: {k: v for k, v in r["metrics"].items() if k not in ("classifier",)}
                            | {"train_wall_s": r["train"].get("wall_s"), "steps": r["train"].get("steps")}
                            for run, r in collected["runs"].items()}}
        write_json(summary, out_json)
    log.info("zoo report: %s (%d runs)", out_html, len(collected["runs"]))
    return 0

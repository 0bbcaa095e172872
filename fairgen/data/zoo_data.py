"""Datasets of the seed-GAN zoo, packed as uint8 arrays ``(N, H, W, C)`` plus int64 labels.

Four sources (``zoo.<run>.dataset`` in the config):

``digits``
    scikit-learn's bundled handwritten digits (``sklearn.datasets.load_digits``; UCI "Optical
    Recognition of Handwritten Digits"): 1,797 REAL 8x8 images, 10 classes, shipped with
    scikit-learn, so nothing is downloaded. Their pixels count the set pixels of 4x4 blocks of a
    32x32 bitmap (0..16). They are upsampled MNIST-style: the 8x8 image is resized with a
    bicubic filter into a box of ``round(size * 20 / 28)`` pixels (20x20 at 28x28, as MNIST's
    digits sit in a 20x20 box) centred in a black ``size`` x ``size`` frame, and 16 maps to 255.
    The offline default of the MNIST-family models.
``mnist``
    MNIST's 60,000 training images through ``torchvision.datasets.MNIST`` (downloaded into
    ``zoo.data_root`` with a progress bar, or read from ``zoo.mnist_root``).
``cifar_standin``
    A procedurally generated **stand-in for CIFAR-10** -- NOT CIFAR: ``zoo.cifar_standin.n_images``
    32x32 colour images of ten synthetic, visually distinct classes (see :data:`STANDIN_CLASSES`):
    shapes, textures and scenes with a per-class colour scheme and random position, scale,
    rotation, colours, background texture and pixel noise. Every output labels it as a stand-in.
    It exists so the AC-GAN runs offline with the original internship report's 32x32x3 architecture; its numbers
    say nothing about CIFAR-10.
``cifar10``
    CIFAR-10's 50,000 training images through ``torchvision.datasets.CIFAR10`` (download into
    ``zoo.data_root``, or ``zoo.cifar10_root``).

Any source can be delivered at another size and channel count (:func:`resize_images`,
:func:`set_channels`): grey digits become 32x32x3 for the AC-GAN by replicating the channel.

``fairgen zoo-data`` (:mod:`fairgen.stages.zoo.data`) writes one prepared dataset as a folder:
``images.npy`` (uint8 N,H,W,C), ``labels.npy`` (int64 N) and ``info.json``
(:data:`INFO_FORMAT`; written last, so its presence means the folder is complete).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fairgen.common.errors import ConfigError, DataError
from fairgen.common.registry import ZOO_DATASETS

DATASETS = tuple(ZOO_DATASETS)  # fairgen.common.registry.ZOO_DATASETS
#: family of each dataset: models and evaluation classifiers are shared within a family
FAMILY = dict(ZOO_DATASETS)
#: (size, channels) the evaluation classifier of a family works at; generated images are mapped to it
FAMILY_SHAPE = {"digits": (28, 1), "cifar": (32, 3)}
DIGIT_NAMES = [str(i) for i in range(10)]
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
#: the ten classes of the CIFAR-10 stand-in (index = label)
STANDIN_CLASSES = ["disc", "ring", "square", "triangle", "cross", "star", "stripes", "checkerboard", "dots",
                   "landscape"]
STANDIN_NOTE = ("cifar_standin is a procedurally generated STAND-IN for CIFAR-10 (10 synthetic classes of "
                "32x32 colour images: " + ", ".join(STANDIN_CLASSES) + "), not CIFAR-10; its numbers say "
                "nothing about CIFAR-10.")
DIGITS_NOTE = ("scikit-learn's bundled handwritten digits (1,797 real 8x8 images, UCI optical digits), "
               "bicubic-upsampled into an MNIST-style box; not MNIST.")
INFO_FORMAT = "fairgen.zoo_data"
INFO_VERSION = 1
IMAGES, LABELS, INFO = "images.npy", "labels.npy", "info.json"


@dataclass
class ZooData:
    """A packed labelled image dataset."""

    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,)
    class_names: list[str]
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        check_arrays(self.images, self.labels, self.info.get("dataset", "dataset"), len(self.class_names))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])


def check_arrays(images, labels, what: str, n_classes: int | None = None) -> None:
    """DataError unless ``images`` is uint8 (N, S, S, C in {1, 3}) and ``labels`` int (N,) in range."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
            or images.shape[1] != images.shape[2] or images.shape[3] not in (1, 3):
        raise DataError(f"{what}: expected uint8 images of shape (N, S, S, C) with C in (1, 3), got "
                        f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', None)}")
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{what}: expected {images.shape[0]} integer labels, got {labels.dtype} {labels.shape}")
    if len(labels) == 0:
        raise DataError(f"{what}: no images")
    if n_classes is not None and (labels.min() < 0 or labels.max() >= n_classes):
        bad = int(np.flatnonzero((labels < 0) | (labels >= n_classes))[0])
        raise DataError(f"{what}: label {labels[bad]} of image {bad} is outside 0..{n_classes - 1}")


# ------------------------------------------------------------------------------- resampling


def resize_images(images: np.ndarray, size: int, batch: int = 4096) -> np.ndarray:
    """Resize uint8 (N, H, W, C) square images to ``size`` x ``size`` (bicubic, antialiased when
    shrinking, clamped and rounded back to uint8). A no-op copy-free return at the same size."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), size, size, images.shape[3]), np.uint8)
    for start in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch])).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False,
                          antialias=size < images.shape[1])
        out[start:start + batch] = y.clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def set_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """1 -> 3 channels by replication; 3 -> 1 by ITU-R BT.601 luma; same count: unchanged."""
    have = images.shape[3]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=3)
    if have == 3 and channels == 1:
        luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    raise ValueError(f"cannot convert {have} channels to {channels}")


def conform(data: ZooData, size: int, channels: int) -> ZooData:
    """``data`` at ``size`` x ``size`` with ``channels`` channels (info records the conversion)."""
    if data.size == size and data.channels == channels:
        return data
    images = set_channels(resize_images(data.images, size), channels)
    info = {**data.info, "converted_from": [data.size, data.size, data.channels]}
    return ZooData(images, data.labels, data.class_names, info)


# ------------------------------------------------------------------------------- sources


def load_digits(size: int = 28, channels: int = 1) -> ZooData:
    """scikit-learn's 1,797 real 8x8 handwritten digits, upsampled MNIST-style (module docstring)."""
    from sklearn.datasets import load_digits as sk_load_digits

    if size < 8:
        raise ConfigError(f"digits: size must be >= 8, got {size}")
    bunch = sk_load_digits()
    raw = np.asarray(bunch.images, np.float32) * (255.0 / 16.0)  # (N, 8, 8), 16 set pixels -> 255
    box = max(8, int(round(size * 20 / 28)))
    boxed = resize_images(np.clip(np.rint(raw), 0, 255).astype(np.uint8)[..., None], box)
    images = np.zeros((len(raw), size, size, 1), np.uint8)
    top = (size - box) // 2
    images[:, top:top + box, top:top + box] = boxed
    info = {"dataset": "digits", "source": "sklearn.datasets.load_digits", "original_shape": [8, 8, 1],
            "note": DIGITS_NOTE, "standin": False}
    data = ZooData(images, np.asarray(bunch.target, np.int64), list(DIGIT_NAMES), info)
    return conform(data, size, channels)


def _open_torchvision(cls, name: str, root, data_root, download: bool, expected: str):
    """``cls(root, train=True)`` from the local ``root`` (read, never downloaded into) or from
    ``data_root`` (downloaded there when ``download``, with torchvision's progress bar);
    DataError naming the folder and the ``expected`` files otherwise. Returns (dataset, folder)."""
    if root is not None:
        path, download = Path(root), False
        if not path.is_dir():
            raise DataError(f"{name}: local root {path} is not a folder (config key 'zoo.{name}_root')")
    else:
        path = Path(data_root)
    try:
        return cls(str(path), train=True, download=download), path
    except (RuntimeError, OSError) as e:
        raise DataError(f"{name}: cannot read {cls.__name__} under {path} (expected {path / expected})"
                        f"{'' if download else '; set zoo.download: true to fetch it'}: {e}") from None


def load_mnist(root: str | os.PathLike | None = None, data_root: str | os.PathLike = "resources/zoo",
               download: bool = True) -> ZooData:
    """MNIST train split (60,000 x 28x28x1) via torchvision, from ``root`` (a local copy holding
    ``MNIST/raw/*-ubyte``) or downloaded into ``data_root`` when ``download``."""
    from torchvision.datasets import MNIST

    ds, path = _open_torchvision(MNIST, "mnist", root, data_root, download,
                                 "MNIST/raw/train-images-idx3-ubyte etc.")
    info = {"dataset": "mnist", "source": f"torchvision.datasets.MNIST({path})", "note": "MNIST train split",
            "standin": False}
    return ZooData(ds.data.numpy().astype(np.uint8)[..., None], ds.targets.numpy().astype(np.int64),
                   list(DIGIT_NAMES), info)


def load_cifar10(root: str | os.PathLike | None = None, data_root: str | os.PathLike = "resources/zoo",
                 download: bool = True) -> ZooData:
    """CIFAR-10 train split (50,000 x 32x32x3) via torchvision, from ``root`` (holding
    ``cifar-10-batches-py/``) or downloaded into ``data_root`` when ``download``."""
    from torchvision.datasets import CIFAR10

    ds, path = _open_torchvision(CIFAR10, "cifar10", root, data_root, download,
                                 "cifar-10-batches-py/data_batch_1..5 and batches.meta with their official MD5s")
    info = {"dataset": "cifar10", "source": f"torchvision.datasets.CIFAR10({path})", "note": "CIFAR-10 train split",
            "standin": False}
    return ZooData(np.ascontiguousarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, np.int64),
                   list(getattr(ds, "classes", CIFAR10_NAMES)), info)


# ------------------------------------------------------------------------------- CIFAR stand-in

#: hue centre (0..1) of each stand-in class's foreground colour scheme
_STANDIN_HUES = [0.0, 0.08, 0.16, 0.30, 0.45, 0.55, 0.62, 0.72, 0.82, 0.92]
_SUPERSAMPLE = 4


def _hsv(rng: np.random.Generator, hue: float, sat: tuple[float, float], val: tuple[float, float],
         hue_jitter: float = 0.05) -> tuple[int, int, int]:
    import colorsys

    h = (hue + rng.normal(0.0, hue_jitter)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val))
    return int(r * 255), int(g * 255), int(b * 255)


def _polygon(cx, cy, radius, n, angle, inner: float | None = None) -> list[tuple[float, float]]:
    """Regular polygon (or star with ``inner`` radius ratio) around (cx, cy)."""
    pts = []
    k = 2 * n if inner else n
    for i in range(k):
        r = radius * (inner if inner and i % 2 else 1.0)
        a = angle + 2 * math.pi * i / k
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def _rotated_rects(cx, cy, half_len, half_w, angle) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    corners = [(-half_len, -half_w), (half_len, -half_w), (half_len, half_w), (-half_len, half_w)]
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners]


def _standin_image(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """One stand-in image of class ``label`` (see :data:`STANDIN_CLASSES`), uint8 (size, size, 3)."""
    from PIL import Image, ImageDraw, ImageFilter

    big = size * _SUPERSAMPLE
    hue = _STANDIN_HUES[label]
    # background: a dim, desaturated colour of a random hue with a smooth random texture
    bg = np.array(_hsv(rng, rng.uniform(), (0.0, 0.35), (0.15, 0.55), 0.0), np.float32)
    coarse = rng.normal(0.0, 18.0, (4, 4, 3)).astype(np.float32)
    texture = np.asarray(Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8)).resize(
        (big, big), Image.BICUBIC), np.float32) - 128.0
    canvas = Image.fromarray(np.clip(bg + texture, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    fg = _hsv(rng, hue, (0.6, 1.0), (0.7, 1.0))
    cx, cy = rng.uniform(0.35, 0.65, 2) * big
    radius = rng.uniform(0.22, 0.36) * big
    angle = rng.uniform(0, 2 * math.pi)
    name = STANDIN_CLASSES[label]
    if name == "disc":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fg)
    elif name == "ring":
        w = int(radius * rng.uniform(0.25, 0.4))
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=fg, width=w)
    elif name == "square":
        draw.polygon(_polygon(cx, cy, radius * 1.1, 4, angle), fill=fg)
    elif name == "triangle":
        draw.polygon(_polygon(cx, cy, radius * 1.2, 3, angle), fill=fg)
    elif name == "cross":
        hw = radius * rng.uniform(0.25, 0.35)
        for a in (angle, angle + math.pi / 2):
            draw.polygon(_rotated_rects(cx, cy, radius * 1.1, hw, a), fill=fg)
    elif name == "star":
        draw.polygon(_polygon(cx, cy, radius * 1.2, 5, angle, inner=0.45), fill=fg)
    elif name == "stripes":
        period = rng.uniform(0.14, 0.24) * big
        a = rng.uniform(-0.5, 0.5)  # near-horizontal stripes over the whole image
        for k in range(-8, 9):
            ox, oy = big / 2 - math.sin(a) * k * period, big / 2 + math.cos(a) * k * period
            draw.polygon(_rotated_rects(ox, oy, big, period / 4, a), fill=fg)
    elif name == "checkerboard":
        cell = rng.uniform(0.16, 0.26) * big
        other = _hsv(rng, hue + 0.5, (0.3, 0.7), (0.2, 0.5))
        arr = np.asarray(canvas).copy()
        yy, xx = np.mgrid[0:big, 0:big].astype(np.float32)
        a = rng.uniform(0, math.pi / 2)
        u, v = (xx * math.cos(a) + yy * math.sin(a)) / cell, (-xx * math.sin(a) + yy * math.cos(a)) / cell
        mask = (np.floor(u) + np.floor(v)) % 2 == 0
        arr[mask] = fg
        arr[~mask] = other
        canvas = Image.fromarray(arr)
        draw = ImageDraw.Draw(canvas)
    elif name == "dots":
        r = rng.uniform(0.05, 0.08) * big
        for _ in range(int(rng.integers(7, 13))):
            x, y = rng.uniform(0, big, 2)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fg)
    elif name == "landscape":
        horizon = rng.uniform(0.5, 0.75) * big
        sky_top = np.array(_hsv(rng, 0.58, (0.4, 0.8), (0.7, 1.0), 0.03), np.float32)
        sky_low = np.array(_hsv(rng, 0.55, (0.1, 0.4), (0.8, 1.0), 0.03), np.float32)
        t = np.linspace(0, 1, big, dtype=np.float32)[:, None, None]
        arr = np.broadcast_to(sky_top * (1 - t) + sky_low * t, (big, big, 3)).copy()
        ground = np.array(fg, np.float32) * 0.7
        yy, xx = np.mgrid[0:big, 0:big].astype(np.float32)
        tilt = rng.uniform(-0.15, 0.15)
        arr[yy > horizon + tilt * (xx - big / 2)] = ground
        canvas = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        sr = rng.uniform(0.06, 0.1) * big
        sx, sy = rng.uniform(0.15, 0.85) * big, rng.uniform(0.1, 0.35) * big
        draw.ellipse([sx - sr, sy - sr, sx + sr, sy + sr], fill=_hsv(rng, 0.13, (0.5, 0.9), (0.9, 1.0), 0.02))
    else:  # pragma: no cover - STANDIN_CLASSES and this function are kept in step
        raise AssertionError(name)
    small = canvas.filter(ImageFilter.GaussianBlur(0.5)).resize((size, size), Image.LANCZOS)
    noise = rng.normal(0.0, 6.0, (size, size, 3))
    return np.clip(np.asarray(small, np.float32) + noise, 0, 255).round().astype(np.uint8)


def make_cifar_standin(n_images: int, seed: int, size: int = 32, progress: bool = True) -> ZooData:
    """``n_images`` stand-in images, classes balanced (label i % 10, shuffled), fully determined by
    ``seed`` (image i uses its own generator seeded by (seed, i))."""
    from tqdm.auto import tqdm

    if n_images < 1:
        raise ConfigError(f"cifar_standin: n_images must be >= 1, got {n_images}")
    order = np.random.default_rng([seed, 0xC1FA]).permutation(n_images)
    labels = (order % len(STANDIN_CLASSES)).astype(np.int64)
    images = np.empty((n_images, size, size, 3), np.uint8)
    for i in tqdm(range(n_images), desc="cifar stand-in", unit="img", disable=not progress or n_images < 500,
                  mininterval=1.0):
        images[i] = _standin_image(int(labels[i]), np.random.default_rng([seed, i]), size)
    info = {"dataset": "cifar_standin", "source": f"fairgen procedural stand-in (seed {seed})", "note": STANDIN_NOTE,
            "standin": True, "seed": int(seed)}
    return ZooData(images, labels, list(STANDIN_CLASSES), info)


# ------------------------------------------------------------------------------- dispatch


def native_shape(dataset: str) -> tuple[int, int]:
    """(size, channels) a dataset is prepared at by default: its family's evaluation shape."""
    if dataset not in FAMILY:
        raise ConfigError(f"unknown zoo dataset '{dataset}'; choose one of {', '.join(DATASETS)}")
    return FAMILY_SHAPE[FAMILY[dataset]]


def load(cfg: dict, dataset: str, size: int | None = None, channels: int | None = None,
         progress: bool = True) -> ZooData:
    """The ``dataset`` named in the config at ``size`` x ``size`` x ``channels`` (default: native)."""
    from fairgen.common.config import seed_for

    native = native_shape(dataset)
    size, channels = size or native[0], channels or native[1]
    zoo = cfg["zoo"]
    if dataset == "digits":
        data = load_digits(size, channels)
    elif dataset == "mnist":
        data = load_mnist(zoo["mnist_root"], zoo["data_root"], zoo["download"])
    elif dataset == "cifar10":
        data = load_cifar10(zoo["cifar10_root"], zoo["data_root"], zoo["download"])
    elif dataset == "cifar_standin":
        data = make_cifar_standin(zoo["cifar_standin"]["n_images"], seed_for(cfg, "zoo_cifar_standin"), 32,
                                  progress)
    else:
        raise ConfigError(f"unknown zoo dataset '{dataset}'; choose one of {', '.join(DATASETS)}")
    return conform(data, size, channels)


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """Content hash of a dataset (shape, pixels, labels)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(images.shape).encode())
    for start in range(0, len(images), 8192):
        h.update(np.ascontiguousarray(images[start:start + 8192]).tobytes())
    h.update(np.ascontiguousarray(labels, np.int64).tobytes())
    return h.hexdigest()


def write(data: ZooData, out_dir: str | os.PathLike) -> dict:
    """Write ``data`` as ``images.npy``, ``labels.npy`` and (last) ``info.json`` into ``out_dir``."""
    from fairgen.common.io import save_npy, write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / INFO).unlink(missing_ok=True)  # the folder is incomplete until info.json is back
    save_npy(np.ascontiguousarray(data.images), out / IMAGES)
    save_npy(np.ascontiguousarray(data.labels, np.int64), out / LABELS)
    counts = np.bincount(data.labels, minlength=data.n_classes)
    info = {**data.info, "format": INFO_FORMAT, "format_version": INFO_VERSION, "n_images": int(len(data.labels)),
            "shape": list(data.images.shape[1:]), "class_names": data.class_names,
            "class_counts": counts.tolist(), "fingerprint": fingerprint(data.images, data.labels)}
    write_json(info, out / INFO)
    return info


def read(folder: str | os.PathLike, mmap: bool = False) -> ZooData:
    """A folder written by :func:`write` (DataError naming the file when anything is off)."""
    from fairgen.common.io import read_json

    folder = Path(folder)
    info = read_json(folder / INFO)
    if info.get("format") != INFO_FORMAT:
        raise DataError(f"{folder / INFO}: not a fairgen zoo dataset (format {info.get('format')!r})")
    if info.get("format_version") != INFO_VERSION:
        raise DataError(f"{folder / INFO}: zoo dataset format version {info.get('format_version')} is not supported "
                        f"(this fairgen reads version {INFO_VERSION})")
    arrays = []
    for name in (IMAGES, LABELS):
        try:
            arrays.append(np.load(folder / name, mmap_mode="r" if mmap else None, allow_pickle=False))
        except (OSError, ValueError) as e:
            raise DataError(f"{folder / name}: not a readable .npy array ({e})") from None
    images, labels = arrays
    if list(images.shape[1:]) != info.get("shape") or len(images) != info.get("n_images"):
        raise DataError(f"{folder / IMAGES}: shape {images.shape} does not match {INFO} "
                        f"({info.get('n_images')} x {info.get('shape')})")
    names = info.get("class_names")
    if not isinstance(names, list) or not names:
        raise DataError(f"{folder / INFO}: missing 'class_names'")
    try:
        return ZooData(images if mmap else np.ascontiguousarray(images), np.asarray(labels, np.int64), names,
                       {k: v for k, v in info.items() if k not in ("class_names",)})
    except DataError as e:
        raise DataError(f"{folder}: {e}") from None

"""The synthetic dataset format: a folder of PNG images plus a versioned Parquet table.

Layout of a dataset folder::

    samples.parquet   fairgen kind "synthetic_samples": one row per image (columns below)
    images/           000000.png, 000001.png, ... (8-bit RGB, all the same size)
    images.npy        the same images packed as one (N, H, W, 3) uint8 array, rows in table order
    previews/         optional contact sheets for people to look at (ignored by the reader)

The PNG files are the dataset; ``images.npy`` is a cache written with them so that readers do
not decode thousands of PNGs. Its SHA-256 is recorded in the table's metadata and the cache is
used only when it matches (otherwise the PNGs are decoded and a warning is logged).

Columns of ``samples.parquet``:

=================  =======  =========================================================
sample_id          int64    unique id of the sample
path               string   image file, relative to the dataset folder (inside it)
c                  int64    protected attribute the sample was generated with (0/1)
y_prob             float64  the generator's outcome output mapped to [0, 1]
y                  int64    outcome label: ``y_prob >= 0.5``
model              string   the GAN run that made it (e.g. ``fgan_dp``)
checkpoint_step    int64    training step of the checkpoint used
seed               int64    seed of the sampling
pair_id            int64    (counterfactual pair sets only, :mod:`fairgen.data.pairs`) the noise
                            draw z shared by the pair's two members G(z, c=0) and G(z, c=1)
=================  =======  =========================================================
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd
from tqdm import tqdm

from fairgen.common import io
from fairgen.common.errors import DataError

log = logging.getLogger(__name__)

KIND = "synthetic_samples"
SAMPLES_FILE = "samples.parquet"
IMAGES_DIR = "images"
PACKED_FILE = "images.npy"
LABEL_THRESHOLD = 0.5

INT_COLUMNS = ("sample_id", "c", "y", "checkpoint_step", "seed")
FLOAT_COLUMNS = ("y_prob",)
STRING_COLUMNS = ("path", "model")
COLUMNS = ("sample_id", "path", "c", "y_prob", "y", "model", "checkpoint_step", "seed")
PAIR_COLUMN = "pair_id"


def labels_from_prob(y_prob) -> np.ndarray:
    """The outcome label of a probability: 1 where ``y_prob >= 0.5``."""
    return (np.asarray(y_prob) >= LABEL_THRESHOLD).astype(np.int64)


def rate_by_group(y, c) -> dict[str, float | None]:
    """``P(y=1 | c=g)`` for g = 0, 1 as ``{'0': ..., '1': ...}`` (None for a group with no rows)."""
    y, c = np.asarray(y), np.asarray(c)
    return {str(g): (float(y[c == g].mean()) if (c == g).any() else None) for g in (0, 1)}


def _array_sha256(images: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(images)).cast("B")).hexdigest()


def _check_images(images: np.ndarray) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"synthetic images must be a uint8 (N, H, W, 3) array, got {images.dtype} {images.shape}")


def write_synthetic(folder: str | os.PathLike, images: np.ndarray, c, y_prob, *, model: str,
                    checkpoint_step: int, seed: int, metadata: dict | None = None,
                    pair_id=None, progress: bool = True) -> pd.DataFrame:
    """Write a synthetic dataset into ``folder`` (created if needed) and return its table.

    Call this on a temporary folder (``fairgen.common.io.atomic_path(target, is_dir=True)``) so that a
    dataset is never seen half-written. ``metadata`` (JSON-able) is stored in the Parquet file.
    """
    folder = Path(folder)
    images = np.asarray(images)
    _check_images(images)
    n = len(images)
    c = np.asarray(c, dtype=np.int64)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if c.shape != (n,) or y_prob.shape != (n,):
        raise DataError(f"synthetic dataset: {n} images but c has shape {c.shape} and y_prob {y_prob.shape}")
    table = pd.DataFrame({
        "sample_id": np.arange(n, dtype=np.int64),
        "path": [f"{IMAGES_DIR}/{i:06d}.png" for i in range(n)],
        "c": c,
        "y_prob": y_prob,
        "y": labels_from_prob(y_prob),
        "model": model,
        "checkpoint_step": np.full(n, int(checkpoint_step), dtype=np.int64),
        "seed": np.full(n, int(seed), dtype=np.int64),
    })
    if pair_id is not None:
        table[PAIR_COLUMN] = np.asarray(pair_id, dtype=np.int64)
    _validate_values(table, folder / SAMPLES_FILE)

    from PIL import Image

    (folder / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    for rel, img in zip(tqdm(table["path"], desc="write PNGs", unit="img", disable=not progress), images):
        Image.fromarray(img).save(folder / rel, format="PNG")
    io.save_npy(images, folder / PACKED_FILE)
    meta = dict(metadata or {})
    meta["packed"] = {"file": PACKED_FILE, "shape": list(images.shape), "sha256": _array_sha256(images)}
    io.write_parquet(table, folder / SAMPLES_FILE, KIND, metadata=meta)
    return table


def read_synthetic(folder: str | os.PathLike, use_cache: bool = True) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Read and validate a synthetic dataset folder.

    Returns ``(table, images, metadata)``: the samples table, the images as a uint8
    (N, H, W, 3) array in table order, and the ``fairgen.*`` metadata of the Parquet file.
    Raises DataError (naming the file and row) for a missing/invalid table, a bad column type or
    value, or an image path that is absolute, leaves the folder (``..``, symlinks) or is missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: synthetic dataset folder not found")
    samples_path = folder / SAMPLES_FILE
    table, meta = io.read_parquet(samples_path, KIND, columns=list(COLUMNS))
    table = table[[*COLUMNS, *([PAIR_COLUMN] if PAIR_COLUMN in table.columns else [])]]
    if table.empty:
        raise DataError(f"{samples_path}: no samples")
    _validate_dtypes(table, samples_path)
    _validate_values(table, samples_path)
    files = _resolve_paths(table, folder, samples_path)
    images = _load_packed(folder, table, meta) if use_cache else None
    if images is None:
        images = _decode_pngs(files, table, samples_path)
    return table, images, meta


def _validate_dtypes(table: pd.DataFrame, where: Path) -> None:
    for col in INT_COLUMNS + ((PAIR_COLUMN,) if PAIR_COLUMN in table.columns else ()):
        if not pd.api.types.is_integer_dtype(table[col]):
            raise DataError(f"{where}: column '{col}' must be integer, found {table[col].dtype}")
    for col in FLOAT_COLUMNS:
        if not pd.api.types.is_float_dtype(table[col]):
            raise DataError(f"{where}: column '{col}' must be float, found {table[col].dtype}")
    for col in STRING_COLUMNS:
        is_str = table[col].map(lambda v: isinstance(v, str))
        if not is_str.all():
            row = int(np.flatnonzero(~is_str.to_numpy())[0])
            raise DataError(f"{where}, row {row}: column '{col}' must be a string, found {table[col].iloc[row]!r}")


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def _validate_values(table: pd.DataFrame, where: Path) -> None:
    checks = [
        (table["sample_id"].duplicated().to_numpy(), "duplicate sample_id"),
        (~table["c"].isin((0, 1)).to_numpy(), "c must be 0 or 1"),
        (~table["y"].isin((0, 1)).to_numpy(), "y must be 0 or 1"),
        (~np.isfinite(table["y_prob"].to_numpy()) | (table["y_prob"].to_numpy() < 0)
         | (table["y_prob"].to_numpy() > 1), "y_prob must lie in [0, 1]"),
    ]
    for mask, what in checks:
        row = _first_bad(mask)
        if row is not None:
            raise DataError(f"{where}, {_row(table, row)}: {what}")
    row = _first_bad(table["y"].to_numpy() != labels_from_prob(table["y_prob"]))
    if row is not None:
        raise DataError(f"{where}, {_row(table, row)}: y={table['y'].iloc[row]} disagrees with "
                        f"y_prob={table['y_prob'].iloc[row]:.4f} at threshold {LABEL_THRESHOLD}")


def _row(table: pd.DataFrame, row: int) -> str:
    return f"row {row} (sample_id {table['sample_id'].iloc[row]})"


def _resolve_paths(table: pd.DataFrame, folder: Path, where: Path) -> list[Path]:
    root = folder.resolve()
    files = []
    for row, rel in enumerate(table["path"]):
        if not rel or PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() \
                or PureWindowsPath(rel).drive:
            raise DataError(f"{where}, {_row(table, row)}: image path '{rel}' must be relative to the dataset folder")
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise DataError(f"{where}, {_row(table, row)}: image path '{rel}' resolves to {path}, "
                            f"outside the dataset folder {root}")
        if not path.is_file():
            raise DataError(f"{where}, {_row(table, row)}: image file '{rel}' not found")
        files.append(path)
    return files


def _load_packed(folder: Path, table: pd.DataFrame, meta: dict) -> np.ndarray | None:
    info = meta.get("packed")
    if not isinstance(info, dict) or not (folder / PACKED_FILE).is_file():
        log.warning("%s: no packed image cache; decoding %d PNG files", folder, len(table))
        return None
    try:
        images = np.load(folder / PACKED_FILE, allow_pickle=False)
    except (ValueError, OSError) as e:
        log.warning("%s: unreadable packed image cache (%s); decoding the PNG files", folder / PACKED_FILE, e)
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(table) \
            or _array_sha256(images) != info.get("sha256"):
        log.warning("%s does not match the checksum recorded in %s; decoding the PNG files",
                    folder / PACKED_FILE, SAMPLES_FILE)
        return None
    return images


def _decode_pngs(files: list[Path], table: pd.DataFrame, where: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    images = None
    for row, path in enumerate(tqdm(files, desc="read PNGs", unit="img", disable=len(files) < 1000)):
        try:
            with Image.open(path) as im:
                if im.mode != "RGB":
                    raise DataError(f"{where}, {_row(table, row)}: image '{table['path'].iloc[row]}' "
                                    f"is {im.mode}, expected 8-bit RGB")
                arr = np.asarray(im)
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{where}, {_row(table, row)}: unreadable image '{table['path'].iloc[row]}' ({e})") from None
        if images is None:
            images = np.empty((len(files), *arr.shape), dtype=np.uint8)
        elif arr.shape != images.shape[1:]:
            raise DataError(f"{where}, {_row(table, row)}: image '{table['path'].iloc[row]}' is "
                            f"{arr.shape[1]}x{arr.shape[0]}, the first image is {images.shape[2]}x{images.shape[1]}")
        images[row] = arr
    return images


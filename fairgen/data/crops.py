"""Face crops: one packed ``uint8`` array ``(N, H, W, 3)`` plus a Parquet index, from a CelebA root.

Three crop methods (``crops.method``), all at ``crops.resolution`` (32 or 64):

``eye_offset``
    The original internship report's crop: top-left corner = left eye - ``crops.eye_offset`` px in x and y, a
    fixed square of ``crops.box_size`` source px, resized to the output resolution.
``center``
    The common DCGAN convention: the centred ``crops.box_size`` square (108 of 178x218 by
    default), resized.
``aligned``
    A similarity transform (rotation + uniform scale + translation) fitted by least squares
    (Umeyama 1991; closed form in 2-D) from the five CelebA landmarks to :data:`TEMPLATE`, the
    canonical five points of a square face crop, applied with one bilinear affine warp.

Coordinates. Source and output positions are *pixel-index* coordinates: the centre of pixel
``i`` is ``i`` (CelebA's integer landmarks are pixel indices). Crop boxes (``crop_x0 ...
crop_y1``) are *pixel-edge* coordinates: pixel ``i`` covers ``[i, i + 1)``, so a box
``(x0, y0, x1, y1)`` covers columns ``x0 .. x1 - 1`` like :meth:`PIL.Image.Image.crop`. The six
``affine_*`` columns map a source pixel-index position to an output pixel-index position:
``u = a*x + b*y + c``, ``v = d*x + e*y + f`` (filled for every method; for box methods it is the
axis-aligned scale + shift of the box). Parts of a crop outside the source image are black.

Speed. When an image can be JPEG-decoded at 1/2, 1/4 or 1/8 scale and still leave at least one
decoded pixel per output pixel, PIL decodes it with DCT-domain downscaling
(:meth:`PIL.Image.Image.draft`). Images needed at full size (the 108 px ``eye_offset`` box at 64
px, say) are decoded by torchvision's libjpeg-turbo binding instead, which parses the header in
C and is about 1.5x faster than PIL's full decode (PIL remains the fallback and the judge of
every image the fast path declines: see :func:`decode`). Box methods then use an
antialiased bilinear resize of the box (``torch.nn.functional.interpolate(antialias=True)``,
PIL's filter, for integer boxes inside the image), ``aligned`` an antialiased pre-shrink of
the needed region (when the warp would shrink by more than :data:`MAX_WARP_SHRINK`) followed by
the one affine warp. Chunks of images go to ``crops.workers`` processes that write straight into
the output ``.npy`` opened as a memory map.

Bad input (``dataset.on_bad_image``): a missing, unreadable, non-image, truncated/corrupt or
wrongly sized image, a landmark outside the image and (``aligned``) degenerate landmarks are
either a :class:`~fairgen.common.errors.DataError` naming the file/annotation row (``error``; nothing
is written) or skipped, counted and listed in the summary (``skip``).
"""

from __future__ import annotations

import contextlib
import io
import math
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import simplejpeg
from PIL import Image, ImageFile, UnidentifiedImageError

from fairgen.common.errors import ConfigError, DataError

METHODS = ("eye_offset", "aligned", "center")
INDEX_KIND = "crops_index"

# Canonical landmark positions of an aligned square crop, as fractions of its side (x right,
# y down): left eye, right eye, nose, left and right mouth corner. Mirror-symmetric, with the
# proportions of (approximately) CelebA's mean aligned landmarks, eyes ~(69, 111) and (108, 111),
# nose ~(88, 135), mouth corners ~(72, 152) and (105, 152): mouth width 0.85 and eye-to-mouth
# drop 1.05 eye distances, nose 0.62 eye distances below the eyes. The eye distance is 0.28 of
# the side (between the common 148 px centre crop, 0.26, and the 108 px one, 0.36) and the
# eye/mouth midpoint sits at 0.58 of the height: the whole head with some hair and background.
# A typical CelebA face (39 px between the eyes) is then shrunk ~2.2x at 64 px and ~4.4x at 32
# px, so it is JPEG-draft-decoded at 1/2 or 1/4 without losing output resolution.
TEMPLATE = np.array([
    [0.36, 0.433],
    [0.64, 0.433],
    [0.50, 0.607],
    [0.381, 0.727],
    [0.619, 0.727],
])
LANDMARK_POINTS = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
BOX_COLUMNS = ("crop_x0", "crop_y0", "crop_x1", "crop_y1")
AFFINE_COLUMNS = ("affine_a", "affine_b", "affine_c", "affine_d", "affine_e", "affine_f")

# Largest shrink (source px per output px, after JPEG draft scaling) the bilinear warp does
# alone; beyond it the needed region is first shrunk with an antialiased resize.
MAX_WARP_SHRINK = 1.25
DRAFT_FACTORS = (8, 4, 2)
# Fewer images than this per worker process are not worth starting the process for (spawning
# one and importing numpy + PIL costs about as much as cropping ~1000 images).
MIN_IMAGES_PER_WORKER = 1000
RESIZE_FILTER = Image.Resampling.BILINEAR  # PIL's resize filters are antialiased (area-aware)

# Reasons an image is skipped (codes used in the summary) and how an error message says them.
REASONS = {
    "missing_file": "image file not found",
    "unreadable_file": "image file cannot be read",
    "not_an_image": "not an image file",
    "corrupt_image": "corrupt or truncated image",
    "wrong_size": "image has the wrong size",
    "landmark_outside_image": "landmark outside the image",
    "degenerate_landmarks": "landmarks are degenerate (all five points coincide)",
}


# ---------------------------------------------------------------------------------------------
# Geometry (pure functions)
# ---------------------------------------------------------------------------------------------


def template_points(resolution: int) -> np.ndarray:
    """:data:`TEMPLATE` in pixel-index coordinates of a ``resolution``-sided crop, shape (5, 2)."""
    return TEMPLATE * resolution - 0.5


def landmark_points(df) -> np.ndarray:
    """The five landmarks of each row of a CelebA frame as ``(N, 5, 2)`` float64 (x, y)."""
    cols = [f"{p}_{a}" for p in LANDMARK_POINTS for a in ("x", "y")]
    return df[cols].to_numpy(dtype=np.float64).reshape(len(df), 5, 2)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transforms mapping ``src`` points onto ``dst`` points.

    ``src`` and ``dst`` are ``(..., K, 2)`` (broadcast against each other). Returns ``(..., 2, 3)``
    matrices ``[[a, -b, tx], [b, a, ty]]`` minimising ``sum |s R p + t - q|^2`` over rotation R,
    scale s >= 0 and translation t (no reflection): Umeyama's solution, which in 2-D is
    ``a + ib = sum(conj(p') q') / sum |p'|^2`` with p', q' the centred points as complex numbers.
    Degenerate ``src`` (all points equal) gives NaNs.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src, dst = np.broadcast_arrays(src, dst)
    mp_, mq = src.mean(axis=-2), dst.mean(axis=-2)
    p, q = src - mp_[..., None, :], dst - mq[..., None, :]
    norm = (p ** 2).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (p * q).sum(axis=(-2, -1)) / norm
        b = (p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]).sum(axis=-1) / norm
    lin = np.stack([np.stack([a, -b], -1), np.stack([b, a], -1)], -2)
    t = mq - np.einsum("...ij,...j->...i", lin, mp_)
    return np.concatenate([lin, t[..., None]], axis=-1)


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of ``(..., 2, 3)`` affine matrices."""
    m = np.asarray(m, dtype=np.float64)
    lin_inv = np.linalg.inv(m[..., :2])
    t = -np.einsum("...ij,...j->...i", lin_inv, m[..., 2])
    return np.concatenate([lin_inv, t[..., None]], axis=-1)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply ``(..., 2, 3)`` matrices to ``(..., K, 2)`` points."""
    m = np.asarray(m, dtype=np.float64)
    return np.einsum("...ij,...kj->...ki", m[..., :2], np.asarray(pts, dtype=np.float64)) + m[..., None, :, 2]


def eye_offset_boxes(landmarks: np.ndarray, eye_offset: int, box_size: int) -> np.ndarray:
    """Boxes ``(N, 4)`` (pixel edges) whose top-left is the left eye minus ``eye_offset``."""
    x0 = landmarks[:, 0, 0] - eye_offset
    y0 = landmarks[:, 0, 1] - eye_offset
    return np.stack([x0, y0, x0 + box_size, y0 + box_size], axis=1).astype(np.float64)


def center_boxes(n: int, width: int, height: int, box_size: int) -> np.ndarray:
    """``n`` copies of the centred ``box_size`` square of a ``width`` x ``height`` image."""
    x0, y0 = (width - box_size) // 2, (height - box_size) // 2
    return np.tile(np.array([x0, y0, x0 + box_size, y0 + box_size], dtype=np.float64), (n, 1))


def box_affine(boxes: np.ndarray, resolution: int) -> np.ndarray:
    """Affine ``(N, 2, 3)`` (pixel-index coords) that a box crop resized to ``resolution`` is."""
    boxes = np.asarray(boxes, dtype=np.float64)
    sx = resolution / (boxes[:, 2] - boxes[:, 0])
    sy = resolution / (boxes[:, 3] - boxes[:, 1])
    zero = np.zeros_like(sx)
    # u + 0.5 = (x + 0.5 - x0) * sx
    return np.stack([
        np.stack([sx, zero, (0.5 - boxes[:, 0]) * sx - 0.5], -1),
        np.stack([zero, sy, (0.5 - boxes[:, 1]) * sy - 0.5], -1),
    ], -2)


def output_bbox(forward: np.ndarray, resolution: int) -> np.ndarray:
    """Source-space bounding box ``(N, 4)`` (pixel edges) of the output square of each transform."""
    lo, hi = -0.5, resolution - 0.5
    corners = np.array([[lo, lo], [hi, lo], [lo, hi], [hi, hi]])
    src = apply_affine(invert_affine(forward), corners) + 0.5
    return np.concatenate([src.min(axis=-2), src.max(axis=-2)], axis=-1)


def shrink_factor(forward: np.ndarray) -> np.ndarray:
    """Source pixels per output pixel of each ``(N, 2, 3)`` transform (1/sqrt|det|)."""
    with np.errstate(divide="ignore"):
        return 1.0 / np.sqrt(np.abs(np.linalg.det(forward[..., :2])))


def draft_factor(shrink: np.ndarray) -> np.ndarray:
    """JPEG DCT-domain downscale factor (1, 2, 4 or 8): the largest not above ``shrink``."""
    shrink = np.nan_to_num(np.asarray(shrink, dtype=np.float64), nan=1.0)
    out = np.ones(shrink.shape, dtype=np.int64)
    for k in sorted(DRAFT_FACTORS):
        out[shrink >= k] = k
    return out


@dataclass
class Plan:
    """Geometry of every row of a CelebA frame for one crop configuration."""

    method: str
    resolution: int
    forward: np.ndarray      # (N, 2, 3) source pixel index -> output pixel index
    boxes: np.ndarray        # (N, 4) source box (pixel edges); bounding box for 'aligned'
    draft: np.ndarray        # (N,) JPEG draft factor
    problem: np.ndarray      # (N,) object: None or (reason code, detail) from the annotations


def plan_crops(df, method: str, resolution: int, width: int, height: int,
               eye_offset: int = 15, box_size: int = 108) -> Plan:
    """Crop geometry for every row of ``df`` (read_celeba's columns), vectorised.

    Rows whose annotations make a crop impossible get a ``problem``: a landmark outside the
    ``width`` x ``height`` image, or (``aligned``) five coincident landmarks.
    """
    n = len(df)
    lm = landmark_points(df)
    problem = np.full(n, None, dtype=object)
    inside = (lm[..., 0] >= 0) & (lm[..., 0] < width) & (lm[..., 1] >= 0) & (lm[..., 1] < height)
    for i in np.flatnonzero(~inside.all(axis=1)):
        k = int(np.argmin(inside[i]))
        name = LANDMARK_POINTS[k]
        problem[i] = ("landmark_outside_image",
                      f"{name} at ({lm[i, k, 0]:g}, {lm[i, k, 1]:g}); the image is {width}x{height}")
    if method in ("eye_offset", "center"):
        if method == "eye_offset":
            boxes = eye_offset_boxes(lm, eye_offset, box_size)
        else:
            if box_size > min(width, height):
                raise ConfigError(f"config key 'crops.box_size': {box_size} does not fit in the "
                                  f"{width}x{height} images (center method)")
            boxes = center_boxes(n, width, height, box_size)
        forward = box_affine(boxes, resolution)
    elif method == "aligned":
        forward = fit_similarity(lm, template_points(resolution))
        bad = ~np.isfinite(forward).all(axis=(1, 2)) | (np.abs(forward[:, 0, 0]) + np.abs(forward[:, 1, 0]) == 0)
        for i in np.flatnonzero(bad):
            if problem[i] is None:
                problem[i] = ("degenerate_landmarks", f"all five landmarks at ({lm[i, 0, 0]:g}, {lm[i, 0, 1]:g})")
        # Give degenerate rows a harmless identity-like transform so the vector maths stays finite.
        forward[bad] = box_affine(center_boxes(int(bad.sum()), width, height, min(width, height)), resolution)
        boxes = output_bbox(forward, resolution)
    else:
        raise ConfigError(f"config key 'crops.method': unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return Plan(method, resolution, forward, boxes, draft_factor(shrink_factor(forward)), problem)


# ---------------------------------------------------------------------------------------------
# Rendering one image (runs in the worker processes)
# ---------------------------------------------------------------------------------------------


class BadImage(Exception):
    """An image that cannot be cropped: ``code`` is a key of :data:`REASONS`."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{REASONS[code]} ({detail})" if detail else REASONS[code])
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class RenderSpec:
    kind: str          # "box" or "warp"
    resolution: int
    width: int
    height: int


@contextlib.contextmanager
def _strict_truncation() -> Iterator[None]:
    """Make PIL raise on truncated files (it can be told to pad them silently)."""
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def read_bytes(path: str) -> bytes:
    """The file's bytes; raises BadImage (missing_file / unreadable_file)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise BadImage("missing_file", "") from None
    except OSError as e:
        raise BadImage("unreadable_file", e.strerror or str(e)) from None


def decode_turbo(data: bytes, spec: RenderSpec, draft: int) -> tuple[np.ndarray, float] | None:
    """Decode a well-formed JPEG with simplejpeg: ``((H', W', 3) uint8 RGB, scale)``, or None.

    simplejpeg calls libjpeg-turbo straight from C (PIL parses the JPEG header in Python, about a
    third of its time per CelebA image) and DCT-scales by ``draft`` like :meth:`PIL.Image.Image.draft`
    (same library, same pixels). None means "let PIL decide": not a JPEG, the wrong size, or any
    decoder error or warning (``strict``: a truncated file is one). :func:`decode` then reads the
    same bytes strictly and either succeeds or raises the BadImage with the precise reason, so
    both paths accept and reject exactly the same files, with the same messages.
    """
    if data[:2] != b"\xff\xd8":
        return None
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
        if (width, height) != (spec.width, spec.height):
            return None
        # the largest scale-down with at least width/draft x height/draft pixels: exactly 1/draft
        out = simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=-(-height // draft),
                                     min_width=-(-width // draft), strict=True)
    except ValueError:
        return None
    return out, float(draft)  # decoded pixel k covers source pixels [draft*k, draft*(k+1)), as in PIL


def resize_box_array(im: np.ndarray, box: np.ndarray, scale: float, resolution: int) -> np.ndarray | None:
    """Antialiased bilinear resize (PIL's filter, by torch) of ``box`` (source pixel edges) out of
    ``im`` (``(H, W, 3)`` uint8 decoded at 1/``scale``) to ``(resolution, resolution, 3)``; None
    when the scaled box is fractional or reaches outside ``im`` (:func:`render_box` does those)."""
    x0, y0, x1, y1 = (float(v) / scale for v in box)
    h, w = im.shape[:2]
    if not (x0.is_integer() and y0.is_integer() and x1.is_integer() and y1.is_integer()
            and 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        return None
    import torch
    import torch.nn.functional as F
    region = torch.from_numpy(im[int(y0):int(y1), int(x0):int(x1)]).permute(2, 0, 1).unsqueeze(0)
    out = F.interpolate(region, size=(resolution, resolution), mode="bilinear", antialias=True,
                        align_corners=False)
    return out[0].permute(1, 2, 0).numpy()


def decode(path: str, spec: RenderSpec, draft: int, data: bytes | None = None) -> tuple[Image.Image, float]:
    """Read (unless ``data`` is given) and decode one image with PIL, JPEG draft-scaled by
    ``draft``; return (RGB image, scale).

    ``scale`` is the decoded pixel size in source pixels (1, 2, 4 or 8). Raises BadImage.
    """
    if data is None:
        data = read_bytes(path)
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadImage("not_an_image", f"{len(data)} bytes, no known image header") from None
    except Exception as e:  # PIL raises several types (SyntaxError, OSError, ...) for broken headers
        raise BadImage("corrupt_image", f"{type(e).__name__}: {e}") from None
    if im.size != (spec.width, spec.height):
        raise BadImage("wrong_size", f"{im.size[0]}x{im.size[1]}, expected {spec.width}x{spec.height}")
    scale = 1.0
    if draft > 1 and im.format == "JPEG":
        got = im.draft("RGB", (spec.width // draft, spec.height // draft))
        if got is not None:
            scale = spec.width / got[1][2]
    try:
        im.load()
    except Exception as e:  # OSError 'image file is truncated', 'broken data stream', ...
        raise BadImage("corrupt_image", f"{type(e).__name__}: {e}") from None
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im, scale


def render_box(im: Image.Image, box: np.ndarray, scale: float, resolution: int) -> Image.Image:
    """Crop ``box`` (source pixel edges) out of ``im`` (decoded at 1/``scale``) and resize it.

    The crop is cut first (to the whole pixels that ``box`` touches; parts outside the image are
    black), so the filter never reads pixels beyond them: an integer box gives exactly "crop, then
    resize", which is also what :func:`resize_box_array` computes.
    """
    x0, y0, x1, y1 = (float(v) / scale for v in box)
    ix0, iy0 = math.floor(x0), math.floor(y0)
    region = im.crop((ix0, iy0, math.ceil(x1), math.ceil(y1)))
    return region.resize((resolution, resolution), RESIZE_FILTER, box=(x0 - ix0, y0 - iy0, x1 - ix0, y1 - iy0))


def pil_inverse(forward: np.ndarray) -> np.ndarray:
    """PIL ``AFFINE`` data ``(N, 6)`` of each forward transform: output -> source, continuous coords.

    PIL samples output pixel ``(i, j)`` at its centre ``(i + 0.5, j + 0.5)`` and reads the source
    in the same convention; with ``s = B o + t`` in pixel-index coordinates,
    ``s_c = B o_c + t + 0.5 - B (0.5, 0.5)``.
    """
    inv = invert_affine(forward)
    lin, t = inv[..., :2], inv[..., 2]
    off = t + 0.5 - lin.sum(axis=-1) * 0.5
    return np.concatenate([lin, off[..., None]], axis=-1).reshape(-1, 6)


def render_warp(im: Image.Image, inverse, scale: float, resolution: int) -> Image.Image:
    """Warp ``im`` (decoded at 1/``scale``) by ``inverse`` (see :func:`pil_inverse`) to a square.

    When the warp would shrink by more than :data:`MAX_WARP_SHRINK`, the region it reads is
    first shrunk with an antialiased resize so that the bilinear warp does not alias.
    """
    a, b, c, d, e, f = (float(v) / scale for v in inverse)  # decoded continuous coords
    shrink = math.sqrt(abs(a * e - b * d))  # decoded px per output px
    if shrink > MAX_WARP_SHRINK:
        # Region of the decoded image the warp reads (+1 px for the bilinear footprint).
        r = resolution
        xs = (c, a * r + c, b * r + c, a * r + b * r + c)
        ys = (f, d * r + f, e * r + f, d * r + e * r + f)
        w, h = im.size
        rx0, ry0 = max(0, math.floor(min(xs)) - 1), max(0, math.floor(min(ys)) - 1)
        rx1, ry1 = min(w, math.ceil(max(xs)) + 1), min(h, math.ceil(max(ys)) + 1)
        if rx1 > rx0 and ry1 > ry0:
            sw = max(1, round((rx1 - rx0) / shrink))
            sh = max(1, round((ry1 - ry0) / shrink))
            im = im.resize((sw, sh), RESIZE_FILTER, box=(rx0, ry0, rx1, ry1))
            # coordinates in the shrunk region: n = (s - r0) * k
            kx, ky = sw / (rx1 - rx0), sh / (ry1 - ry0)
            a, b, c = a * kx, b * kx, (c - rx0) * kx
            d, e, f = d * ky, e * ky, (f - ry0) * ky
    return im.transform((resolution, resolution), Image.Transform.AFFINE, (a, b, c, d, e, f),
                        Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))


def render_params(plan: Plan) -> np.ndarray:
    """What :func:`render` needs per image: the box (box methods) or :func:`pil_inverse` (aligned)."""
    return pil_inverse(plan.forward) if plan.method == "aligned" else plan.boxes


def render(path: str, params: np.ndarray, draft: int, spec: RenderSpec) -> np.ndarray:
    """One crop as an ``(H, W, 3)`` uint8 array; ``params`` is a row of :func:`render_params`."""
    data = read_bytes(path)
    fast = decode_turbo(data, spec, draft)
    if fast is not None:
        arr, scale = fast
        if spec.kind == "box":
            out = resize_box_array(arr, params, scale, spec.resolution)
            if out is not None:
                return out
        im = Image.fromarray(arr)
    else:
        im, scale = decode(path, spec, draft, data)
    if spec.kind == "box":
        out = render_box(im, params, scale, spec.resolution)
    else:
        out = render_warp(im, params, scale, spec.resolution)
    return np.asarray(out)


_WORKER: dict = {}


def _init_worker(array_path: str, spec: RenderSpec, threads: int | None = 1) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)  # one image at a time: intra-op threads would only contend
    _WORKER["out"] = np.load(array_path, mmap_mode="r+")
    _WORKER["spec"] = spec


def _render_chunk(job) -> tuple[int, list[tuple[int, str, str]], float]:
    """Render a chunk into the shared output; return (count, [(row, reason, detail), ...], CPU s)."""
    cpu0 = time.process_time()
    start, paths, params, drafts = job
    out, spec = _WORKER["out"], _WORKER["spec"]
    failures = []
    with _strict_truncation():
        for j, path in enumerate(paths):
            try:
                out[start + j] = render(path, params[j], int(drafts[j]), spec)
            except BadImage as e:
                out[start + j] = 0
                failures.append((start + j, e.code, e.detail))
    return len(paths), failures, time.process_time() - cpu0


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------


def resolve_workers(workers: int, n_images: int) -> int:
    """Worker processes for ``n_images``: ``workers`` (0 = the CPUs this process may use), but at
    most one per :data:`MIN_IMAGES_PER_WORKER` images."""
    if workers <= 0:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            workers = os.cpu_count() or 1
    return max(1, min(workers, n_images // MIN_IMAGES_PER_WORKER))


def _chunks(n: int, workers: int) -> list[tuple[int, int]]:
    size = int(min(512, max(16, math.ceil(n / (8 * workers)))))
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def render_all(paths: list[str], params: np.ndarray, drafts: np.ndarray, spec: RenderSpec,
               array_path: Path, workers: int, stop_at_first_failure: bool,
               progress: bool = True) -> tuple[list[tuple[int, str, str]], float]:
    """Render every image into a new ``.npy`` memory map at ``array_path`` (rows in order).

    Returns the failures ``(row, reason, detail)`` in row order and the CPU seconds the rendering
    took (all workers); with ``stop_at_first_failure`` returns as soon as the first chunk (in
    order) that has a failure is done.
    """
    from tqdm import tqdm

    n = len(paths)
    out = np.lib.format.open_memmap(array_path, mode="w+", dtype=np.uint8,
                                    shape=(n, spec.resolution, spec.resolution, 3))
    del out  # the workers open it themselves
    chunks = _chunks(n, workers)
    jobs = ((s, paths[s:e], params[s:e], drafts[s:e]) for s, e in chunks)
    failures: list[tuple[int, str, str]] = []
    cpu = 0.0
    with tqdm(total=n, unit="img", desc="crops", file=sys.stderr, disable=not progress,
              mininterval=1.0, smoothing=0.1) as bar:
        if workers <= 1:
            _init_worker(str(array_path), spec, threads=None)  # leave the caller's torch threads alone
            try:
                results: Iterator = map(_render_chunk, jobs)
                for count, fails, seconds in results:
                    bar.update(count)
                    cpu += seconds
                    failures.extend(fails)
                    if fails and stop_at_first_failure:
                        break
            finally:
                _WORKER.clear()
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(str(array_path), spec)) as pool:
                for count, fails, seconds in pool.imap(_render_chunk, jobs):
                    bar.update(count)
                    cpu += seconds
                    failures.extend(fails)
                    if fails and stop_at_first_failure:
                        break
    return failures, cpu


def compact(array_path: Path, keep: np.ndarray, block: int = 4096) -> None:
    """Rewrite the ``.npy`` at ``array_path`` keeping only rows ``keep`` (sorted), in blocks."""
    src = np.load(array_path, mmap_mode="r")
    tmp = array_path.with_name(array_path.name + ".compact")
    dst = np.lib.format.open_memmap(tmp, mode="w+", dtype=src.dtype, shape=(len(keep), *src.shape[1:]))
    for s in range(0, len(keep), block):
        dst[s:s + block] = src[keep[s:s + block]]
    dst.flush()
    del src, dst
    os.replace(tmp, array_path)


def bad_message(root: Path, image_id: str, path: str, code: str, detail: str, on_bad: str) -> str:
    from fairgen.data.celeba import LANDMARKS_FILE

    hint = " (set dataset.on_bad_image=skip to skip such images)" if on_bad == "error" else ""
    if code in ("landmark_outside_image", "degenerate_landmarks"):
        return f"{root / LANDMARKS_FILE}, row of {image_id}: {REASONS[code]}: {detail}{hint}"
    return f"{path}: {REASONS[code]}{f' ({detail})' if detail else ''}{hint}"


def write_previews(crops: np.ndarray, image_ids: list[str], folder: Path, n: int) -> int:
    """Write the first ``n`` crops as PNGs (``000000_<stem>.png``) plus a contact sheet ``grid.png``."""
    n = min(n, len(crops))
    for i in range(n):
        Image.fromarray(np.asarray(crops[i])).save(folder / f"{i:06d}_{Path(image_ids[i]).stem}.png")
    if n:
        contact_sheet(np.asarray(crops[:n])).save(folder / "grid.png")
    return n


def contact_sheet(images: np.ndarray, pad: int = 2, cols: int | None = None) -> Image.Image:
    """Tile ``(N, H, W, 3)`` images into a grid with ``pad`` px grey gutters: ``cols`` columns
    (default: a near-square grid); with ``cols`` given, N = 0 gives one empty grey row."""
    n, h, w, _ = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = max(1, math.ceil(n / cols))
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 128, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y:y + h, x:x + w] = images[i]
    return Image.fromarray(sheet)


def build_index(df, plan: Plan, rows: np.ndarray):
    """The index frame: CelebA columns of ``rows`` (in order) plus crop box and affine."""
    import pandas as pd

    from fairgen.data.celeba import ATTRIBUTE_NAMES, LANDMARK_NAMES

    cols = ["image_id", "split", *ATTRIBUTE_NAMES, *LANDMARK_NAMES]
    if "identity" in df.columns:
        cols.append("identity")
    index = df.iloc[rows][cols].reset_index(drop=True)
    boxes = plan.boxes[rows]
    affine = plan.forward[rows].reshape(len(rows), 6)
    extra = {c: boxes[:, k] for k, c in enumerate(BOX_COLUMNS)}
    extra.update({c: affine[:, k] for k, c in enumerate(AFFINE_COLUMNS)})
    return pd.concat([index, pd.DataFrame(extra)], axis=1)


def read_manifest_root(dataset: str | os.PathLike) -> Path:
    from fairgen.common.io import read_json

    manifest = read_json(dataset)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("root"), str):
        raise DataError(f"{dataset}: dataset manifest has no 'root' (the CelebA folder); "
                        "write it with 'fairgen dataset'")
    root = Path(manifest["root"])
    if not root.is_dir():
        raise DataError(f"{dataset}: dataset root {root} is not a folder")
    return root


#: rows of a crops array hashed into the index's ``array_fingerprint`` (evenly spaced, first and last included)
FINGERPRINT_ROWS = 256


def array_fingerprint(crops: np.ndarray) -> str:
    """A cheap content hash of a crops array: its shape and :data:`FINGERPRINT_ROWS` evenly spaced
    rows. The index records it, so a reader can tell a stale or foreign array (say, one left by an
    earlier run when a ``fairgen crops`` run was killed between publishing the index and the array)
    from the one the index describes, in milliseconds even for all of CelebA."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(repr(tuple(crops.shape)).encode() + str(crops.dtype).encode())
    if len(crops):
        rows = np.unique(np.linspace(0, len(crops) - 1, min(len(crops), FINGERPRINT_ROWS)).round().astype(np.int64))
        h.update(np.ascontiguousarray(crops[rows]).tobytes())
    return h.hexdigest()


def check_pairing(crops: np.ndarray, n_rows: int, meta: dict, array, index) -> None:
    """DataError unless ``crops`` is the array ``index`` describes: same length and, when the index
    records one (every index ``fairgen crops`` writes does), the same :func:`array_fingerprint`."""
    if len(crops) != n_rows:
        raise DataError(f"{array} has {len(crops)} images but {index} has {n_rows} rows")
    expected = meta.get("array_fingerprint")
    if expected is not None and array_fingerprint(crops) != expected:
        raise DataError(f"{array} is not the crops array that {index} describes (its content fingerprint differs: "
                        "a stale array from another run, or a `fairgen crops` run stopped between writing the "
                        "two); run the crops step again")


def load_crops_array(array: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """The packed crops array in the ``.npy`` file ``array`` (memory-mapped read-only when ``mmap``),
    unchecked. DataError naming the file when it is missing or unreadable."""
    array = Path(array)
    if not array.is_file():
        raise DataError(f"{array}: crops array not found")
    try:
        return np.load(array, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{array}: not a readable .npy array ({e})") from None


def read_crops(array: str | os.PathLike, index: str | os.PathLike, columns: list[str] | None = None,
               mmap: bool = True):
    """The one loader of the packed crops: the index's ``columns`` (default: image_id, split and the
    crop geometry) and the array, checked to be uint8 (N, H, W, 3) at the index's resolution and
    to be the array the index describes (:func:`check_pairing`).

    Returns ``(crops, index_frame, metadata)``; ``crops`` is memory-mapped read-only when ``mmap``.
    Raises DataError naming the file for a missing or unreadable file or a mismatch.
    """
    from fairgen.common.io import read_parquet

    if columns is None:
        columns = ["image_id", "split", *BOX_COLUMNS, *AFFINE_COLUMNS]
    df, meta = read_parquet(index, INDEX_KIND, columns=columns)
    crops = load_crops_array(array, mmap)
    res = meta.get("resolution")
    if (crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3
            or (res is not None and crops.shape[1:3] != (res, res))):
        size = f"{res}x{res} " if res is not None else ""
        raise DataError(f"{array}: expected a uint8 (N, H, W, 3) array of {size}RGB crops, got {crops.dtype} "
                        f"{crops.shape}, which does not match the index ({index})")
    check_pairing(crops, len(df), meta, array, index)
    return crops, df, meta


def binary_column(df, col: str, where: Path) -> np.ndarray:
    """Column ``col`` of an index frame as int64 0/1; DataError naming ``where`` and the first row
    holding anything else."""
    values = df[col].to_numpy()
    bad = np.flatnonzero(~np.isin(values, (0, 1)))
    if bad.size:
        raise DataError(f"{where}, row {bad[0]}: column '{col}' must be 0/1, found {values[bad[0]]!r}")
    return values.astype(np.int64)

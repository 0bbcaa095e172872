"""fairgen.data.crops: geometry, rendering, the stage's outputs, bad input, determinism."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fairgen.common import config as config_mod
from fairgen.common.errors import ConfigError, DataError
from fairgen.common.io import read_parquet, write_json
from fairgen.data import crops
from fairgen.data.celeba import (
    ATTRIBUTE_NAMES,
    BBOX_COLUMNS,
    IMAGE_DIR,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    LANDMARK_NAMES,
    write_annotations,
)
from fairgen.stages import crops as crops_stage

W, H = IMAGE_WIDTH, IMAGE_HEIGHT
# Roughly CelebA's mean aligned landmarks.
MEAN_LANDMARKS = np.array([[69, 111], [108, 111], [88, 134], [72, 152], [105, 152]])


# ---------------------------------------------------------------------------------------------
# Fixtures: small folders in CelebA's exact layout
# ---------------------------------------------------------------------------------------------


def color_of(k: int) -> tuple[int, int, int]:
    """A distinct, JPEG-robust background colour per image (identifies rows of the output)."""
    return (40 + (k * 53) % 170, 40 + (k * 97) % 170, 40 + (k * 31) % 170)


def face_image(landmarks: np.ndarray, color, size=(W, H), marker: bool = True) -> Image.Image:
    """A flat colour image with a Gaussian white blob (sigma 2.5 px) centred on the left eye."""
    w, h = size
    a = np.empty((h, w, 3), dtype=np.float64)
    a[:] = color
    if marker:
        yy, xx = np.mgrid[0:h, 0:w]
        lx, ly = landmarks[0]
        blob = np.exp(-((xx - lx) ** 2 + (yy - ly) ** 2) / (2 * 2.5 ** 2))
        a = a * (1 - blob[..., None]) + 255 * blob[..., None]
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def make_celeba(root: Path, n: int = 12, seed: int = 0, jitter: int = 3) -> pd.DataFrame:
    """Write ``n`` images plus the five annotation files; return read_celeba's frame of them."""
    rng = np.random.default_rng(seed)
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        lm = MEAN_LANDMARKS + rng.integers(-jitter, jitter + 1, size=(5, 2))
        image_id = f"{k + 1:06d}.jpg"
        face_image(lm, color_of(k)).save(root / IMAGE_DIR / image_id, quality=95)
        row = {"image_id": image_id, "split": ("train", "train", "valid", "test")[k % 4]}
        row.update({a: int(v) for a, v in zip(ATTRIBUTE_NAMES, rng.integers(0, 2, len(ATTRIBUTE_NAMES)))})
        row.update({c: int(v) for c, v in zip(LANDMARK_NAMES, lm.reshape(-1))})
        row["identity"] = 1 + k // 2
        row.update(dict(zip(BBOX_COLUMNS, (10, 20, 100, 120))))
        rows.append(row)
    df = pd.DataFrame(rows)
    write_annotations(root, df)
    return df


@pytest.fixture(autouse=True)
def _workers_for_tiny_datasets(monkeypatch):
    """Let the tiny test folders use several worker processes."""
    monkeypatch.setattr(crops, "MIN_IMAGES_PER_WORKER", 1)


@pytest.fixture
def celeba(tmp_path):
    root = tmp_path / "celeba"
    df = make_celeba(root)
    manifest = tmp_path / "dataset.json"
    write_json({"root": str(root), "source": "test"}, manifest)
    return root, manifest, df


def cfg(**crops_cfg):
    on_bad = crops_cfg.pop("on_bad_image", "error")
    crops_cfg.setdefault("workers", 1)
    return config_mod.validate({"dataset": {"on_bad_image": on_bad}, "crops": crops_cfg})


def run_stage(tmp_path, manifest, c, tag="out"):
    out = tmp_path / tag
    paths = dict(array=out / "crops.npy", index=out / "index.parquet", summary=out / "summary.json",
                 png_dir=out / "previews")
    result = crops_stage.run(c, str(manifest), **{k: str(v) for k, v in paths.items()}, progress=False)
    return result, paths


def tilted_landmarks(scale: float) -> np.ndarray:
    """MEAN_LANDMARKS scaled about the face centre, right eye and mouth corner 6 px higher."""
    centre = np.array([89.0, 120.0])
    lm = np.rint(centre + (MEAN_LANDMARKS - centre) * scale).astype(int)
    lm[[1, 4], 1] -= 6
    return lm


def blob_centroid(img: np.ndarray, background) -> np.ndarray:
    """Intensity-weighted (x, y) centroid of what is brighter than the background (pixel index)."""
    excess = np.clip(img.astype(np.float64).mean(axis=2) - np.mean(background) - 8, 0, None)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    return np.array([(excess * xx).sum(), (excess * yy).sum()]) / excess.sum()


# ---------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    t = math.radians(angle_deg)
    c, s = scale * math.cos(t), scale * math.sin(t)
    return np.array([[c, -s, tx], [s, c, ty]])


def umeyama_svd(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Independent oracle: Umeyama (1991) with the SVD, as in the paper."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    r = u @ sign @ vt
    c = np.trace(np.diag(sv) @ sign) / (s ** 2).sum(1).mean()
    return np.hstack([c * r, (mu_d - c * r @ mu_s)[:, None]])


def test_pure_similarity_maps_landmarks_exactly_onto_template():
    tpl = crops.template_points(64)
    for m in (similarity(12.0, 0.55, 3.0, -7.5), similarity(-30.0, 1.7, 40.0, 2.0), similarity(0, 1, 0, 0)):
        # Landmarks that a pure similarity maps onto the template.
        src = crops.apply_affine(crops.invert_affine(m), tpl)
        fit = crops.fit_similarity(src, tpl)
        np.testing.assert_allclose(fit, m, atol=1e-10)
        np.testing.assert_allclose(crops.apply_affine(fit, src), tpl, atol=1e-10)


def test_fit_similarity_matches_svd_umeyama_and_is_batched():
    rng = np.random.default_rng(1)
    src = MEAN_LANDMARKS + rng.normal(0, 4, size=(20, 5, 2))
    dst = crops.template_points(32)
    batched = crops.fit_similarity(src, dst)
    assert batched.shape == (20, 2, 3)
    for i in range(20):
        np.testing.assert_allclose(batched[i], umeyama_svd(src[i], dst), atol=1e-9)
        lin = batched[i, :, :2]
        assert np.linalg.det(lin) > 0  # no reflection
        np.testing.assert_allclose(lin @ lin.T, np.eye(2) * np.linalg.det(lin), atol=1e-12)  # similarity


def test_fit_similarity_is_least_squares_optimal():
    rng = np.random.default_rng(2)
    src = MEAN_LANDMARKS + rng.normal(0, 5, size=(5, 2))
    dst = crops.template_points(64)
    best = crops.fit_similarity(src, dst)

    def sse(params):
        a, b, tx, ty = params
        m = np.array([[a, -b, tx], [b, a, ty]])
        return ((crops.apply_affine(m, src) - dst) ** 2).sum()

    p0 = np.array([best[0, 0], best[1, 0], best[0, 2], best[1, 2]])
    for _ in range(200):
        assert sse(p0) <= sse(p0 + rng.normal(0, 1e-3, 4) * [1, 1, 100, 100]) + 1e-12


def test_degenerate_landmarks_give_nan():
    src = np.tile([[50.0, 60.0]], (5, 1))
    assert np.isnan(crops.fit_similarity(src, crops.template_points(64))).all()


def test_template_is_symmetric_and_inside_the_crop():
    t = crops.TEMPLATE
    np.testing.assert_allclose(t[0, 0] + t[1, 0], 1.0)
    np.testing.assert_allclose(t[3, 0] + t[4, 0], 1.0)
    assert t[2, 0] == 0.5 and t[0, 1] == t[1, 1] and t[3, 1] == t[4, 1]
    assert ((t > 0) & (t < 1)).all()
    np.testing.assert_allclose(crops.template_points(32), t * 32 - 0.5)


def test_eye_offset_box_is_left_eye_minus_offset():
    lm = MEAN_LANDMARKS[None].astype(float)
    np.testing.assert_array_equal(crops.eye_offset_boxes(lm, 15, 108), [[54, 96, 162, 204]])
    np.testing.assert_array_equal(crops.eye_offset_boxes(lm, 0, 20), [[69, 111, 89, 131]])


def test_center_box_is_the_dcgan_crop():
    np.testing.assert_array_equal(crops.center_boxes(2, 178, 218, 108), [[35, 55, 143, 163]] * 2)
    np.testing.assert_array_equal(crops.center_boxes(1, 178, 218, 148), [[15, 35, 163, 183]])


def test_box_affine_maps_box_edges_to_output_edges():
    boxes = np.array([[54.0, 96.0, 162.0, 204.0], [-10.0, 5.0, 90.0, 105.0]])
    m = crops.box_affine(boxes, 64)
    # edge x0 (index x0 - 0.5) -> output index -0.5; edge x1 -> 63.5
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        out = crops.apply_affine(m[i], np.array([[x0 - 0.5, y0 - 0.5], [x1 - 0.5, y1 - 0.5]]))
        np.testing.assert_allclose(out, [[-0.5, -0.5], [63.5, 63.5]], atol=1e-12)
    np.testing.assert_allclose(crops.output_bbox(m, 64), boxes, atol=1e-12)


def test_output_bbox_of_rotated_square():
    m = similarity(45.0, 1.0, 0.0, 0.0)  # output = R45 * source; the 64 px square rotated by -45
    box = crops.output_bbox(m[None], 64)[0]
    half_diag = 64 / math.sqrt(2)
    # centre of the output square (index 31.5) maps to R-45 * (31.5, 31.5) = (31.5*sqrt2, 0)
    np.testing.assert_allclose(box, [31.5 * math.sqrt(2) - half_diag + 0.5, -half_diag + 0.5,
                                     31.5 * math.sqrt(2) + half_diag + 0.5, half_diag + 0.5], atol=1e-9)


def test_worker_count(monkeypatch):
    monkeypatch.setattr(crops, "MIN_IMAGES_PER_WORKER", 1000)
    assert crops.resolve_workers(4, 100_000) == 4
    assert crops.resolve_workers(4, 2_500) == 2
    assert crops.resolve_workers(4, 10) == 1
    assert crops.resolve_workers(0, 100_000) == len(os.sched_getaffinity(0))


def test_draft_factor_never_upsamples():
    np.testing.assert_array_equal(crops.draft_factor(np.array([0.5, 1.0, 1.69, 1.99, 2.0, 3.4, 4.0, 7.9, 8.0, 20.0])),
                                  [1, 1, 1, 1, 2, 2, 4, 4, 8, 8])


def test_plan_flags_landmarks_outside_and_degenerate():
    lm = np.tile(MEAN_LANDMARKS.reshape(1, 10), (4, 1))
    lm[1, 0] = 178  # lefteye_x == width: outside
    lm[2, 9] = -1   # rightmouth_y
    lm[3] = 80      # all five at (80, 80)
    df = pd.DataFrame(lm, columns=list(LANDMARK_NAMES))
    plan = crops.plan_crops(df, "aligned", 64, W, H)
    assert plan.problem[0] is None
    assert plan.problem[1][0] == "landmark_outside_image" and "lefteye at (178, 111)" in plan.problem[1][1]
    assert plan.problem[2][0] == "landmark_outside_image" and "rightmouth" in plan.problem[2][1]
    assert plan.problem[3][0] == "degenerate_landmarks"
    assert np.isfinite(plan.forward).all() and np.isfinite(plan.boxes).all()
    # Box methods don't fit a transform, so coincident landmarks are fine there.
    assert crops.plan_crops(df, "eye_offset", 64, W, H).problem[3] is None


def test_center_box_larger_than_image_is_a_config_error():
    df = pd.DataFrame([MEAN_LANDMARKS.reshape(-1)], columns=list(LANDMARK_NAMES))
    with pytest.raises(ConfigError, match="crops.box_size"):
        crops.plan_crops(df, "center", 64, W, H, box_size=200)


# ---------------------------------------------------------------------------------------------
# Rendering: a marker at the left eye lands where the geometry says
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,resolution,lm_scale", [
    ("eye_offset", 64, 1.0),   # full decode, resize
    ("eye_offset", 32, 1.0),   # JPEG draft 1/2 then resize
    ("center", 64, 1.0),
    ("center", 32, 1.0),
    ("aligned", 64, 1.0),      # shrink 2.2: JPEG draft 1/2, then the warp alone
    ("aligned", 32, 1.0),      # shrink 4.4: draft 1/4
    ("aligned", 64, 0.5),      # small face, shrink 1.1: warp only
    ("aligned", 64, 0.8),      # shrink 1.78: full decode, antialiased pre-shrink, warp
    ("aligned", 32, 0.75),     # shrink 3.3: draft 1/2, pre-shrink, warp
])
def test_marker_at_left_eye_lands_at_expected_pixel(tmp_path, method, resolution, lm_scale):
    # A face scaled by lm_scale about its centre and tilted (right side 6 px up): aligned must
    # rotate it back.
    lm = tilted_landmarks(lm_scale)
    path = tmp_path / "000001.jpg"
    face_image(lm, (60, 70, 80)).save(path, quality=100, subsampling=0)
    df = pd.DataFrame([lm.reshape(-1)], columns=list(LANDMARK_NAMES))
    plan = crops.plan_crops(df, method, resolution, W, H)
    spec = crops.RenderSpec("warp" if method == "aligned" else "box", resolution, W, H)
    out = crops.render(str(path), crops.render_params(plan)[0], int(plan.draft[0]), spec)
    assert out.shape == (resolution, resolution, 3) and out.dtype == np.uint8
    expected = crops.apply_affine(plan.forward[0], lm[:1].astype(float))[0]
    got = blob_centroid(out, (60, 70, 80))
    np.testing.assert_allclose(got, expected, atol=0.1)
    if method == "aligned":
        np.testing.assert_allclose(expected, crops.template_points(resolution)[0], atol=0.06 * resolution)
    else:
        # Far from the marker the crop is the flat background colour.
        assert np.abs(out[-4:, -4:].astype(int) - (60, 70, 80)).max() <= 3


def _tilted_plan(lm_scale: float, resolution: int):
    df = pd.DataFrame([tilted_landmarks(lm_scale).reshape(-1)], columns=list(LANDMARK_NAMES))
    return crops.plan_crops(df, "aligned", resolution, W, H)


@pytest.mark.parametrize("lm_scale,resolution", [(0.5, 64), (0.8, 64), (1.0, 64), (0.75, 32), (1.0, 32)])
def test_aligned_crop_matches_supersampled_reference_warp(tmp_path, lm_scale, resolution):
    """Whole-crop geometry (draft + pre-shrink + warp) against an 8x supersampled warp of the full image."""
    rng = np.random.default_rng(4)
    smooth = Image.fromarray(rng.integers(0, 255, size=(9, 8, 3), dtype=np.uint8)).resize((W, H), Image.Resampling.BICUBIC)
    path = tmp_path / "smooth.jpg"
    smooth.save(path, quality=100, subsampling=0)
    plan = _tilted_plan(lm_scale, resolution)
    inv = crops.render_params(plan)[0]
    out = crops.render(str(path), inv, int(plan.draft[0]), crops.RenderSpec("warp", resolution, W, H))
    k = 8
    a, b, c, d, e, f = inv
    ref = Image.open(path).convert("RGB").transform((resolution * k,) * 2, Image.Transform.AFFINE,
                                                    (a / k, b / k, c, d / k, e / k, f), Image.Resampling.BILINEAR)
    diff = np.abs(out.astype(float) - np.asarray(ref.reduce(k), dtype=float))
    assert diff.mean() < 1.0 and diff.max() <= 8


@pytest.mark.parametrize("lm_scale,resolution", [(0.8, 64), (1.0, 64), (0.75, 32)])
def test_aligned_crop_does_not_alias(lm_scale, resolution):
    """A 1-px checkerboard shrunk by >1.25 must come out flat grey, not as a moire pattern."""
    yy, xx = np.mgrid[0:H, 0:W]
    board = Image.fromarray(np.repeat((((xx + yy) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2))
    plan = _tilted_plan(lm_scale, resolution)
    out = np.asarray(crops.render_warp(board, crops.render_params(plan)[0], 1.0, resolution), dtype=float)
    inner = out[4:-4, 4:-4]
    assert abs(inner.mean() - 127.5) < 2 and inner.std() < 3


def test_draft_decoding_matches_full_decoding(tmp_path):
    rng = np.random.default_rng(3)
    small = rng.integers(0, 255, size=(22, 18, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((W, H), Image.Resampling.BICUBIC)
    path = tmp_path / "a.jpg"
    img.save(path, quality=95)
    spec = crops.RenderSpec("box", 32, W, H)
    box = np.array([35.0, 55.0, 143.0, 163.0])
    full = crops.render(str(path), box, 1, spec).astype(int)
    draft = crops.render(str(path), box, 2, spec).astype(int)
    assert np.abs(full - draft).mean() < 3.0
    im, scale = crops.decode(str(path), spec, 2)
    assert scale == 2.0 and im.size == (89, 109)


def _pil_only_render(monkeypatch, path, params, draft, spec):
    """``crops.render`` with the simplejpeg fast path switched off (PIL decodes everything)."""
    with monkeypatch.context() as m:
        m.setattr(crops, "decode_turbo", lambda data, spec, draft: None)
        return crops.render(str(path), params, draft, spec)


@pytest.mark.parametrize("kind,resolution,draft", [("box", 64, 1), ("box", 32, 2), ("warp", 64, 2), ("warp", 64, 1),
                                                   ("warp", 32, 4)])
def test_fast_decode_path_matches_pil_path(tmp_path, monkeypatch, kind, resolution, draft):
    """simplejpeg decodes (and DCT-scales) to PIL's exact pixels; torch's antialiased bilinear box
    resize is PIL's filter up to rounding."""
    rng = np.random.default_rng(4)
    img = Image.fromarray(rng.integers(0, 255, size=(22, 18, 3), dtype=np.uint8)).resize((W, H), Image.Resampling.BICUBIC)
    path = tmp_path / "a.jpg"
    img.save(path, quality=92)
    spec = crops.RenderSpec(kind, resolution, W, H)
    im_pil, scale_pil = crops.decode(str(path), spec, draft)
    arr, scale = crops.decode_turbo(path.read_bytes(), spec, draft)
    assert scale == scale_pil == draft
    np.testing.assert_array_equal(arr, np.asarray(im_pil))
    if kind == "box":
        params = np.array([54.0, 96.0, 162.0, 204.0])
    else:
        params = crops.render_params(_tilted_plan(1.0, resolution))[0]
    fast = crops.render(str(path), params, draft, spec).astype(int)
    slow = _pil_only_render(monkeypatch, path, params, draft, spec).astype(int)
    assert fast.shape == slow.shape == (resolution, resolution, 3)
    # same filter and geometry (crop, then resize); only the fixed-point rounding differs
    assert np.abs(fast - slow).max() <= 2 and np.abs(fast - slow).mean() < 0.1


def test_fast_decode_path_declines_truncated_and_foreign_files(tmp_path):
    """Anything but a complete JPEG of the right size goes to PIL, which names the problem."""
    path = tmp_path / "a.jpg"
    face_image(MEAN_LANDMARKS, (120, 90, 60)).save(path, quality=95)
    data = path.read_bytes()
    spec = crops.RenderSpec("box", 64, W, H)
    assert crops.decode_turbo(data, spec, 1) is not None
    assert crops.decode_turbo(data[: len(data) // 2], spec, 1) is None          # truncated
    assert crops.decode_turbo(data, crops.RenderSpec("box", 64, W + 2, H), 1) is None  # wrong size
    png = tmp_path / "b.png"
    face_image(MEAN_LANDMARKS, (120, 90, 60)).save(png)
    assert crops.decode_turbo(png.read_bytes(), spec, 1) is None                 # not a JPEG
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(crops.BadImage) as e:
        crops.render(str(path), np.array([54.0, 96.0, 162.0, 204.0]), 1, spec)
    assert e.value.code == "corrupt_image"


def test_box_partly_outside_is_padded_black(tmp_path):
    path = tmp_path / "a.jpg"
    face_image(MEAN_LANDMARKS, (200, 200, 200), marker=False).save(path, quality=95)
    spec = crops.RenderSpec("box", 64, W, H)
    out = crops.render(str(path), np.array([-89.0, 0.0, 89.0, 178.0]), 1, spec).astype(int)
    assert out[:, :30].max() <= 5          # left half: outside the image
    assert np.abs(out[:, 34:] - 200).max() <= 4  # right half: the image


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["aligned", "eye_offset", "center"])
def test_outputs_shapes_index_and_row_order(tmp_path, celeba, method):
    root, manifest, df = celeba
    result, p = run_stage(tmp_path, manifest, cfg(method=method, resolution=32, export_png=5))
    arr = np.load(p["array"])
    assert arr.shape == (12, 32, 32, 3) and arr.dtype == np.uint8
    index, meta = read_parquet(p["index"], "crops_index")
    expected_cols = ["image_id", "split", *ATTRIBUTE_NAMES, *LANDMARK_NAMES, "identity",
                     *crops.BOX_COLUMNS, *crops.AFFINE_COLUMNS]
    assert list(index.columns) == expected_cols
    assert index["image_id"].tolist() == df["image_id"].tolist()
    pd.testing.assert_frame_equal(index[["split", *ATTRIBUTE_NAMES, *LANDMARK_NAMES]].astype("int64", errors="ignore"),
                                  df[["split", *ATTRIBUTE_NAMES, *LANDMARK_NAMES]].astype("int64", errors="ignore"),
                                  check_dtype=False)
    assert set(np.unique(index[list(ATTRIBUTE_NAMES)].to_numpy())) <= {0, 1}
    assert meta["method"] == method and meta["resolution"] == 32 and meta["source_root"] == str(root)
    # Row i of the array is image i: its background colour identifies it.
    for i in range(len(df)):
        corner = arr[i, -3:, -3:].reshape(-1, 3).mean(0) if method != "aligned" else arr[i, 1:4, 1:4].reshape(-1, 3).mean(0)
        np.testing.assert_allclose(corner, color_of(i), atol=4)
    # Index geometry is consistent: box methods = exact boxes; affine maps the left eye inside.
    lm = crops.landmark_points(index)
    if method == "eye_offset":
        np.testing.assert_array_equal(index["crop_x0"], index["lefteye_x"] - 15)
        np.testing.assert_array_equal(index["crop_y1"], index["lefteye_y"] - 15 + 108)
    elif method == "center":
        assert (index[list(crops.BOX_COLUMNS)].to_numpy() == [35, 55, 143, 163]).all()
    else:
        m = index[list(crops.AFFINE_COLUMNS)].to_numpy().reshape(-1, 2, 3)
        mapped = np.stack([crops.apply_affine(m[i], lm[i]) for i in range(len(m))])
        assert np.abs(mapped - crops.template_points(32)).max() < 2.5
        assert (index["crop_x0"] < index["lefteye_x"]).all() and (index["crop_x1"] > index["righteye_x"]).all()
    # Previews: 5 PNGs in array order plus the contact sheet.
    pngs = sorted(x.name for x in p["png_dir"].iterdir())
    assert pngs == [f"{i:06d}_{i + 1:06d}.png" for i in range(5)] + ["grid.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(p["png_dir"] / "000003_000004.png")), arr[3])
    assert Image.open(p["png_dir"] / "grid.png").size == (3 * 34 + 2, 2 * 34 + 2)
    # read_crops round trip
    arr2, index2, meta2 = crops.read_crops(p["array"], p["index"])
    np.testing.assert_array_equal(arr2, arr)
    assert meta2 == meta


def test_summary_contents(tmp_path, celeba):
    root, manifest, df = celeba
    result, p = run_stage(tmp_path, manifest, cfg(method="aligned", resolution=64, export_png=0))
    summary = json.loads(p["summary"].read_text())
    assert summary == result
    assert summary["counts"] == {"train": 6, "valid": 3, "test": 3}
    assert summary["n_listed"] == summary["n_cropped"] == 12 and summary["n_skipped"] == 0
    assert summary["skipped"] == [] and summary["skipped_by_reason"] == {}
    assert summary["method"] == "aligned" and summary["resolution"] == 64
    assert summary["shape"] == [12, 64, 64, 3]
    assert summary["seconds"] > 0 and summary["images_per_second"] > 0
    assert summary["source_root"] == str(root)
    # png_dir exists (empty) even with export_png=0
    assert p["png_dir"].is_dir() and list(p["png_dir"].iterdir()) == []


def test_deterministic_across_worker_counts(tmp_path, celeba):
    root, manifest, df = celeba
    outs = []
    for workers in (1, 2, 3):
        result, p = run_stage(tmp_path, manifest, cfg(method="aligned", resolution=32, workers=workers,
                                                      export_png=2), tag=f"w{workers}")
        assert result["workers"] == workers
        outs.append((np.load(p["array"]), read_parquet(p["index"], "crops_index")[0],
                     (p["png_dir"] / "grid.png").read_bytes()))
    for arr, index, grid in outs[1:]:
        np.testing.assert_array_equal(arr, outs[0][0])
        pd.testing.assert_frame_equal(index, outs[0][1])
        assert grid == outs[0][2]


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def _corrupt(root: Path, df: pd.DataFrame) -> dict[str, str]:
    """Break 6 of the 12 images in 6 different ways; return image_id -> expected reason."""
    img = root / IMAGE_DIR
    data = (img / "000002.jpg").read_bytes()
    (img / "000002.jpg").write_bytes(data[: len(data) // 2])                 # truncated
    (img / "000003.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"garbage" * 50)  # corrupt JPEG
    (img / "000005.jpg").write_text("this is not an image\n")               # non-image .jpg
    (img / "000007.jpg").unlink()                                           # missing
    Image.new("RGB", (200, 200), (10, 20, 30)).save(img / "000009.jpg")     # wrong size
    bad = df.copy()
    bad.loc[bad["image_id"] == "000011.jpg", "nose_x"] = 190                  # landmark outside
    write_annotations(root, bad)
    return {"000002.jpg": "corrupt_image", "000003.jpg": "corrupt_image", "000005.jpg": "not_an_image",
            "000007.jpg": "missing_file", "000009.jpg": "wrong_size", "000011.jpg": "landmark_outside_image"}


def test_bad_images_skip_mode(tmp_path, celeba):
    root, manifest, df = celeba
    expected = _corrupt(root, df)
    result, p = run_stage(tmp_path, manifest, cfg(method="eye_offset", resolution=32, on_bad_image="skip",
                                                  export_png=3, workers=2))
    got = {s["image_id"]: s["reason"] for s in result["skipped"]}
    assert got == expected
    assert [s["image_id"] for s in result["skipped"]] == sorted(expected)  # annotation order
    assert result["n_skipped"] == 6 and result["n_cropped"] == 6
    assert result["skipped_by_reason"] == {"corrupt_image": 2, "not_an_image": 1, "missing_file": 1,
                                           "wrong_size": 1, "landmark_outside_image": 1}
    truncated = next(s for s in result["skipped"] if s["image_id"] == "000002.jpg")
    assert "truncated" in truncated["detail"] and truncated["file"].endswith("img_align_celeba/000002.jpg")
    assert "200x200" in next(s for s in result["skipped"] if s["image_id"] == "000009.jpg")["detail"]
    kept = [i for i in df["image_id"] if i not in expected]
    index, _ = read_parquet(p["index"], "crops_index")
    assert index["image_id"].tolist() == kept
    arr = np.load(p["array"])
    assert arr.shape == (6, 32, 32, 3)
    for row, image_id in enumerate(kept):  # compaction kept the right rows, in order
        k = int(image_id[:6]) - 1
        np.testing.assert_allclose(arr[row, -3:, -3:].reshape(-1, 3).mean(0), color_of(k), atol=4)
    assert result["counts"] == {s: int((index["split"] == s).sum()) for s in ("train", "valid", "test")}
    assert sorted(x.name for x in p["png_dir"].iterdir())[0] == f"000000_{kept[0][:6]}.png"


@pytest.mark.parametrize("breakage,pattern", [
    ("truncated", r"000002\.jpg: corrupt or truncated image \(OSError: image file is truncated"),
    ("corrupt", r"000002\.jpg: corrupt or truncated image"),
    ("text", r"000002\.jpg: not an image file"),
    ("missing", r"000002\.jpg: image file not found"),
    ("size", r"000002\.jpg: image has the wrong size \(200x200, expected 178x218\)"),
    ("landmark", r"list_landmarks_align_celeba\.txt, row of 000002\.jpg: landmark outside the image: "
                 r"leftmouth at \(-4, \d+\); the image is 178x218"),
    ("degenerate", r"list_landmarks_align_celeba\.txt, row of 000002\.jpg: landmarks are degenerate"),
])
def test_bad_image_error_mode_names_file_and_writes_nothing(tmp_path, celeba, breakage, pattern):
    root, manifest, df = celeba
    f = root / IMAGE_DIR / "000002.jpg"
    if breakage == "truncated":
        f.write_bytes(f.read_bytes()[:-300])
    elif breakage == "corrupt":
        f.write_bytes(f.read_bytes()[:200] + b"\x00" * 3000)
    elif breakage == "text":
        f.write_text("<html>not found</html>")
    elif breakage == "missing":
        f.unlink()
    elif breakage == "size":
        Image.new("RGB", (200, 200)).save(f)
    else:
        bad = df.copy()
        if breakage == "landmark":
            bad.loc[1, "leftmouth_x"] = -4
        else:
            bad.loc[1, list(LANDMARK_NAMES)] = 100
        write_annotations(root, bad)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match=pattern) as e:
        run_stage(tmp_path, manifest, cfg(method="aligned", resolution=64, workers=2))
    assert "dataset.on_bad_image=skip" in str(e.value)
    assert list(out.iterdir()) == []  # nothing written, no temporary files left behind


def test_truncation_is_detected_even_if_pil_is_told_to_allow_it(tmp_path, celeba, monkeypatch):
    from PIL import ImageFile

    root, manifest, df = celeba
    f = root / IMAGE_DIR / "000004.jpg"
    f.write_bytes(f.read_bytes()[:-200])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(DataError, match="000004.jpg: corrupt or truncated"):
        run_stage(tmp_path, manifest, cfg(method="center", workers=1))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_all_images_bad_is_an_error_even_in_skip_mode(tmp_path, celeba):
    root, manifest, df = celeba
    for f in (root / IMAGE_DIR).iterdir():
        f.unlink()
    with pytest.raises(DataError, match="no image could be cropped"):
        run_stage(tmp_path, manifest, cfg(on_bad_image="skip"))
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_manifest_without_root(tmp_path):
    m = tmp_path / "dataset.json"
    write_json({"source": "synthetic"}, m)
    with pytest.raises(DataError, match="no 'root'"):
        run_stage(tmp_path, m, cfg())


def test_read_crops_rejects_mismatched_files(tmp_path, celeba):
    root, manifest, df = celeba
    _, p = run_stage(tmp_path, manifest, cfg(resolution=32, export_png=0))
    np.save(p["array"], np.zeros((3, 32, 32, 3), np.uint8))
    with pytest.raises(DataError, match="has 3 images but"):
        crops.read_crops(p["array"], p["index"])
    np.save(p["array"], np.zeros((12, 64, 64, 3), np.uint8))
    with pytest.raises(DataError, match="does not match the index"):
        crops.read_crops(p["array"], p["index"])


def test_every_reader_refuses_a_stale_array_of_the_right_shape(tmp_path, celeba):
    """The index records a content fingerprint of its array: an array of the same shape left by
    another run (e.g. a crops run killed between publishing the index and the array) is refused
    by the crops, classifier and quality readers instead of being paired with the wrong labels."""
    from fairgen.common.config import validate
    from fairgen.eval.classifier import load_real
    from fairgen.eval.quality import load_real as quality_load_real

    root, manifest, df = celeba
    _, p = run_stage(tmp_path, manifest, cfg(resolution=32, export_png=0))
    good = np.load(p["array"])
    _, _, meta = crops.read_crops(p["array"], p["index"])
    assert meta["array_fingerprint"] == crops.array_fingerprint(good)
    full = validate({})
    assert len(load_real(full, p["array"], p["index"])["test"]) > 0  # the pair as written is accepted
    stale = good.copy()
    stale[len(stale) // 2] ^= 1  # one changed crop among the sampled rows is enough
    np.save(p["array"], stale)
    for read in (lambda: crops.read_crops(p["array"], p["index"]),
                 lambda: load_real(full, p["array"], p["index"]),
                 lambda: quality_load_real(p["array"], p["index"], full)):
        with pytest.raises(DataError, match="is not the crops array that .*index.parquet describes"):
            read()


def test_cli_crops(tmp_path, celeba, capsys):
    from fairgen.cli import main

    root, manifest, df = celeba
    out = tmp_path / "cli"
    args = ["crops", "--set", "crops.workers=1", "--set", "crops.resolution=32", "--dataset", str(manifest),
            "--array", str(out / "c.npy"), "--index", str(out / "i.parquet"), "--summary", str(out / "s.json"),
            "--png-dir", str(out / "png")]
    assert main(args) == 0
    assert np.load(out / "c.npy").shape == (12, 32, 32, 3)
    (root / IMAGE_DIR / "000001.jpg").write_bytes(b"nope")
    for f in out.iterdir():
        f.unlink() if f.is_file() else None
    assert main(args) == 2
    assert "000001.jpg: not an image file" in capsys.readouterr().err
    assert os.listdir(out) == ["png"]  # only the untouched previews folder of the first run

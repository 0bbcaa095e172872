"""Throughput of ``fairgen crops`` against the original internship report's naive loop, on a CelebA-format folder.

    python benchmarks/bench_crops.py                      # 20k images, 2 workers, all three methods
    python benchmarks/bench_crops.py --n 5000 --methods aligned --workers 2

The folder (``--root``, default ``resources/bench_celeba``; reused when it already holds ``--n``
images) comes from ``fairgen.data.procedural_celeba.make_synthetic_celeba`` when that exists, otherwise
from a plain generator here: 178x218 JPEGs with smooth random content and noise (about the
file size of CelebA's, ~7-10 KB) and jittered, slightly rotated/scaled CelebA-like landmarks.

The naive seed approach is: for each image, single process, PIL open, crop the eye_offset box,
resize to the resolution, save one PNG. Both are timed in the same run on the same images; the
output is images/s for each, the ratio, and the time extrapolated to all of CelebA (202,599).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fairgen.common import config as config_mod
from fairgen.common.io import write_json
from fairgen.data.celeba import (
    ATTRIBUTE_NAMES,
    BBOX_COLUMNS,
    IMAGE_DIR,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    LANDMARK_NAMES,
    N_IMAGES,
    read_celeba,
    write_annotations,
)
from fairgen.stages import crops as crops_stage

MEAN_LANDMARKS = np.array([[69, 111], [108, 111], [88, 134], [72, 152], [105, 152]], dtype=np.float64)


def _plain_image(k: int) -> None:
    """Write image ``k`` (1-based) of the plain synthetic folder given by the global _ROOT."""
    rng = np.random.default_rng(k)
    coarse = rng.integers(0, 256, size=(11, 9, 3), dtype=np.uint8)
    im = np.asarray(Image.fromarray(coarse).resize((IMAGE_WIDTH, IMAGE_HEIGHT), Image.Resampling.BICUBIC),
                    dtype=np.int16)
    im = im + rng.integers(-6, 7, size=im.shape, dtype=np.int16)
    Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(_ROOT / IMAGE_DIR / f"{k:06d}.jpg", quality=90)


def _init(root: Path) -> None:
    global _ROOT
    _ROOT = root


def make_plain_celeba(root: Path, n: int, workers: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    angle = np.radians(rng.normal(0, 4, n))
    scale = rng.normal(1, 0.06, n)
    centre = MEAN_LANDMARKS.mean(0)
    rot = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1), np.stack([np.sin(angle), np.cos(angle)], -1)], -2)
    lm = np.einsum("nij,kj->nki", rot * scale[:, None, None], MEAN_LANDMARKS - centre) + centre
    lm = np.rint(lm + rng.normal(0, 1.0, lm.shape)).astype(np.int64)
    df = pd.DataFrame({"image_id": [f"{k:06d}.jpg" for k in range(1, n + 1)],
                       "split": rng.choice(["train", "valid", "test"], n, p=[0.8, 0.1, 0.1])})
    for a in ATTRIBUTE_NAMES:
        df[a] = rng.integers(0, 2, n)
    for j, c in enumerate(LANDMARK_NAMES):
        df[c] = lm.reshape(n, 10)[:, j]
    df["identity"] = rng.integers(1, max(2, n // 20), n)
    for c, v in zip(BBOX_COLUMNS, (95, 71, 226, 313)):
        df[c] = v
    with mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(root,)) as pool:
        for _ in pool.imap_unordered(_plain_image, range(1, n + 1), chunksize=256):
            pass
    write_annotations(root, df)  # last: a folder with annotations is complete


def ensure_dataset(root: Path, n: int, workers: int) -> str:
    if (root / "list_attr_celeba.txt").is_file():
        try:
            if len(read_celeba(root)) == n:
                return "reused"
        except Exception:
            pass
        shutil.rmtree(root)
    try:
        from fairgen.data.procedural_celeba import make_synthetic_celeba
    except ImportError:
        make_synthetic_celeba = None
    if make_synthetic_celeba is not None:
        make_synthetic_celeba(root, n_images=n, workers=workers, progress=False)
        return "fairgen.data.procedural_celeba.make_synthetic_celeba"
    make_plain_celeba(root, n, workers)
    return "plain JPEG generator (benchmarks/bench_crops.py)"


def naive_seed(root: Path, out: Path, n: int, resolution: int, eye_offset: int = 15,
               box: int = 108) -> tuple[float, float]:
    """The seed loop: open, crop, resize, save a PNG per image, one process.

    Returns (wall seconds, CPU seconds) of the loop.
    """
    df = read_celeba(root).iloc[:n]
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    for image_id, lx, ly in zip(df["image_id"], df["lefteye_x"], df["lefteye_y"]):
        im = Image.open(root / IMAGE_DIR / image_id).convert("RGB")
        x0, y0 = int(lx) - eye_offset, int(ly) - eye_offset
        im.crop((x0, y0, x0 + box, y0 + box)).resize((resolution, resolution), Image.Resampling.BILINEAR) \
          .save(out / f"{Path(image_id).stem}.png")
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="images in the synthetic folder")
    p.add_argument("--root", default="resources/bench_celeba", help="CelebA-format folder (made or reused)")
    p.add_argument("--workers", type=int, default=2, help="crop workers (0 = all cores)")
    p.add_argument("--resolution", type=int, default=64, choices=(32, 64))
    p.add_argument("--methods", default="eye_offset,aligned,center")
    p.add_argument("--naive-n", type=int, default=None, help="images for the naive loop (default: all)")
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)

    root = Path(args.root).resolve()
    t0 = time.perf_counter()
    origin = ensure_dataset(root, args.n, max(1, args.workers))
    print(f"dataset: {root} ({args.n} images, {origin}, {time.perf_counter() - t0:.1f} s)")
    sizes = [e.stat().st_size for e in os.scandir(root / IMAGE_DIR)]
    print(f"mean JPEG size: {np.mean(sizes) / 1024:.1f} KiB")

    results = {"n": args.n, "workers": args.workers, "resolution": args.resolution, "dataset": origin,
               "cpu_count": os.cpu_count(), "methods": {}}
    with tempfile.TemporaryDirectory(prefix="bench_crops.", dir=root.parent) as tmp:
        tmp = Path(tmp)
        manifest = tmp / "dataset.json"
        write_json({"root": str(root)}, manifest)
        naive_n = min(args.naive_n or args.n, args.n)
        naive_s, naive_cpu = naive_seed(root, tmp / "naive", naive_n, args.resolution)
        naive_rate = naive_n / naive_s
        naive_us = 1e6 * naive_cpu / naive_n
        results["naive"] = {"n": naive_n, "seconds": naive_s, "images_per_second": naive_rate,
                            "cpu_us_per_image": naive_us}
        print(f"naive seed loop (1 process, PNG per image): {naive_n} images in {naive_s:.1f} s = "
              f"{naive_rate:,.0f} images/s wall; {naive_us:.0f} CPU-us/image; "
              f"whole CelebA: {N_IMAGES / naive_rate / 60:.1f} min")
        for method in args.methods.split(","):
            cfg = config_mod.validate({"crops": {"method": method, "resolution": args.resolution,
                                                 "workers": args.workers, "export_png": 64}})
            out = tmp / method
            s = crops_stage.run(cfg, str(manifest), str(out / "crops.npy"), str(out / "index.parquet"),
                          str(out / "summary.json"), str(out / "png"), progress=False)
            rate = s["images_per_second"]
            results["methods"][method] = {k: s[k] for k in ("seconds", "crop_seconds", "images_per_second",
                                                            "crop_images_per_second", "n_draft_decoded",
                                                            "workers", "render_cpu_seconds")}
            us = s["render_cpu_us_per_image"]
            # What the CPU cost alone allows on `workers` cores with nothing else running.
            ideal = s["workers"] * 1e6 / us
            results["methods"][method].update(speedup_vs_naive=rate / naive_rate, cpu_us_per_image=us,
                                              cpu_bound_images_per_second=ideal)
            print(f"fairgen crops {method:10s} ({s['workers']} workers): {s['n_cropped']} images in "
                  f"{s['seconds']:.2f} s = {rate:,.0f} images/s wall (decode+crop phase "
                  f"{s['crop_images_per_second']:,.0f}/s, {s['n_draft_decoded']} draft-decoded), "
                  f"{rate / naive_rate:.2f}x naive; whole CelebA: {N_IMAGES / rate:.0f} s")
            print(f"    {us:.0f} CPU-us/image ({naive_us / us:.1f}x less than naive): CPU-bound rate on "
                  f"{s['workers']} free cores {ideal:,.0f} images/s, whole CelebA {N_IMAGES / ideal:.0f} s")
    load = os.getloadavg()
    results["load_average_1_5_15min"] = load
    print(f"load average at the end (1/5/15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on "
          f"{os.cpu_count()} CPUs (wall rates above are only meaningful when this is below the CPU count)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

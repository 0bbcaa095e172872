"""``fairgen crops`` (rule ``crops``): landmark-based face crops of every image in the manifest into
one packed uint8 array plus a Parquet index (splits, attributes, crop geometry), with a summary of
skipped images and optional PNG previews. The geometry and decoding live in :mod:`fairgen.data.crops`."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import numpy as np

from fairgen.common.errors import DataError
from fairgen.data.crops import (
    INDEX_KIND,
    TEMPLATE,
    RenderSpec,
    array_fingerprint,
    bad_message,
    build_index,
    compact,
    plan_crops,
    read_manifest_root,
    render_all,
    render_params,
    resolve_workers,
    write_previews,
)

log = logging.getLogger(__name__)


def run(cfg: dict, dataset: str, array: str, index: str, summary: str, png_dir: str | None = None,
        progress: bool = True) -> dict:
    """The ``fairgen crops`` stage: crops of every image of the dataset into ``array`` + ``index``.

    Writes ``array`` (``(N, R, R, 3)`` uint8 ``.npy``), ``index`` (Parquet kind ``crops_index``;
    row ``i`` describes ``array[i]``), ``summary`` (JSON) and, when ``png_dir`` is given, the first
    ``crops.export_png`` crops as PNGs plus ``grid.png`` there (the folder is always created).
    Everything is written atomically; on a DataError nothing is written. Returns the summary.
    """
    from fairgen.common.io import atomic_path, read_json, write_json, write_parquet
    from fairgen.data.celeba import IMAGE_HEIGHT, IMAGE_WIDTH, SPLITS
    from fairgen.data.sources import load_index

    t0 = time.perf_counter()
    c = cfg["crops"]
    method, resolution = c["method"], int(c["resolution"])
    on_bad = cfg["dataset"]["on_bad_image"]
    root = read_manifest_root(dataset)
    df, image_dir = load_index(read_json(dataset))
    if len(df) == 0:
        raise DataError(f"{root}: the dataset lists no images")
    plan = plan_crops(df, method, resolution, IMAGE_WIDTH, IMAGE_HEIGHT,
                      eye_offset=int(c["eye_offset"]), box_size=int(c["box_size"]))
    ids = df["image_id"].tolist()
    paths = [str(image_dir / i) for i in ids]  # read_celeba checked that every id is a plain file name

    skipped: list[dict] = []

    def bad(row: int, code: str, detail: str) -> None:
        if on_bad == "error":
            raise DataError(bad_message(root, ids[row], paths[row], code, detail, on_bad))
        skipped.append({"row": row, "image_id": ids[row], "split": df["split"].iat[row], "file": paths[row],
                        "reason": code, "detail": detail})

    for row in np.flatnonzero(plan.problem != None):  # noqa: E711 (elementwise)
        bad(int(row), *plan.problem[row])
    candidates = np.flatnonzero(plan.problem == None)  # noqa: E711
    workers = resolve_workers(int(c["workers"]), len(candidates))
    spec = RenderSpec("warp" if method == "aligned" else "box", resolution, IMAGE_WIDTH, IMAGE_HEIGHT)
    params = render_params(plan)[candidates]
    log.info("cropping %d images (%s, %dx%d) from %s with %d worker(s)", len(candidates), method,
             resolution, resolution, root, workers)

    array, index, summary = Path(array), Path(index), Path(summary)
    previews = atomic_path(png_dir, is_dir=True) if png_dir is not None else contextlib.nullcontext()
    with atomic_path(array) as tmp_array, previews as tmp_png:
        t_crop = time.perf_counter()
        failures, render_cpu = render_all([paths[i] for i in candidates], params, plan.draft[candidates], spec,
                                          tmp_array, workers, stop_at_first_failure=(on_bad == "error"),
                                          progress=progress)
        crop_seconds = time.perf_counter() - t_crop
        for k, code, detail in failures:
            bad(int(candidates[k]), code, detail)
        failed = np.array([k for k, _, _ in failures], dtype=np.int64)
        keep_local = np.setdiff1d(np.arange(len(candidates)), failed)
        skipped.sort(key=lambda s: s["row"])  # row = position in the annotation files
        if len(keep_local) == 0:
            first = skipped[0]
            raise DataError(f"{root}: no image could be cropped ({len(skipped)} skipped; the first: " +
                            bad_message(root, first["image_id"], first["file"], first["reason"], first["detail"],
                                         "skip") + ")")
        if len(keep_local) < len(candidates):
            compact(tmp_array, keep_local)
        rows = candidates[keep_local]
        frame = build_index(df, plan, rows)
        n_png = 0
        if tmp_png is not None:
            n_png = write_previews(np.load(tmp_array, mmap_mode="r"), frame["image_id"].tolist(), tmp_png,
                                   int(c["export_png"]))
        meta = {"method": method, "resolution": resolution, "source_root": str(root), "n_images": len(rows),
                "array_fingerprint": array_fingerprint(np.load(tmp_array, mmap_mode="r")),
                "coordinates": "affine_* map source pixel index (x, y) to crop pixel index; crop_* are source pixel edges"}
        if method == "eye_offset":
            meta.update(eye_offset=int(c["eye_offset"]), box_size=int(c["box_size"]))
        elif method == "center":
            meta.update(box_size=int(c["box_size"]))
        else:
            meta.update(template=TEMPLATE.tolist())
        write_parquet(frame, index, INDEX_KIND, metadata=meta)
    seconds = time.perf_counter() - t0
    x0, y0, x1, y1 = plan.boxes[rows].T
    by_reason: dict[str, int] = {}
    for s in skipped:
        by_reason[s["reason"]] = by_reason.get(s["reason"], 0) + 1
    split_counts = frame["split"].value_counts()
    result = {
        "method": method,
        "resolution": resolution,
        "source_root": str(root),
        "on_bad_image": on_bad,
        "workers": workers,
        "n_listed": len(df),
        "n_cropped": len(rows),
        "n_skipped": len(skipped),
        "counts": {s: int(split_counts.get(s, 0)) for s in SPLITS},
        "skipped_by_reason": by_reason,
        "skipped": skipped,
        "n_partly_outside_image": int(((x0 < 0) | (y0 < 0) | (x1 > IMAGE_WIDTH) | (y1 > IMAGE_HEIGHT)).sum()),
        "n_draft_decoded": int((plan.draft[rows] > 1).sum()),
        "n_png": n_png,
        "seconds": round(seconds, 3),
        "crop_seconds": round(crop_seconds, 3),
        "images_per_second": round(len(rows) / seconds, 1) if seconds > 0 else None,
        "crop_images_per_second": round(len(candidates) / crop_seconds, 1) if crop_seconds > 0 else None,
        # CPU time of the decode+crop work in all workers (robust to other load on the machine)
        "render_cpu_seconds": round(render_cpu, 3),
        "render_cpu_us_per_image": round(1e6 * render_cpu / len(candidates), 1),
        "array": str(array),
        "index": str(index),
        "shape": [len(rows), resolution, resolution, 3],
    }
    write_json(result, summary)
    log.info("cropped %d images, skipped %d, in %.1f s (%.0f images/s)", len(rows), len(skipped), seconds,
             len(rows) / seconds)
    return result

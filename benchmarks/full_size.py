"""Full-size readiness on the CPU: a CelebA-sized dataset through dataset, crops, GAN and classifier.

    nice -n 10 python benchmarks/full_size.py --workdir /tmp/fairgen_full --out full_size.json

1. Builds a Kaggle-layout copy of CelebA's size: 202,599 images with the official split sizes
   (162,770 / 19,867 / 19,962, in file order as in CelebA), rendered by the embedded synthetic
   dataset (one worker) and hard-linked into the Kaggle folder. ``--distinct N`` renders only N
   images and links each under several names (the annotation rows repeat with them), to try the
   script quickly. Not timed as a stage.
2. Runs each stage as its own ``fairgen`` command, one worker, ``OMP_NUM_THREADS=1``:
   ``dataset`` (celeba_local, Kaggle layout, ``check_md5`` on, i.e. the release's counts are
   checked), ``crops`` (``--resolution``, default 64 as in config/paper.yaml), ``train-gan``
   (fgan_dp, config/paper.yaml, ``--gan-steps`` steps, default 50) and ``train-classifier``
   (real, config/paper.yaml, one epoch) on a ``--classifier-images`` (default 5,000) image subset
   of the crops (80% train, 10% valid, 10% test, the first rows of each split).
3. Reports per stage the wall time, CPU time and peak resident memory: ``ru_maxrss`` of the
   stage's process from ``wait4`` (which covers its worker processes), and the peaks of its process
   tree's anonymous and file-backed RSS polled from /proc every 0.2 s. They are set beside the crops
   array's size and a bare ``python -c 'import torch, fairgen...'``. The peak anonymous RSS above
   that baseline, in crops arrays, bounds from above the copies of the crops a stage holds: it
   also counts the framework's working memory (about 1 GB while training on the CPU, measured with
   ``--n-images 400``, where the crops are 5 MiB), so it means something only at full size.
   File-backed pages are memory-mapped files (the array written or read through a memmap), which
   the kernel can write back and drop.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPLIT_SIZES = {"train": 162_770, "valid": 19_867, "test": 19_962}
STAGES = ("dataset", "crops", "gan", "classifier")


def split_sizes(n: int) -> dict[str, int]:
    """CelebA's split sizes, or (``--n-images`` for a quick try of this script) the same shares of ``n``."""
    if n == sum(SPLIT_SIZES.values()):
        return dict(SPLIT_SIZES)
    valid, test = (round(n * SPLIT_SIZES[s] / sum(SPLIT_SIZES.values())) for s in ("valid", "test"))
    return {"train": n - valid - test, "valid": valid, "test": test}


def build_copy(work: Path, distinct: int, n: int, seed: int = 0) -> Path:
    """A Kaggle-layout copy of ``n`` images made of ``distinct`` synthetic images (hard links)."""
    from fairgen.common import config
    from fairgen.data import celeba as C
    from fairgen.data import procedural_celeba as S
    from fairgen.data import sources

    src = work / "distinct"
    if not (src / S.PARAMS_FILE).exists():
        cfg = config.validate({"seed": seed, "dataset": {"synthetic": {"n_images": distinct, "workers": 1}}})
        S.make_synthetic_celeba(src, workers=1, progress=True, **sources.synthetic_kwargs(cfg))
    root = work / "celeba"
    if (root / C.KAGGLE_FILES[C.ATTR_FILE]).is_file():
        return root
    base = C.read_celeba(src)
    rows = np.arange(n) % len(base)
    frame = base.iloc[rows].reset_index(drop=True)
    frame["image_id"] = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    sizes = split_sizes(n)
    frame["split"] = np.repeat(list(sizes), list(sizes.values()))
    tmp = work / "celeba.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    images = tmp / C.KAGGLE_IMAGE_DIR
    images.mkdir(parents=True)
    src_ids = base["image_id"].tolist()
    for i, k in enumerate(rows):
        os.link(src / C.IMAGE_DIR / src_ids[k], images / frame["image_id"].iat[i])
    C.write_annotations(tmp, frame, layout=C.KAGGLE)
    os.replace(tmp, root)
    return root


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _rss_kib(pid: int) -> tuple[int, int]:
    """(anonymous + shared-memory RSS, file-backed RSS) of one process in KiB (0, 0 once it is gone)."""
    anon = file = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssShmem:")):
                    anon += int(line.split()[1])
                elif line.startswith("RssFile:"):
                    file += int(line.split()[1])
    except OSError:
        pass
    return anon, file


class Sampler(threading.Thread):
    """Polls the process tree of ``pid`` every ``every`` seconds; keeps the peak anonymous and file RSS.

    Anonymous memory is what a process holds itself (arrays it allocated); file-backed pages are
    memory-mapped files (the crops array written or read through a memmap) that the kernel can
    write back and drop."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every, self.done = pid, every, threading.Event()
        self.peak_anon = self.peak_file = 0

    def run(self):
        while not self.done.is_set():
            sizes = [_rss_kib(p) for p in _tree(self.pid)]
            self.peak_anon = max(self.peak_anon, sum(a for a, _ in sizes))
            self.peak_file = max(self.peak_file, sum(f for _, f in sizes))
            self.done.wait(self.every)


def measure(name: str, cmd: list[str], log: Path) -> dict:
    """Run ``cmd``: its wall seconds, peak RSS (its own and its children's, from wait4) and the
    peaks of anonymous and file-backed RSS of its process tree (polled, :class:`Sampler`)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        sampler = Sampler(p.pid)
        sampler.start()
        _, status, usage = os.wait4(p.pid, 0)
        sampler.done.set()
        sampler.join()
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise RuntimeError(f"stage {name} failed ({rc}); see {log}:\n{log.read_text()[-3000:]}")
    out = {"stage": name, "seconds": round(wall, 1), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
           "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # ru_maxrss is in KiB on Linux
           "peak_anon_mib": round(sampler.peak_anon / 1024, 1), "peak_file_mib": round(sampler.peak_file / 1024, 1)}
    print(f"[{name}] {out['seconds']} s, peak RSS {out['peak_rss_mib']} MiB (anonymous {out['peak_anon_mib']}, "
          f"file-backed {out['peak_file_mib']})", flush=True)
    return out


def subset(array: Path, index: Path, out_array: Path, out_index: Path, n: int) -> None:
    """The first rows of each split (80/10/10 of ``n``) as a crops array + index of their own."""
    from fairgen.common.io import read_parquet, save_npy, write_parquet
    from fairgen.data.crops import INDEX_KIND, array_fingerprint

    df, meta = read_parquet(index, INDEX_KIND)
    want = {"train": n - 2 * (n // 10), "valid": n // 10, "test": n // 10}
    rows = np.concatenate([np.flatnonzero(df["split"].to_numpy() == s)[:k] for s, k in want.items()])
    images = np.load(array, mmap_mode="r")[rows]
    save_npy(images, out_array)
    meta = {**meta, "n_images": len(rows), "array_fingerprint": array_fingerprint(images)}
    write_parquet(df.iloc[rows].reset_index(drop=True), out_index, INDEX_KIND, metadata=meta)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--distinct", type=int, default=sum(SPLIT_SIZES.values()),
                    help="distinct synthetic images rendered (default all 202,599; fewer are hard-linked under several names)")
    ap.add_argument("--n-images", type=int, default=sum(SPLIT_SIZES.values()),
                    help="images of the copy (default CelebA's 202,599; smaller only to try this script)")
    ap.add_argument("--resolution", type=int, choices=[32, 64], default=64)
    ap.add_argument("--gan-steps", type=int, default=50)
    ap.add_argument("--classifier-images", type=int, default=5000)
    ap.add_argument("--gan-width", type=int, default=None, help="gan.width (default config/paper.yaml's 64)")
    ap.add_argument("--classifier-arch", choices=["cnn", "resnet18"], default=None,
                    help="classifier.arch (default config/paper.yaml's resnet18)")
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                    help="stages to run (default all; later stages reuse the earlier stages' files in --workdir)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    root = build_copy(work, args.distinct, args.n_images)
    release = args.n_images == sum(SPLIT_SIZES.values())  # the release's counts are checked then
    print(f"CelebA-sized Kaggle-layout copy at {root} ({time.perf_counter() - t0:.0f} s to build)", flush=True)

    fg = [sys.executable, "-m", "fairgen"]
    paper = ["--config", str(ROOT / "config" / "paper.yaml"), "--set", "device=cpu"]
    gan_set = ["--set", f"gan.width={args.gan_width}"] if args.gan_width else []
    clf_set = ["--set", f"classifier.arch={args.classifier_arch}"] if args.classifier_arch else []
    d = work / "results"
    d.mkdir(exist_ok=True)
    array, index = d / "crops.npy", d / "index.parquet"
    stages = [measure("baseline (python + torch + fairgen imports)", [sys.executable, "-c",
                      "import torch, fairgen.cli, fairgen.eval.classifier, fairgen.stages.train_gan"], d / "baseline.log")]
    run = set(args.stages)
    if "dataset" in run:
        stages.append(measure("dataset", fg + [
            "dataset", "--set", "dataset.source=celeba_local", "--set", f"dataset.celeba_root={root}",
            "--set", f"dataset.check_md5={str(release).lower()}", "--out", str(d / "dataset.json")], d / "dataset.log"))
    if "crops" in run:
        stages.append(measure("crops", fg + [
            "crops", "--set", "crops.workers=1", "--set", f"crops.resolution={args.resolution}",
            "--set", "crops.export_png=16", "--dataset", str(d / "dataset.json"), "--array", str(array),
            "--index", str(index), "--summary", str(d / "crops_summary.json"), "--png-dir", str(d / "previews")],
            d / "crops.log"))
    if "gan" in run:
        shutil.rmtree(d / "gan", ignore_errors=True)
        shutil.rmtree(d / "gan.state", ignore_errors=True)
        stages.append(measure(f"train-gan fgan_dp ({args.gan_steps} steps)", fg + [
            "train-gan", *paper, *gan_set, "--set", f"gan.steps={args.gan_steps}", "--set", "gan.log_every=10",
            "--set", f"gan.sample_every={args.gan_steps}", "--set", f"gan.checkpoint_every={args.gan_steps}",
            "--run", "fgan_dp", "--array", str(array), "--index", str(index), "--out-dir", str(d / "gan")],
            d / "gan.log"))
    if "classifier" in run:
        sub_array, sub_index = d / "subset.npy", d / "subset.parquet"
        subset(array, index, sub_array, sub_index, args.classifier_images)
        shutil.rmtree(d / "classifier", ignore_errors=True)
        stages.append(measure(f"train-classifier real (1 epoch, {args.classifier_images:,} images)", fg + [
            "train-classifier", *paper, *clf_set, "--set", "classifier.epochs=1", "--method", "real",
            "--array", str(sub_array), "--index", str(sub_index), "--out-dir", str(d / "classifier")],
            d / "classifier.log"))

    crops_mib = array.stat().st_size / 2**20
    base_mib = stages[0]["peak_anon_mib"]
    for s in stages[1:]:
        s["anon_over_baseline_in_crops_arrays"] = round((s["peak_anon_mib"] - base_mib) / crops_mib, 2)
    manifest = json.loads((d / "dataset.json").read_text())
    crops_summary = json.loads((d / "crops_summary.json").read_text())
    report = {"n_images": manifest["n_images"], "splits": manifest["splits"], "layout": manifest["layout"],
              "resolution": args.resolution, "crops_array_mib": round(crops_mib, 1),
              "distinct_images": args.distinct, "gan_width": args.gan_width or 64,
              "classifier_arch": args.classifier_arch or "resnet18",
              "n_cropped": crops_summary["n_cropped"], "stages": stages,
              "more_than_one_copy": [s["stage"] for s in stages[1:] if s["anon_over_baseline_in_crops_arrays"] > 1.0]}
    print(f"\n{report['n_images']:,} images ({report['splits']}), {report['layout']} layout; crops array "
          f"{crops_mib:.0f} MiB ({args.resolution} px)")
    print(f"{'stage':<48} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13} {'anon MiB':>9} {'file MiB':>9} "
          f"{'(anon-base)/crops':>18}")
    for s in stages:
        print(f"{s['stage']:<48} {s['seconds']:>8.1f} {s['cpu_seconds']:>8.1f} {s['peak_rss_mib']:>13.0f} "
              f"{s['peak_anon_mib']:>9.0f} {s['peak_file_mib']:>9.0f} {s.get('anon_over_baseline_in_crops_arrays', ''):>18}")
    print("stages whose anonymous RSS above the baseline exceeds one crops array (an upper bound on the copies they "
          "hold; it includes torch's working memory): " + (", ".join(report["more_than_one_copy"]) or "none"))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

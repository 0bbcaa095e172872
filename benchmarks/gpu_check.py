"""A prepared GPU check: the tiny config end to end with ``device: cuda``, fp32 and then bf16.

    python benchmarks/gpu_check.py                      # on a GPU machine: fp32 then bf16
    python benchmarks/gpu_check.py --device cpu         # the dry run (what the tests run)
    python benchmarks/gpu_check.py --out gpu_check.json --keep --workdir /scratch/gpu_check

For each precision it runs the whole workflow (``snakemake`` with config/tiny.yaml, or
``--configfile``) in its own folder with ``device`` and ``precision`` set, then:

* checks that every torch stage ran on the requested device and precision (the effective one:
  bf16 where it is not native on the device runs fp32, as the runtime does everywhere; the quality
  stage always runs in fp32): each GAN run's ``summary.json``, each
  synthetic set's ``samples.parquet`` (its ``generation`` metadata), each classifier's ``metrics.json`` (``training.device``) and
  ``quality.json`` record it (and the precision);
* prints GAN images/s (from the GAN summaries) and classifier images/s (training images x epochs /
  training seconds, from the metrics; validation passes included);
* profiles ``--profile-steps`` steps of the first GAN run in this process with ``torch.profiler``
  (after ``--warmup`` steps), on the crops of that run, and prints the share of the step time spent
  in CUDA kernels (kernel time / wall time of the profiled steps) and the peak GPU memory
  (``torch.cuda.max_memory_allocated`` over those steps);
* exits 0 when every check passed, 1 when one failed, 2 on bad arguments and 3 when
  ``--device cuda`` is asked for and PyTorch sees no GPU (with a one-line message).

The profiled steps use the Trainer's own setup and iteration (``Trainer._setup`` /
``Trainer._iteration``), so they are the same steps ``fairgen train-gan`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NO_GPU = 3


def run_workflow(work: Path, configfiles: list[Path], device: str, precision: str, cores: int) -> None:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
           "--cores", str(cores), "--configfile", *map(str, configfiles),
           "--config", f"device={device}", f"precision={precision}"]
    print(f"[{precision}] {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if r.returncode != 0:
        raise RuntimeError(f"snakemake failed ({r.returncode}) in {work}:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}")
    print(f"[{precision}] workflow done in {time.perf_counter() - t0:.0f} s", flush=True)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def synthetic_metadata(folder: Path) -> dict:
    """The ``fairgen.*`` metadata of a synthetic set's samples.parquet (where `fairgen generate` records its run)."""
    from fairgen.common.io import read_parquet

    return read_parquet(folder / "samples.parquet", "synthetic_samples")[1]


def stage_records(work: Path, cfg: dict) -> list[tuple[str, Path, str, str]]:
    """(stage, file, recorded device, recorded precision) of every torch stage's output."""
    out = []
    for run in cfg["gan"]["runs"]:
        s = read(work / f"results/gan/{run}/summary.json")
        out.append((f"train-gan {run}", work / f"results/gan/{run}/summary.json", s["device"], s["precision"]))
        s = synthetic_metadata(work / f"results/synthetic/{run}")["generation"]
        out.append((f"generate {run}", work / f"results/synthetic/{run}/samples.parquet", s["device"], s["precision"]))
    for method in cfg["classifier"]["methods"]:
        t = read(work / f"results/classifiers/{method}/metrics.json")["training"]
        out.append((f"train-classifier {method}", work / f"results/classifiers/{method}/metrics.json",
                    t["device"], t["precision"]))
    q = read(work / "results/quality/quality.json")
    out.append(("quality", work / "results/quality/quality.json", q.get("device", "(not recorded)"),
                q.get("precision", "(not recorded)")))
    return out


def throughput(work: Path, cfg: dict) -> dict:
    gan = {run: read(work / f"results/gan/{run}/summary.json")["images_per_s"] for run in cfg["gan"]["runs"]}
    clf = {}
    for method in cfg["classifier"]["methods"]:
        t = read(work / f"results/classifiers/{method}/metrics.json")["training"]
        clf[method] = t["n"] * t["epochs"] / t["seconds"] if t["seconds"] else None
    return {"gan_images_per_s": gan, "classifier_images_per_s": clf}


def profile_gan(work: Path, cfg: dict, warmup: int, steps: int) -> dict:
    """Kernel share and peak GPU memory of ``steps`` GAN steps of the first run (in this process)."""
    import torch
    from torch.autograd import DeviceType

    from fairgen.eval.classifier import load_real
    from fairgen.stages.train_gan import build_model
    from fairgen.training import ArrayBatches, TrainConfig, Trainer

    run = cfg["gan"]["runs"][0]
    real = load_real(cfg, work / "results/data/crops.npy", work / "results/data/index.parquet", splits=("train",))["train"]
    gan = build_model(cfg, run, real.images.shape[1], float(real.c.mean()))
    tc = TrainConfig.from_config(cfg, stage="gan", extra={"run": run, "profile": True}, progress=False)
    trainer = Trainer(gan, ArrayBatches(real.images, {"c": real.c, "y": real.y}, name="crops"),
                      work / "profile", tc)
    trainer._setup()
    cuda = trainer.device.type == "cuda"
    for _ in range(warmup):
        trainer._iteration()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    with torch.profiler.profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer._iteration()
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    kernel_us = sum(e.time_range.elapsed_us() for e in prof.events() if e.device_type == DeviceType.CUDA)
    return {
        "run": run, "device": str(trainer.device), "steps": steps, "batch_size": tc.batch_size,
        "step_ms": 1e3 * wall / steps, "images_per_s": steps * tc.batch_size * tc.n_dis / wall,
        "cuda_kernel_share": (kernel_us / 1e6) / wall if cuda else None,
        "peak_gpu_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


def check(args) -> dict:
    from fairgen.common import config as config_mod
    from fairgen.common import runtime

    report = {"device": args.device, "configfiles": [str(c) for c in args.configfile], "precisions": {}}
    ok = True
    for precision in args.precision:
        work = args.workdir / precision
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        run_workflow(work, args.configfile, args.device, precision, args.cores)
        cfg = config_mod.load(None, [f"device={args.device}", f"precision={precision}"],
                              json.dumps(_merged(args.configfile)))
        records = stage_records(work, cfg)
        # the settings every torch stage ran with (fairgen.common.runtime.configure, which the CLI
        # applies): bf16 where it is not native on this device runs fp32, by design; the profile
        # below runs with them too. The quality stage runs fp32 whatever the precision (no autocast).
        cfg = runtime.configure(cfg)
        effective = cfg["precision"]
        if effective != precision:
            print(f"[{precision}] bf16 is not native on this {args.device}: the stages ran fp32 (the runtime's "
                  f"documented fallback)", flush=True)
        wrong = [(stage, str(path), dev, prec) for stage, path, dev, prec in records
                 if not dev.startswith(args.device) or prec != ("fp32" if stage == "quality" else effective)]
        ok &= not wrong
        entry = {"stages": [{"stage": s, "device": d, "precision": p} for s, _, d, p in records],
                 "effective_precision": effective, "wrong_device": wrong, **throughput(work, cfg),
                 "profile": profile_gan(work, cfg, args.warmup, args.profile_steps)}
        report["precisions"][precision] = entry
        print_entry(precision, entry)
    report["ok"] = ok
    return report


def _merged(configfiles: list[Path]) -> dict:
    import yaml

    from fairgen.common.config import merge

    cfg: dict = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())  # the Snakefile's configfile
    for path in configfiles:
        cfg = merge(cfg, yaml.safe_load(Path(path).read_text()) or {})
    return cfg


def _fmt(v, spec=".0f"):
    return "-" if v is None else format(v, spec)


def print_entry(precision: str, e: dict) -> None:
    print(f"\n== {precision} ==")
    for s in e["stages"]:
        print(f"  {s['stage']:<32} device {s['device']:<8} precision {s['precision']}")
    print("  devices: " + ("all as requested" if not e["wrong_device"] else f"WRONG: {e['wrong_device']}"))
    for run, v in e["gan_images_per_s"].items():
        print(f"  GAN {run:<12} {_fmt(v):>8} images/s (whole run, fairgen train-gan)")
    for method, v in e["classifier_images_per_s"].items():
        print(f"  classifier {method:<12} {_fmt(v):>8} images/s (training images x epochs / training seconds)")
    p = e["profile"]
    print(f"  profiled {p['steps']} GAN steps of {p['run']} on {p['device']}: {p['step_ms']:.1f} ms/step, "
          f"{p['images_per_s']:.0f} images/s, CUDA kernel share "
          f"{_fmt(p['cuda_kernel_share'] and 100 * p['cuda_kernel_share'], '.1f')}%, "
          f"peak GPU memory {_fmt(p['peak_gpu_memory_mib'], '.0f')} MiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    ap.add_argument("--configfile", nargs="+", type=Path, default=[ROOT / "config" / "tiny.yaml"],
                    help="config files over config/config.yaml (default config/tiny.yaml)")
    ap.add_argument("--workdir", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--profile-steps", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON")
    args = ap.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA GPU is visible to PyTorch {torch.__version__} (CUDA build "
              f"{torch.version.cuda or 'none'}): nothing to check here; run it on a GPU machine, or pass "
              "--device cpu for the dry run", file=sys.stderr)
        return NO_GPU
    temporary = args.workdir is None
    args.workdir = Path(tempfile.mkdtemp(prefix="fairgen_gpu_check.")) if temporary else args.workdir
    try:
        if args.device == "cuda":
            print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
        report = check(args)
    except RuntimeError as e:
        print(f"gpu_check: {e}", file=sys.stderr)
        return 1
    finally:
        if temporary and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("\ngpu_check: " + ("every torch stage ran on " + args.device if report["ok"] else "FAILED"))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

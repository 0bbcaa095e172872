"""Training throughput of the Fairness GAN step: fp32 vs bf16, channels_last, torch.compile, threads.

    python benchmarks/bench_fgan.py                                  # default + gpu-preset sizes
    python benchmarks/bench_fgan.py --sizes default --rounds 3 --steps 20 --out bench_fgan.json

Each measurement is ``fairgen.training.Trainer.fit`` on the Fairness GAN of run ``fgan_dp``, built
from a config file's ``gan`` section exactly as ``fairgen train-gan`` builds it (``--config``,
default ``config/config.yaml``), on random uint8 crops with random c and y of the config's size
(the step's cost does not depend on the pixels). Sizes:

* ``default`` -- the config as given (32 px, width 32, batch 64 at the defaults);
* ``gpu`` -- the same with config/gpu.yaml's model size on top (64 px, width 64, z_dim 128).

Settings, each in its own child process (fresh oneDNN caches, its own thread count):

* ``fp32`` / ``bf16`` (autocast) x channels_last on / off, at 1 and 2 torch threads;
* ``bf16+compile`` -- bf16, channels_last, G and D wrapped in ``torch.compile`` (``--compile``;
  at the default size and 1 thread only, as each process compiles for minutes; inductor on CPU
  needs a C++ compiler; a failure is reported, not fatal);
* ``2 procs x 1 thread`` -- two 1-thread processes of the same setting side by side, summed: what
  Snakemake's ``--cores 2`` does with two GAN runs when ``threads: 1`` (fp32 and bf16).

Timing: ``--warmup`` steps (oneDNN kernel selection, compilation) are excluded; the log interval
is set to the warm-up length, and images/s is (timed steps x batch x n_dis) / (time between the
first and the last log record). Each round runs every setting once, back to back, so a busy
machine slows all alike; the table gives min / median / max over rounds and the ratio of the
medians to fp32 (channels_last, same thread count) of the same run. Measured numbers: see
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # name -> (precision, channels_last, compile)
    "fp32": ("fp32", True, False),
    "fp32 (no channels_last)": ("fp32", False, False),
    "bf16": ("bf16", True, False),
    "bf16 (no channels_last)": ("bf16", False, False),
    "bf16+compile": ("bf16", True, True),
}
SIZES = ("default", "gpu")


def model_config(config: str, size: str) -> dict:
    """The validated config of ``size`` (see the module docstring)."""
    import yaml

    from fairgen.common import config as config_mod

    cfg = config_mod.load(config)
    if size == "gpu":
        gpu = yaml.safe_load((ROOT / "config" / "gpu.yaml").read_text())
        cfg["crops"]["resolution"] = gpu["crops"]["resolution"]
        for key in ("width", "z_dim"):
            cfg["gan"][key] = gpu["gan"][key]
    return cfg


def one_run(config: str, size: str, setting: str, threads: int, steps: int, warmup: int, seed: int) -> dict:
    """Train ``warmup + steps`` steps in this process; return images/s of the timed steps."""
    import numpy as np
    import torch

    from fairgen.stages.train_gan import build_model
    from fairgen.training import ArrayBatches, TrainConfig, Trainer, seed_everything
    from fairgen.training.logs import read_jsonl

    torch.set_num_threads(threads)
    precision, channels_last, compile_ = SETTINGS[setting]
    cfg = model_config(config, size)
    res = cfg["crops"]["resolution"]
    n = 2048
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, res, res, 3), dtype=np.uint8)
    c, y = rng.integers(0, 2, n), rng.integers(0, 2, n)
    total = warmup + steps
    tc = TrainConfig.from_config({**cfg, "device": "cpu", "precision": precision}, stage="gan",
                                 steps=total, log_every=warmup, sample_every=10 * total,
                                 checkpoint_every=10 * total, channels_last=channels_last, progress=False)
    seed_everything(tc.seed)
    gan = build_model(cfg, "fgan_dp", res, float(c.mean()))
    if compile_:
        gan.G, gan.D = torch.compile(gan.G), torch.compile(gan.D)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(gan, ArrayBatches(images, {"c": c, "y": y}, name="random"), Path(tmp) / "run", tc)
        trainer.fit()
        records = read_jsonl(Path(tmp) / "run" / "log.jsonl")
    first, last = records[0], records[-1]
    timed = last["step"] - first["step"]
    seconds = last["time_s"] - first["time_s"]
    return {"images_per_s": timed * tc.batch_size * tc.n_dis / seconds, "timed_steps": timed, "seconds": seconds,
            "threads": torch.get_num_threads(), "resolution": res, "width": cfg["gan"]["width"],
            "batch_size": tc.batch_size}


def child(args, size: str, setting: str, threads: int) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--child", size, setting, str(threads), "--config", args.config,
           "--steps", str(args.steps_for(size)), "--warmup", str(args.warmup), "--seed", str(args.seed)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def collect(proc: subprocess.Popen, what: str) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        tail = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
        print(f"  {what}: failed ({tail})", file=sys.stderr)
        return {"error": tail}
    return json.loads(out.strip().splitlines()[-1])


def measure(args) -> dict:
    results: dict = {}
    plan = []
    for size in args.sizes:
        for threads in args.threads:
            for setting in SETTINGS:
                if setting == "bf16+compile" and not (args.compile and size == "default" and threads == 1):
                    continue  # compiling takes minutes per process: measured where the pipeline runs
                plan.append((size, setting, threads, 1))
        if 1 in args.threads:
            plan += [(size, "fp32", 1, 2), (size, "bf16", 1, 2)]
    for r in range(args.rounds):
        for size, setting, threads, procs in plan:
            key = f"{size} | {setting} | {threads} thread{'s' if threads > 1 else ''}" + (
                f" x {procs} procs" if procs > 1 else "")
            t = time.perf_counter()
            runs = [collect(p, key) for p in [child(args, size, setting, threads) for _ in range(procs)]]
            if any("error" in run for run in runs):
                value = None
            else:
                value = sum(run["images_per_s"] for run in runs)
            results.setdefault(key, {"size": size, "setting": setting, "threads": threads, "procs": procs,
                                     "images_per_s": []})["images_per_s"].append(value)
            print(f"round {r + 1}/{args.rounds}  {key:55s} "
                  f"{'failed' if value is None else f'{value:7.1f} img/s'}  ({time.perf_counter() - t:.0f} s)",
                  file=sys.stderr, flush=True)
    return results


def table(results: dict) -> list[dict]:
    rows = []
    for key, r in results.items():
        values = [v for v in r["images_per_s"] if v is not None]
        base = results.get(f"{r['size']} | fp32 | {r['threads']} thread{'s' if r['threads'] > 1 else ''}")
        base_values = [v for v in (base or {}).get("images_per_s", []) if v is not None]
        med = statistics.median(values) if values else None
        ratio = med / statistics.median(base_values) if values and base_values else None
        rows.append({"run": key, "min": min(values) if values else None, "median": med,
                     "max": max(values) if values else None, "ratio_to_fp32": ratio,
                     "failed_rounds": len(r["images_per_s"]) - len(values)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--steps", type=int, default=20, help="timed steps at the default size")
    ap.add_argument("--gpu-steps", type=int, default=6, help="timed steps at the gpu preset's size")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                    help="also time bf16 with torch.compile (default on)")
    ap.add_argument("--out", default=None, help="also write the results as JSON")
    ap.add_argument("--child", nargs=3, metavar=("SIZE", "SETTING", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.steps_for = lambda size: args.gpu_steps if size == "gpu" else args.steps
    if args.child:
        size, setting, threads = args.child
        print(json.dumps(one_run(args.config, size, setting, int(threads), args.steps_for(size), args.warmup,
                                 args.seed)))
        return 0
    import torch

    info = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "bf16_native": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()),
            "load_before": os.getloadavg()[0], "rounds": args.rounds, "warmup": args.warmup,
            "steps": {"default": args.steps, "gpu": args.gpu_steps}}
    print(json.dumps(info), file=sys.stderr)
    results = measure(args)
    rows = table(results)
    print(f"\n{'run':58s} {'min':>7s} {'median':>7s} {'max':>7s} {'x fp32':>7s}")
    for row in rows:
        fmt = (lambda v, spec: "-" if v is None else format(v, spec))
        print(f"{row['run']:58s} {fmt(row['min'], '7.1f')} {fmt(row['median'], '7.1f')} {fmt(row['max'], '7.1f')} "
              f"{fmt(row['ratio_to_fp32'], '7.2f')}")
    if args.out:
        Path(args.out).write_text(json.dumps({"info": {**info, "load_after": os.getloadavg()[0]},
                                              "results": results, "table": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

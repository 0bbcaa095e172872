"""Sampling counterfactual pairs against sampling a normal set of twice the size.

    python benchmarks/bench_pairs.py --checkpoint results/gan/fgan_dp/checkpoint.pt --pairs 4000

Times, on the same checkpoint and in the same run, ``fairgen.training.sampling.sample_pairs`` (N pairs, B pairs
per forward pass = 2B images) and ``fairgen.training.sampling.sample`` (2N images, 2B per forward pass),
each ``--repeats`` times alternately, and prints images/s (min / median / max) and their ratio.
Torch uses the threads OMP_NUM_THREADS allows.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--run", default="fgan_dp")
    p.add_argument("--pairs", type=int, default=4000)
    p.add_argument("--batch-pairs", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import torch

    from fairgen.common import config
    from fairgen.training.sampling import balanced_groups, load_conditional_gan, sample, sample_pairs

    cfg = config.validate({"device": "cpu"})
    gan, *_ , device = load_conditional_gan(cfg, args.run, args.checkpoint)
    c = balanced_groups(2 * args.pairs, 0.5, 0)
    rates = {"pairs": [], "normal": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        imgs, _ = sample_pairs(gan, args.pairs, batch_size=args.batch_pairs, seed=0, device=device, progress=False)
        rates["pairs"].append(len(imgs) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        imgs, _ = sample(gan, c, batch_size=2 * args.batch_pairs, seed=0, device=device, progress=False)
        rates["normal"].append(len(imgs) / (time.perf_counter() - t0))
    for k, v in rates.items():
        print(f"{k:>6}: {np.min(v):8.0f} / {statistics.median(v):8.0f} / {np.max(v):8.0f} images/s (min / median / max)")
    print(f"ratio pairs / normal (medians): {statistics.median(rates['pairs']) / statistics.median(rates['normal']):.3f}")
    print(f"torch threads: {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

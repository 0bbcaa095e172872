"""2-D toy GAN on 8 Gaussians on a ring, trained by the project's one Trainer.

Setting (ToyGAN / RingOfGaussians defaults): radius 2, std 0.05; G 16 -> 3 x (128, BN, ReLU) -> 2;
D 2 -> 3 x (128, ReLU) -> 1; Adam G 1e-3 / D 5e-4, betas (0.5, 0.999), batch 512, 1000 steps,
linear LR decay. Quality is measured on 4000 samples from G in eval mode: "high quality" = within
3 std of the nearest centre; a mode is covered when it gets >= 25% of its fair share of them.

Measured with this exact setting (CPU, torch 2.14.1, seeds 0-4 for the non-saturating loss, 0-2
for minimax):

* non-saturating: modes covered 7, 8, 7, 7, 8; high quality 0.79, 0.80, 0.81, 0.76, 0.80.
* minimax (saturating G loss), everything else identical: 8 modes on all three seeds, high
  quality 0.65 on each -- it does NOT collapse here (the BN generator spreads over the ring
  first), it sharpens onto the modes more slowly: at the same step its samples are visibly more
  smeared along the ring, and it misses the 70% quality bar.

Earlier, without BN in G, both losses collapsed to 1-2 modes in all ~15 lr/batch/init settings we
tried (see ToyGAN's docstring).

The tests train both losses on seeds 0, 1 and 2 and assert on the MEDIAN over the seeds, so one
seed's bad luck cannot fail them. Re-measured with the tests' code (CPU, torch 2.14.1, seeds 0, 1, 2):
non-saturating 7, 8, 7 modes, quality 0.787, 0.792, 0.792 (medians 7 and 0.792; seed 3: 7 and
0.757); minimax 8, 8, 8 modes, quality 0.658, 0.672, 0.633 (median 0.658). Headroom of the
medians: modes need 7 (two of the three seeds must reach it), quality 0.70 (0.09 below the
measured median), the minimax quality gap 0.05 (0.13 measured).
"""

import numpy as np
import pytest
import torch

from fairgen.models import build
from fairgen.training import Trainer, seed_everything
from fairgen.training.batches import RingOfGaussians
from fairgen.training.logs import read_jsonl

STEPS, BATCH = 1000, 512


def train(loss: str, out, seed: int = 0) -> dict:
    torch.set_num_threads(1)  # tiny MLPs: one thread is fastest, and the test machine is shared
    seed_everything(seed)
    gan = build("toy", loss=loss)
    data = RingOfGaussians()
    trainer = Trainer(gan, data, out, steps=STEPS, batch_size=BATCH, lr_decay="linear", seed=seed,
                      log_every=250, sample_every=STEPS, checkpoint_every=STEPS, progress=False)
    summary = trainer.fit()
    gan.eval()
    with torch.no_grad():
        x = gan.generate(gan.sample_latent(4000, torch.Generator().manual_seed(123), "cpu"))["x"]
    return {"stats": data.mode_stats(x), "summary": summary, "log": read_jsonl(out / "log.jsonl")}


SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each loss trained on each seed of SEEDS: {loss: [run of seed 0, 1, 2]}."""
    return {loss: [train(loss, tmp_path_factory.mktemp(f"{loss}_{seed}"), seed) for seed in SEEDS]
            for loss in ("non_saturating", "minimax")}


def medians(runs_of_a_loss) -> dict:
    stats = [r["stats"] for r in runs_of_a_loss]
    return {k: float(np.median([st[k] for st in stats])) for k in ("modes_covered", "high_quality")} | {
        "per_seed": [(st["modes_covered"], round(st["high_quality"], 3)) for st in stats]}


@pytest.mark.timeout(900)  # the module's six trainings run in the first test's setup
def test_non_saturating_covers_the_modes_with_high_quality(runs):
    ns = medians(runs["non_saturating"])
    assert ns["modes_covered"] >= 7, ns
    assert ns["high_quality"] >= 0.70, ns


def test_minimax_learns_slower_with_identical_settings(runs):
    ns, mm = medians(runs["non_saturating"]), medians(runs["minimax"])
    # measured: 8 modes but ~0.65 quality vs ~0.8 for non-saturating, on every seed tried
    assert mm["modes_covered"] >= 7, mm
    assert mm["high_quality"] < ns["high_quality"] - 0.05, (mm, ns)


def test_toy_run_is_logged_like_any_gan(runs):
    r = runs["non_saturating"][0]
    assert [rec["step"] for rec in r["log"]] == [250, 500, 750, 1000]
    assert r["summary"]["last"]["lr_g"] == 0.0  # linear decay reached zero
    assert r["summary"]["samples"][-1].endswith("step_0001000.png")  # scatter plot of the fixed latents

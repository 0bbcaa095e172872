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
tried (see ToyGAN's docstring). The assertions below only claim what held on every seed measured.
"""

import pytest
import torch

from fairgen.models import build
from fairgen.models.toy import RingOfGaussians
from fairgen.training import Trainer, seed_everything
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


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {loss: train(loss, tmp_path_factory.mktemp(loss)) for loss in ("non_saturating", "minimax")}


def test_non_saturating_covers_the_modes_with_high_quality(runs):
    st = runs["non_saturating"]["stats"]
    assert st["modes_covered"] >= 7, st
    assert st["high_quality"] >= 0.70, st


def test_minimax_learns_slower_with_identical_settings(runs):
    ns, mm = runs["non_saturating"]["stats"], runs["minimax"]["stats"]
    # measured: 8 modes but ~0.65 quality vs ~0.8 for non-saturating, on every seed tried
    assert mm["modes_covered"] >= 7, mm
    assert mm["high_quality"] < ns["high_quality"] - 0.05, (mm, ns)


def test_toy_run_is_logged_like_any_gan(runs):
    r = runs["non_saturating"]
    assert [rec["step"] for rec in r["log"]] == [250, 500, 750, 1000]
    assert r["summary"]["last"]["lr_g"] == 0.0  # linear decay reached zero
    assert r["summary"]["samples"][-1].endswith("step_0001000.png")  # scatter plot of the fixed latents

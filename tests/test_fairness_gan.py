"""The Fairness GAN: architecture, objective (signs, variants, what each head learns from) and a
short training run on biased toy images where the fairness term has to do visible work."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fairgen import cli
from fairgen.common import config, io
from fairgen.common.errors import ConfigError
from fairgen.models import build
from fairgen.models.fairness_gan import FairnessGAN, fairness_penalty, label_gap, label_loss, rate_gap_penalty
from fairgen.models.layers import ConditionalBatchNorm2d
from fairgen.stages.train_gan import CLASS_GRID, SUMMARY, build_model
from fairgen.training import ArrayBatches, TrainConfig, Trainer, seed_everything

TINY = dict(z_dim=8, width=4, y_hidden=16, cy_hidden=16)


def _gan(seed=0, **kw):
    torch.manual_seed(seed)
    return FairnessGAN(**{"resolution": 32, **TINY, **kw})


def _has_sn(module: nn.Module) -> bool:
    return hasattr(module, "parametrizations") and "weight" in module.parametrizations


def biased_images(n, seed, res=32, p_y1=(0.65, 0.25)):
    """Toy "faces": c is a red (c=1) or blue (c=0) tint, y a bright bar near the bottom, and
    P(y=1 | c) = p_y1[c] (the synthetic CelebA's default bias). Returns uint8 NHWC, c, y."""
    rng = np.random.default_rng(seed)
    c = (rng.random(n) < 0.5).astype(np.int64)
    y = (rng.random(n) < np.where(c == 1, p_y1[1], p_y1[0])).astype(np.int64)
    x = rng.normal(0.0, 0.15, (n, res, res, 3))
    tint = np.where(c == 1, 0.6, -0.6)[:, None, None]
    x[..., 0] += tint
    x[..., 2] -= tint
    x[:, res - 8:res - 4, res // 4:3 * res // 4, :] += np.where(y == 1, 0.8, 0.0)[:, None, None, None]
    return ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8), c, y


# ----------------------------------------------------------------------------- architecture
@pytest.mark.parametrize("res,n_up", [(32, 3), (64, 4)])
def test_shapes_and_heads(res, n_up):
    gan = _gan(resolution=res)
    assert len(gan.G.blocks) == n_up and len(gan.D.trunk) == n_up + 1
    latent = gan.sample_latent(6, c=torch.tensor([0, 1, 0, 1, 1, 0]))
    out = gan.generate(latent)
    assert out["x"].shape == (6, 3, res, res) and out["y"].shape == (6,)
    assert out["x"].abs().max() <= 1 and out["y"].abs().max() < 1
    assert torch.equal(out["c"], latent["c"])
    heads = gan.D(out["x"], out["y"])
    assert set(heads) == {"sj", "sx", "cx", "yx", "cy"}
    for v in heads.values():
        assert v.shape == (6,)
    assert gan.D.features(out["x"]).shape == (6, TINY["width"] * 2 ** (n_up - 1))


def test_built_by_name_and_config_roundtrip():
    gan = build("fairness_gan", resolution=32, variant="eqopp", **TINY)
    assert isinstance(gan, FairnessGAN)
    again = build(gan.name, **gan.config)
    assert again.config == gan.config
    with pytest.raises(ValueError, match="resolution 48"):
        FairnessGAN(resolution=48)
    with pytest.raises(ValueError, match="variant"):
        FairnessGAN(variant="eo")


def test_spectral_norm_in_d_only():
    gan = _gan()
    trunk = [m for m in gan.D.trunk.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert trunk and all(_has_sn(m) for m in trunk)
    for head in (gan.D.sx, gan.D.sj_x, gan.D.sj_y, gan.D.cx):
        assert _has_sn(head)
    # the c-from-y MLP is deliberately unconstrained, and G has no spectral norm at all
    assert not any(_has_sn(m) for m in gan.D.cy.modules())
    assert not any(_has_sn(m) for m in gan.G.modules())
    # right after construction (weights re-initialised after spectral_norm wrapped them), even in
    # eval mode -- no power iteration -- every normalised weight has spectral norm 1
    gan.eval()
    for m in trunk + [gan.D.sx, gan.D.cx]:
        w = m.weight.reshape(m.weight.shape[0], -1)
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_joint_head_is_a_projection_in_y():
    gan = _gan().eval()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    s = [gan.D(x, torch.full((4,), v))["sj"] for v in (-1.0, 0.0, 1.0)]
    torch.testing.assert_close(s[2] - s[1], s[1] - s[0])  # linear in y
    phi = gan.D.features(x)
    torch.testing.assert_close(s[2] - s[1], gan.D.sj_y(phi).reshape(-1))  # slope = V_Y . phi(x)


def test_joint_head_given_c_is_a_projection_on_the_c_y_cell():
    """sj_given_c: S_J(x, y, c) = the paper's S_J + ((1 - q) e_{2c} + q e_{2c+1}).phi(x) with q the
    outcome's probability and a spectrally normalised cell embedding; off, S_J ignores c."""
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    c0, c1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    plain = _gan().eval()
    assert plain.D.sj_cy is None
    y = torch.tensor([-0.8, -0.2, 0.3, 0.8])
    torch.testing.assert_close(plain.D(x, y, c0)["sj"], plain.D(x, y, c1)["sj"])
    cond = _gan(sj_given_c=True).eval()
    assert _has_sn(cond.D.sj_cy) and cond.config["sj_given_c"] is True and cond.D.sx_c is None
    phi = cond.D.features(x)
    paper = (cond.D.sj_x(phi) + y.reshape(-1, 1) * cond.D.sj_y(phi)).reshape(-1)
    for c in (c0, c1):
        q = ((y + 1) / 2).reshape(-1, 1)
        cell = (1 - q) * cond.D.sj_cy(2 * c) + q * cond.D.sj_cy(2 * c + 1)
        torch.testing.assert_close(cond.D(x, y, c)["sj"], paper + (cell * phi).sum(1))
    assert not torch.allclose(cond.D(x, y, c0)["sj"], cond.D(x, y, c1)["sj"])
    for k in ("sx", "cx", "yx", "cy"):  # the other heads do not see c
        torch.testing.assert_close(cond.D(x, y, c0)[k], cond.D(x, y, c1)[k])
    with pytest.raises(ValueError, match="sj_given_c"):
        cond.D(x, y)
    # the label still gets a gradient through the cell mixture
    y_req = y.clone().requires_grad_(True)
    cond.D(x, y_req, c1)["sj"].sum().backward()
    assert y_req.grad is not None and y_req.grad.abs().sum() > 0


def test_image_head_given_c_is_a_projection_on_c():
    """sx_given_c: S_X(x, c) = V_X.phi(x) + e_c.phi(x) with a spectrally normalised c embedding;
    off (the paper), S_X ignores c. D needs c then, and G's fakes are judged as their c."""
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    y = torch.zeros(4)
    plain = _gan().eval()
    assert plain.D.sx_c is None
    torch.testing.assert_close(plain.D(x, y, torch.zeros(4, dtype=torch.long))["sx"],
                               plain.D(x, y, torch.ones(4, dtype=torch.long))["sx"])
    cond = _gan(sx_given_c=True).eval()
    assert _has_sn(cond.D.sx_c) and cond.config["sx_given_c"] is True
    c0, c1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    phi = cond.D.features(x)
    base = cond.D.sx(phi).reshape(-1)
    for c in (c0, c1):
        torch.testing.assert_close(cond.D(x, y, c)["sx"], base + (cond.D.sx_c(c) * phi).sum(1))
    assert not torch.allclose(cond.D(x, y, c0)["sx"], cond.D(x, y, c1)["sx"])
    for k in ("sj", "cx", "yx", "cy"):  # the other heads do not see c
        torch.testing.assert_close(cond.D(x, y, c0)[k], cond.D(x, y, c1)[k])
    with pytest.raises(ValueError, match="sx_given_c"):
        cond.D(x, y)
    # G's loss on the same fakes depends on which c they were generated for
    fake = {"x": x, "y": y, "c": c0}
    g0 = cond.g_loss({"c": c0}, None, fake)[0]
    g1 = cond.g_loss({"c": c1}, None, {**fake, "c": c1})[0]
    assert not torch.isclose(g0, g1)


def test_paper_y_path_ignores_c_and_the_flag_feeds_it():
    z = torch.randn(8, TINY["z_dim"])
    zeros, ones = torch.zeros(8, dtype=torch.long), torch.ones(8, dtype=torch.long)
    for y_from_c, same in ((False, True), (True, False)):
        gan = _gan(y_from_c=y_from_c).eval()
        y0 = gan.generate({"z": z, "c": zeros})["y"]
        y1 = gan.generate({"z": z, "c": ones})["y"]
        assert torch.equal(y0, y1) is same
    # the image path gets c through its conditional batch norms (identity at init: perturb c=1's)
    x0 = gan.generate({"z": z, "c": zeros})["x"]
    with torch.no_grad():
        for m in gan.G.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.bias.weight[1] += 0.5
    assert torch.equal(gan.generate({"z": z, "c": zeros})["x"], x0)
    assert not torch.equal(gan.generate({"z": z, "c": ones})["x"], x0)


def test_image_y_path_reads_the_features_that_render_the_image():
    """y_path='image': y is a function of the last feature map (so of c through the CBN, even
    with y_from_c off), and its gradient reaches the image path's blocks, not just the y MLP."""
    gan = _gan(y_path="image", y_from_c=False).eval()
    assert gan.G.y_net[0].in_features == TINY["width"]
    z = torch.randn(8, TINY["z_dim"])
    zeros, ones = torch.zeros(8, dtype=torch.long), torch.ones(8, dtype=torch.long)
    with torch.no_grad():
        for m in gan.G.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.bias.weight[1] += 0.5
    assert not torch.equal(gan.generate({"z": z, "c": zeros})["y"], gan.generate({"z": z, "c": ones})["y"])
    gan.generate({"z": z, "c": ones})["y"].sum().backward()
    assert gan.G.blocks[0].conv1.weight.grad.abs().sum() > 0
    noise = _gan(y_path="noise").eval()
    noise.generate({"z": z, "c": ones})["y"].sum().backward()
    assert noise.G.blocks[0].conv1.weight.grad is None
    with pytest.raises(ValueError, match="y_path"):
        _gan(y_path="pixels")


def test_real_labels_are_softened_with_noise():
    gan = _gan(y_soft=0.8, y_noise=0.05)
    torch.manual_seed(1)
    y = torch.tensor([0.0, 1.0]).repeat(5000)
    s = gan.soften(y)
    assert s[y == 0].mean().item() == pytest.approx(-0.8, abs=0.005)
    assert s[y == 1].mean().item() == pytest.approx(0.8, abs=0.005)
    assert s[y == 1].std().item() == pytest.approx(0.05, rel=0.05)
    assert torch.equal(_gan(y_noise=0.0).soften(y), (2 * y - 1) * 0.8)


def test_latents_follow_p_c_or_the_given_c():
    gan = _gan(p_c=0.3)
    gen = torch.Generator().manual_seed(0)
    c = gan.sample_latent(20000, gen)["c"]
    assert c.dtype == torch.long and set(c.unique().tolist()) == {0, 1}
    assert c.float().mean().item() == pytest.approx(0.3, abs=0.015)
    given = torch.tensor([1, 0, 1])
    assert torch.equal(gan.sample_latent(3, gen, c=given)["c"], given)
    assert torch.equal(gan.sample_latent(4, gen, c=1)["c"], torch.ones(4, dtype=torch.long))
    fixed = gan.fixed_latent(64, gen, torch.device("cpu"))
    assert fixed["c"].tolist() == [0] * 32 + [1] * 32
    assert torch.equal(fixed["z"][:32], fixed["z"][32:])  # grid rows r and r + 4 differ only in c


# ----------------------------------------------------------------------------- objective
def test_fairness_penalty_signs():
    c = torch.tensor([0, 0, 1, 1])
    y = torch.tensor([-0.8, -0.8, 0.8, 0.8])
    perfect = torch.tensor([-8.0, -8.0, 8.0, 8.0])  # head recovers c from y
    fooled = -perfect                               # head sure of the wrong group
    blind = torch.zeros(4)                          # head at chance
    for variant in ("dp", "eqopp"):
        p, b, f = (fairness_penalty(h, c, y, variant).item() for h in (perfect, blind, fooled))
        assert p > b > f >= 0
    assert fairness_penalty(blind, c, y, "dp").item() == pytest.approx(np.log(2))
    # gradient: each logit is pushed away from the sample's own group
    logits = perfect.clone().requires_grad_(True)
    fairness_penalty(logits, c, y, "dp").backward()
    assert (logits.grad[c == 1] > 0).all() and (logits.grad[c == 0] < 0).all()
    with pytest.raises(ValueError):
        fairness_penalty(blind, c, y, "none")


def test_eqopp_weights_by_generated_y():
    c = torch.tensor([0, 1, 0, 1])
    logits = torch.tensor([-3.0, 3.0, 1.0, -1.0])
    ce = nn.functional.binary_cross_entropy_with_logits(logits, 1.0 - c.float(), reduction="none")
    assert fairness_penalty(logits, c, torch.full((4,), -1.0), "eqopp").item() == 0.0
    torch.testing.assert_close(fairness_penalty(logits, c, torch.ones(4), "eqopp"), ce.mean())
    y = torch.tensor([-1.0, 0.0, 0.5, 1.0], requires_grad=True)
    pen = fairness_penalty(logits, c, y, "eqopp")
    torch.testing.assert_close(pen, (ce * torch.tensor([0.0, 0.5, 0.75, 1.0])).mean())
    assert not pen.requires_grad  # the weight is detached: G cannot lower it by lowering y


def test_eqopp_zero_weight_samples_move_nothing_as_if_absent():
    """The eqopp weight reaches G's fairness gradient: a generated sample with y = -1 (weight
    (y + 1) / 2 = 0) gets no gradient from the term, and the others get exactly the gradient of
    the batch without it, times (batch size without / with it) for the mean. Under dp (no weight)
    the same samples are pushed like any other."""
    gan = _gan(variant="eqopp").eval()
    c = torch.tensor([0, 1] * 4)
    y = torch.tensor([-1.0, 0.6, 0.2, -0.3, 0.9, -1.0, 0.4, 0.7])
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    zero = y == -1.0
    kept = torch.nonzero(~zero).reshape(-1)

    def y_grad(variant, rows):
        y_rows = y[rows].clone().requires_grad_(True)
        fairness_penalty(gan.D(x[rows], y_rows)["cy"], c[rows], y_rows, variant).backward()
        return y_rows.grad

    everything = torch.arange(8)
    eqopp, eqopp_without = y_grad("eqopp", everything), y_grad("eqopp", kept)
    assert torch.count_nonzero(eqopp[zero]) == 0
    assert torch.count_nonzero(eqopp[~zero]) == len(kept)
    torch.testing.assert_close(eqopp[~zero], eqopp_without * len(kept) / 8)
    dp = y_grad("dp", everything)
    assert torch.count_nonzero(dp[zero]) == 2  # the control: without the weight they do move
    # and G's loss carries the term with its weight lambda_fair
    none = _gan(variant="none").eval()
    fake = {"x": x, "y": y, "c": c}
    torch.testing.assert_close(gan.g_loss({"c": c}, None, fake)[0] - none.g_loss({"c": c}, None, fake)[0],
                               fairness_penalty(gan.D(x, y)["cy"], c, y, "eqopp"))


def test_lambda_cx_weights_the_c_from_x_term():
    """lambda_cx multiplies G's c-from-x term: changing it from 1 to 3 adds 2 * CE(cx(x_fake), c),
    and the term's gradient reaches the image, never the generated y."""
    on, x, y, (l_off, _), (l_on, m_on) = _g_loss_with_and_without(lambda_cx=3.0)
    c = torch.tensor([0, 1] * 4)
    expect = nn.functional.binary_cross_entropy_with_logits(on.D(x, y)["cx"], c.float())
    torch.testing.assert_close(l_on - l_off, 2.0 * expect)
    torch.testing.assert_close(m_on["cx_ce"], expect.detach())
    (l_on - l_off).backward()
    assert y.grad is None or torch.count_nonzero(y.grad) == 0
    assert torch.count_nonzero(x.grad) > 0


def _fake_batch(y, c, seed=0):
    torch.manual_seed(seed)
    return {"x": torch.rand(len(c), 3, 32, 32) * 2 - 1, "y": y, "c": c}


def _variants(**kw):
    """dp / eqopp / none models with identical weights (D in eval mode: no power iterations)."""
    models = {v: _gan(variant=v, **kw) for v in ("dp", "eqopp", "none")}
    for m in models.values():
        m.load_state_dict(models["dp"].state_dict())
        m.eval()
    return models


def test_variants_change_g_loss_as_specified():
    m = _variants(lambda_fair=2.0)
    c = torch.tensor([0, 1] * 4)
    fake = _fake_batch(torch.linspace(-0.9, 0.9, 8), c)
    loss = {v: g.g_loss({"c": c}, None, fake) for v, g in m.items()}
    f = m["dp"].D(fake["x"], fake["y"])
    expect_dp = fairness_penalty(f["cy"], c, fake["y"], "dp")
    expect_eo = fairness_penalty(f["cy"], c, fake["y"], "eqopp")
    torch.testing.assert_close(loss["dp"][0] - loss["none"][0], 2.0 * expect_dp)
    torch.testing.assert_close(loss["eqopp"][0] - loss["none"][0], 2.0 * expect_eo)
    # all generated y at the negative end: the eqopp term vanishes
    low = _fake_batch(torch.full((8,), -1.0), c)
    torch.testing.assert_close(m["eqopp"].g_loss({"c": c}, None, low)[0], m["none"].g_loss({"c": c}, None, low)[0])
    # the none variant still reports the penalty it ignores
    torch.testing.assert_close(loss["none"][1]["fair_penalty"], expect_dp)


def test_rate_gap_penalty_is_zero_exactly_at_parity_and_pulls_toward_it():
    c = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    parity = torch.tensor([0.8, -0.8, 0.8, -0.8, -0.8, 0.8, -0.8, 0.8])
    biased = torch.tensor([0.8, 0.8, 0.8, -0.8, -0.8, -0.8, -0.8, 0.8], requires_grad=True)
    for variant in ("dp", "eqopp"):
        assert rate_gap_penalty(c, parity, variant).item() == pytest.approx(0.0, abs=1e-12)
    # dp: soft rates 0.75 * 0.9 + ... = 0.7 (c=0) and 0.3 (c=1): gap -0.4 (in p units, (y+1)/2)
    p0 = ((biased.detach()[:4] + 1) / 2).mean()
    p1 = ((biased.detach()[4:] + 1) / 2).mean()
    assert rate_gap_penalty(c, biased, "dp").item() == pytest.approx(float((p1 - p0) ** 2))
    rate_gap_penalty(c, biased, "dp").backward()
    assert (biased.grad[:4] > 0).all() and (biased.grad[4:] < 0).all()  # descent: c=0 down, c=1 up
    # eqopp: the protected group's share among soft positives vs its share in the batch (0.5)
    pos = (biased.detach() + 1) / 2
    share = float((pos * c).sum() / pos.sum())
    assert rate_gap_penalty(c, biased.detach(), "eqopp").item() == pytest.approx((share - 0.5) ** 2)
    # a batch with one group only carries no dp signal (and no NaN)
    assert rate_gap_penalty(torch.ones(4, dtype=torch.long), torch.tensor([0.5, -0.5, 0.9, 0.1]), "dp").item() == 0.0
    with pytest.raises(ValueError):
        rate_gap_penalty(c, parity, "none")


def test_rate_gap_penalty_replaces_the_head_in_g_loss():
    m = _variants(lambda_fair=2.0, penalty="rate_gap")
    c = torch.tensor([0, 1] * 4)
    fake = _fake_batch(torch.linspace(-0.9, 0.9, 8), c)
    loss = {v: g.g_loss({"c": c}, None, fake) for v, g in m.items()}
    torch.testing.assert_close(loss["dp"][0] - loss["none"][0], 2.0 * rate_gap_penalty(c, fake["y"], "dp"))
    torch.testing.assert_close(loss["eqopp"][0] - loss["none"][0], 2.0 * rate_gap_penalty(c, fake["y"], "eqopp"))
    assert m["dp"].config["penalty"] == "rate_gap"
    with pytest.raises(ValueError, match="penalty"):
        _gan(penalty="entropy")


def test_a_perfect_c_from_y_head_costs_g_more_than_a_blind_one():
    c = torch.tensor([0, 1] * 4)
    fake = _fake_batch(0.8 * (2 * c.float() - 1), c)  # y gives c away completely
    losses = {}
    for name, slope in (("perfect", 10.0), ("blind", 0.0)):
        gan = _gan(variant="dp").eval()
        head = nn.Linear(1, 1)
        with torch.no_grad():
            head.weight.fill_(slope)
            head.bias.zero_()
        gan.D.cy = head
        losses[name] = gan.g_loss({"c": c}, None, fake)[0].item()
    assert losses["perfect"] - losses["blind"] > 5.0


def test_g_loss_signs_of_the_class_terms():
    """G wants x classifiable as its c (lower loss when c-from-x agrees with the requested c) and
    y not revealing c (the fairness gradient moves each y toward the other group's y)."""
    c = torch.tensor([0, 1] * 4)
    gan = _gan(variant="dp").eval()
    with torch.no_grad():  # a c-from-y head for which c = 1 goes with high y
        gan.D.cy = nn.Linear(1, 1)
        gan.D.cy.weight.fill_(4.0)
        gan.D.cy.bias.zero_()
    none = _gan(variant="none").eval()  # same seed: same weights apart from the replaced head
    y = torch.zeros(8, requires_grad=True)
    fake = _fake_batch(y, c)
    (gan.g_loss({"c": c}, None, fake)[0] - none.g_loss({"c": c}, None, fake)[0]).backward()
    # descending: c=1 samples' y goes down, c=0 samples' y up -- away from what the head ties to their group
    assert (y.grad[c == 1] > 0).all() and (y.grad[c == 0] < 0).all()

    with torch.no_grad():
        said = (gan.D(fake["x"], fake["y"])["cx"] > 0).long()  # what c-from-x sees in each image
    agree = none.g_loss({"c": said}, None, {**fake, "c": said})
    disagree = none.g_loss({"c": 1 - said}, None, {**fake, "c": 1 - said})
    assert agree[0] < disagree[0]
    assert agree[1]["cx_acc_fake"].item() == 1.0 and disagree[1]["cx_acc_fake"].item() == 0.0


def test_class_heads_learn_from_real_data_only():
    """D's c-from-x, c-from-y and y-from-x gradients do not depend on the fake batch."""
    gan = _gan().eval()
    real = {"x": torch.rand(8, 3, 32, 32) * 2 - 1, "c": torch.tensor([0, 1] * 4), "y": torch.tensor([0.0, 1.0] * 4)}
    grads = []
    for seed in (1, 2):
        fake = _fake_batch(torch.rand(8) * 2 - 1, torch.randint(2, (8,)), seed=seed)
        gan.zero_grad()
        torch.manual_seed(0)  # same softening noise for the real y
        gan.d_loss(real, {"c": fake["c"]}, fake)[0].backward()
        grads.append({n: p.grad.clone() for n, p in gan.D.named_parameters() if n.startswith(("cy.", "cx.", "yx."))})
    assert grads[0] and all(torch.equal(grads[0][n], grads[1][n]) for n in grads[0])


def _g_loss_with_and_without(**term):
    """The same 8 fakes (x, y requiring grad) scored by G's loss of two identical AC-GANs, one
    with the extra ``term`` weight: returns (gan with it, x, y, (loss, metrics) without, with)."""
    c = torch.tensor([0, 1] * 4)
    off, on = _gan(variant="none").eval(), _gan(variant="none", **term).eval()
    on.load_state_dict(off.state_dict())
    y = torch.linspace(-0.9, 0.9, 8, requires_grad=True)
    x = (torch.rand(8, 3, 32, 32) * 2 - 1).requires_grad_(True)
    fake = {"x": x, "y": y, "c": c}
    return on, x, y, off.g_loss({"c": c}, None, fake), on.g_loss({"c": c}, None, fake)


def test_outcome_consistency_term_moves_the_image_toward_its_label_not_the_label():
    """lambda_yx adds lambda_yx * CE(yx(x_fake), (y_fake + 1) / 2) to G's loss; the target is
    detached, so the term's gradient reaches the image and never the generated y."""
    on, x, y, (l_off, _), (l_on, m_on) = _g_loss_with_and_without(lambda_yx=2.0)
    yx = on.D(x, y)["yx"]
    expect = nn.functional.binary_cross_entropy_with_logits(yx, (y.detach() + 1) / 2)
    torch.testing.assert_close(l_on - l_off, 2.0 * expect)
    torch.testing.assert_close(m_on["yx_ce"], expect.detach())
    (l_on - l_off).backward()
    assert y.grad is None or torch.count_nonzero(y.grad) == 0
    assert torch.count_nonzero(x.grad) > 0
    # descending the term makes D's y-from-x head agree more with the generated labels
    with torch.no_grad():
        x2 = x - 50.0 * x.grad
        after = nn.functional.binary_cross_entropy_with_logits(on.D(x2, y)["yx"], (y + 1) / 2)
    assert after < expect
    with pytest.raises(ValueError, match="lambda_yx"):
        _gan(lambda_yx=-1.0)


def test_label_term_moves_the_label_toward_the_image_not_the_image():
    """lambda_label adds lambda_label * CE((y_fake + 1) / 2, sigmoid(yx(x_fake))) to G's loss: the
    target (D's reading of the image) is detached, so the gradient reaches the generated y only,
    and it pulls each label toward that reading (zero gradient exactly there)."""
    on, x, y, (l_off, _), (l_on, m_on) = _g_loss_with_and_without(lambda_label=3.0)
    q = torch.sigmoid(on.D(x, y)["yx"]).detach()
    p = (y.detach() + 1) / 2
    expect = -(q * p.log() + (1 - q) * (1 - p).log()).mean()
    torch.testing.assert_close(l_on - l_off, 3.0 * expect)
    torch.testing.assert_close(m_on["label_ce"], expect)
    (3.0 * label_loss(on.D(x, y)["yx"], y)).backward()
    assert x.grad is None or torch.count_nonzero(x.grad) == 0
    # descending moves every p toward q: the sign of the step is the sign of q - p
    assert torch.equal(torch.sign(-y.grad), torch.sign(q - p))
    # at p == q the term is stationary
    y_at = (2 * q - 1).clone().requires_grad_(True)
    label_loss(on.D(x, y)["yx"], y_at).backward()
    torch.testing.assert_close(y_at.grad, torch.zeros_like(y_at), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="lambda_label"):
        _gan(lambda_label=-0.5)


def test_label_term_with_the_noise_y_path_trains_only_the_y_head():
    """With the paper's y path (y from z and c) the label term cannot reach G's image path: a
    fairness-plus-label objective can only relabel, never redraw the face."""
    gan = _gan(variant="dp", lambda_label=1.0, y_from_c=True)
    latent = {"z": torch.randn(6, TINY["z_dim"]), "c": torch.tensor([0, 1, 0, 1, 0, 1])}
    fake = gan.generate(latent)
    label_loss(gan.D(fake["x"], fake["y"])["yx"], fake["y"]).backward()
    touched = {n for n, p in gan.G.named_parameters() if p.grad is not None and torch.count_nonzero(p.grad) > 0}
    assert touched and all(n.startswith("y_net.") for n in touched)
    assert all(p.grad is None for p in gan.D.parameters())


def test_d_loss_does_not_reach_g_and_metrics_are_scalars():
    gan = _gan(variant="eqopp")
    real = {"x": torch.rand(8, 3, 32, 32) * 2 - 1, "c": torch.tensor([0, 1] * 4), "y": torch.tensor([0.0, 1.0] * 4)}
    latent = gan.sample_latent(8, c=real["c"])
    fake = gan.generate(latent)
    loss_d, m_d = gan.d_loss(real, latent, fake)
    loss_d.backward()
    assert all(p.grad is None for p in gan.G.parameters())
    loss_g, m_g = gan.g_loss(latent, real, fake)
    for m in (m_d, m_g):
        assert all(v.ndim == 0 and not v.requires_grad for v in m.values())
    assert {"cx_acc_real", "cx_acc_fake", "cy_acc_real", "cy_acc_fake", "yx_acc_real", "yx_acc_fake", "sj_real",
            "sx_fake", "y_gap_fake", "y_gap_real"} <= set(m_d)
    # the real batch's gap is exact: P(y=1|c=1) - P(y=1|c=0) = 1 - 0
    assert m_d["y_gap_real"].item() == 1.0
    # an empty group counts as rate 0 (no NaN in the logs)
    assert label_gap(torch.tensor([0.5, -0.5, 0.5]), torch.tensor([1, 1, 1])).item() == pytest.approx(2 / 3)


BF16_STEPS, BF16_RTOL = 20, 0.02


def test_bf16_losses_follow_fp32_over_the_first_steps(tmp_path):
    """bf16 autocast against fp32 from the same seed, weights and batches: each of the first
    BF16_STEPS steps' D and G losses within BF16_RTOL (relative) of fp32's -- measured on CPU,
    torch 2.14.1: at most 0.0021 (D) and 0.0024 (G) -- and not equal to them (autocast did run)."""
    from fairgen.training.logs import read_jsonl

    torch.set_num_threads(1)
    images, c, y = biased_images(64, seed=0)
    logs = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(steps=BF16_STEPS, batch_size=16, precision=precision, device="cpu", log_every=1,
                          sample_every=10**6, checkpoint_every=10**6, progress=False)
        Trainer(_gan(variant="eqopp"), ArrayBatches(images, {"c": c, "y": y}), tmp_path / precision, cfg).fit()
        logs[precision] = read_jsonl(tmp_path / precision / "log.jsonl")
    assert [r["step"] for r in logs["bf16"]] == [r["step"] for r in logs["fp32"]] == list(range(1, BF16_STEPS + 1))
    for key in ("loss_d", "loss_g"):
        fp32 = np.array([r[key] for r in logs["fp32"]])
        bf16 = np.array([r[key] for r in logs["bf16"]])
        np.testing.assert_allclose(bf16, fp32, rtol=BF16_RTOL, atol=0, err_msg=key)
        assert not np.array_equal(bf16, fp32), key


# ----------------------------------------------------------------------------- MUST-SHOW
def _toy_gan(variant, p_c):
    seed_everything(0)
    return FairnessGAN(resolution=32, z_dim=16, width=8, y_hidden=32, cy_hidden=32, variant=variant,
                       lambda_fair=1.0, y_from_c=True, p_c=p_c)


def _train(gan, images, c, y, out_dir, steps):
    cfg = TrainConfig(steps=steps, batch_size=32, lr_g=1e-3, lr_d=1e-3, betas=(0.0, 0.9), device="cpu", seed=0,
                      log_every=50, sample_every=10**6, checkpoint_every=10**6, progress=False)
    Trainer(gan, ArrayBatches(images, {"c": c, "y": y}), out_dir, cfg).fit()
    return gan.eval()


@torch.no_grad()
def _cx_accuracy(gan, batch):
    was = gan.training
    gan.eval()
    acc = ((gan.D(batch["x"], torch.zeros(len(batch["c"])))["cx"] > 0).long() == batch["c"]).float().mean().item()
    gan.train(was)
    return acc


@torch.no_grad()
def _generated_gap(gan, n=2000):
    c = torch.arange(n) % 2
    y = gan.generate(gan.sample_latent(n, torch.Generator().manual_seed(123), c=c))["y"] > 0
    return (y[c == 1].float().mean() - y[c == 0].float().mean()).item(), y.float().mean().item()


def test_fairness_term_removes_the_label_bias_on_toy_faces(tmp_path):
    """Biased toy data (P(y=1|c=0)=0.65, P(y=1|c=1)=0.25). Same seed, data and batches for the
    dp variant and the no-fairness variant (G's y path sees c, so G *can* reproduce the bias):
    D's c-from-x head learns c, and the dp run's generated label gap is far below the real one
    and shifted against the bias relative to the no-fairness run."""
    torch.set_num_threads(1)  # tiny convs: one thread is fastest and deterministic
    images, c, y = biased_images(512, seed=0)
    real_gap = y[c == 1].mean() - y[c == 0].mean()
    assert real_gap < -0.3
    held_x, held_c, _ = biased_images(256, seed=1)
    held = ArrayBatches(held_x, {"c": held_c})
    held.bind(torch.device("cpu"), 0)
    held_batch = held.take(torch.arange(256))
    gaps = {}
    for variant in ("none", "dp"):
        gan = _toy_gan(variant, float(c.mean()))
        assert _cx_accuracy(gan, held_batch) < 0.75  # untrained c-from-x head (0.50 for this seed)
        _train(gan, images, c, y, tmp_path / variant, steps=200)
        assert _cx_accuracy(gan, held_batch) > 0.9   # on held-out real images
        gaps[variant], rate = _generated_gap(gan)
        assert 0.15 < rate < 0.85, f"{variant}: generated P(y=1) = {rate:.2f} (label collapse)"
    assert abs(gaps["dp"]) < abs(real_gap) - 0.1, gaps
    # the fairness term, not chance, moved the gap: toward (or past) zero relative to no fairness
    assert np.sign(real_gap) * (gaps["none"] - gaps["dp"]) > 0.05, gaps


# ----------------------------------------------------------------------------- CLI
def _write_crops(folder, n=96, res=32, seed=0, protected="Male", outcome="Attractive"):
    images, c, y = biased_images(n, seed, res=res)
    split = np.array(["train", "valid", "test"])[np.arange(n) % 5 % 3]
    df = pd.DataFrame({"image_id": [f"{i + 1:06d}.jpg" for i in range(n)], "split": split,
                       protected: c.astype(np.int8), outcome: y.astype(np.int8)})
    io.save_npy(images, folder / "crops.npy")
    io.write_parquet(df, folder / "index.parquet", "crops_index", metadata={"resolution": res})
    return folder / "crops.npy", folder / "index.parquet", c[split == "train"], y[split == "train"]


def _cli(args, cfg):
    return cli.main(["train-gan", "--config-json", json.dumps(cfg), *args])


TINY_CFG = {"seed": 3, "device": "cpu",
            "gan": {"steps": 4, "batch_size": 8, "width": 4, "z_dim": 8, "lr_decay": "none", "log_every": 2,
                    "sample_every": 2, "checkpoint_every": 2}}


def test_cli_train_gan_smoke_and_resume(tmp_path):
    torch.set_num_threads(1)
    array, index, c_train, y_train = _write_crops(tmp_path)
    out = tmp_path / "gan" / "fgan_eqopp"
    assert _cli(["--run", "fgan_eqopp", "--array", str(array), "--index", str(index), "--out-dir", str(out)],
                TINY_CFG) == 0
    for name in ("checkpoint.pt", "log.jsonl", "loss_curve.png", CLASS_GRID, SUMMARY, "samples/step_0000004.png"):
        assert (out / name).is_file(), name
    summary = io.read_json(out / SUMMARY)
    assert summary["run"] == "fgan_eqopp" and summary["variant"] == "eqopp" and summary["steps"] == 4
    assert summary["config"]["variant"] == "eqopp" and summary["config"]["resolution"] == 32
    assert summary["config"]["p_c"] == pytest.approx(c_train.mean())
    assert summary["real_train"]["by_group"]["1"]["p_y1"] == pytest.approx(y_train[c_train == 1].mean())
    assert summary["generated"]["n"] == 1024 and summary["generated"]["by_group"]["0"]["n"] == 512
    assert [r["step"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())] == [2, 4]

    # same run, more steps: resumes from the checkpoint at step 4
    more = {**TINY_CFG, "gan": {**TINY_CFG["gan"], "steps": 6}}
    assert _cli(["--run", "fgan_eqopp", "--array", str(array), "--index", str(index), "--out-dir", str(out)],
                more) == 0
    summary = io.read_json(out / SUMMARY)
    assert summary["resumed_from"] == 4 and summary["steps"] == 6 and summary["steps_this_run"] == 2


def test_minibatch_stddev_option_feeds_the_last_discriminator_block():
    """mbstd_group: off (0) the paper's trunk; on, a MinibatchStdDev map enters D's last block, so
    a fake's logits depend on the other images of its group -- and only on those."""
    from fairgen.models.layers import MinibatchStdDev

    plain = _gan()
    assert not any(isinstance(m, MinibatchStdDev) for m in plain.D.modules()) and plain.config["mbstd_group"] == 0
    gan = _gan(mbstd_group=2).eval()
    assert gan.config["mbstd_group"] == 2 and isinstance(gan.D.trunk[-2], MinibatchStdDev)
    torch.manual_seed(1)
    x, y, c = torch.rand(4, 3, 32, 32) * 2 - 1, torch.zeros(4), torch.zeros(4, dtype=torch.long)
    sx = gan.D(x, y, c)["sx"]
    x2 = x.clone()
    x2[3] = torch.rand(3, 32, 32) * 2 - 1  # another image in the second group
    sx2 = gan.D(x2, y, c)["sx"]
    torch.testing.assert_close(sx2[:2], sx[:2])   # the first group does not see it
    assert not torch.isclose(sx2[2], sx[2])        # its group partner does
    with pytest.raises(ValueError, match="mbstd_group"):
        _gan(mbstd_group=1)
    cfg = config.validate({"gan": {"width": 4, "z_dim": 8, "experimental": {"mbstd_group": 4}, "batch_size": 64}})
    assert build_model(cfg, "fgan_dp", 32, 0.4).config["mbstd_group"] == 4
    with pytest.raises(ConfigError, match="gan.experimental.mbstd_group.*gan.batch_size 30"):
        build_model(config.validate({"gan": {"experimental": {"mbstd_group": 4}, "batch_size": 30}}), "fgan_dp", 32, 0.4)
    with pytest.raises(ConfigError, match="mbstd_group"):
        config.validate({"gan": {"experimental": {"mbstd_group": 1}}})
    assert config.validate({})["gan"]["experimental"]["mbstd_group"] == 0


def test_runs_build_their_variant_from_the_gan_section():
    cfg = config.validate({"gan": {"width": 4, "z_dim": 8, "lambda_fair": 2.5, "lambda_cx": 0.5, "y_soft": 0.7,
                                   "y_noise": 0.02, "y_from_c": True, "lambda_label": 0.75, "sx_given_c": True,
                                   "experimental": {"lambda_yx": 1.5, "sj_given_c": True}}})
    for run, variant in (("fgan_dp", "dp"), ("fgan_eqopp", "eqopp"), ("acgan", "none")):
        gan = build_model(cfg, run, 32, 0.4)
        assert gan.variant == variant and gan.p_c == 0.4
        assert {k: gan.config[k] for k in ("width", "z_dim", "lambda_fair", "lambda_cx", "y_soft", "y_noise",
                                           "y_from_c", "resolution", "lambda_yx", "lambda_label", "sx_given_c",
                                           "sj_given_c")} == \
            {"width": 4, "z_dim": 8, "lambda_fair": 2.5, "lambda_cx": 0.5, "y_soft": 0.7, "y_noise": 0.02,
             "y_from_c": True, "resolution": 32, "lambda_yx": 1.5, "lambda_label": 0.75,
             "sx_given_c": True, "sj_given_c": True}
    default = config.validate({})["gan"]
    assert default["y_from_c"] is True and default["sx_given_c"] is True  # beyond the paper by default:
    assert default["lambda_label"] == 1.0 and default["fair_penalty"] == "rate_gap"  # config/config.yaml's
    assert default["experimental"]["lambda_yx"] == 0.0     # no outcome-consistency term
    assert default["experimental"]["sj_given_c"] is False  # and S_J sees (x, y) only
    with pytest.raises(ConfigError, match="fgan_xx"):
        build_model(cfg, "fgan_xx", 32, 0.4)


def test_cli_errors_name_the_culprit(tmp_path, capsys):
    array, index, _, _ = _write_crops(tmp_path, res=32)
    args = ["--run", "fgan_dp", "--array", str(array), "--index", str(index), "--out-dir", str(tmp_path / "o")]
    assert _cli(args, {**TINY_CFG, "protected": "Eyeglasses"}) == 2
    assert "Eyeglasses" in capsys.readouterr().err
    small = tmp_path / "small"
    small.mkdir()
    array16, index16, _, _ = _write_crops(small, res=16)
    assert _cli(["--run", "acgan", "--array", str(array16), "--index", str(index16), "--out-dir",
                 str(tmp_path / "o16")], TINY_CFG) == 2
    assert "16x16" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o16").exists()

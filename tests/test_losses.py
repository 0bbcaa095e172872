"""GAN losses against values computed by hand from sigmoid/log (not softplus), plus stability."""

import math

import pytest
import torch

from fairgen.models import losses

REAL = [2.0, -1.0]
FAKE = [0.5, -3.0]


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def mean(xs):
    return sum(xs) / len(xs)


def t(v):
    return torch.tensor(v, dtype=torch.float32)


def test_bce_d_loss_matches_hand_computation():
    want = mean([-math.log(sig(r)) for r in REAL]) + mean([-math.log(1 - sig(f)) for f in FAKE])
    assert losses.bce_d_loss(t(REAL), t(FAKE)).item() == pytest.approx(want, rel=1e-6)


def test_generator_losses_match_hand_computation():
    assert losses.minimax_g_loss(t(FAKE)).item() == pytest.approx(mean([math.log(1 - sig(f)) for f in FAKE]), rel=1e-6)
    assert losses.non_saturating_g_loss(t(FAKE)).item() == pytest.approx(mean([-math.log(sig(f)) for f in FAKE]),
                                                                         rel=1e-6)


def test_hinge_matches_hand_computation():
    # D: mean(relu(1-2), relu(1+1)) + mean(relu(1+0.5), relu(1-3)) = 1 + 0.75
    assert losses.hinge_d_loss(t(REAL), t(FAKE)).item() == pytest.approx(1.75)
    assert losses.hinge_g_loss(t(FAKE)).item() == pytest.approx(1.25)


def test_registry_names_and_aliases():
    assert losses.get("non_saturating").g_loss is losses.non_saturating_g_loss
    assert losses.get("bce").name == "non_saturating"
    assert losses.get("saturating").g_loss is losses.minimax_g_loss
    assert losses.get("minimax").d_loss is losses.bce_d_loss
    assert losses.get("hinge").d_loss is losses.hinge_d_loss
    with pytest.raises(ValueError, match="unknown GAN loss 'wgan'.*hinge"):
        losses.get("wgan")


@pytest.mark.parametrize("name", ["minimax", "non_saturating", "hinge"])
def test_stable_for_huge_logits(name):
    loss = losses.get(name)
    big = t([1e4, -1e4, 80.0, -80.0])
    assert torch.isfinite(loss.d_loss(big, -big)) and torch.isfinite(loss.g_loss(big))
    if name != "hinge":
        # a perfectly confident, correct D has BCE 0 (naive log(sigmoid) would give log(0) = -inf / nan)
        assert loss.d_loss(t([1e4]), t([-1e4])).item() == pytest.approx(0.0, abs=1e-6)
        # exact large-logit value: -log(1 - sigmoid(1e4)) = 1e4
        assert losses.bce_d_loss(t([0.0]), t([1e4])).item() == pytest.approx(math.log(2) + 1e4, rel=1e-6)


def test_saturating_generator_gradient_vanishes_where_non_saturating_does_not():
    """Goodfellow et al.'s motivation: when D confidently rejects fakes (logit -10), the minimax
    G loss has almost no gradient while the non-saturating one has ~ -1/N per sample."""
    fake = torch.full((4,), -10.0, requires_grad=True)
    losses.minimax_g_loss(fake).backward()
    g_minimax = fake.grad.abs().max().item()
    fake.grad = None
    losses.non_saturating_g_loss(fake).backward()
    g_ns = fake.grad.abs().min().item()
    assert g_minimax < 1e-4 * 0.25 and g_ns == pytest.approx(0.25, rel=1e-3)


def test_bf16_logits_are_promoted():
    out = losses.bce_d_loss(t(REAL).bfloat16(), t(FAKE).bfloat16())
    assert out.dtype == torch.float32

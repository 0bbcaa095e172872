"""DiffAugment (fairgen.models.augment) and its use in the Fairness GAN's discriminator."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from fairgen.common import config
from fairgen.common.errors import ConfigError
from fairgen.models.augment import check_policy, diff_augment
from fairgen.models.fairness_gan import FairnessGAN
from fairgen.stages.train_gan import build_model

TINY = dict(resolution=32, z_dim=8, width=4, y_hidden=16, cy_hidden=16)


def _images(n=8, res=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, res, res, generator=g) * 2 - 1  # no exact zeros: cut/padded pixels are exactly 0


def test_policy_is_checked_and_put_in_the_papers_order():
    assert check_policy(["cutout", "color"]) == ("color", "cutout")
    assert check_policy([]) == ()
    with pytest.raises(ValueError, match="unknown op.*'flip'"):
        check_policy(["translation", "flip"])
    with pytest.raises(ValueError, match="repeated"):
        check_policy(["cutout", "cutout"])
    x = _images()
    assert diff_augment(x, ()) is x


def test_translation_shifts_each_image_by_at_most_an_eighth_with_zero_fill():
    x = _images(n=16, res=16)
    torch.manual_seed(3)
    out = diff_augment(x, ("translation",))
    s = 2  # 16 px / 8
    shifts = set()
    for i in range(len(x)):
        matches = []
        for dy, dx in itertools.product(range(-s, s + 1), repeat=2):
            ref = F.pad(x[i], (s, s, s, s))[:, s - dy:s - dy + 16, s - dx:s - dx + 16]
            if torch.equal(out[i], ref):
                matches.append((dy, dx))
        assert len(matches) == 1, f"image {i} is not one shifted copy of its input"
        shifts.add(matches[0])
    assert len(shifts) > 3  # drawn per image


def test_cutout_zeroes_one_square_of_half_the_side_clipped_at_the_border():
    x = _images(n=32, res=16)
    torch.manual_seed(4)
    out = diff_augment(x, ("cutout",))
    areas = set()
    for i in range(len(x)):
        cut = (out[i] == 0).all(dim=0)
        kept = ~cut
        torch.testing.assert_close(out[i][:, kept], x[i][:, kept], rtol=0, atol=0)
        rows, cols = cut.any(dim=1).nonzero().flatten(), cut.any(dim=0).nonzero().flatten()
        assert 0 < len(rows) <= 8 and 0 < len(cols) <= 8
        # a filled rectangle: every pixel in its bounding box is cut
        assert cut[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        areas.add(int(cut.sum()))
    assert 64 in areas and len(areas) > 1  # whole squares inside, clipped ones at the border


def test_color_is_a_per_image_brightness_saturation_contrast_change():
    x = _images(n=64, res=8)
    torch.manual_seed(5)
    out = diff_augment(x, ("color",))
    shift = (out - x).mean(dim=(1, 2, 3))
    assert shift.std() > 0.1  # brightness differs image to image
    # contrast and saturation are affine around means: a constant image stays constant
    flat = torch.full((2, 3, 8, 8), 0.3)
    o = diff_augment(flat, ("color",))
    assert torch.allclose(o, o[:, :, :1, :1].expand_as(o))


def test_augmentation_is_differentiable_seeded_and_keeps_channels_last():
    x = _images().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    policy = check_policy(["color", "translation", "cutout"])
    torch.manual_seed(7)
    a = diff_augment(x, policy)
    torch.manual_seed(7)
    b = diff_augment(x, policy)
    assert torch.equal(a, b)
    assert a.is_contiguous(memory_format=torch.channels_last)
    a.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert diff_augment(_images(), policy).is_contiguous()


def test_fairness_gan_augments_what_d_sees_in_both_steps_but_not_the_realism_score():
    torch.manual_seed(0)
    plain = FairnessGAN(**TINY)
    torch.manual_seed(0)
    aug = FairnessGAN(**TINY, diffaugment=["cutout", "translation"])
    assert aug.config["diffaugment"] == ["translation", "cutout"] and plain.config["diffaugment"] == []
    assert aug.augment == ("translation", "cutout")
    aug.load_state_dict(plain.state_dict())
    latent = plain.sample_latent(8, torch.Generator().manual_seed(1))
    real = {"x": torch.rand(8, 3, 32, 32) * 2 - 1, "c": latent["c"].clone(), "y": torch.randint(0, 2, (8,)).float()}
    fake = plain.generate(latent)
    fake["x"].retain_grad()
    torch.testing.assert_close(aug.realism(fake), plain.realism(fake))  # oversampling reads plain images

    def losses(gan):
        torch.manual_seed(2)
        ld, _ = gan.d_loss(real, latent, {k: v.detach() for k, v in fake.items()})
        torch.manual_seed(2)
        lg, _ = gan.g_loss(latent, real, fake)
        return ld, lg

    (pd, pg), (ad, ag) = losses(plain), losses(aug)
    assert not torch.isclose(pd, ad) and not torch.isclose(pg, ag)
    ag.backward()
    assert fake["x"].grad.abs().sum() > 0  # G's images get a gradient through the augmentation
    with pytest.raises(ValueError, match="unknown op"):
        FairnessGAN(**TINY, diffaugment=["rotate"])


def test_config_key_reaches_the_model_and_the_schema_rejects_unknown_ops():
    assert config.validate({})["gan"]["experimental"]["diffaugment"] == []
    cfg = config.validate({"gan": {"width": 4, "z_dim": 8, "experimental": {"diffaugment": ["cutout", "color"]}}})
    assert build_model(cfg, "fgan_dp", 32, 0.4).augment == ("color", "cutout")
    with pytest.raises(ConfigError, match="diffaugment"):
        config.validate({"gan": {"experimental": {"diffaugment": ["flip"]}}})
    with pytest.raises(ConfigError, match="diffaugment"):
        config.validate({"gan": {"experimental": {"diffaugment": ["color", "color"]}}})

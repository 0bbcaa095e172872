"""Shapes, conditioning and the GAN contract for every model, and the shared layers."""

import pytest
import torch
from torch import nn

from fairgen.models import build, model_class
from fairgen.models.base import GAN, MODEL_REGISTRY
from fairgen.models.layers import (
    ConditionalBatchNorm2d,
    DBlock,
    GBlock,
    MinibatchStdDev,
    init_normal_,
    init_xavier_,
    sn_conv2d,
)

# (name, small constructor overrides for speed, expected image shape)
MODELS = [
    ("vanilla", {}, (1, 28, 28)),
    ("dcgan64", {"ngf": 8, "ndf": 8}, (3, 64, 64)),
    ("dcgan", {"g_widths": [16, 8, 4], "d_widths": [8, 16]}, (1, 28, 28)),
    ("cgan", {"g_widths": [16, 8, 4], "d_widths": [8, 16]}, (1, 28, 28)),
    ("acgan", {"g_linear": 32, "g_widths": [16, 8], "d_widths": [4, 4, 8, 8, 16, 16]}, (3, 32, 32)),
    ("toy", {}, (2,)),
]
IDS = [m[0] for m in MODELS]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # the shared test machine is oversubscribed; 1 thread is fastest there
    torch.manual_seed(0)


def _real(gan: GAN, shape, n=4):
    x = torch.rand(n, *shape) * 2 - 1
    if x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    real = {"x": x}
    if "label" in gan.cond_keys:
        real["label"] = torch.randint(10, (n,))
    return real


@pytest.mark.parametrize("name,kw,shape", MODELS, ids=IDS)
def test_contract_shapes_losses_metrics(name, kw, shape):
    gan = build(name, **kw)
    assert gan.name == name and isinstance(gan, GAN)
    gen = torch.Generator().manual_seed(1)
    latent = gan.sample_latent(4, gen, "cpu")
    assert latent["z"].shape == (4, gan.z_dim)
    assert set(latent) == {"z", *gan.cond_keys}
    fake = gan.generate(latent)
    assert fake["x"].shape == (4, *shape)
    if len(shape) == 3:  # images come out of a tanh
        assert fake["x"].abs().max() <= 1.0
    for key in gan.cond_keys:  # conditioning passed through, so fake batches look like real ones
        assert torch.equal(fake[key], latent[key])

    real = _real(gan, shape)
    loss_d, m_d = gan.d_loss(real, latent)
    loss_g, m_g = gan.g_loss(latent, real)
    for loss in (loss_d, loss_g):
        assert loss.ndim == 0 and torch.isfinite(loss)
    for m in (*m_d.values(), *m_g.values()):
        assert m.ndim == 0 and not m.requires_grad and 0.0 <= m.item() <= 1.0
    assert {"acc_real", "acc_fake"} <= set(m_d)

    # d_loss must not backprop into G; g_loss must reach G
    gan.zero_grad(set_to_none=True)
    loss_d.backward()
    assert all(p.grad is None for p in gan.G.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gan.D.parameters())
    gan.zero_grad(set_to_none=True)
    loss_g.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gan.G.parameters())


@pytest.mark.parametrize("name,kw,shape", MODELS, ids=IDS)
def test_reused_fake_gives_same_losses(name, kw, shape):
    """The trainer passes one generated batch to both d_loss and g_loss; in eval mode (no dropout,
    fixed BN statistics) that must equal generating inside each call."""
    gan = build(name, **kw).eval()
    latent = gan.sample_latent(4, torch.Generator().manual_seed(2), "cpu")
    real = _real(gan, shape)
    fake = gan.generate(latent)
    assert torch.allclose(gan.d_loss(real, latent, fake)[0], gan.d_loss(real, latent)[0], atol=1e-6)
    assert torch.allclose(gan.g_loss(latent, real, fake)[0], gan.g_loss(latent, real)[0], atol=1e-6)
    # the D-side copy is detached
    loss_d, _ = gan.d_loss(real, latent, fake)
    loss_d.backward()
    assert all(p.grad is None for p in gan.G.parameters())


@pytest.mark.parametrize("name,kw,shape", MODELS, ids=IDS)
def test_config_rebuilds_identical_architecture(name, kw, shape):
    gan = build(name, **kw)
    again = build(gan.name, **gan.config)
    assert again.config == gan.config
    a, b = gan.state_dict(), again.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    assert set(gan.default_optim) == {"lr_g", "lr_d", "betas"}


def test_registry():
    assert {"vanilla", "dcgan", "dcgan64", "cgan", "acgan", "toy"} <= set(MODEL_REGISTRY)
    assert model_class("dcgan64").__name__ == "DCGAN64"
    # checkpoints written before the rename name the 28x28 DCGAN dcgan_mnist
    assert model_class("dcgan_mnist") is model_class("dcgan") and model_class("dcgan").__name__ == "DCGAN28"
    with pytest.raises(ValueError, match="unknown GAN model 'nope'.*dcgan"):
        build("nope")


def test_vanilla_defaults_are_the_seed_report_mlp():
    gan = build("vanilla")
    linears = [m for m in gan.G.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(100, 128), (128, 784)]
    slopes = {m.negative_slope for m in gan.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.01}
    assert build("vanilla", hidden=[64, 32], leaky_slope=0.2).config["hidden"] == [64, 32]


def test_dcgan64_is_the_pytorch_examples_architecture():
    gan = build("dcgan64")
    # parameter counts of pytorch/examples' netG / netD with nz=100, ngf=ndf=64, nc=3
    assert sum(p.numel() for p in gan.G.parameters()) == 3_576_704
    assert sum(p.numel() for p in gan.D.parameters()) == 2_765_568
    convs = [m for m in gan.G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [512, 256, 128, 64, 3]
    w = torch.cat([m.weight.flatten() for m in convs])
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001  # N(0, 0.02) init
    bn = [m.weight for m in gan.D.modules() if isinstance(m, nn.BatchNorm2d)]
    assert abs(torch.cat(bn).mean().item() - 1.0) < 0.01
    assert not any(isinstance(m, nn.Sigmoid) for m in gan.D.modules())  # D returns logits
    assert build("dcgan64", img_size=32, ngf=4, ndf=4).generate(
        {"z": torch.randn(2, 100)})["x"].shape == (2, 3, 32, 32)


def test_dcgan28_layers_match_the_seed_report():
    gan = build("dcgan")
    fc = gan.G.fc[0]
    assert (fc.in_features, fc.out_features) == (100, 12544)
    convs = [m for m in gan.G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in convs] == [
        (128, (3, 3), (1, 1)), (64, (3, 3), (2, 2)), (1, (3, 3), (2, 2))]


def test_acgan_heads_and_layers():
    gan = build("acgan")
    assert gan.G.fc[0].in_features == 110 and gan.G.fc[0].out_features == 384 * 16
    convs = [m for m in gan.G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.out_channels, m.kernel_size) for m in convs] == [(192, (5, 5)), (96, (5, 5)), (3, (5, 5))]
    dconvs = [m for m in gan.D.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in dconvs] == [16, 32, 64, 128, 256, 512]
    assert {m.p for m in gan.D.modules() if isinstance(m, nn.Dropout)} == {0.5}
    assert gan.D.head.out_features == 1 + 10
    src, cls = gan.D(torch.zeros(3, 3, 32, 32))
    assert src.shape == (3,) and cls.shape == (3, 10)


@pytest.mark.parametrize("name,kw", [MODELS[3][:2], MODELS[4][:2]], ids=["cgan", "acgan"])
def test_label_conditioning(name, kw):
    gan = build(name, **kw).eval()
    z = torch.randn(10, gan.z_dim)
    same_z = {"z": z[:1].expand(10, -1)}
    labels = torch.arange(10)
    x = gan.generate({**same_z, "label": labels})["x"]
    # the same noise with different labels gives different images
    assert (x[0] - x[1:]).abs().flatten(1).max(dim=1).values.min() > 1e-4
    # given labels are used as is; scalars broadcast; missing ones are drawn uniformly
    lat = gan.sample_latent(6, torch.Generator().manual_seed(0), "cpu", label=3)
    assert torch.equal(lat["label"], torch.full((6,), 3))
    drawn = gan.sample_latent(2000, torch.Generator().manual_seed(0), "cpu")["label"]
    assert drawn.min() == 0 and drawn.max() == 9 and drawn.bincount().min() > 150
    fixed = gan.fixed_latent(20, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert fixed["label"].tolist() == list(range(10)) * 2 and gan.sample_grid_nrow == 10
    with pytest.raises(ValueError, match="unknown conditioning"):
        gan.sample_latent(2, None, "cpu", c=1)
    with pytest.raises(ValueError, match="rows"):
        gan.sample_latent(2, None, "cpu", label=torch.tensor([1, 2, 3]))


def test_cgan_discriminator_depends_on_label():
    gan = build("cgan", **MODELS[3][1]).eval()
    x = torch.rand(4, 1, 28, 28)
    assert not torch.allclose(gan.discriminate({"x": x, "label": torch.zeros(4, dtype=torch.long)}),
                              gan.discriminate({"x": x, "label": torch.ones(4, dtype=torch.long)}))


def test_channels_last_and_bf16_autocast_forward():
    gan = build("dcgan64", ngf=8, ndf=8).to(memory_format=torch.channels_last)
    latent = gan.sample_latent(2, torch.Generator().manual_seed(0), "cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = gan.generate(latent)["x"]
        loss, _ = gan.g_loss(latent, None, {"x": x})
    assert x.dtype == torch.bfloat16 and x.is_contiguous(memory_format=torch.channels_last)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_unconditional_model_has_no_prior_for_unknown_keys():
    gan = build("vanilla")
    with pytest.raises(NotImplementedError):
        gan.sample_condition("c", 2, None, torch.device("cpu"))


# ------------------------------------------------------------------ layers
def test_conditional_bn_starts_as_plain_bn_and_accepts_one_hot():
    cbn = ConditionalBatchNorm2d(5, num_classes=3)
    bn = nn.BatchNorm2d(5, affine=False)
    x = torch.randn(6, 5, 4, 4)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.allclose(cbn(x, labels), bn(x), atol=1e-6)
    with torch.no_grad():
        cbn.gain.weight.uniform_(0.5, 2.0)
        cbn.bias.weight.normal_()
    cbn.eval()
    onehot = nn.functional.one_hot(labels, 3).float()
    assert torch.allclose(cbn(x, labels), cbn(x, onehot), atol=1e-6)
    # class 0 vs class 1 give different outputs once the embeddings differ
    assert not torch.allclose(cbn(x, torch.zeros(6, dtype=torch.long)), cbn(x, torch.ones(6, dtype=torch.long)))
    cont = ConditionalBatchNorm2d(5, cond_dim=2)
    assert torch.allclose(cont(x, torch.randn(6, 2)), bn(x), atol=1e-6)  # zero-initialised projections
    assert ConditionalBatchNorm2d(5, cond_dim=1)(x, torch.randn(6)).shape == x.shape  # (N,) for d = 1
    with pytest.raises(ValueError, match="exactly one"):
        ConditionalBatchNorm2d(5)


def test_resnet_blocks_shapes_and_skip():
    x = torch.randn(2, 8, 4, 4).contiguous(memory_format=torch.channels_last)
    assert GBlock(8, 4, num_classes=2)(x, torch.tensor([0, 1])).shape == (2, 4, 8, 8)
    assert GBlock(8, 8, cond_dim=1)(x, torch.rand(2, 1)).shape == (2, 8, 8, 8)
    assert GBlock(8, 8, upsample=False)(x).shape == (2, 8, 4, 4)
    with pytest.raises(ValueError, match="without conditioning"):
        GBlock(8, 4, num_classes=2)(x)
    first = DBlock(3, 8, preactivation=False)
    assert first(torch.randn(2, 3, 8, 8)).shape == (2, 8, 4, 4) and first.shortcut is not None
    same = DBlock(8, 8, downsample=False, sn=False)
    assert same.shortcut is None  # identity skip: zeroing the residual branch returns the input
    with torch.no_grad():
        same.conv2.weight.zero_()
        same.conv2.bias.zero_()
    assert torch.allclose(same(x), x)


def test_spectral_norm_bounds_the_largest_singular_value():
    conv = sn_conv2d(4, 6, 3)
    with torch.no_grad():
        conv.parametrizations.weight.original.mul_(10)
    for _ in range(30):  # power iterations run on training-mode forwards
        conv(torch.randn(1, 4, 5, 5))
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=0.02)


def test_init_helpers():
    net = nn.Sequential(nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64), nn.Linear(64, 64), sn_conv2d(64, 64, 3),
                        ConditionalBatchNorm2d(64, num_classes=2))
    init_normal_(net, std=0.05)
    assert abs(net[0].weight.std().item() - 0.05) < 0.005 and net[0].bias.abs().max() == 0
    assert abs(net[3].parametrizations.weight.original.std().item() - 0.05) < 0.005
    assert torch.equal(net[4].gain.weight, torch.ones(2, 64))  # CBN keeps its identity init
    init_normal_(net, linear=False)
    init_xavier_(net)
    assert torch.equal(net[4].gain.weight, torch.ones(2, 64))


def test_minibatch_stddev_groups_are_contiguous_and_match_a_direct_computation():
    torch.manual_seed(0)
    x = torch.randn(10, 3, 4, 4)
    out = MinibatchStdDev(4)(x)
    assert out.shape == (10, 4, 4, 4)
    torch.testing.assert_close(out[:, :3], x)  # the input passes through
    for lo, hi in ((0, 4), (4, 8), (8, 10)):  # two full groups and the tail of 2 as its own group
        g = x[lo:hi]
        want = (g.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(out[lo:hi, 3], want.expand(hi - lo, 4, 4))
    # a group never sees the next one: changing images 4..9 leaves group 0's map as it was
    y = x.clone()
    y[4:] = torch.randn(6, 3, 4, 4) * 5
    torch.testing.assert_close(MinibatchStdDev(4)(y)[:4, 3], out[:4, 3])
    # identical images in a group: no spread (sqrt(eps)); a single image: the same
    same = x[:1].expand(4, 3, 4, 4)
    assert MinibatchStdDev(4)(same)[:, 3].max() < 1e-3
    assert MinibatchStdDev(4)(x[:1])[:, 3].max() < 1e-3
    with pytest.raises(ValueError, match="group"):
        MinibatchStdDev(1)
    # gradients reach the input through the statistic too
    xr = x.clone().requires_grad_(True)
    MinibatchStdDev(4)(xr)[:, 3].sum().backward()
    assert xr.grad.abs().sum() > 0

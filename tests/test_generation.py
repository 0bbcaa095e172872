import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fairgen import cli, config
from fairgen.errors import CheckpointError, DataError
from fairgen.generation import balanced_groups, generate
from fairgen.models.base import GAN, MODEL_REGISTRY
from fairgen.synthetic_data import read_synthetic
from fairgen.training.checkpoint import save_checkpoint

SIZE = 8


class TinyFairGAN(GAN):
    """G(z, c) -> (x, y) like the Fairness GAN, small enough to build in milliseconds."""

    name = "test_tiny_fair"
    cond_keys = ("c",)
    cond_classes = {"c": 2}

    def __init__(self, z_dim: int = 4, size: int = SIZE, with_y: bool = True, nan: bool = False):
        G = nn.ModuleDict({"x": nn.Linear(z_dim + 1, 3 * size * size), "y": nn.Linear(z_dim + 1, 1)})
        D = nn.Linear(3 * size * size, 1)
        super().__init__(G, D, z_dim=z_dim, loss="hinge",
                         config={"z_dim": z_dim, "size": size, "with_y": with_y, "nan": nan})
        self.size, self.with_y, self.nan = size, with_y, nan

    def generate(self, latent):
        h = torch.cat([latent["z"], latent["c"].float()[:, None]], dim=1)
        x = torch.tanh(self.G["x"](h)).view(-1, 3, self.size, self.size)
        out = {"x": x * float("nan") if self.nan else x, "c": latent["c"]}
        if self.with_y:
            out["y"] = torch.tanh(self.G["y"](h)).reshape(-1)
        return out


class Unconditional(TinyFairGAN):
    name = "test_tiny_uncond"
    cond_keys = ()


@pytest.fixture
def registry(monkeypatch):
    for cls in (TinyFairGAN, Unconditional):
        monkeypatch.setitem(MODEL_REGISTRY, cls.name, cls)


def _checkpoint(path, cls=TinyFairGAN, step=123, ema_seed=None, **kwargs):
    """A checkpoint of ``cls`` initialised with seed 0; with ``ema_seed``, its G_ema holds the G of
    the same model initialised with that seed (a stand-in for G's moving average)."""
    torch.manual_seed(0)
    gan = cls(**kwargs)
    extra = {}
    if ema_seed is not None:
        torch.manual_seed(ema_seed)
        extra["G_ema"] = cls(**kwargs).G.state_dict()
    save_checkpoint({"model": {"name": gan.name, "config": gan.config}, "step": step,
                     "G": gan.G.state_dict(), "D": gan.D.state_dict(), **extra}, path)
    return path


def _cfg(n=50, ratio=0.5, seed=0, batch_size=16):
    return config.validate({"seed": seed, "device": "cpu",
                            "generate": {"n_samples": n, "protected_ratio": ratio, "batch_size": batch_size}})


@pytest.mark.parametrize("n, ratio, ones", [(10, 0.5, 5), (11, 0.5, 6), (7, 0.0, 0), (7, 1.0, 7), (1000, 0.3, 300)])
def test_balanced_groups_exact_counts(n, ratio, ones):
    c = balanced_groups(n, ratio, seed=3)
    assert len(c) == n and c.sum() == ones and set(np.unique(c)) <= {0, 1}


def test_balanced_groups_are_shuffled_with_the_seed():
    a, b = balanced_groups(200, 0.5, seed=1), balanced_groups(200, 0.5, seed=2)
    np.testing.assert_array_equal(a, balanced_groups(200, 0.5, seed=1))
    assert not np.array_equal(a, b)
    assert 0 < a[:100].sum() < 100  # not sorted


def test_generate_writes_a_valid_dataset(registry, tmp_path):
    ckpt = _checkpoint(tmp_path / "ckpt.pt")
    summary = generate(_cfg(n=50, ratio=0.4), "fgan_dp", ckpt, tmp_path / "synth", progress=False)
    table, images, meta = read_synthetic(tmp_path / "synth")
    assert len(table) == 50 and images.shape == (50, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert table["c"].sum() == 20  # exactly round(50 * 0.4)
    assert set(table["model"]) == {"fgan_dp"} and set(table["checkpoint_step"]) == {123}
    assert table["y_prob"].between(0, 1).all()
    np.testing.assert_array_equal(table["y"], (table["y_prob"] >= 0.5).astype(int))
    assert meta["generation"]["model_name"] == "test_tiny_fair"
    assert sum(summary["counts"].values()) == 50
    for name in summary["previews"]:
        with Image.open(tmp_path / "synth" / name) as im:
            assert im.mode == "RGB"
    assert len(summary["previews"]) == sum(1 for v in summary["counts"].values() if v)


@pytest.mark.parametrize("ema_seed", [None, 5])
def test_outputs_match_the_model(registry, tmp_path, ema_seed):
    """y_prob = (y + 1) / 2 of the generator's y for the recorded c, images = x mapped to uint8;
    drawn from G's moving average when the checkpoint has one."""
    ckpt = _checkpoint(tmp_path / "ckpt.pt", ema_seed=ema_seed)
    cfg = _cfg(n=20, batch_size=20)
    generate(cfg, "acgan", ckpt, tmp_path / "synth", progress=False)
    table, images, meta = read_synthetic(tmp_path / "synth")
    assert meta["generation"]["generator_weights"] == ("trained" if ema_seed is None else "ema")
    torch.manual_seed(0 if ema_seed is None else ema_seed)
    gan = TinyFairGAN()
    gen = torch.Generator().manual_seed(int(meta["generation"]["seed"]))
    with torch.no_grad():
        out = gan.generate(gan.sample_latent(20, gen, "cpu", c=torch.tensor(table["c"].to_numpy())))
    np.testing.assert_allclose(table["y_prob"], ((out["y"] + 1) / 2).numpy(), atol=1e-6)
    expected = ((out["x"].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(images, expected)


def test_generation_is_deterministic_with_the_seed(registry, tmp_path):
    ckpt = _checkpoint(tmp_path / "ckpt.pt")
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        generate(_cfg(seed=seed), "fgan_dp", ckpt, tmp_path / name, progress=False)
    ta, ia, _ = read_synthetic(tmp_path / "a")
    tb, ib, _ = read_synthetic(tmp_path / "b")
    tc, ic, _ = read_synthetic(tmp_path / "c")
    np.testing.assert_array_equal(ia, ib)
    assert ta.equals(tb)
    assert not np.array_equal(ia, ic)


def test_regenerating_replaces_the_folder_atomically(registry, tmp_path):
    ckpt = _checkpoint(tmp_path / "ckpt.pt")
    generate(_cfg(n=30), "fgan_dp", ckpt, tmp_path / "synth", progress=False)
    generate(_cfg(n=10), "fgan_dp", ckpt, tmp_path / "synth", progress=False)
    assert len(read_synthetic(tmp_path / "synth")[0]) == 10
    assert not (tmp_path / "synth" / "images" / "000020.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "synth"]  # no temporary left


@pytest.mark.parametrize(
    "cls, kwargs, error, needle",
    [
        (Unconditional, {}, DataError, "not conditioned on the protected attribute c"),
        (TinyFairGAN, {"with_y": False}, DataError, "generates no outcome 'y'"),
        (TinyFairGAN, {"nan": True}, DataError, "NaN/inf in batch 0"),
    ],
)
def test_bad_models(registry, tmp_path, cls, kwargs, error, needle):
    ckpt = _checkpoint(tmp_path / "ckpt.pt", cls, **kwargs)
    with pytest.raises(error, match=needle):
        generate(_cfg(), "fgan_dp", ckpt, tmp_path / "synth", progress=False)
    assert not (tmp_path / "synth").exists()


def test_bad_checkpoints(registry, tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        generate(_cfg(), "fgan_dp", tmp_path / "missing.pt", tmp_path / "synth", progress=False)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        generate(_cfg(), "fgan_dp", tmp_path / "junk.pt", tmp_path / "synth", progress=False)


def test_cli(registry, tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "ckpt.pt")
    rc = cli.main(["generate", "--set", "device=cpu", "--set", "generate.n_samples=12", "--run", "fgan_eqopp",
                   "--checkpoint", str(ckpt), "--out-dir", str(tmp_path / "synth")])
    assert rc == 0
    table, _, _ = read_synthetic(tmp_path / "synth")
    assert len(table) == 12 and set(table["model"]) == {"fgan_eqopp"}
    rc = cli.main(["generate", "--set", "device=cpu", "--run", "fgan_dp", "--checkpoint", str(tmp_path / "no.pt"),
                   "--out-dir", str(tmp_path / "x")])
    assert rc == 2 and "no.pt: checkpoint not found" in capsys.readouterr().err


def test_generate_from_a_fairness_gan_checkpoint(tmp_path):
    """The real model: a tiny randomly initialised Fairness GAN, rebuilt from its checkpoint."""
    from fairgen.models import build

    torch.manual_seed(0)
    gan = build("fairness_gan", resolution=32, z_dim=8, width=8, y_hidden=8, cy_hidden=8)
    save_checkpoint({"model": {"name": gan.name, "config": gan.config}, "step": 5,
                     "G": gan.G.state_dict(), "D": gan.D.state_dict()}, tmp_path / "ckpt.pt")
    for name in ("a", "b"):
        generate(_cfg(n=24, batch_size=10), "fgan_dp", tmp_path / "ckpt.pt", tmp_path / name, progress=False)
    ta, ia, meta = read_synthetic(tmp_path / "a")
    tb, ib, _ = read_synthetic(tmp_path / "b")
    assert ia.shape == (24, 32, 32, 3) and ta["c"].sum() == 12
    np.testing.assert_array_equal(ia, ib)
    assert ta.equals(tb)
    assert meta["generation"]["model_name"] == "fairness_gan" and meta["generation"]["checkpoint_step"] == 5
    # y_prob is G's y mapped from (-1, 1): recompute it from the same noise
    gen = torch.Generator().manual_seed(int(meta["generation"]["seed"]))
    gan.eval()
    with torch.no_grad():
        ys = [gan.generate(gan.sample_latent(len(cb), gen, "cpu", c=torch.tensor(cb)))["y"]
              for cb in np.array_split(ta["c"].to_numpy(), [10, 20])]
    np.testing.assert_allclose(ta["y_prob"], ((torch.cat(ys) + 1) / 2).numpy(), atol=1e-6)

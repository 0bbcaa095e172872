import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fairgen import cli
from fairgen.common import config
from fairgen.common.errors import CheckpointError, DataError
from fairgen.data.synthetic_set import read_synthetic
from fairgen.models.base import GAN, MODEL_REGISTRY
from fairgen.stages.generate import generate
from fairgen.training.checkpoint import save_checkpoint
from fairgen.training.sampling import balanced_groups, realism_scores, select_stratified

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

    def realism(self, batch):
        return self.D(batch["x"].flatten(1)).reshape(-1)


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


def _cfg(n=50, ratio=0.5, seed=0, batch_size=16, oversample=1):
    return config.validate({"seed": seed, "device": "cpu", "precision": "fp32",  # exact reproductions
                            "generate": {"n_samples": n, "protected_ratio": ratio, "batch_size": batch_size,
                                         "experimental": {"oversample": oversample}}})


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


def test_select_stratified_keeps_the_top_of_each_cell_in_its_share():
    rng = np.random.default_rng(0)
    c = (rng.random(300) < 0.5).astype(int)
    y = (rng.random(300) < np.where(c == 1, 0.3, 0.6)).astype(int)
    scores = rng.normal(size=300)
    keep = select_stratified(scores, c, y, {0: 40, 1: 60})
    assert np.all(np.diff(keep) > 0)
    for g, n_g in ((0, 40), (1, 60)):
        group = c == g
        assert (c[keep] == g).sum() == n_g
        k1 = round(n_g * (group & (y == 1)).sum() / group.sum())
        assert ((c[keep] == g) & (y[keep] == 1)).sum() == k1
        for yv in (0, 1):
            cell = np.flatnonzero(group & (y == yv))
            kept = np.intersect1d(cell, keep)
            assert scores[kept].min() >= scores[np.setdiff1d(cell, keep)].max()
    with pytest.raises(ValueError, match="only"):
        select_stratified(scores, c, y, {0: 1000, 1: 0})


def test_oversampling_keeps_the_most_real_candidates_per_cell(registry, tmp_path):
    """generate.oversample k draws exactly the samples of an n*k generation (same seed) and keeps
    the n that select_stratified picks by the model's realism score of the saved images."""
    ckpt = _checkpoint(tmp_path / "ckpt.pt")
    generate(_cfg(n=90, ratio=0.4, batch_size=16), "fgan_dp", ckpt, tmp_path / "all", progress=False)
    summary = generate(_cfg(n=30, ratio=0.4, batch_size=16, oversample=3), "fgan_dp", ckpt, tmp_path / "kept",
                       progress=False)
    t_all, i_all, _ = read_synthetic(tmp_path / "all")
    t_kept, i_kept, meta = read_synthetic(tmp_path / "kept")
    assert len(t_kept) == 30 and t_kept["c"].sum() == 12  # exactly round(30 * 0.4)
    torch.manual_seed(0)
    gan = TinyFairGAN()
    c_all = t_all["c"].to_numpy()
    scores = realism_scores(gan, i_all, t_all["y_prob"].to_numpy(), c_all, batch_size=7,
                            device=torch.device("cpu"), progress=False)
    keep = select_stratified(scores, c_all, t_all["y"].to_numpy(), {0: 18, 1: 12})
    np.testing.assert_array_equal(i_kept, i_all[keep])
    np.testing.assert_array_equal(t_kept["y_prob"], t_all["y_prob"].to_numpy()[keep])
    sel = meta["generation"]["selection"]
    assert sel["oversample"] == 3 and sel["candidates"] == 90
    assert sel["mean_score_kept"] > sel["mean_score_candidates"]
    assert summary["selection"] == sel
    assert generate(_cfg(n=30), "fgan_dp", ckpt, tmp_path / "plain", progress=False)["selection"] is None


def test_oversampling_needs_a_realism_score(registry, tmp_path, monkeypatch):
    monkeypatch.delattr(TinyFairGAN, "realism")
    ckpt = _checkpoint(tmp_path / "ckpt.pt")
    with pytest.raises(DataError, match="no discriminator realism score; generate.experimental.oversample > 1"):
        generate(_cfg(n=10, oversample=2), "fgan_dp", ckpt, tmp_path / "synth", progress=False)
    assert not (tmp_path / "synth").exists()


def test_fairness_gan_realism_is_its_image_head(tmp_path):
    """The Fairness GAN's realism score is D's S_X (given c with sx_given_c); oversampling works
    on its checkpoints."""
    from fairgen.models import build

    torch.manual_seed(0)
    gan = build("fairness_gan", resolution=32, z_dim=8, width=8, y_hidden=8, cy_hidden=8, sx_given_c=True).eval()
    x, y, c = torch.rand(6, 3, 32, 32) * 2 - 1, torch.rand(6) * 2 - 1, torch.tensor([0, 1, 0, 1, 0, 1])
    with torch.no_grad():
        torch.testing.assert_close(gan.realism({"x": x, "y": y, "c": c}), gan.D(x, y, c)["sx"])
    save_checkpoint({"model": {"name": gan.name, "config": gan.config}, "step": 5,
                     "G": gan.G.state_dict(), "D": gan.D.state_dict()}, tmp_path / "ckpt.pt")
    summary = generate(_cfg(n=12, batch_size=10, oversample=2), "fgan_dp", tmp_path / "ckpt.pt", tmp_path / "s",
                       progress=False)
    assert summary["n_samples"] == 12 and summary["selection"]["candidates"] == 24

"""Counterfactual pairs (fairgen.data.pairs) and the classifier methods that use them."""

import numpy as np
import pytest
import torch
from test_classifiers import SIZE, _rule_images, _write_real
from test_generation import TinyFairGAN, Unconditional, _checkpoint, registry  # noqa: F401 (fixture)

from fairgen import cli
from fairgen.common import config
from fairgen.common.errors import ConfigError, DataError
from fairgen.data.pairs import read_pairs
from fairgen.data.synthetic_set import SAMPLES_FILE, read_synthetic, write_synthetic
from fairgen.eval.classifier import _grad_reverse
from fairgen.stages.generate_pairs import generate_pairs
from fairgen.stages.train_classifier import train_classifier


class CBlind(TinyFairGAN):
    """Images and outcome from z alone: both members of a pair must come out identical."""

    name = "test_tiny_cblind"

    def generate(self, latent):
        return super().generate({**latent, "c": torch.zeros_like(latent["c"])}) | {"c": latent["c"]}


@pytest.fixture
def cblind(monkeypatch, registry):  # noqa: F811
    from fairgen.models.base import MODEL_REGISTRY

    monkeypatch.setitem(MODEL_REGISTRY, CBlind.name, CBlind)


def _pcfg(n_pairs=20, batch_size=8, **classifier):
    return config.validate({"device": "cpu", "pairs": {"n_pairs": n_pairs, "batch_size": batch_size},
                            "classifier": {"epochs": 2, "batch_size": 32, "width": 8, "bootstrap": 20,
                                           "lr": 0.01, **classifier}})


def test_pairs_share_the_noise(tmp_path, cblind):
    ck = _checkpoint(tmp_path / "ck.pt", cls=CBlind)
    summary = generate_pairs(_pcfg(n_pairs=21), "fgan_dp", ck, tmp_path / "pairs", progress=False)
    table, images, meta = read_synthetic(tmp_path / "pairs")
    assert len(table) == 42 and summary["n_pairs"] == 21
    assert table["pair_id"].tolist() == np.repeat(np.arange(21), 2).tolist()
    assert table["c"].tolist() == [0, 1] * 21
    # a c-blind generator draws the same image and outcome for both members: the noise is shared
    assert np.array_equal(images[0::2], images[1::2])
    assert np.array_equal(table["y_prob"].to_numpy()[0::2], table["y_prob"].to_numpy()[1::2])
    # and the images differ from pair to pair (fresh noise per pair)
    assert not np.array_equal(images[0], images[2])
    assert meta["pairs"]["generator_label_agreement"] == 1.0
    assert (tmp_path / "pairs" / "previews" / "pairs.png").is_file()
    pairs = read_pairs(tmp_path / "pairs")
    assert len(pairs) == 21 and np.array_equal(pairs.images0, pairs.images1)


def test_pairs_follow_c(tmp_path, registry):  # noqa: F811
    ck = _checkpoint(tmp_path / "ck.pt")
    generate_pairs(_pcfg(n_pairs=16), "fgan_dp", ck, tmp_path / "pairs", progress=False)
    pairs = read_pairs(tmp_path / "pairs")
    # the same z through G(., 0) and G(., 1) by hand
    gan = TinyFairGAN()
    gan.G.load_state_dict(torch.load(ck, weights_only=True)["G"])
    from fairgen.common.config import seed_for

    gen = torch.Generator().manual_seed(seed_for(_pcfg(), "pairs/fgan_dp"))
    z = torch.randn(8, 4, generator=gen)  # the first batch of 8 pairs
    with torch.no_grad():
        x1 = gan.generate({"z": z, "c": torch.ones(8, dtype=torch.long)})["x"]
    want = ((x1.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(pairs.images1[:8], want)
    assert not np.array_equal(pairs.images0, pairs.images1)


def test_pairs_are_deterministic(tmp_path, registry):  # noqa: F811
    ck = _checkpoint(tmp_path / "ck.pt")
    generate_pairs(_pcfg(), "fgan_dp", ck, tmp_path / "a", progress=False)
    generate_pairs(_pcfg(), "fgan_dp", ck, tmp_path / "b", progress=False)
    a, b = read_pairs(tmp_path / "a"), read_pairs(tmp_path / "b")
    assert np.array_equal(a.images0, b.images0) and np.array_equal(a.y_prob1, b.y_prob1)


def test_unconditional_checkpoint_is_refused(tmp_path, registry):  # noqa: F811
    ck = _checkpoint(tmp_path / "ck.pt", cls=Unconditional)
    with pytest.raises(DataError, match=r"ck\.pt.*not conditioned on the protected attribute"):
        generate_pairs(_pcfg(), "fgan_dp", ck, tmp_path / "pairs", progress=False)
    assert not (tmp_path / "pairs").exists()


def _pair_set(folder, n=6, mutate=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (2 * n, SIZE, SIZE, 3), dtype=np.uint8)
    c = np.tile([0, 1], n)
    pid = np.repeat(np.arange(n), 2)
    y_prob = rng.random(2 * n)
    if mutate:
        images, c, pid, y_prob = mutate(images, c, pid, y_prob)
    write_synthetic(folder, images, c, y_prob, model="fgan_dp", checkpoint_step=1, seed=0, pair_id=pid,
                    progress=False)
    return folder


@pytest.mark.parametrize("mutate, match", [
    (lambda i, c, p, y: (i[:-1], c[:-1], p[:-1], y[:-1]), r"pair_id 5 has 1 member\(s\)"),
    (lambda i, c, p, y: (i, np.where(np.arange(len(c)) == 3, 0, c), p, y), r"pair_id 1 has both members at c=0"),
    (lambda i, c, p, y: (i, c, np.where(np.arange(len(p)) == 5, 1, p), y), r"pair_id 1 has 3 member\(s\)"),
])
def test_broken_pairs_are_refused(tmp_path, mutate, match):
    folder = _pair_set(tmp_path / "pairs", mutate=mutate)
    with pytest.raises(DataError, match=match) as e:
        read_pairs(folder)
    assert str(folder / SAMPLES_FILE) in str(e.value)


def test_a_set_without_pair_id_is_not_a_pair_set(tmp_path):
    rng = np.random.default_rng(0)
    write_synthetic(tmp_path / "s", rng.integers(0, 255, (4, SIZE, SIZE, 3), dtype=np.uint8), [0, 1, 0, 1],
                    [0.1, 0.9, 0.2, 0.8], model="fgan_dp", checkpoint_step=1, seed=0, progress=False)
    with pytest.raises(DataError, match="not a counterfactual pair set"):
        read_pairs(tmp_path / "s")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    return _write_real(tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    """100 pairs whose two members show the outcome's bright square alike and differ in a c
    stripe (a c cue the classifier could use on generated images)."""
    rng = np.random.default_rng(5)
    n = 100
    y = (rng.random(n) < 0.5).astype(int)
    base = _rule_images(y, rng)
    x0, x1 = base.copy(), base.copy()
    x1[:, :, :2] = 200  # the c=1 member carries a stripe
    images = np.empty((2 * n, SIZE, SIZE, 3), np.uint8)
    images[0::2], images[1::2] = x0, x1
    y_prob = np.repeat(np.where(y == 1, 0.8, 0.2), 2)
    folder = tmp_path_factory.mktemp("pairs") / "set"
    write_synthetic(folder, images, np.tile([0, 1], n), y_prob, model="fgan_dp", checkpoint_step=1, seed=0,
                    pair_id=np.repeat(np.arange(n), 2), progress=False)
    return folder


def test_ratio_asking_for_more_pairs_than_the_set_holds(real, pairs_dir, tmp_path):
    cfg = _pcfg(pair_ratio=2.0, pair_label="generator")  # 320 real train images -> 320 pairs > 100
    with pytest.raises(DataError, match=rf"{pairs_dir}.*pair_ratio 2.0 asks for 320 pairs.*holds 100"):
        train_classifier(cfg, "real_plus_pairs", *real, pairs=str(pairs_dir), out_dir=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_negative_lambda_is_a_config_error():
    with pytest.raises(ConfigError, match="classifier.clp_lambda"):
        _pcfg(clp_lambda=-1)
    with pytest.raises(ConfigError, match="classifier.domain_lambda"):
        _pcfg(domain_lambda=-0.5)


def test_pair_methods_need_pairs(real, tmp_path):
    with pytest.raises(ConfigError, match="needs a counterfactual pair set"):
        train_classifier(_pcfg(), "real_clp", *real, out_dir=tmp_path, progress=False)


def test_real_classifier_rule_needs_the_real_model(real, pairs_dir, tmp_path):
    with pytest.raises(ConfigError, match="--label-model"):
        train_classifier(_pcfg(pair_ratio=0.5), "real_plus_pairs", *real, pairs=str(pairs_dir), out_dir=tmp_path,
                         progress=False)


def test_real_plus_pairs_adds_labelled_pairs(real, pairs_dir, tmp_path):
    result = train_classifier(_pcfg(pair_ratio=0.5, pair_label="generator"), "real_plus_pairs", *real,
                              pairs=str(pairs_dir), out_dir=tmp_path, progress=False)
    info = result["training"]["pairs"]
    assert info["n_pairs"] == 80 and result["training"]["n"] == 320 + 160  # 0.5 x 320 images = 80 pairs
    assert info["label_rule"] == "generator"


def test_real_plus_pairs_with_the_real_classifiers_labels(real, pairs_dir, tmp_path):
    train_classifier(_pcfg(), "real", *real, out_dir=tmp_path / "real", progress=False)
    result = train_classifier(_pcfg(pair_ratio=0.25), "real_plus_pairs", *real, pairs=str(pairs_dir),
                              label_model=str(tmp_path / "real" / "model.pt"), out_dir=tmp_path / "rp",
                              progress=False)
    assert result["training"]["pairs"]["label_rule"] == "real_classifier"
    assert result["training"]["pairs"]["n_pairs"] == 40
    with pytest.raises(DataError, match="expected 'real'"):
        train_classifier(_pcfg(pair_ratio=0.25), "real_plus_pairs", *real, pairs=str(pairs_dir),
                         label_model=str(tmp_path / "rp" / "model.pt"), out_dir=tmp_path / "x", progress=False)


def _pair_gap(model_path, pairs_dir):
    from fairgen.eval.classifier import load_model

    model, _ = load_model(model_path)
    model.eval()
    p = read_pairs(pairs_dir)
    with torch.no_grad():
        def f(a):
            return model(torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1).reshape(-1)
        return float((f(p.images0) - f(p.images1)).pow(2).mean())


def test_clp_penalty_reaches_the_loss(real, pairs_dir, tmp_path):
    """With the penalty, the classifier's logits barely move between a pair's members; at
    lambda 0 (the same loop, pairs in the forward pass) they move freely. Deleting the penalty
    from the loss makes the two runs equal and this test fail."""
    gaps = {}
    for lam in (0.0, 30.0):
        out = tmp_path / f"l{lam}"
        result = train_classifier(_pcfg(clp_lambda=lam, epochs=3), "real_clp", *real, pairs=str(pairs_dir),
                                  out_dir=out, progress=False)
        assert result["training"]["pairs"]["clp_lambda"] == lam
        gaps[lam] = _pair_gap(out / "model.pt", pairs_dir)
    assert gaps[30.0] < 0.2 * gaps[0.0], gaps


def test_pair_methods_keep_reals_batches(real, pairs_dir, tmp_path):
    """real_clp at lambda 0 differs from real only by the pair images in the forward pass."""
    a = train_classifier(_pcfg(), "real", *real, out_dir=tmp_path / "a", progress=False)
    b = train_classifier(_pcfg(clp_lambda=0.0), "real_clp", *real, pairs=str(pairs_dir), out_dir=tmp_path / "b",
                         progress=False)
    assert a["training"]["seed"] == b["training"]["seed"]


def test_gradient_reversal():
    x = torch.ones(3, requires_grad=True)
    _grad_reverse()(x, 2.5).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -2.5))


def test_domain_confusion_hides_the_domain(real, pairs_dir, tmp_path):
    """The domain head's accuracy is recorded per epoch; with gradient reversal the features
    are pushed to hide real vs generated, so the head ends less accurate than without it."""
    import json

    acc = {}
    for lam in (0.0, 1.0):
        out = tmp_path / f"d{lam}"
        cfg = _pcfg(domain_lambda=lam, clp_lambda=0.0, epochs=3)
        train_classifier(cfg, "real_clp_dann", *real, pairs=str(pairs_dir), out_dir=out, progress=False)
        curve = json.loads((out / "curve.json").read_text())["epochs"]
        if lam == 0.0:
            assert "domain_head_accuracy" not in curve[-1]
        else:
            acc[lam] = curve[-1]["domain_head_accuracy"]
            assert 0.0 <= acc[lam] <= 1.0
    assert "pair_logit_gap_sq" in curve[-1]


def test_cli_generate_pairs(tmp_path, registry, capsys):  # noqa: F811
    ck = _checkpoint(tmp_path / "ck.pt")
    rc = cli.main(["generate-pairs", "--set", "device=cpu", "--set", "pairs.n_pairs=5", "--run", "fgan_dp",
                   "--checkpoint", str(ck), "--out-dir", str(tmp_path / "p")])
    assert rc == 0 and len(read_pairs(tmp_path / "p")) == 5
    rc = cli.main(["train-classifier", "--set", "device=cpu", "--set", "classifier.clp_lambda=-1",
                   "--method", "real_clp", "--array", "a", "--index", "b", "--out-dir", str(tmp_path / "o")])
    assert rc == 2 and "clp_lambda" in capsys.readouterr().err


def test_pair_reweigh_weighs_the_real_rows(real, pairs_dir, tmp_path):
    result = train_classifier(_pcfg(pair_reweigh=True, epochs=1), "real_clp", *real, pairs=str(pairs_dir),
                              out_dir=tmp_path, progress=False)
    assert result["training"]["weighted"] and result["training"]["pairs"]["reweighed_real"]


def test_pairs_sweep_is_a_snakemake_target(tmp_path):
    """`snakemake pairs_sweep` (and `all` with a pair method) plans the pair set, every sweep point,
    the threshold curve, the diagnostics and the trade-off, with each point named on the tradeoff
    command line."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    overlay = tmp_path / "pairs.yaml"
    overlay.write_text("classifier: {methods: [real, reweighing, fgan_dp, real_clp]}\n"
                       "pairs: {n_pairs: 50, sweep: {pair_ratio: [0.5], pair_label: [generator], clp_lambda: [0, 1]}}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"), "-d", str(tmp_path / "w"),
                           "--cores", "1", "--dry-run", "--printshellcmds", "--configfile",
                           str(root / "config" / "tiny.yaml"), str(overlay), "--", "all", "pairs_sweep"],
                          capture_output=True, text=True, cwd=root, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    out = done.stdout
    for rule, n in (("generate_pairs", 1), ("threshold_baseline", 1), ("pair_diagnostics", 1), ("pairs_tradeoff", 1),
                    ("pair_sweep_classifier", 5)):  # 1 ratio x 1 label + 2 lambdas x 2 methods
        assert f"rule {rule}:" in out, rule
        counts = {line.split()[-1] for line in out.splitlines() if line.split()[:1] == [rule]}
        assert counts == {str(n)}, (rule, n, counts)  # the job-stats table (printed once per summary)
    tradeoff = next(line for line in out.splitlines() if "fairgen tradeoff" in line)
    for name in ("real_clp[clp_lambda]@0", "real_clp[clp_lambda]@1", "real_clp_dann[clp_lambda]@1",
                 "real_plus_pairs[pair_ratio; pair_label: generator]@0.5", "fgan_dp="):
        assert name in tradeoff, name
    assert "--thresholds" in next(line for line in out.splitlines() if "fairgen audit " in line)

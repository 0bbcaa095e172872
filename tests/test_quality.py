"""Quality measures: Frechet distance, FID (own-CNN and Inception v3 features), label statistics,
c-conditioning accuracy, and the ``fairgen quality`` step end to end on tiny data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from fairgen.cli import main as cli_main
from fairgen.common.config import validate
from fairgen.common.errors import ConfigError, DataError
from fairgen.common.io import write_parquet
from fairgen.eval import features as feat
from fairgen.eval import quality

RES = 32


def make_faces(rng: np.random.Generator, c, y, size: int = RES, shift: float = 0.0, glasses=None) -> np.ndarray:
    """Toy 'faces' where c is visible (a bright bar at the top for c=1, at the bottom for c=0)
    and y tints the centre blue. ``shift`` brightens everything (a distribution shift);
    ``glasses`` (0/1 per image) reddens a patch at the left edge."""
    c, y = np.asarray(c), np.asarray(y)
    img = rng.normal(110 + shift, 25, size=(len(c), size, size, 3))
    bar = slice(2, 7)
    img[c == 1, bar, 4:-4, :] += 110
    img[c == 0, size - 7:size - 2, 4:-4, :] += 110
    img[y == 1, size // 2 - 5:size // 2 + 5, size // 2 - 5:size // 2 + 5, 2] += 80
    if glasses is not None:
        img[np.asarray(glasses) == 1, size // 2 - 3:size // 2 + 3, 1:6, 0] += 130
    return np.clip(img, 0, 255).astype(np.uint8)


def assert_close_tree(got, expected, rel=1e-6):
    """Nested dicts/lists equal, numbers up to ``rel`` (pytest.approx does not nest)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), (got, expected)
        for k in expected:
            assert_close_tree(got[k], expected[k], rel)
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert_close_tree(a, b, rel)
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=rel, abs=1e-9)
    else:
        assert got == expected


def make_labels(rng, n, p_c=0.4):
    c = (rng.random(n) < p_c).astype(np.int64)
    y = (rng.random(n) < np.where(c == 1, 0.3, 0.7)).astype(np.int64)
    return c, y


@pytest.fixture(scope="module")
def own_cnn():
    """A tiny own-CNN trained on toy real images (module-scoped: trained once)."""
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    c, y = make_labels(rng, 320)
    model, history = feat.train_own_cnn(make_faces(rng, c, y), c, y, width=8, epochs=4, lr=3e-3,
                                        batch_size=32, seed=0, progress=False)
    return feat.OwnCNNExtractor(model, "cpu", 64), history


# ---------------------------------------------------------------------------- Frechet distance


def random_cov(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / (rank or d) + (0 if rank else 0.1 * np.eye(d))


def test_frechet_zero_for_identical_feature_sets():
    f = np.random.default_rng(1).normal(size=(500, 16)) @ np.random.default_rng(2).normal(size=(16, 16))
    assert quality.fid(f, f) == pytest.approx(0.0, abs=1e-8)
    mu, sigma = quality.gaussian_stats(f)
    assert quality.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_closed_form_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)  # = 7.25 + 4 + 1
    assert expected == pytest.approx(12.25)
    assert quality.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-12)


def test_frechet_matches_scipy_sqrtm_reference_and_is_symmetric():
    from scipy import linalg

    rng = np.random.default_rng(3)
    for d in (1, 5, 40):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = random_cov(rng, d), random_cov(rng, d)
        covmean = linalg.sqrtm(s1 @ s2).real
        ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
        got = quality.frechet_distance(mu1, s1, mu2, s2)
        assert got == pytest.approx(ref, rel=1e-8, abs=1e-9)
        assert quality.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(got, rel=1e-9)


def test_frechet_grows_with_mean_shift_by_its_squared_norm():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(400, 8))
    direction = rng.normal(size=8)
    values = [quality.fid(f, f + t * direction) for t in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] == pytest.approx(0.0, abs=1e-8)
    for t, v in zip((0.5, 1.0, 2.0), values[1:]):  # same covariance: only the mean term remains
        assert v == pytest.approx(t * t * direction @ direction, rel=1e-8)


def test_frechet_singular_covariances_fewer_samples_than_dims():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(10, 64)), rng.normal(size=(12, 64)) * 2 + 0.3
    assert quality.fid(a, a) == pytest.approx(0.0, abs=1e-8)
    d_ab = quality.fid(a, b)  # the low-rank (n < d) route
    assert np.isfinite(d_ab) and d_ab > 0
    assert quality.fid(b, a) == pytest.approx(d_ab, rel=1e-9)
    # ... equals the covariance route on the same (singular) covariances.
    # (square roots of round-off-sized eigenvalues limit the covariance route to ~1e-8 here).
    assert quality.frechet_distance(*quality.gaussian_stats(a), *quality.gaussian_stats(b)) == pytest.approx(d_ab, rel=1e-6)
    d_a_shift = quality.fid(a, a + 1.0)
    assert d_a_shift == pytest.approx(64.0, rel=1e-9)  # only the mean term: 64 dims x 1^2


def test_frechet_rejects_bad_input():
    with pytest.raises(ValueError, match="shape mismatch"):
        quality.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        quality.frechet_distance(np.zeros(2), np.array([[1.0, np.nan], [np.nan, 1.0]]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="at least 2"):
        quality.fid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="dimensions differ"):
        quality.fid(np.zeros((4, 3)), np.zeros((5, 2)))


def test_fid_by_group_isolates_the_shifted_group():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(600, 6))
    real_c = np.repeat([0, 1], 300)
    synth = rng.normal(size=(600, 6))
    synth_c = np.tile([0, 1], 300)
    synth[synth_c == 1] += 3.0
    res = quality.fid_by_group(real, real_c, synth, synth_c, label="FID (test)")
    assert res["label"] == "FID (test)"
    g0, g1 = res["by_group"]["0"], res["by_group"]["1"]
    assert (g0["n_real"], g0["n_synthetic"], g1["n_real"], g1["n_synthetic"]) == (300, 300, 300, 300)
    assert g0["value"] < 0.3 and g1["value"] > 6 * 9 * 0.8  # mean term alone is 6 * 3^2 = 54
    # The overall FID is the FID of the pooled sets.
    assert res["overall"]["value"] == pytest.approx(quality.fid(real, synth))
    # A group with fewer than 2 images on one side has no value, not a crash.
    res = quality.fid_by_group(real, real_c, synth[:3], np.array([0, 0, 1]))
    assert res["by_group"]["1"]["value"] is None and res["by_group"]["0"]["value"] is not None


# ----------------------------------------------------------------- label statistics, agreement


def test_label_statistics_against_hand_computation():
    c = [0, 0, 0, 1, 1, 0, 1]
    y = [1, 0, 1, 0, 1, 1, 0]
    s = quality.label_statistics(c, y, y_prob=[0.9, 0.2, 0.6, 0.1, 0.8, 0.7, 0.3])
    assert s["n"] == 7 and s["p_y1"] == pytest.approx(4 / 7)
    assert s["by_group"]["0"] == pytest.approx({"n": 4, "p_y1": 3 / 4, "mean_y_prob": 2.4 / 4})
    assert s["by_group"]["1"] == pytest.approx({"n": 3, "p_y1": 1 / 3, "mean_y_prob": 1.2 / 3})
    assert s["dp_difference_c1_minus_c0"] == pytest.approx(1 / 3 - 3 / 4)

    real = quality.label_statistics([0, 0, 1, 1], [1, 1, 0, 1])  # P(y|c=0)=1, P(y|c=1)=1/2
    gap = quality.label_gap(real, s)
    assert gap["by_group"]["0"]["p_y1"] == pytest.approx(3 / 4 - 1)
    assert gap["by_group"]["1"]["p_y1"] == pytest.approx(1 / 3 - 1 / 2)
    assert gap["dp_difference_c1_minus_c0"] == pytest.approx((1 / 3 - 3 / 4) - (1 / 2 - 1))

    empty = quality.label_statistics([0, 0], [1, 0])
    assert empty["by_group"]["1"] == {"n": 0, "p_y1": None}
    assert empty["dp_difference_c1_minus_c0"] is None
    assert quality.label_gap(empty, s)["dp_difference_c1_minus_c0"] is None
    with pytest.raises(ValueError, match="0/1"):
        quality.label_statistics([0, 2], [1, 0])


def test_agreement_hand_computed():
    a = quality.agreement([0.9, 0.4, 0.2, 0.7, 0.5], [1, 1, 0, 0, 1])
    assert_close_tree(a, {"accuracy": 3 / 5, "n": 5, "by_group": {"0": 1 / 2, "1": 2 / 3},
                          "balanced_accuracy": (1 / 2 + 2 / 3) / 2})
    constant = quality.agreement([0.9] * 4, [1, 0, 0, 0])  # always predicts 1
    assert constant["accuracy"] == 0.25 and constant["balanced_accuracy"] == 0.5
    assert quality.agreement([0.9], [1])["by_group"] == {"0": None, "1": 1.0}
    # A c classifier at chance on real images makes c-conditioning uninformative: say so.
    (warning,) = quality.classifier_warnings(constant, "test")
    assert "balanced accuracy 0.500 on real test images" in warning
    assert quality.classifier_warnings(a | {"balanced_accuracy": 0.9}, "test") == []


# --------------------------------------------------------------------------- own-CNN extractor


def test_own_cnn_c_conditioning_accuracy_well_above_chance(own_cnn):
    extractor, history = own_cnn
    assert history[-1] < history[0]
    rng = np.random.default_rng(10)
    c = np.tile([0, 1], 100)
    y = (rng.random(200) < 0.5).astype(int)
    out = extractor.run(make_faces(rng, c, y), progress=False)
    assert out["features"].shape == (200, 64) and out["features"].dtype == np.float64
    right = quality.agreement(out["p_c"], c)
    assert right["accuracy"] > 0.9 and min(right["by_group"].values()) > 0.85
    # The same images scored against the opposite c: the measure must collapse.
    assert quality.agreement(out["p_c"], 1 - c)["accuracy"] < 0.1
    assert quality.agreement(out["p_y"], y)["accuracy"] > 0.75


def test_fid_self_zero_and_distorted_larger(own_cnn):
    extractor, _ = own_cnn
    rng = np.random.default_rng(11)
    c, y = make_labels(rng, 300)
    real = make_faces(rng, c, y)
    f_real = extractor.features(real, progress=False)
    assert quality.fid(f_real, f_real) == pytest.approx(0.0, abs=1e-6)
    c2, y2 = make_labels(rng, 300)
    same = quality.fid(f_real, extractor.features(make_faces(rng, c2, y2), progress=False))
    shifted = quality.fid(f_real, extractor.features(make_faces(rng, c2, y2, shift=40), progress=False))
    no_c = make_faces(rng, c2, y2)
    no_c[:, :7] = no_c[:, -7:] = 110  # the c bars removed
    erased = quality.fid(f_real, extractor.features(no_c, progress=False))
    assert 0 < same < shifted and same < erased
    assert shifted > 3 * same and erased > 3 * same


def test_own_cnn_cache_is_reused_and_keyed_by_settings(tmp_path, monkeypatch):
    rng = np.random.default_rng(12)
    c, y = make_labels(rng, 48)
    images = make_faces(rng, c, y, size=16)
    monkeypatch.setattr(feat, "OWN_CNN_TRAINING", {**feat.OWN_CNN_TRAINING, "width": 4, "epochs": 1})
    cfg = validate({"device": "cpu", "quality": {"batch_size": 16}})
    first = feat.load_or_train_own_cnn(cfg, images, c, y, tmp_path, progress=False)
    files = list(tmp_path.glob("own_cnn-*.pt"))
    assert len(files) == 1 and first.info["weights"] == str(files[0])
    mtime = files[0].stat().st_mtime_ns
    second = feat.load_or_train_own_cnn(cfg, images, c, y, tmp_path, progress=False)
    assert files[0].stat().st_mtime_ns == mtime  # loaded, not retrained
    np.testing.assert_array_equal(first.features(images, False), second.features(images, False))
    # Training is deterministic: a fresh training with the same seed gives the same weights.
    files[0].unlink()
    third = feat.load_or_train_own_cnn(cfg, images, c, y, tmp_path, progress=False)
    np.testing.assert_allclose(third.features(images, False), first.features(images, False), rtol=1e-5, atol=1e-6)
    # Another seed or other data is another model (another cache file).
    feat.load_or_train_own_cnn({**cfg, "seed": 1}, images, c, y, tmp_path, progress=False)
    feat.load_or_train_own_cnn(cfg, images, 1 - c, y, tmp_path, progress=False)
    assert len(list(tmp_path.glob("own_cnn-*.pt"))) == 3
    # A corrupt cache file is retrained, not fatal.
    files[0].write_bytes(b"garbage")
    fourth = feat.load_or_train_own_cnn(cfg, images, c, y, tmp_path, progress=False)
    np.testing.assert_allclose(fourth.features(images, False), first.features(images, False), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------ Inception extractor


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    model = inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path_factory.mktemp("inception") / "inception_random.pth"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def test_inception_loads_local_weights_file(inception_file):
    path, saved = inception_file
    ex = feat.InceptionExtractor.from_file(path, batch_size=1)
    loaded = ex.model.state_dict()
    assert ex.label == "FID (Inception v3)" and ex.info["weights"] == str(path)
    for k, v in saved.items():
        if not k.startswith("fc."):  # fc is replaced by Identity: pool3 features come out
            assert torch.equal(loaded[k], v), k
    images = make_faces(np.random.default_rng(13), [0, 1], [1, 0])
    seen = {}
    hooks = [ex.model.Conv2d_1a_3x3.register_forward_hook(lambda m, i, o: seen.setdefault("input", []).append(i[0])),
             ex.model.avgpool.register_forward_hook(lambda m, i, o: seen.setdefault("pool3", []).append(o))]
    f = ex.features(images, progress=False)  # two batches of one image
    for h in hooks:
        h.remove()
    assert [tuple(t.shape) for t in seen["input"]] == [(1, 3, 299, 299)] * 2  # resized to 299
    np.testing.assert_array_equal(f, torch.cat(seen["pool3"]).flatten(1).double().numpy())  # pool3 itself
    assert f.shape == (2, 2048) and f.dtype == np.float64
    assert np.isfinite(f).all() and (f >= 0).all()  # pool3 is an average of ReLU outputs
    assert not np.allclose(f[0], f[1])


def test_inception_features_depend_on_the_loaded_weights(inception_file, tmp_path):
    path, saved = inception_file
    other = {k: (v * 1.5 if k.endswith("conv.weight") else v) for k, v in saved.items()}
    torch.save(other, tmp_path / "other.pth")
    images = make_faces(np.random.default_rng(14), [1], [0])
    f1 = feat.InceptionExtractor.from_file(path).features(images, progress=False)
    f2 = feat.InceptionExtractor.from_file(tmp_path / "other.pth").features(images, progress=False)
    assert not np.allclose(f1, f2)


def test_inception_missing_or_corrupt_weights_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"quality\.inception_weights.*not found.*nope\.pth"):
        feat.InceptionExtractor.from_file(tmp_path / "nope.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(DataError, match=r"corrupt\.pth: not a readable PyTorch weights file"):
        feat.InceptionExtractor.from_file(corrupt)
    wrong = tmp_path / "resnet.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), wrong)
    with pytest.raises(DataError, match=r"resnet\.pth: not torchvision Inception v3 weights \(\d+ missing keys"):
        feat.InceptionExtractor.from_file(wrong)
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(DataError, match="expected an Inception v3 state dict"):
        feat.InceptionExtractor.from_file(tmp_path / "list.pth")


# --------------------------------------------------------------------------------- end to end


def write_real(folder, n=400, seed=20):
    rng = np.random.default_rng(seed)
    c, y = make_labels(rng, n)
    split = np.array(["train"] * (n // 2) + ["valid"] * (n // 4) + ["test"] * (n - n // 2 - n // 4))
    glasses = (np.random.default_rng(seed + 1000).random(n) < 0.25).astype(np.int64)
    # Smiling: random and invisible (the attribute classifier cannot read it); Eyeglasses: visible
    df = pd.DataFrame({"image_id": [f"{i:06d}.jpg" for i in range(n)], "split": split, "Male": c,
                       "Attractive": y, "Smiling": rng.integers(0, 2, n), "Eyeglasses": glasses})
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "crops.npy", make_faces(rng, c, y, glasses=glasses))
    write_parquet(df, folder / "index.parquet", "crops_index")
    return folder / "crops.npy", folder / "index.parquet", df


def write_synth(folder, c, y_prob, images, model="fgan_dp"):
    from fairgen.data.synthetic_set import write_synthetic

    write_synthetic(folder, images, c, y_prob, model=model, checkpoint_step=10, seed=0, progress=False)
    return folder


TINY = {"device": "cpu", "quality": {"batch_size": 32, "n_samples": 100}}
#: a smaller, faster-learning own CNN for the tiny test data (an evaluator internal, not config)
TINY_CNN = {**feat.OWN_CNN_TRAINING, "width": 8, "epochs": 4, "lr": 0.003}


@pytest.fixture(scope="module")
def tiny_cnn():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(feat, "OWN_CNN_TRAINING", TINY_CNN)
        yield


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, tiny_cnn):
    root = tmp_path_factory.mktemp("e2e")
    array, index, real = write_real(root / "data")
    rng = np.random.default_rng(21)
    n = 160
    c = np.tile([0, 1], n // 2)
    y_prob = rng.random(n)
    y = (y_prob >= 0.5).astype(int)
    glasses = (np.random.default_rng(22).random(n) < 0.25).astype(np.int64)
    good = write_synth(root / "synthetic" / "good", c, y_prob, make_faces(rng, c, y, glasses=glasses))
    # 'bad': images drawn for the opposite c and brightened: poor FID, c-conditioning fails; and
    # nobody wears glasses
    bad = write_synth(root / "synthetic" / "bad", c, y_prob, make_faces(rng, 1 - c, y, shift=40), model="acgan")
    cfg = validate(TINY)
    result = quality.evaluate_quality(cfg, array, index, {"good": good, "bad": bad}, root / "quality", progress=False)
    return root, cfg, result, real, (c, y, y_prob)


def test_evaluate_quality_end_to_end(e2e):
    root, cfg, result, real, (c, y, y_prob) = e2e
    on_disk = json.loads((root / "quality" / "quality.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert result["format"] == "fairgen.quality" and result["format_version"] == 1
    assert set(result["extractors"]) == {"own_cnn"}
    assert result["extractors"]["own_cnn"]["label"] == "FID (own-CNN features)"
    assert "not comparable to published fid" in result["extractors"]["own_cnn"]["note"].lower()
    assert result["extractors"]["own_cnn"]["n_train"] == 200 and result["real_split"] == "test"
    assert result["real"]["n_eval"] == 100  # n_samples of the 100 test images
    good, bad = result["runs"]["good"], result["runs"]["bad"]
    assert good["n_synthetic"] == 160 and good["n_evaluated"] == 100
    for r in (good, bad):
        assert r["fid"]["own_cnn"]["label"] == "FID (own-CNN features)"
    g, b = good["fid"]["own_cnn"], bad["fid"]["own_cnn"]
    assert g["overall"]["value"] < b["overall"]["value"]
    for grp in ("0", "1"):
        assert g["by_group"][grp]["value"] < b["by_group"][grp]["value"]
    assert good["c_conditioning"]["accuracy"] > 0.9 and bad["c_conditioning"]["accuracy"] < 0.2
    assert result["classifier_accuracy_real"]["c"]["accuracy"] > 0.9 and result["warnings"] == []
    # The reference (real train vs real test) is close to the good generator, far from the bad one.
    ref = result["real"]["reference_fid"]["own_cnn"]["overall"]["value"]
    assert ref < b["overall"]["value"] / 3
    # Label statistics: the real train split and the whole synthetic table, by hand.
    train = real[real["split"] == "train"]
    ls = good["label_statistics"]
    for grp in (0, 1):
        real_p = train.loc[train["Male"] == grp, "Attractive"].mean()
        syn_p = y[c == grp].mean()
        assert ls["real_train"]["by_group"][str(grp)]["p_y1"] == pytest.approx(real_p)
        assert ls["synthetic"]["by_group"][str(grp)]["p_y1"] == pytest.approx(syn_p)
        assert ls["synthetic"]["by_group"][str(grp)]["mean_y_prob"] == pytest.approx(y_prob[c == grp].mean())
        assert ls["gap_synthetic_minus_real"]["by_group"][str(grp)]["p_y1"] == pytest.approx(syn_p - real_p)
    tsv = pd.read_csv(root / "quality" / "summary.tsv", sep="\t")
    assert list(tsv["run"]) == ["real train (reference)", "good", "bad"]
    # The outcome the real-trained y head sees: on the evaluated images (100 per run, 100 real).
    for name, seen in (("good", good["images_outcome"]), ("bad", bad["images_outcome"]),
                       ("real train (reference)", result["real"]["images_outcome"])):
        assert seen["n"] == 100 and seen["classifier"] == quality.Y_HEAD
        for grp in (0, 1):
            assert tsv.loc[tsv["run"] == name, f"p_yhat1_c{grp}"].item() == pytest.approx(
                seen["by_group"][str(grp)]["p_y1"], rel=1e-5)
    assert set(tsv["measure"]) == {"FID (own-CNN features)"}
    assert tsv.loc[tsv["run"] == "good", "fid"].item() == pytest.approx(g["overall"]["value"], rel=1e-5)


def test_images_outcome_thresholds_the_y_head_per_group():
    seen = quality.images_outcome([0.9, 0.2, 0.6, 0.4, 0.1, 0.7], [0, 0, 0, 1, 1, 1])
    assert seen["by_group"]["0"]["p_y1"] == pytest.approx(2 / 3)
    assert seen["by_group"]["1"]["p_y1"] == pytest.approx(1 / 3)
    assert seen["dp_difference_c1_minus_c0"] == pytest.approx(-1 / 3)
    assert quality.images_outcome([0.5, 0.49], [0, 1])["by_group"] == {"0": {"n": 1, "p_y1": 1.0},
                                                                       "1": {"n": 1, "p_y1": 0.0}}


def test_evaluate_quality_is_deterministic_and_reuses_the_cache(e2e):
    root, cfg, result, _, _ = e2e
    cached = sorted((root / "quality" / "cache").glob("*.pt"))
    assert [p.name.split("-")[0] for p in cached] == ["attribute_cnn", "own_cnn"]
    mtimes = [p.stat().st_mtime_ns for p in cached]
    out3 = quality.evaluate_quality(cfg, root / "data" / "crops.npy", root / "data" / "index.parquet",
                                    {"good": root / "synthetic" / "good"}, root / "quality", progress=False)
    assert [p.stat().st_mtime_ns for p in cached] == mtimes and len(list((root / "quality" / "cache").iterdir())) == 2
    assert_close_tree(out3["runs"]["good"], result["runs"]["good"])
    assert_close_tree(out3["attribute_coverage"], result["attribute_coverage"])


def test_cli_quality_with_inception_and_errors(e2e, inception_file, capsys, monkeypatch):
    root, _, _, _, _ = e2e
    path, _ = inception_file
    # Loading the weights file is real; the 299x299 forward passes (seconds per image on a busy
    # CPU, tested above) are replaced by cheap image statistics of the right shape.
    calls = []

    def cheap_pool3(self, images, progress=True):
        calls.append(len(images))
        x = images.reshape(len(images), -1).astype(np.float64)
        return np.tile(np.stack([x.mean(1), x.std(1), x[:, ::7].mean(1), x[:, ::5].std(1)], 1), 512)

    monkeypatch.setattr(feat.InceptionExtractor, "features", cheap_pool3)
    shutil.copytree(root / "quality" / "cache", root / "cli" / "cache")  # reuse the trained own CNN
    args = ["quality", "--config-json", json.dumps(TINY), "--set", f"quality.inception_weights={path}",
            "--set", "quality.n_samples=2", "--array", str(root / "data" / "crops.npy"),
            "--index", str(root / "data" / "index.parquet"), "--synthetic", str(root / "synthetic" / "good"),
            "--out", str(root / "cli")]
    assert cli_main(args) == 0
    res = json.loads((root / "cli" / "quality.json").read_text())
    assert set(res["extractors"]) == {"own_cnn", "inception_v3"}
    fids = res["runs"]["good"]["fid"]
    assert fids["inception_v3"]["label"] == "FID (Inception v3)" and fids["own_cnn"]["label"] == "FID (own-CNN features)"
    assert fids["inception_v3"]["overall"]["value"] > 0 and res["extractors"]["inception_v3"]["feature_dim"] == 2048
    assert calls == [2, 2, 2]  # real eval, real reference, one synthetic set (n_samples=2)
    assert res["extractors"]["inception_v3"]["weights"] == str(path)
    assert set(pd.read_csv(root / "cli" / "summary.tsv", sep="\t")["measure"]) == {
        "FID (own-CNN features)", "FID (Inception v3)"}
    # Errors: exit code 2 with a message naming the culprit.
    bad_args = args[:-4] + ["--synthetic", f"x={root / 'missing'}", "--out", str(root / "cli_err")]
    assert cli_main(bad_args) == 2
    assert "missing: synthetic dataset folder not found" in capsys.readouterr().err
    missing_weights = [a.replace(str(path), str(root / "none.pth")) for a in args]
    assert cli_main(missing_weights) == 2
    assert "quality.inception_weights" in capsys.readouterr().err


def test_real_data_errors(tmp_path, tiny_cnn):
    cfg = validate(TINY)
    array, index, df = write_real(tmp_path / "d", n=40)
    np.save(tmp_path / "short.npy", np.load(array)[:-1])
    with pytest.raises(DataError, match=r"short\.npy has 39 images but .*index\.parquet has 40 rows"):
        quality.evaluate_quality(cfg, tmp_path / "short.npy", index, {}, tmp_path / "o")
    df.loc[5, "Male"] = 3
    with pytest.raises(DataError, match=r"row 5: column 'Male' must be 0/1"):
        quality.evaluate_quality(cfg, array, df, {}, tmp_path / "o")
    df.loc[5, "Male"] = 1
    df["split"] = "train"
    with pytest.raises(DataError, match="split 'test' has 0 images"):
        quality.evaluate_quality(cfg, array, df, {}, tmp_path / "o")


def test_attribute_coverage_finds_the_look_a_generator_dropped(e2e):
    """The attribute classifier reads the visible attribute (glasses) well and the invisible one
    (Smiling, random) at chance; only the first is trusted. 'good' draws glasses as often as the
    real images, 'bad' never: only 'bad' is reported as dropping Eyeglasses=1."""
    root, _, result, real, _ = e2e
    cov = result["attribute_coverage"]
    assert cov["attributes"] == ["Eyeglasses", "Smiling"] and cov["classifier"] == quality.ATTR_HEAD
    test = real[real["split"] == "test"]  # all 100 test images are evaluated
    glasses = cov["real"]["Eyeglasses"]
    assert glasses["true"]["overall"] == pytest.approx(test["Eyeglasses"].mean())
    for g in (0, 1):
        assert glasses["true"][str(g)] == pytest.approx(test.loc[test["Male"] == g, "Eyeglasses"].mean())
    assert glasses["trusted"] and glasses["balanced_accuracy"] > 0.9
    assert glasses["n_positive"] == int(test["Eyeglasses"].sum())
    assert not cov["real"]["Smiling"]["trusted"] and cov["real"]["Smiling"]["balanced_accuracy"] < 0.7
    good, bad = result["runs"]["good"]["attribute_coverage"], result["runs"]["bad"]["attribute_coverage"]
    assert good["dropped"] == []
    assert abs(good["prevalence"]["Eyeglasses"]["overall"] - glasses["predicted"]["overall"]) < 0.12
    assert [quality.dropped_label(d) for d in bad["dropped"]] == ["Eyeglasses=1"]
    assert bad["dropped"][0]["real"] == pytest.approx(glasses["predicted"]["overall"])
    assert bad["dropped"][0]["synthetic"] < 0.02
    rows = {r["run"]: r["dropped_looks"] for r in quality.summary_rows(result)}  # the summary.tsv column
    assert rows == {"real train (reference)": "", "good": "none", "bad": "Eyeglasses=1"}


def test_attribute_coverage_rule_reads_the_rarer_value():
    """A common attribute whose absence the generator drops (real 80% young, synthetic 100%)
    is reported as value 0; untrusted attributes and looks rarer than MIN_LOOK_RATE never are."""
    names = ["Young", "Eyeglasses", "Bald", "Smiling"]
    n = 3000
    rng = np.random.default_rng(0)
    labels = np.stack([rng.random(n) < 0.8, rng.random(n) < 0.1, rng.random(n) < 0.01,
                       rng.random(n) < 0.5], axis=1).astype(np.uint8)
    probs = labels.astype(float)
    probs[:, 3] = rng.random(n)  # Smiling read at chance: untrusted
    c = rng.integers(0, 2, n)
    real = quality.attribute_coverage_real(probs, labels, c, names)
    assert [real[a]["trusted"] for a in names] == [True, True, True, False]
    syn = np.zeros((n, 4))
    syn[:, 0] = 1.0           # everyone young
    syn[: n // 20, 1] = 1.0   # glasses at 5% instead of ~10%: fewer, not dropped
    run = quality.attribute_coverage_run(syn, c, real, names)
    assert [quality.dropped_label(d) for d in run["dropped"]] == ["Young=0"]
    assert run["dropped"][0]["real"] == pytest.approx(1 - labels[:, 0].mean())
    assert run["dropped"][0]["synthetic"] == 0.0
    assert run["prevalence"]["Eyeglasses"]["ratio_rarer_value"] == pytest.approx(0.05 / labels[:, 1].mean())
    syn[:, 1] = 0.0           # now no glasses at all: dropped too, and it is rarer than Young=0 ...
    names_dropped = [quality.dropped_label(d) for d in quality.attribute_coverage_run(syn, c, real, names)["dropped"]]
    assert sorted(names_dropped) == ["Eyeglasses=1", "Young=0"]  # ... Bald (1%) is below MIN_LOOK_RATE


def test_attribute_coverage_can_be_switched_off_and_rejects_bad_values(tmp_path, tiny_cnn):
    array, index, real = write_real(tmp_path / "data")
    cfg = validate({**TINY, "quality": {**TINY["quality"], "attribute_coverage": False}})
    result = quality.evaluate_quality(cfg, array, index, {}, tmp_path / "q", progress=False)
    assert result["attribute_coverage"] is None
    assert [p.name.split("-")[0] for p in (tmp_path / "q" / "cache").iterdir()] == ["own_cnn"]
    bad = real.copy()
    bad.loc[7, "Eyeglasses"] = 2
    with pytest.raises(DataError, match=r"row 7: column 'Eyeglasses' must be 0/1"):
        quality.evaluate_quality(validate(TINY), np.load(array), bad, {}, tmp_path / "q2", progress=False)
    assert not (tmp_path / "q2").exists()  # before any training: nothing cached, nothing written

"""The embedded synthetic CelebA: bias statistics, rendering consistency, format and determinism."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fairgen.common.errors import ConfigError, DataError
from fairgen.data import celeba as C
from fairgen.data import procedural_celeba as S

DEFAULTS = dict(p_protected=0.42, p_outcome_given_protected_0=0.65, p_outcome_given_protected_1=0.25,
                feature_strength=1.0)


def sample(n=2000, seed=0, **kw):
    args = {**DEFAULTS, **kw}
    return S.sample_dataset(n, seed, **args)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A rendered dataset of 150 images (two workers) and its summary."""
    root = tmp_path_factory.mktemp("syn") / "synthetic_celeba"
    summary = S.make_synthetic_celeba(root, n_images=150, seed=7, workers=2, progress=False, **DEFAULTS)
    return root, summary


# ------------------------------------------------------------------ bias


@pytest.mark.parametrize("seed", [0, 1])
def test_default_bias_hits_targets(seed):
    df = sample(2000, seed).frame
    c, y = df["Male"].to_numpy(), df["Attractive"].to_numpy()
    assert abs(c.mean() - 0.42) < 0.05
    assert abs(y[c == 0].mean() - 0.65) < 0.05
    assert abs(y[c == 1].mean() - 0.25) < 0.05


def test_intercepts_are_calibrated_in_expectation():
    s = sample(2000, 3)
    assert s.expected_rates == pytest.approx((0.65, 0.25), abs=1e-6)
    assert s.intercepts[0] > s.intercepts[1]  # the bias sits in the group intercepts


@pytest.mark.parametrize("protected, outcome, p_c, t0, t1", [
    ("Young", "Smiling", 0.6, 0.30, 0.70),
    ("Eyeglasses", "Wearing_Lipstick", 0.5, 0.55, 0.15),
    ("Attractive", "Black_Hair", 0.3, 0.10, 0.40),
    ("Male", "No_Beard", 0.5, 0.9, 0.4),
])
def test_other_protected_outcome_pairs(protected, outcome, p_c, t0, t1):
    df = S.sample_dataset(3000, 11, p_c, t0, t1, 1.0, protected=protected, outcome=outcome).frame
    c, y = df[protected].to_numpy(), df[outcome].to_numpy()
    assert abs(c.mean() - p_c) < 0.05
    assert abs(y[c == 0].mean() - t0) < 0.05
    assert abs(y[c == 1].mean() - t1) < 0.05


def test_extreme_targets_are_exact():
    df = sample(600, 2, p_outcome_given_protected_0=1.0, p_outcome_given_protected_1=0.0).frame
    c, y = df["Male"].to_numpy(), df["Attractive"].to_numpy()
    assert (y[c == 0] == 1).all() and (y[c == 1] == 0).all()


def test_feature_strength_controls_dependence_on_visible_features():
    def smile_effect(strength):
        df = sample(5000, 4, feature_strength=strength).frame
        g = df[df["Male"] == 0]
        return g.loc[g["Smiling"] == 1, "Attractive"].mean() - g.loc[g["Smiling"] == 0, "Attractive"].mean()

    assert abs(smile_effect(0.0)) < 0.05
    assert smile_effect(1.5) > 0.12


def test_outcome_features_exclude_protected_and_outcome_traits():
    s = S.sample_dataset(200, 0, 0.5, 0.6, 0.3, 1.0, protected="Young", outcome="Smiling")
    assert "Young" not in s.features and "Smiling" not in s.features
    assert "High_Cheekbones" not in s.features  # depends on Smiling, so it is re-derived after y


# ------------------------------------------------------------------ attribute consistency


def test_attributes_are_consistent_with_the_generative_model():
    df = sample(3000, 5).frame
    hair = df[["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]].sum(axis=1)
    assert hair.max() == 1  # one hair colour at most
    female = df[df["Male"] == 0]
    for a in ("Goatee", "Mustache", "Sideburns", "5_o_Clock_Shadow", "Bald"):
        assert female[a].sum() == 0, a
    assert (female["No_Beard"] == 1).all()
    assert (df.loc[df["Goatee"] == 1, "No_Beard"] == 0).all()
    assert (df.loc[df["Bald"] == 1, ["Bangs", "Straight_Hair", "Wavy_Hair"]].to_numpy() == 0).all()
    assert (df.loc[df["Bald"] == 1, "Receding_Hairline"] == 0).all()
    # Realistic overlaps: lipstick and makeup mostly (not only) female, beards mostly male.
    assert df.loc[df["Wearing_Lipstick"] == 1, "Male"].mean() < 0.05
    assert 0.15 < (df.loc[df["Male"] == 1, "No_Beard"] == 0).mean() < 0.5
    # Identity-level traits agree across a person's images.
    for a in ("Male", "Blond_Hair", "Big_Nose", "Pale_Skin"):
        assert (df.groupby("identity")[a].nunique() == 1).all(), a


def test_landmarks_near_celeba_means_and_smiles_are_wider():
    df = sample(3000, 6).frame
    means = df[list(C.LANDMARK_NAMES)].mean().to_numpy()
    celeba = np.array([69, 111, 108, 111, 89, 135, 73, 152, 105, 152])
    assert np.abs(means - celeba).max() < 2.0, means
    width = df["rightmouth_x"] - df["leftmouth_x"]
    assert width[df["Smiling"] == 1].mean() - width[df["Smiling"] == 0].mean() > 3.5


def test_identities_and_identity_disjoint_splits():
    df = sample(3000, 8).frame
    per_person = df.groupby("identity").size()
    assert 2.0 < per_person.mean() < 4.0 and per_person.max() > 1
    assert df.groupby("identity")["split"].nunique().max() == 1  # CelebA's splits are identity-disjoint
    frac = df["split"].value_counts(normalize=True)
    assert frac["train"] == pytest.approx(0.8, abs=0.02) and frac["valid"] == pytest.approx(0.1, abs=0.02)
    # Ids are numbered split by split, like CelebA's.
    order = df["split"].map({"train": 0, "valid": 1, "test": 2}).to_numpy()
    assert (np.diff(order) >= 0).all()


# Where flipping one attribute may change pixels: (x0, y0, x1, y1) relative to the landmarks.
def _region(attr, lm):
    lex, ley, rex, rey, nx, ny, lmx, lmy, rmx, rmy = lm
    ey0, ey1 = min(ley, rey), max(ley, rey)  # the eyes' heights differ a little (head roll)
    ey, my = (ley + rey) / 2, (lmy + rmy) / 2
    return {
        "Eyeglasses": (0, ey0 - 16, C.IMAGE_WIDTH, ey1 + 16),
        "Narrow_Eyes": (lex - 12, ey0 - 12, rex + 12, ey1 + 6),  # eye and eye shadow
        "Bags_Under_Eyes": (lex - 12, ey0 - 2, rex + 12, ey1 + 12),
        "Arched_Eyebrows": (lex - 14, ey0 - 19, rex + 14, ey1 - 5),
        "Bushy_Eyebrows": (lex - 14, ey0 - 19, rex + 14, ey1 - 5),
        "Smiling": (lmx - 6, my - 14, rmx + 6, my + 16),
        "Mouth_Slightly_Open": (lmx - 6, my - 10, rmx + 6, my + 16),
        "Big_Lips": (lmx - 6, my - 10, rmx + 6, my + 18),
        "Mustache": (lmx - 6, ny, rmx + 6, my + 6),
        "Big_Nose": (nx - 12, ny - 12, nx + 12, ny + 6),
        "Pointy_Nose": (nx - 12, ny - 12, nx + 12, ny + 6),
        "Rosy_Cheeks": (lex - 14, ey + 12, rex + 14, ey + 32),
        "High_Cheekbones": (lex - 16, ey + 8, rex + 16, ey + 30),
        "Wearing_Earrings": (0, ny, C.IMAGE_WIDTH, ny + 16),
        "Wearing_Hat": (0, 0, C.IMAGE_WIDTH, ey - 8),
        "Wearing_Necktie": (0, my + 30, C.IMAGE_WIDTH, C.IMAGE_HEIGHT),
        "Wearing_Necklace": (0, my + 30, C.IMAGE_WIDTH, C.IMAGE_HEIGHT),
        "Goatee": (lmx - 10, my + 4, rmx + 10, my + 45),
        "Double_Chin": (lmx - 20, my + 10, rmx + 20, my + 50),
        "5_o_Clock_Shadow": (0, ny, C.IMAGE_WIDTH, my + 50),
        "Sideburns": (0, ey0 - 16, C.IMAGE_WIDTH, ny + 8),
        "Bangs": (0, 0, C.IMAGE_WIDTH, ey1 - 12),
        "Receding_Hairline": (0, 0, C.IMAGE_WIDTH, ey1 - 12),
        "Heavy_Makeup": (lex - 20, ey0 - 16, rex + 20, ey1 + 30),
    }[attr]


@pytest.mark.parametrize("attr", ["Eyeglasses", "Narrow_Eyes", "Bags_Under_Eyes", "Arched_Eyebrows",
                                  "Bushy_Eyebrows", "Smiling", "Mouth_Slightly_Open", "Big_Lips", "Mustache",
                                  "Big_Nose", "Pointy_Nose", "Rosy_Cheeks", "High_Cheekbones",
                                  "Wearing_Earrings", "Wearing_Hat", "Wearing_Necktie", "Wearing_Necklace",
                                  "Goatee", "Double_Chin", "5_o_Clock_Shadow", "Sideburns", "Bangs",
                                  "Receding_Hairline", "Heavy_Makeup"])
def test_each_attribute_is_drawn_where_it_belongs(attr):
    """Counterfactual: flipping one attribute of a row changes pixels, and only in its region."""
    s = sample(80, 9)
    t = s.table
    rows = [i for i in range(80) if not (t["Blurry"][i] or t["Wearing_Hat"][i] or t["Bald"][i]
                                         or t["Eyeglasses"][i] or t["No_Beard"][i] == 0)][:4]
    assert len(rows) == 4
    for i in rows:
        row = {k: (col[i].item() if col.ndim == 1 and col.dtype != object else col[i]) for k, col in t.items()}
        flipped = dict(row, **{attr: 1 - row[attr]})
        a = np.asarray(S.render_face(row, np.random.default_rng(1)), dtype=np.int16)
        b = np.asarray(S.render_face(flipped, np.random.default_rng(1)), dtype=np.int16)
        changed = np.abs(a - b).max(axis=2) > 0
        assert changed.sum() >= 4, f"{attr}: flipping it changes nothing in image {i}"
        x0, y0, x1, y1 = _region(attr, [float(v) for v in row["landmarks"]])
        ys, xs = np.nonzero(changed)
        inside = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        assert inside.mean() > 0.97, f"{attr}: {100 * (1 - inside.mean()):.1f}% of changes outside its region"


def test_eyes_are_drawn_at_the_landmarks(small):
    root, _ = small
    df = C.read_celeba(root)
    ok = df[(df["Eyeglasses"] == 0) & (df["Blurry"] == 0)]
    assert len(ok) > 50
    for _, r in ok.iterrows():
        px = np.asarray(Image.open(C.image_path(root, r["image_id"])).convert("L"), dtype=np.int16)
        for x, y in ((r["lefteye_x"], r["lefteye_y"]), (r["righteye_x"], r["righteye_y"])):
            assert px[y - 1:y + 2, x - 1:x + 2].mean() < 70, (r["image_id"], x, y)  # the pupil


def test_hair_colour_attributes_match_the_pixels(small):
    root, _ = small
    df = C.read_celeba(root)
    df = df[(df["Bald"] == 0) & (df["Wearing_Hat"] == 0) & (df["Blurry"] == 0)]
    seen = set()
    for _, r in df.iterrows():
        rgb = np.asarray(Image.open(C.image_path(root, r["image_id"])), dtype=np.float64)
        x = int(round((r["lefteye_x"] + r["righteye_x"]) / 2))
        y = int(round((r["lefteye_y"] + r["righteye_y"]) / 2)) - 42  # the crown, under the hair line
        red, green, blue = rgb[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(axis=0)
        lum = 0.299 * red + 0.587 * green + 0.114 * blue
        if r["Black_Hair"]:
            assert lum < 80, r["image_id"]
            seen.add("black")
        if r["Blond_Hair"]:
            assert lum > 140 and red - blue > 40, r["image_id"]
            seen.add("blond")
        if r["Gray_Hair"]:
            assert lum > 110 and abs(red - blue) < 25, r["image_id"]
        if r["Brown_Hair"]:
            assert 40 < lum < 120 and red > blue, r["image_id"]
            seen.add("brown")
    assert seen == {"black", "blond", "brown"}


# ------------------------------------------------------------------ files, determinism, atomicity


def test_layout_formats_and_images(small):
    root, summary = small
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [C.IMAGE_DIR, S.PARAMS_FILE, *C.ANNOTATION_FILES])
    df = C.read_celeba(root)
    assert len(df) == 150 and summary["n_images"] == 150
    assert df["image_id"].tolist() == [f"{i:06d}.jpg" for i in range(1, 151)]
    files = sorted(p.name for p in (root / C.IMAGE_DIR).iterdir())
    assert files == df["image_id"].tolist()
    for name in files[:20]:
        with Image.open(root / C.IMAGE_DIR / name) as im:
            assert (im.format, im.size, im.mode) == ("JPEG", (178, 218), "RGB")
    lm = df[list(C.LANDMARK_NAMES)].to_numpy()
    assert lm[:, 0::2].min() >= 0 and lm[:, 0::2].max() < 178 and lm[:, 1::2].max() < 218
    lines = (root / C.ATTR_FILE).read_text().splitlines()
    assert lines[0] == "150" and lines[1].split() == list(C.ATTRIBUTE_NAMES)
    assert len(lines[2].split()) == 41 and set(lines[2].split()[1:]) <= {"-1", "1"}
    record = json.loads((root / S.PARAMS_FILE).read_text())
    assert record["parameters"]["seed"] == 7 and record["parameters"]["outcome"] == "Attractive"
    assert summary["splits"] == {s: int((df["split"] == s).sum()) for s in C.SPLITS}
    C.verify_celeba(root, check_md5=False)


def _digests(root: Path) -> dict:
    out = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in root.iterdir() if p.suffix == ".txt"}
    out.update({f"img/{p.name}": hashlib.md5(p.read_bytes()).hexdigest() for p in (root / C.IMAGE_DIR).iterdir()})
    return out


def test_reproducible_and_independent_of_worker_count(small, tmp_path):
    root, _ = small
    again = tmp_path / "again"
    S.make_synthetic_celeba(again, n_images=150, seed=7, workers=1, progress=False, **DEFAULTS)
    assert _digests(again) == _digests(root)  # byte-identical, one worker vs two
    other = tmp_path / "other"
    S.make_synthetic_celeba(other, n_images=150, seed=8, workers=1, progress=False, **DEFAULTS)
    assert (other / C.ATTR_FILE).read_bytes() != (root / C.ATTR_FILE).read_bytes()


def test_failure_leaves_no_partial_dataset(tmp_path, monkeypatch):
    root = tmp_path / "syn"
    S.make_synthetic_celeba(root, n_images=20, seed=1, workers=1, progress=False, **DEFAULTS)
    before = _digests(root)
    calls = {"n": 0}
    real = S.render_face

    def flaky(row, rng):
        calls["n"] += 1
        if calls["n"] == 10:
            raise RuntimeError("renderer crashed")
        return real(row, rng)

    monkeypatch.setattr(S, "render_face", flaky)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        S.make_synthetic_celeba(root, n_images=30, seed=2, workers=1, progress=False, **DEFAULTS)
    assert _digests(root) == before  # the old dataset is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["syn"]  # no temporary folder left


def test_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    precious = tmp_path / "celeba"
    precious.mkdir()
    (precious / C.ATTR_FILE).write_text("real data")
    with pytest.raises(DataError, match="not a fairgen synthetic dataset"):
        S.make_synthetic_celeba(precious, n_images=10, seed=0, workers=1, progress=False, **DEFAULTS)
    assert (precious / C.ATTR_FILE).read_text() == "real data"


@pytest.mark.parametrize("kwargs, key", [
    (dict(protected="Pretty"), "protected"),
    (dict(outcome="Male"), "protected' and 'outcome"),
    (dict(protected="Black_Hair", outcome="Blond_Hair"), "same trait"),
    (dict(split_fractions=(0.8, 0.1, 0.2)), "dataset.synthetic.split_fractions"),
])
def test_bad_parameters_name_the_key(kwargs, key):
    with pytest.raises(ConfigError) as e:
        S.sample_dataset(50, 0, **{**DEFAULTS, **kwargs})
    assert key in str(e.value)


def test_every_celeba_attribute_has_a_trait():
    assert set(C.ATTRIBUTE_NAMES) <= set(S.ATTR_TRAIT)
    assert S.descendants("smiling") >= {"smiling", "mouth_open", "cheekbones", "attractive"}

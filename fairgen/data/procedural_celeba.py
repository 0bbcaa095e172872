"""The embedded default dataset: procedurally rendered faces in exactly CelebA's layout and formats.

How a dataset is made (all of it seeded; the output does not depend on the number of workers):

1. **People and images.** Synthetic people get 1 + Poisson(2) images each (``identity`` column);
   people, not images, are assigned to train/valid/test (CelebA's splits are identity-disjoint),
   and image ids are numbered split by split like CelebA's.
2. **Traits.** Every CelebA attribute is rendered by one *trait*: a categorical variable sampled in
   a fixed topological order from probabilities that depend on earlier traits (e.g. P(beard | Male,
   Young)). Person traits (sex, hair, nose, ...) use one uniform draw per person so they agree
   across a person's images; image traits (smile, glasses, makeup, ...) use one per image. An
   attribute is 1 iff its trait's category is in the attribute's set (e.g. ``No_Beard`` = beard
   style is 'none'), so attributes are derived from exactly what the renderer draws.
3. **Bias.** The protected attribute (config ``protected``) is forced to c ~ Bernoulli(p_protected)
   (per person for person traits). The outcome attribute (config ``outcome``) is
   y ~ Bernoulli(sigmoid(a_c + feature_strength * w . x)) where x are visible attributes (smiling,
   young, hair colour, glasses, ...; never the protected/outcome traits or what the outcome
   influences) and the intercepts a_0, a_1 are solved per group so that the mean probability in
   group c equals ``p_outcome_given_protected_c`` on the drawn features. The outcome trait is then
   forced to y and everything downstream of it re-derived with the same uniforms.
4. **Rendering.** A 178x218 face (PIL ImageDraw) with eyes, nose and mouth drawn at the 5 landmarks
   (near CelebA's aligned means), written as JPEG by a pool of workers.

Everything is written into a temporary folder beside ``root`` and renamed onto it at the end, with
a ``fairgen_synthetic.json`` recording the parameters (so an identical dataset need not be remade).
"""

from __future__ import annotations

import io
import json
import logging
import math
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from fairgen.common.errors import ConfigError, DataError
from fairgen.data import celeba as C
from fairgen.data.synthetic_set import rate_by_group

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
PARAMS_FILE = "fairgen_synthetic.json"
JPEG_QUALITY = 92

# --------------------------------------------------------------------------------------------
# Traits: the generative model of attributes
# --------------------------------------------------------------------------------------------

Probs = Callable[[dict], np.ndarray]  # parent category arrays -> (n, K) probabilities


@dataclass(frozen=True)
class Trait:
    name: str
    level: str                          # "person" or "image"
    categories: tuple[str, ...]
    probs: Probs
    parents: tuple[str, ...] = ()
    attrs: dict[str, frozenset] = field(default_factory=dict)  # attribute -> categories where it is 1


def _bin(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    return np.stack([1.0 - p, p], axis=-1)


def _pick(cond, a, b):
    return np.where(np.asarray(cond, bool), a, b)


def _binary(name, level, probs, parents=(), attr=None) -> Trait:
    """A yes/no trait rendering attribute ``attr`` (None: a rendering detail with no attribute)."""
    return Trait(name, level, ("no", "yes"), lambda v: _bin(probs(v)), tuple(parents),
                 {attr: frozenset({"yes"})} if attr else {})


# Weights of the visible features on the outcome's logit (scaled by feature_strength).
FEATURE_WEIGHTS: dict[str, float] = {
    "Smiling": 0.9, "Young": 1.1, "Eyeglasses": -0.9, "Blond_Hair": 0.5, "Black_Hair": 0.2,
    "Gray_Hair": -0.6, "Bald": -0.7, "Wavy_Hair": 0.4, "Heavy_Makeup": 0.5, "Chubby": -0.8,
    "Double_Chin": -0.5, "Bags_Under_Eyes": -0.6, "Big_Nose": -0.5, "Oval_Face": 0.4,
    "High_Cheekbones": 0.3, "Arched_Eyebrows": 0.3, "Blurry": -0.6,
}


def _features(v: dict, names) -> np.ndarray:
    return sum(FEATURE_WEIGHTS[a] * _attr_value(v, a) for a in names)


def _attr_value(v: dict, attr: str) -> np.ndarray:
    t = ATTR_TRAIT[attr]
    cats = [TRAITS[t].categories.index(c) for c in TRAITS[t].attrs[attr]]
    return np.isin(v[t], cats).astype(np.float64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _trait_list() -> list[Trait]:
    M = lambda v: v["male"] == 1  # noqa: E731
    Y = lambda v: v["young"] == 1  # noqa: E731
    hair_cats = ("black", "blond", "brown", "gray", "other")

    def hair_probs(v):
        m, y = M(v), Y(v)
        table = {  # black blond brown gray other
            (0, 1): [0.22, 0.30, 0.28, 0.00, 0.20], (0, 0): [0.20, 0.24, 0.25, 0.13, 0.18],
            (1, 1): [0.36, 0.06, 0.30, 0.01, 0.27], (1, 0): [0.20, 0.03, 0.20, 0.35, 0.22],
        }
        out = np.empty((len(m), 5))
        for (mm, yy), p in table.items():
            out[(m == mm) & (y == yy)] = p
        return out

    def beard_probs(v):  # none / full / goatee
        m, y = M(v), Y(v)
        full = m * _pick(y, 0.14, 0.26)
        goatee = m * 0.09
        return np.stack([1 - full - goatee, full, goatee], axis=-1)

    def texture_probs(v):  # straight / wavy / other (curly, cropped)
        bald = v["bald"] == 1
        p = np.where(M(v)[:, None], [0.22, 0.15, 0.63], [0.30, 0.45, 0.25])
        return np.where(bald[:, None], [0.0, 0.0, 1.0], p)

    def default_attractive(v):
        names = [a for a in FEATURE_WEIGHTS if ATTR_TRAIT[a] in ATTRACTIVE_PARENTS]
        return _sigmoid(-0.3 - 0.9 * M(v) + _features(v, names))

    P, I = "person", "image"
    traits = [
        _binary("male", P, lambda v: np.full(len(v["_n"]), 0.42), attr="Male"),
        _binary("young", P, lambda v: _pick(M(v), 0.68, 0.82), ["male"], "Young"),
        _binary("pale", P, lambda v: _pick(M(v), 0.03, 0.06), ["male"], "Pale_Skin"),
        _binary("bald", P, lambda v: M(v) * _pick(Y(v), 0.015, 0.16), ["male", "young"], "Bald"),
        _binary("receding", P, lambda v: (v["bald"] == 0) * _pick(M(v), _pick(Y(v), 0.05, 0.25), 0.04),
                ["male", "young", "bald"], "Receding_Hairline"),
        Trait("hair_color", P, hair_cats, hair_probs, ("male", "young"),
              {"Black_Hair": frozenset({"black"}), "Blond_Hair": frozenset({"blond"}),
               "Brown_Hair": frozenset({"brown"}), "Gray_Hair": frozenset({"gray"})}),
        _binary("long_hair", P, lambda v: (v["bald"] == 0) * _pick(M(v), 0.07, 0.86), ["male", "bald"]),
        Trait("texture", P, ("straight", "wavy", "other"), texture_probs, ("male", "bald"),
              {"Straight_Hair": frozenset({"straight"}), "Wavy_Hair": frozenset({"wavy"})}),
        _binary("bangs", P, lambda v: (v["bald"] == 0) * _pick(M(v), 0.08, 0.22), ["male", "bald"], "Bangs"),
        _binary("arched", P, lambda v: _pick(M(v), 0.04, 0.46), ["male"], "Arched_Eyebrows"),
        _binary("bushy", P, lambda v: _pick(M(v), 0.27, 0.07), ["male"], "Bushy_Eyebrows"),
        _binary("narrow_eyes", P, lambda v: np.full(len(v["_n"]), 0.11), attr="Narrow_Eyes"),
        _binary("bags", P, lambda v: _pick(Y(v), 0.12, 0.45) + 0.08 * M(v), ["male", "young"], "Bags_Under_Eyes"),
        _binary("big_nose", P, lambda v: _pick(M(v), 0.42, 0.08) + 0.1 * (1 - Y(v)), ["male", "young"], "Big_Nose"),
        _binary("pointy_nose", P, lambda v: _pick(v["big_nose"] == 1, 0.08, _pick(M(v), 0.22, 0.36)),
                ["male", "big_nose"], "Pointy_Nose"),
        _binary("big_lips", P, lambda v: _pick(M(v), 0.18, 0.30), ["male"], "Big_Lips"),
        _binary("chubby", P, lambda v: _pick(Y(v), 0.03, 0.15) * _pick(M(v), 1.6, 0.8), ["male", "young"], "Chubby"),
        _binary("double_chin", P, lambda v: _pick(v["chubby"] == 1, 0.5, _pick(Y(v), 0.01, 0.06)),
                ["young", "chubby"], "Double_Chin"),
        _binary("oval", P, lambda v: _pick(v["chubby"] == 1, 0.04, 0.33), ["chubby"], "Oval_Face"),
        Trait("beard", P, ("none", "full", "goatee"), beard_probs, ("male", "young"),
              {"No_Beard": frozenset({"none"}), "Goatee": frozenset({"goatee"})}),
        _binary("mustache", P, lambda v: M(v) * np.choose(v["beard"], [0.05, 0.6, 0.5]), ["male", "beard"], "Mustache"),
        _binary("sideburns", P, lambda v: M(v) * (v["bald"] == 0) * _pick(v["beard"] == 1, 0.6, 0.07),
                ["male", "bald", "beard"], "Sideburns"),
        _binary("stubble", P, lambda v: M(v) * (v["beard"] != 1) * 0.3, ["male", "beard"], "5_o_Clock_Shadow"),
        # --- image traits ---
        _binary("smiling", I, lambda v: _pick(M(v), 0.42, 0.53), ["male"], "Smiling"),
        _binary("mouth_open", I, lambda v: _pick(v["smiling"] == 1, 0.68, 0.22), ["smiling"], "Mouth_Slightly_Open"),
        _binary("cheekbones", I, lambda v: _pick(v["smiling"] == 1, 0.72, 0.12) + 0.06 * (1 - M(v)),
                ["male", "smiling"], "High_Cheekbones"),
        _binary("glasses", I, lambda v: _pick(Y(v), 0.035, 0.14) + 0.03 * M(v), ["male", "young"], "Eyeglasses"),
        _binary("hat", I, lambda v: np.full(len(v["_n"]), 0.05), attr="Wearing_Hat"),
        _binary("makeup", I, lambda v: _pick(M(v), 0.006, _pick(Y(v), 0.70, 0.50)), ["male", "young"], "Heavy_Makeup"),
        _binary("lipstick", I, lambda v: _pick(M(v), 0.006, _pick(v["makeup"] == 1, 0.95, 0.38)),
                ["male", "makeup"], "Wearing_Lipstick"),
        _binary("rosy", I, lambda v: _pick(M(v), 0.01, 0.09) + 0.05 * (v["makeup"] == 1), ["male", "makeup"], "Rosy_Cheeks"),
        _binary("earrings", I, lambda v: _pick(M(v), 0.02, 0.33), ["male"], "Wearing_Earrings"),
        _binary("necklace", I, lambda v: _pick(M(v), 0.01, 0.21), ["male"], "Wearing_Necklace"),
        _binary("necktie", I, lambda v: _pick(M(v), 0.14, 0.005), ["male"], "Wearing_Necktie"),
        _binary("blurry", I, lambda v: np.full(len(v["_n"]), 0.05), attr="Blurry"),
        _binary("attractive", I, default_attractive, ATTRACTIVE_PARENTS, "Attractive"),
    ]
    return traits


# Traits the default Attractive label depends on (when Attractive is not the outcome).
ATTRACTIVE_PARENTS = ("male", "young", "hair_color", "bald", "texture", "chubby", "double_chin", "bags",
                      "big_nose", "oval", "smiling", "cheekbones", "glasses", "makeup", "arched", "blurry")


def _index_traits() -> tuple[dict[str, Trait], dict[str, str]]:
    """Traits by name (in sampling order) and the trait rendering each attribute; checks the DAG."""
    traits: dict[str, Trait] = {}
    attr_trait: dict[str, str] = {}
    for t in _trait_list():
        for p in t.parents:
            if p not in traits:
                raise AssertionError(f"trait {t.name}: parent {p} must come first")
            if t.level == "person" and traits[p].level == "image":
                raise AssertionError(f"person trait {t.name} cannot depend on image trait {p}")
        traits[t.name] = t
        attr_trait.update({a: t.name for a in t.attrs})
    missing = set(C.ATTRIBUTE_NAMES) - set(attr_trait)
    if missing or not set(FEATURE_WEIGHTS) <= set(C.ATTRIBUTE_NAMES):
        raise AssertionError(f"attributes without a trait: {sorted(missing)}")
    return traits, attr_trait


TRAITS, ATTR_TRAIT = _index_traits()


def descendants(trait: str) -> set[str]:
    """``trait`` and every trait whose probabilities depend on it, directly or not."""
    out = {trait}
    for t in TRAITS.values():  # TRAITS is in topological order
        if out & set(t.parents):
            out.add(t.name)
    return out


def _inverse_cdf(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    return np.minimum((u[:, None] >= cdf).sum(axis=1), p.shape[1] - 1)


def sample_traits(u_person: np.ndarray, u_image: np.ndarray, pid: np.ndarray,
                  forced: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sample every trait for every image (category indices), forcing ``forced`` attributes.

    ``forced`` maps an attribute name to a 0/1 array per image. A forced trait keeps its draw if
    it already agrees, else it is redrawn with the same uniform from its probabilities restricted
    to the categories that agree (uniformly if those all have probability 0).
    """
    n = len(pid)
    v: dict[str, np.ndarray] = {"_n": np.empty(n)}
    for k, t in enumerate(TRAITS.values()):
        u = u_person[pid, k] if t.level == "person" else u_image[:, k]
        p = t.probs(v)
        cat = _inverse_cdf(p, u)
        for attr, value in forced.items():
            if ATTR_TRAIT[attr] != t.name:
                continue
            member = np.array([c in t.attrs[attr] for c in t.categories])
            allowed = np.where(np.asarray(value, bool)[:, None], member[None, :], ~member[None, :])
            bad = ~allowed[np.arange(n), cat]
            if bad.any():
                q = p[bad] * allowed[bad]
                zero = q.sum(axis=1) == 0
                q[zero] = allowed[bad][zero]
                cat[bad] = _inverse_cdf(q, u[bad])
        v[t.name] = cat
    del v["_n"]
    return v


def attributes_of(v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {a: _attr_value(v, a).astype(np.int8) for a in C.ATTRIBUTE_NAMES}


def calibrate_intercept(f: np.ndarray, target: float) -> float:
    """a such that mean(sigmoid(a + f)) == target (bisection; +-inf for targets 0 and 1)."""
    if target <= 0.0:
        return -math.inf
    if target >= 1.0:
        return math.inf
    if len(f) == 0:
        return math.log(target / (1 - target))
    lo, hi = -40.0 - f.max(), 40.0 - f.min()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _sigmoid(mid + f).mean() < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------------------
# Render parameters (vectorised, in the main process)
# --------------------------------------------------------------------------------------------

SKIN_PALETTE = np.array([[250, 226, 214], [243, 204, 178], [232, 184, 150], [212, 158, 118],
                         [180, 124, 88], [140, 92, 62], [98, 64, 44]], dtype=np.float64)
HAIR_COLOURS = {  # base colour and per-person jitter
    "black": ([28, 24, 22], 10), "blond": ([226, 196, 128], 18), "brown": ([104, 70, 44], 14),
    "gray": ([176, 174, 170], 22), "other": ([150, 66, 34], 22),  # auburn/ginger
}
EYE_COLOURS = np.array([[86, 56, 34], [60, 40, 26], [72, 110, 160], [90, 120, 80], [120, 96, 60]])
LIP_NATURAL = np.array([196, 118, 112])
LIPSTICK = np.array([[190, 20, 40], [160, 24, 60], [210, 60, 80], [140, 20, 30]])


def _interp_palette(t: np.ndarray) -> np.ndarray:
    x = t * (len(SKIN_PALETTE) - 1)
    i = np.clip(np.floor(x).astype(int), 0, len(SKIN_PALETTE) - 2)
    w = (x - i)[:, None]
    return SKIN_PALETTE[i] * (1 - w) + SKIN_PALETTE[i + 1] * w


def render_table(v: dict, attrs: dict, pid: np.ndarray, n_people: int, seed: int) -> dict[str, np.ndarray]:
    """All numbers the renderer needs, one row per image (landmarks included)."""
    n = len(pid)
    rp = np.random.default_rng([seed, 11])  # person details
    ri = np.random.default_rng([seed, 12])  # image details
    A = {k: a.astype(bool) for k, a in attrs.items()}
    r: dict[str, np.ndarray] = {}

    # Skin: pale = lightest end of the palette, else a light-skewed tone.
    tone = np.where(A["Pale_Skin"], rp.uniform(0.0, 0.05, n_people)[pid], 0.1 + 0.9 * rp.beta(1.3, 3.0, n_people)[pid])
    r["skin"] = _interp_palette(tone)
    # Hair colour by category with per-person jitter.
    # Mostly a brightness change (so brown never drifts to green), plus a little per-channel noise.
    hair = np.empty((n, 3))
    bright = rp.normal(0, 1, n_people)[pid]
    tint = rp.normal(0, 1, (n_people, 3))[pid]
    cats = TRAITS["hair_color"].categories
    for k, name in enumerate(cats):
        base, sd = HAIR_COLOURS[name]
        m = v["hair_color"] == k
        noise = 0.0 if name == "gray" else 0.25 * sd * tint[m]
        hair[m] = np.asarray(base) + sd * bright[m, None] + noise
    r["hair"] = np.clip(hair, 0, 255)
    r["eye"] = EYE_COLOURS[rp.integers(0, len(EYE_COLOURS), n_people)[pid]]
    r["lip"] = np.where(A["Wearing_Lipstick"][:, None], LIPSTICK[ri.integers(0, len(LIPSTICK), n)],
                        0.55 * LIP_NATURAL + 0.45 * r["skin"] * np.array([0.95, 0.7, 0.7]))
    r["bg0"] = ri.uniform(20, 235, (n, 3))
    r["bg1"] = np.clip(r["bg0"] + ri.normal(0, 45, (n, 3)), 0, 255)
    r["cloth"] = ri.uniform(10, 230, (n, 3))
    r["hat_col"] = ri.uniform(10, 200, (n, 3))
    r["tie_col"] = ri.uniform(20, 200, (n, 3))
    r["frame_col"] = np.where(ri.random(n)[:, None] < 0.7, ri.uniform(5, 60, (n, 3)), ri.uniform(60, 200, (n, 3)))
    r["sunglasses"] = (ri.random(n) < 0.15).astype(np.int8)
    r["shadow"] = np.clip(ri.normal(0.10, 0.03, n), 0.02, 0.2)

    # Geometry: person face shape + image pose; landmarks near CelebA's aligned means.
    r["face_w"] = rp.normal(1.0, 0.04, n_people)[pid] + 0.13 * A["Chubby"] - 0.04 * A["Oval_Face"]
    r["face_h"] = rp.normal(1.0, 0.04, n_people)[pid] + 0.06 * A["Oval_Face"] + 0.04 * A["Male"]
    r["jaw"] = np.where(A["Oval_Face"], 2.0, rp.uniform(2.1, 2.9, n_people)[pid] + 0.3 * A["Male"])
    r["hair_vol"] = rp.uniform(0.8, 1.3, n_people)[pid]
    cx = 88.5 + ri.normal(0, 1.2, n)
    ey = 111.0 + ri.normal(0, 1.8, n)
    iod = 39.0 + ri.normal(0, 1.6, n)
    roll = ri.normal(0, 0.035, n)
    yaw = np.clip(ri.normal(0, 0.3, n), -0.9, 0.9)
    r["yaw"] = yaw
    smile = A["Smiling"]
    nose = np.stack([cx + 6 * yaw, ey + 24 + ri.normal(0, 1.4, n)], axis=1)
    my = ey + 41 + ri.normal(0, 1.6, n) + 0.6 * A["Mouth_Slightly_Open"]
    mw = 14.8 + ri.normal(0, 1.1, n) + 2.5 * smile  # mean ~16: corners near (73, 152) and (105, 152)
    mx = cx + 4 * yaw
    pts = np.stack([
        np.stack([cx - iod / 2, ey], 1), np.stack([cx + iod / 2, ey], 1), nose,
        np.stack([mx - mw, my - 1.5 * smile], 1), np.stack([mx + mw, my - 1.5 * smile], 1),
    ], axis=1)  # (n, 5, 2)
    centre = np.stack([cx, ey + 20], 1)[:, None, :]
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    d = pts - centre
    rot = np.stack([c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1]], -1) + centre
    r["landmarks"] = np.rint(rot.reshape(n, 10)).astype(np.int32)
    # In-the-wild boxes (no wild images exist; plausible boxes scaled from the face size).
    scale = ri.uniform(1.2, 3.5, n)
    w = np.rint(iod * 2.6 * scale)
    r["bbox"] = np.stack([ri.integers(0, 300, n), ri.integers(0, 200, n), w, np.rint(w * ri.uniform(1.25, 1.45, n))],
                         1).astype(np.int32)
    return r


# --------------------------------------------------------------------------------------------
# The renderer (runs in the workers)
# --------------------------------------------------------------------------------------------

W, H = C.IMAGE_WIDTH, C.IMAGE_HEIGHT
_RENDER_ATTRS = ("Male", "Young", "Bald", "Receding_Hairline", "Bangs", "Wavy_Hair", "Straight_Hair",
                 "Arched_Eyebrows", "Bushy_Eyebrows", "Narrow_Eyes", "Bags_Under_Eyes", "Big_Nose",
                 "Pointy_Nose", "Big_Lips", "Double_Chin", "No_Beard", "Goatee", "Mustache", "Sideburns",
                 "5_o_Clock_Shadow", "Smiling", "Mouth_Slightly_Open", "High_Cheekbones", "Eyeglasses",
                 "Wearing_Hat", "Heavy_Makeup", "Rosy_Cheeks", "Wearing_Earrings", "Wearing_Necklace",
                 "Wearing_Necktie", "Blurry")


def _rgb(a) -> tuple[int, int, int]:
    return tuple(np.clip(np.rint(np.asarray(a, dtype=np.float64)), 0, 255).astype(int).tolist())


def _mix(a, b, t):
    return _rgb(np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t)


_THETA = np.linspace(0, 2 * np.pi, 56, endpoint=False)
_COS, _SIN = np.cos(_THETA), np.sin(_THETA)


def _superellipse(cx, cy, a, b, n):
    """Face outline: a superellipse of exponent ``n`` (squarer jaw for larger n), round on top."""
    c, s = _COS, _SIN
    x = cx + a * np.sign(c) * np.abs(c) ** (2 / n)
    ex = np.where(s > 0, 2 / n, 1.0)  # the lower half (y > 0) uses the jaw exponent
    y = cy + b * np.sign(s) * np.abs(s) ** ex
    return np.stack([x, y], 1)


_GRADIENT = np.linspace(0.0, 1.0, H)[:, None, None]


def render_face(row: dict, rng: np.random.Generator):
    """Draw one face; ``row`` holds one image's render parameters and 0/1 attributes."""
    from PIL import Image, ImageDraw, ImageFilter

    g = _GRADIENT
    column = (row["bg0"][None, None, :] * (1 - g) + row["bg1"][None, None, :] * g).astype(np.uint8)
    img = Image.fromarray(column).resize((W, H), Image.Resampling.NEAREST)  # vertical gradient
    d = ImageDraw.Draw(img)
    a = row  # attributes are keys of row too
    lex, ley, rex, rey, nx, ny, lmx, lmy, rmx, rmy = (float(x) for x in row["landmarks"])
    skin = row["skin"]
    skin_c = _rgb(skin)
    shade = _mix(skin, (60, 30, 20), row["shadow"] + 0.12)
    hair = _rgb(row["hair"])
    yaw = row["yaw"]
    ecx, ecy = (lex + rex) / 2, (ley + rey) / 2
    iod = rex - lex
    fcx = ecx + 2.0 * yaw
    hw = 1.13 * iod * row["face_w"]  # half width, ~44 px
    top = ecy - 50 * row["face_h"]
    chin = (lmy + rmy) / 2 + 32 * row["face_h"]
    fcy = (top + chin) / 2 + 6
    hh = (chin - top) / 2 + 3
    face = _superellipse(fcx, fcy, hw, hh, row["jaw"])
    face_pts = [tuple(p) for p in face]
    long_hair = bool(row["long_hair"]) and not a["Bald"]
    wavy = bool(a["Wavy_Hair"])
    vol = row["hair_vol"]

    # Long hair behind the head and shoulders.
    if long_hair:  # widens from the crown down to the shoulders
        k = 36
        ys = np.linspace(ecy - 34, chin + 42 + 12 * vol, k)
        spread = hw + vol * (4 + 9 * np.linspace(0, 1, k) ** 0.7)
        if wavy:
            spread = spread + 4.0 * np.sin(ys / 6.0 + rng.uniform(0, 6)) * np.linspace(0.3, 1, k)
        left = [(fcx - w_, y) for y, w_ in zip(ys, spread)]
        right = [(fcx + w_, y) for y, w_ in zip(ys[::-1], spread[::-1])]
        d.polygon(left + right, fill=hair)
    # Neck, clothes, shirt collar and tie.
    d.rectangle([fcx - 0.42 * hw, chin - 24, fcx + 0.42 * hw, chin + 26], fill=shade)
    d.ellipse([fcx - 86, chin + 14, fcx + 86, chin + 150], fill=_rgb(row["cloth"]))
    if a["Wearing_Necktie"]:
        d.polygon([(fcx - 22, chin + 18), (fcx, chin + 44), (fcx + 22, chin + 18)], fill=(235, 235, 235))
        d.polygon([(fcx - 5, chin + 24), (fcx + 5, chin + 24), (fcx + 8, H), (fcx - 8, H)], fill=_rgb(row["tie_col"]))
    # Ears.
    for side in (-1, 1):
        ex = fcx + side * (hw - 2) - 1.5 * yaw * side
        d.ellipse([ex - 7, ecy - 6, ex + 7, ny + 8], fill=shade)
    # Hair volume on top (drawn before the face so the face covers its lower part).
    if not a["Bald"] and not a["Wearing_Hat"]:
        d.ellipse([fcx - hw - 5 * vol, top - 12 * vol, fcx + hw + 5 * vol, top + 2.2 * hh * 0.55], fill=hair)
    # Face.
    d.polygon(face_pts, fill=skin_c)
    if a["Wearing_Earrings"]:  # at the ear lobes, just outside the face outline
        for side in (-1, 1):
            ex = fcx + side * (hw + 2) - 1.5 * yaw * side
            d.ellipse([ex - 3, ny + 7, ex + 3, ny + 13], fill=(235, 205, 90), outline=(120, 100, 30))
    if a["Double_Chin"]:
        d.arc([fcx - 0.5 * hw, chin - 14, fcx + 0.5 * hw, chin + 6], 20, 160, fill=shade, width=2)
    # Stubble, beard, goatee, mustache, sideburns.
    hx0, hx1 = fcx - hw, fcx + hw
    lower = face[face[:, 1] > ny + 2]
    if a["5_o_Clock_Shadow"] and len(lower):
        pts = rng.uniform([hx0 + 6, ny + 6], [hx1 - 6, chin - 2], (420, 2))
        inside = _inside(pts, fcx, fcy, hw - 4, hh - 3)
        d.point([tuple(p) for p in pts[inside]], fill=_mix(skin, (30, 25, 20), 0.55))
    beard_col = _mix(row["hair"], (20, 15, 10), 0.25)
    if not a["No_Beard"] and not a["Goatee"]:  # full beard
        jaw_pts = [tuple(p) for p in lower]
        mouth_hole = [(rmx + 6, rmy - 4), (lmx - 6, lmy - 4)]
        d.polygon(jaw_pts + mouth_hole, fill=beard_col)
    if a["Goatee"]:
        d.polygon([(lmx + 2, lmy + 7), (rmx - 2, rmy + 7), ((lmx + rmx) / 2 + 8, chin + 2),
                   ((lmx + rmx) / 2 - 8, chin + 2)], fill=beard_col)
    if a["Sideburns"] and not a["Bald"]:
        for side in (-1, 1):
            x = fcx + side * (hw - 5)
            d.polygon([(x - 5, ecy - 14), (x + 5, ecy - 14), (x + 4 * side, ny + 6), (x - 1 * side, ny + 6)],
                      fill=beard_col)
    # Hair on the forehead: the face outline above the hairline, filled with hair colour.
    if not a["Bald"] and not a["Wearing_Hat"]:
        hl = top + (30 if a["Receding_Hairline"] else 19) * row["face_h"]
        cap = [tuple(p) for p in face if p[1] < hl]
        if len(cap) >= 3:
            d.polygon(cap, fill=hair)
            if a["Receding_Hairline"]:  # bare temples (M-shaped hairline)
                for side in (-1, 1):
                    x = fcx + side * 0.42 * hw
                    d.polygon([(x - 10, hl + 1), (x + 10, hl + 1), (x + side * 4, hl - 10)], fill=skin_c)
            if a["Bangs"]:
                brow = ecy - 13
                xs = np.linspace(fcx - hw + 6, fcx + hw - 6, 9)
                teeth = [(x, brow - (5 if i % 2 else 0)) for i, x in enumerate(xs)]
                d.polygon([(xs[0], hl - 4)] + teeth + [(xs[-1], hl - 4)], fill=hair)
    elif a["Bald"] and not a["Wearing_Hat"]:  # fringe above the ears
        for side in (-1, 1):
            x = fcx + side * hw
            d.ellipse([x - 7, ecy - 26, x + 7, ecy + 2], fill=hair)
        d.arc([fcx - 0.5 * hw, top + 4, fcx + 0.3 * hw, top + 16], 200, 320, fill=_mix(skin, (255, 255, 255), 0.4), width=2)
    if a["Wearing_Hat"]:
        hat = _rgb(row["hat_col"])
        d.ellipse([fcx - hw - 8, top - 34, fcx + hw + 8, top + 26], fill=hat)
        d.rectangle([fcx - hw - 16, top + 12, fcx + hw + 16, top + 20], fill=_mix(row["hat_col"], (0, 0, 0), 0.3))
    # Wrinkles for older faces.
    if not a["Young"]:
        line = _mix(skin, (40, 20, 10), 0.35)
        if not (a["Bangs"] or a["Wearing_Hat"]):  # forehead lines, where the forehead shows
            for k in range(2):
                y = ecy - 24 + 5 * k
                d.arc([fcx - 18, y, fcx + 18, y + 8], 200, 340, fill=line, width=1)
        d.line([(nx - 13, ny + 2), (lmx - 3, lmy + 4)], fill=line, width=1)
        d.line([(nx + 13, ny + 2), (rmx + 3, rmy + 4)], fill=line, width=1)
    # Cheeks: makeup blush, rosy cheeks, high-cheekbone highlights.
    for side, (ex, ey) in ((-1, (lex, ley)), (1, (rex, rey))):
        cxk, cyk = ex + side * 4, ey + 22
        if a["Rosy_Cheeks"]:
            d.ellipse([cxk - 9, cyk - 6, cxk + 9, cyk + 6], fill=_mix(skin, (230, 60, 70), 0.45))
        elif a["Heavy_Makeup"]:
            d.ellipse([cxk - 8, cyk - 5, cxk + 8, cyk + 5], fill=_mix(skin, (220, 90, 110), 0.25))
        if a["High_Cheekbones"]:
            d.arc([cxk - 10, cyk - 12, cxk + 10, cyk + 4], 30 if side < 0 else 60, 120 if side < 0 else 150,
                  fill=_mix(skin, (255, 255, 255), 0.45), width=2)
    # Eyes (centred on the landmarks), eye shadow, bags, eyebrows.
    brow_col = _mix(row["hair"], (30, 20, 15), 0.55 if a["Blond_Hair"] or a["Gray_Hair"] else 0.2)
    eh = 2.2 if a["Narrow_Eyes"] else 4.3
    for side, (ex, ey) in ((-1, (lex, ley)), (1, (rex, rey))):
        if a["Heavy_Makeup"]:
            d.ellipse([ex - 10, ey - eh - 6, ex + 10, ey + 1], fill=(120, 80, 140))
        if a["Bags_Under_Eyes"]:
            d.arc([ex - 8, ey + 1, ex + 8, ey + 9], 20, 160, fill=shade, width=2)
        d.ellipse([ex - 9, ey - eh, ex + 9, ey + eh], fill=(245, 245, 240), outline=_mix(skin, (0, 0, 0), 0.5))
        ir = min(eh, 3.6)
        d.ellipse([ex - ir, ey - ir, ex + ir, ey + ir], fill=_rgb(row["eye"]))
        d.ellipse([ex - 1.3, ey - 1.3, ex + 1.3, ey + 1.3], fill=(10, 10, 10))
        by = ey - 11
        bw = 4 if a["Bushy_Eyebrows"] else 2
        if a["Arched_Eyebrows"]:
            d.line([(ex - 11, by + 3), (ex + 2 * side, by - 3), (ex + 11, by + 3)], fill=brow_col, width=bw, joint="curve")
        else:
            d.line([(ex - 11, by + 1), (ex + 11, by + 1 - 1.2 * side)], fill=brow_col, width=bw)
    # Nose: bridge and base at the nose landmark.
    nw = 9 if a["Big_Nose"] else 6
    d.line([(ecx + yaw * 3, ecy + 4), (nx - 1, ny - 9)], fill=shade, width=1)
    if a["Pointy_Nose"]:
        d.polygon([(nx - nw, ny + 1), (nx, ny - 9), (nx + nw, ny + 1), (nx, ny + 4)], outline=shade)
    else:
        d.arc([nx - nw, ny - 5, nx + nw, ny + 4], 10, 170, fill=shade, width=2)
    d.ellipse([nx - nw + 1, ny - 1, nx - nw + 5, ny + 2], fill=_mix(skin, (0, 0, 0), 0.5))
    d.ellipse([nx + nw - 5, ny - 1, nx + nw - 1, ny + 2], fill=_mix(skin, (0, 0, 0), 0.5))
    # Mustache (above the mouth, below the nose).
    if a["Mustache"]:
        d.polygon([(lmx - 2, lmy - 1), ((lmx + rmx) / 2, ny + 5), (rmx + 2, rmy - 1),
                   ((lmx + rmx) / 2, (lmy + rmy) / 2 - 4)], fill=beard_col)
    # Mouth: corners at the mouth landmarks.
    lip = _rgb(row["lip"])
    mcx, mcy = (lmx + rmx) / 2, (lmy + rmy) / 2
    thick = 4.5 if a["Big_Lips"] else 2.8
    if a["Smiling"]:
        depth = 8.0
        upper = [(lmx, lmy), (mcx, mcy + 1.5), (rmx, rmy)]
        lower = [(rmx, rmy)] + [(mcx + (rmx - mcx) * t, mcy + depth * (1 - t * t) + thick) for t in np.linspace(1, -1, 9)] + [(lmx, lmy)]
        if a["Mouth_Slightly_Open"]:
            d.polygon(upper + lower[1:-1], fill=(70, 20, 25))
            d.polygon([(lmx + 3, lmy + 1), (mcx, mcy + 2.5), (rmx - 3, rmy + 1), (mcx, mcy + 5)], fill=(245, 245, 235))
            d.line(lower, fill=lip, width=int(thick))
            d.line(upper, fill=lip, width=int(thick - 0.5))
        else:
            d.polygon(upper + lower[1:-1], fill=lip)
            d.line([(lmx + 1, lmy), (mcx, mcy + depth * 0.6), (rmx - 1, rmy)], fill=_mix(row["lip"], (0, 0, 0), 0.5),
                   width=1, joint="curve")
    else:
        d.polygon([(lmx, lmy), (mcx, mcy - thick), (rmx, rmy), (mcx, mcy + thick + 1)], fill=lip)
        if a["Mouth_Slightly_Open"]:
            d.ellipse([lmx + 5, mcy - 1.5, rmx - 5, mcy + 3], fill=(70, 20, 25))
        else:
            d.line([(lmx, lmy), (rmx, rmy)], fill=_mix(row["lip"], (0, 0, 0), 0.45), width=1)
    # Necklace last among the body items so hair does not hide it.
    if a["Wearing_Necklace"]:
        xs = np.linspace(-0.42 * hw, 0.42 * hw, 11)
        for x in xs:
            y = chin + 18 + 10 * (1 - (x / (0.42 * hw)) ** 2)
            d.ellipse([fcx + x - 2, y - 2, fcx + x + 2, y + 2], fill=(225, 215, 180))
    # Glasses around the eye landmarks.
    if a["Eyeglasses"]:
        frame = _rgb(row["frame_col"])
        for ex, ey in ((lex, ley), (rex, rey)):
            box = [ex - 14, ey - 10, ex + 14, ey + 10]
            if row["sunglasses"]:
                d.rounded_rectangle(box, radius=6, fill=(25, 25, 30), outline=frame, width=2)
            else:
                d.rounded_rectangle(box, radius=6, outline=frame, width=2)
        d.line([(lex + 14, ley - 3), (rex - 14, rey - 3)], fill=frame, width=2)
        d.line([(lex - 14, ley - 4), (fcx - hw + 1, ley - 6)], fill=frame, width=2)
        d.line([(rex + 14, rey - 4), (fcx + hw - 1, rey - 6)], fill=frame, width=2)
    if a["Blurry"]:
        img = img.filter(ImageFilter.GaussianBlur(row["blur_radius"]))
    return img


def _inside(pts, cx, cy, a, b):
    return ((pts[:, 0] - cx) / a) ** 2 + ((pts[:, 1] - cy) / b) ** 2 <= 1.0


def _render_chunk(job) -> int:
    """Worker: render images [start, stop) of the shared table into ``out_dir``."""
    start, stop = job
    table, out_dir, seed = _WORKER_STATE["table"], _WORKER_STATE["out_dir"], _WORKER_STATE["seed"]
    for i in range(start, stop):
        row = {k: (col[i].item() if col.ndim == 1 and col.dtype != object else col[i]) for k, col in table.items()}
        rng = np.random.default_rng([seed, 13, i])
        img = render_face(row, rng)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=JPEG_QUALITY)
        (out_dir / row["image_id"]).write_bytes(buf.getvalue())
    return stop - start


_WORKER_STATE: dict = {}


def _init_worker(table, out_dir, seed):
    _WORKER_STATE.update(table=table, out_dir=Path(out_dir), seed=seed)


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


@dataclass
class SyntheticSample:
    """Everything about a synthetic dataset except the pixels."""

    frame: pd.DataFrame              # read_celeba's columns
    table: dict[str, np.ndarray]     # render parameters per image (incl. attributes)
    intercepts: tuple[float, float]  # a_0, a_1 of the outcome model
    expected_rates: tuple[float, float]  # mean P(y=1) per protected group, as calibrated
    features: list[str]              # visible attributes that drive the outcome
    p_outcome: np.ndarray | None = None  # per image P(y = 1 | its drawn attributes, c): the ground
    # truth a Bayes-optimal classifier would know (fairgen.eval.frontier)


def check_parameters(protected: str, outcome: str, split_fractions, n_images: int) -> None:
    for key, name in (("protected", protected), ("outcome", outcome)):
        if name not in C.ATTRIBUTE_NAMES:
            raise ConfigError(f"config key '{key}': {name!r} is not a CelebA attribute name "
                              f"(one of {', '.join(C.ATTRIBUTE_NAMES)})")
    if protected == outcome:
        raise ConfigError(f"config keys 'protected' and 'outcome' are both {protected!r}; they must differ")
    if ATTR_TRAIT[protected] == ATTR_TRAIT[outcome]:
        raise ConfigError(f"config keys 'protected' ({protected}) and 'outcome' ({outcome}) are rendered by the "
                          f"same trait ('{ATTR_TRAIT[protected]}') of the synthetic generator; choose attributes "
                          "of different traits")
    fr = list(split_fractions)
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(f"config key 'dataset.synthetic.split_fractions': {fr} must be 3 non-negative "
                          "fractions (train, valid, test) summing to 1")
    if n_images < 1:
        raise ConfigError("config key 'dataset.synthetic.n_images' must be >= 1")


def sample_dataset(n_images: int, seed: int, p_protected: float, p_outcome_given_protected_0: float,
                   p_outcome_given_protected_1: float, feature_strength: float,
                   split_fractions=(0.8, 0.1, 0.1), protected: str = "Male",
                   outcome: str = "Attractive") -> SyntheticSample:
    """Draw people, splits, traits, the biased outcome and all render parameters (no pixels)."""
    check_parameters(protected, outcome, split_fractions, n_images)
    rng = np.random.default_rng([seed, 0])
    # People and their image counts.
    counts = 1 + rng.poisson(2.0, size=n_images)
    n_people = int(np.searchsorted(np.cumsum(counts), n_images) + 1)
    counts = counts[:n_people]
    counts[-1] -= counts.sum() - n_images
    # Split by person (identity-disjoint): shuffle people, cut cumulative image counts.
    order = rng.permutation(n_people)
    cum = np.cumsum(counts[order])
    bounds = np.rint(np.cumsum(split_fractions)[:2] * n_images)
    person_split = np.empty(n_people, np.int64)
    person_split[order] = np.searchsorted(bounds, cum - counts[order] / 2.0, side="right")
    pid = np.repeat(np.arange(n_people), counts)
    # Image order: train first, then valid, then test (as CelebA numbers them), shuffled within.
    img_split = person_split[pid]
    perm = np.lexsort((rng.random(n_images), img_split))
    pid, img_split = pid[perm], img_split[perm]

    n_traits = len(TRAITS)
    u_person = np.random.default_rng([seed, 1]).random((n_people, n_traits))
    u_image = np.random.default_rng([seed, 2]).random((n_images, n_traits))
    ru = np.random.default_rng([seed, 3])
    u_c_person, u_c_image, u_y = ru.random(n_people), ru.random(n_images), ru.random(n_images)

    c_trait = TRAITS[ATTR_TRAIT[protected]]
    c = ((u_c_person[pid] if c_trait.level == "person" else u_c_image) < p_protected).astype(np.int8)
    v = sample_traits(u_person, u_image, pid, {protected: c})
    hidden = descendants(ATTR_TRAIT[outcome]) | {ATTR_TRAIT[protected]}
    features = [a for a in FEATURE_WEIGHTS if ATTR_TRAIT[a] not in hidden]
    f = feature_strength * _features(v, features) if features else np.zeros(n_images)
    targets = (p_outcome_given_protected_0, p_outcome_given_protected_1)
    a = tuple(calibrate_intercept(f[c == g], targets[g]) for g in (0, 1))
    logit = np.where(c == 1, a[1], a[0]) + f
    with np.errstate(over="ignore"):
        p_y = _sigmoid(logit)
    y = (u_y < p_y).astype(np.int8)
    v = sample_traits(u_person, u_image, pid, {protected: c, outcome: y})
    attrs = attributes_of(v)
    assert (attrs[protected] == c).all() and (attrs[outcome] == y).all()
    expected = tuple(float(p_y[c == g].mean()) if (c == g).any() else float("nan") for g in (0, 1))

    table = render_table(v, attrs, pid, n_people, seed)
    table["blur_radius"] = np.random.default_rng([seed, 14]).uniform(1.3, 2.4, n_images)
    table["long_hair"] = (v["long_hair"] == 1).astype(np.int8)
    ids = np.array([f"{i + 1:06d}.jpg" for i in range(n_images)], dtype=object)
    table["image_id"] = ids
    for name in _RENDER_ATTRS + ("Blond_Hair", "Gray_Hair"):
        table[name] = attrs[name]
    for k, col in list(table.items()):
        if isinstance(col, np.ndarray) and col.dtype == np.float64 and col.ndim == 2 and k != "landmarks":
            table[k] = col.astype(np.float32)

    identity = np.random.default_rng([seed, 4]).permutation(n_people)[pid] + 1
    frame = pd.DataFrame({"image_id": ids, "split": np.asarray(C.SPLITS, dtype=object)[img_split]})
    for name in C.ATTRIBUTE_NAMES:
        frame[name] = attrs[name]
    for k, name in enumerate(C.LANDMARK_NAMES):
        frame[name] = table["landmarks"][:, k]
    frame["identity"] = identity.astype(np.int32)
    for k, name in enumerate(C.BBOX_COLUMNS):
        frame[name] = table["bbox"][:, k]
    frame = frame[list(C.COLUMNS)]
    return SyntheticSample(frame, table, a, expected, features, p_y)


def _default_workers(workers: int) -> int:
    if workers and workers > 0:
        return workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (non-Linux)
        return max(1, os.cpu_count() or 1)


def render_images(table: dict, out_dir: Path, seed: int, workers: int = 0, progress: bool = True) -> None:
    """Render every image of ``table`` into ``out_dir`` (deterministic whatever ``workers`` is)."""
    from tqdm import tqdm

    n = len(table["image_id"])
    workers = min(_default_workers(workers), max(1, n // 64))
    chunk = 64
    jobs = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    with tqdm(total=n, unit="img", desc="rendering faces", disable=not progress, file=sys.stderr) as bar:
        if workers == 1:
            _init_worker(table, out_dir, seed)
            try:
                for job in jobs:
                    bar.update(_render_chunk(job))
            finally:
                _WORKER_STATE.clear()
            return
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(table, str(out_dir), seed)) as pool:
            for done in pool.imap_unordered(_render_chunk, jobs):
                bar.update(done)


def synthetic_parameters(n_images, seed, p_protected, p_outcome_given_protected_0, p_outcome_given_protected_1,
                         feature_strength, split_fractions, protected, outcome) -> dict:
    """The parameters that determine a synthetic dataset's content (recorded in PARAMS_FILE)."""
    return {
        "generator_version": GENERATOR_VERSION, "n_images": int(n_images), "seed": int(seed),
        "p_protected": float(p_protected), "p_outcome_given_protected_0": float(p_outcome_given_protected_0),
        "p_outcome_given_protected_1": float(p_outcome_given_protected_1),
        "feature_strength": float(feature_strength), "split_fractions": [float(x) for x in split_fractions],
        "protected": protected, "outcome": outcome,
    }


def read_parameters(root: str | os.PathLike) -> dict | None:
    """The parameters recorded in a synthetic root, or None if there is no (readable) record."""
    p = Path(root) / PARAMS_FILE
    try:
        return json.loads(p.read_text())["parameters"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def make_synthetic_celeba(root: str | os.PathLike, n_images: int = 20000, seed: int = 0,
                          p_protected: float = 0.42, p_outcome_given_protected_0: float = 0.65,
                          p_outcome_given_protected_1: float = 0.25, feature_strength: float = 1.0,
                          split_fractions=(0.8, 0.1, 0.1), workers: int = 0, progress: bool = True,
                          protected: str = "Male", outcome: str = "Attractive") -> dict:
    """Write a synthetic CelebA at ``root`` (replacing what is there, atomically); return a summary.

    The files are exactly CelebA's: ``img_align_celeba/NNNNNN.jpg`` (178x218 JPEG) and the five
    annotation files, plus ``fairgen_synthetic.json`` with the parameters and this summary.
    """
    from fairgen.common.io import atomic_path

    root = Path(root)
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and not (root / PARAMS_FILE).exists())):
        raise DataError(f"{root}: exists and is not a fairgen synthetic dataset (no {PARAMS_FILE}); "
                        "refusing to replace it - choose another dataset.synthetic_root or remove it")
    t0 = time.perf_counter()
    params = synthetic_parameters(n_images, seed, p_protected, p_outcome_given_protected_0,
                                  p_outcome_given_protected_1, feature_strength, split_fractions,
                                  protected, outcome)
    sample = sample_dataset(n_images, seed, p_protected, p_outcome_given_protected_0, p_outcome_given_protected_1,
                            feature_strength, split_fractions, protected, outcome)
    t1 = time.perf_counter()
    with atomic_path(root, is_dir=True) as tmp:
        (tmp / C.IMAGE_DIR).mkdir()
        render_images(sample.table, tmp / C.IMAGE_DIR, seed, workers, progress)
        t2 = time.perf_counter()
        C.write_annotations(tmp, sample.frame)
        summary = _summary(sample, params, render_s=t2 - t1, total_s=time.perf_counter() - t0)
        (tmp / PARAMS_FILE).write_text(json.dumps({"parameters": params, "summary": summary}, indent=2,
                                                  sort_keys=True) + "\n")
    log.info("synthetic CelebA: %d images at %s (%.0f images/s rendering)", n_images, root, summary["images_per_s"])
    return summary


def _summary(sample: SyntheticSample, params: dict, render_s: float, total_s: float) -> dict:
    df = sample.frame
    c, y = df[params["protected"]].to_numpy(), df[params["outcome"]].to_numpy()
    rate = rate_by_group(y, c)
    return {
        "n_images": len(df),
        "n_identities": int(df["identity"].nunique()),
        "splits": {s: int((df["split"] == s).sum()) for s in C.SPLITS},
        "protected": params["protected"], "outcome": params["outcome"],
        "p_protected_empirical": float(c.mean()),
        "p_outcome_given_protected_empirical": rate,
        "p_outcome_given_protected_expected": {str(g): _finite(sample.expected_rates[g]) for g in (0, 1)},
        "outcome_intercepts": {str(g): _finite(sample.intercepts[g]) for g in (0, 1)},  # None: +-inf
        "outcome_features": sample.features,
        "attribute_means": {a: float(df[a].mean()) for a in C.ATTRIBUTE_NAMES},
        "render_seconds": round(render_s, 3),
        "images_per_s": len(df) / render_s if render_s > 0 else float("nan"),
        "total_seconds": round(total_s, 3),
    }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None

"""Dataset sources, splits and the manifest: the logic of ``fairgen dataset``
(:mod:`fairgen.stages.dataset`), which gets the face dataset and writes a manifest naming its root.

Sources (config ``dataset.source``):

- ``synthetic`` (default): the embedded synthetic CelebA at ``dataset.synthetic_root``, made by
  :func:`fairgen.data.procedural_celeba.make_synthetic_celeba` unless one with identical parameters (as
  recorded in its ``fairgen_synthetic.json``) and all its files is already there.
- ``celeba_download``: the real aligned CelebA, downloaded from Google Drive into
  ``dataset.download_root`` (files already present with the right MD5 are kept).
- ``celeba_local``: an existing copy at ``dataset.celeba_root``, verified in place: the official
  release's text files or the Kaggle copy's CSVs (the layout is found automatically and named in
  the manifest, with the images' folder).

Splits (config ``dataset.split``): ``official`` keeps the dataset's own partition; ``random``
draws a seeded test share and then a valid share of the rest (the paper's 90/10 protocol with
model selection on part of the 90). The manifest records the split, and :func:`load_index`
applies it again wherever the images are read (the crops stage), so every stage sees the same one.

Whatever the source, the annotation files are then parsed with :func:`~fairgen.data.celeba.read_celeba`
(so a bad file fails here, naming file and line) and the manifest records the root, split sizes
and the base rates P(outcome=1 | protected=g) per split.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fairgen import __version__
from fairgen.common.config import seed_for
from fairgen.common.errors import ConfigError, DataError
from fairgen.data import celeba as C
from fairgen.data import procedural_celeba as S

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
OFFICIAL_SPLIT = {"method": "official"}


def split_spec(cfg: dict) -> dict:
    """The split to record in the manifest, from the config."""
    ds = cfg["dataset"]
    if ds["split"] == "official":
        return dict(OFFICIAL_SPLIT)
    r = ds["random_split"]
    return {"method": "random", "test_fraction": float(r["test_fraction"]),
            "valid_fraction": float(r["valid_fraction"]), "seed": seed_for(cfg, "split")}


def apply_split(df, spec: dict):
    """``df`` with its ``split`` column replaced as ``spec`` (a manifest's ``split``) says.

    random: a seeded permutation of the rows; the first round(n * test_fraction) are test, the
    next round((n - n_test) * valid_fraction) valid, the rest train. Depends only on the number
    and order of rows (the attribute file's order, the same in both layouts) and the seed.
    """
    method = spec.get("method", "official")
    if method == "official":
        return df
    if method != "random":
        raise DataError(f"dataset manifest: unknown split method {method!r} (official or random)")
    n = len(df)
    order = np.random.default_rng(int(spec["seed"])).permutation(n)
    n_test = int(round(n * spec["test_fraction"]))
    n_valid = int(round((n - n_test) * spec["valid_fraction"]))
    split = np.full(n, "train", dtype=object)
    split[order[:n_test]] = "test"
    split[order[n_test:n_test + n_valid]] = "valid"
    out = df.copy()
    out["split"] = split.astype(str)
    return out


def load_index(manifest: dict):
    """(frame of the dataset's annotation files with the manifest's split, images' folder).

    ``manifest`` is what :func:`fairgen.stages.dataset.prepare` wrote (its root checked by the caller); manifests from
    before layouts and splits were recorded mean the official layout and split.
    """
    root = Path(manifest["root"])
    df = C.read_celeba(root, manifest.get("layout"))
    image_dir = Path(manifest["image_dir"]) if manifest.get("image_dir") else C.find_image_dir(root)
    return apply_split(df, manifest.get("split", OFFICIAL_SPLIT)), image_dir


def check_attribute_keys(cfg: dict) -> None:
    """ConfigError naming the key if ``protected``/``outcome`` are not CelebA attribute names."""
    for key in ("protected", "outcome"):
        if cfg[key] not in C.ATTRIBUTE_NAMES:
            raise ConfigError(f"config key '{key}': {cfg[key]!r} is not a CelebA attribute name "
                              f"(one of {', '.join(C.ATTRIBUTE_NAMES)})")
    if cfg["protected"] == cfg["outcome"]:
        raise ConfigError(f"config keys 'protected' and 'outcome' are both {cfg['protected']!r}; they must differ")


def synthetic_kwargs(cfg: dict) -> dict:
    """Arguments of make_synthetic_celeba that determine the content, from the config."""
    syn = cfg["dataset"]["synthetic"]
    return dict(
        n_images=syn["n_images"], seed=seed_for(cfg, "synthetic"), p_protected=syn["p_protected"],
        p_outcome_given_protected_0=syn["p_outcome_given_protected_0"],
        p_outcome_given_protected_1=syn["p_outcome_given_protected_1"],
        feature_strength=syn["feature_strength"], split_fractions=syn["split_fractions"],
        protected=cfg["protected"], outcome=cfg["outcome"],
    )


def ensure_synthetic(cfg: dict, progress: bool = True) -> tuple[Path, dict]:
    """Make the synthetic dataset unless an identical complete one exists; return (root, parameters)."""
    root = Path(cfg["dataset"]["synthetic_root"])
    kwargs = synthetic_kwargs(cfg)
    params = S.synthetic_parameters(**kwargs)
    S.check_parameters(kwargs["protected"], kwargs["outcome"], kwargs["split_fractions"], kwargs["n_images"])
    if S.read_parameters(root) == params:
        try:
            C.verify_celeba(root, check_md5=False)
        except DataError as e:
            log.warning("existing synthetic dataset is incomplete, remaking it: %s", e)
        else:
            log.info("%s: synthetic dataset with these parameters already exists, keeping it", root)
            return root, params
    elif root.exists():
        log.info("%s: parameters differ from the existing synthetic dataset, remaking it", root)
    S.make_synthetic_celeba(root, workers=cfg["dataset"]["synthetic"]["workers"], progress=progress, **kwargs)
    return root, params


def build_manifest(df, root: Path, source: str, protected: str, outcome: str, parameters: dict) -> dict:
    """The manifest: where the data is, split sizes, and outcome base rates per protected group."""
    c, y = df[protected].to_numpy(), df[outcome].to_numpy()
    base_rates, group_counts = {}, {}
    for split in (*C.SPLITS, "all"):
        m = np.ones(len(df), bool) if split == "all" else (df["split"] == split).to_numpy()
        group_counts[split] = {str(g): int((m & (c == g)).sum()) for g in (0, 1)}
        base_rates[split] = {str(g): (float(y[m & (c == g)].mean()) if (m & (c == g)).any() else None)
                             for g in (0, 1)}
    return {
        "manifest_version": MANIFEST_VERSION,
        "fairgen_version": __version__,
        "source": source,
        "root": str(Path(root).resolve()),
        "n_images": int(len(df)),
        "splits": {s: int((df["split"] == s).sum()) for s in C.SPLITS},
        "protected": protected,
        "outcome": outcome,
        "base_rates": base_rates,
        "group_counts": group_counts,
        "parameters": parameters,
    }

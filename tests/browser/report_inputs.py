"""Small but real inputs for the audit report tests, written with the producing modules' own
functions wherever they exist (fairness.evaluate, quality.*, synthetic_data.write_synthetic,
io.write_parquet, training.logs.append_jsonl), so the fixtures follow the real formats.

``make_inputs(tmp, cfg, dp_by_method=...)`` builds classifier predictions whose selection rates
per group are set exactly, so the fairest method by demographic-parity difference is known.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd

from fairgen.common import config as config_mod
from fairgen.common import io
from fairgen.data.synthetic_set import write_synthetic
from fairgen.eval import fairness, quality
from fairgen.stages import compare as compare_stage

N_PER_GROUP = 400
# Selection rates (c=0, c=1) per method: DP difference = |sr0 - sr1|.
DEFAULT_RATES = {
    "real": (0.70, 0.30),
    "reweighing": (0.62, 0.40),
    "fgan_dp": (0.52, 0.48),
    "fgan_eqopp": (0.60, 0.45),
    "acgan": (0.72, 0.26),
}


def tiny_cfg(methods=None, runs=None, n_boot: int = 60) -> dict:
    overrides = {"classifier": {"methods": list(methods or DEFAULT_RATES), "bootstrap": n_boot},
                 "gan": {"runs": list(runs if runs is not None else ["fgan_dp", "fgan_eqopp", "acgan"])}}
    return config_mod.validate(overrides)


def predictions(sr0: float, sr1: float, acc_flip: float, seed: int, with_ids: bool = False):
    """Labels, predictions and groups with selection rate exactly sr0 / sr1 per group.

    y_true has base rates 0.65 / 0.25 (c=0 / c=1); predictions agree with the truth where they
    can, then ``acc_flip`` of each group's rows are swapped pairwise (one 0->1 and one 1->0, which
    keeps the selection rate) to lower accuracy. ``with_ids`` adds image ids that name each row's
    place before the shuffle, so every method's row with one id has the same y_true and c.
    """
    rng = np.random.default_rng(seed)
    ys, ps, cs, ids = [], [], [], []
    for g, (base, sr) in enumerate(((0.65, sr0), (0.25, sr1))):
        n = N_PER_GROUP
        y = np.zeros(n, dtype=np.int64)
        y[: round(base * n)] = 1
        p = np.zeros(n, dtype=np.int64)
        k = round(sr * n)
        p[:k] = 1  # the first k rows (positives first) are selected
        n_swap = round(acc_flip * n / 2)
        ones, zeros = np.flatnonzero(p == 1), np.flatnonzero(p == 0)
        p[ones[:n_swap]] = 0
        p[zeros[-n_swap:] if n_swap else []] = 1
        order = rng.permutation(n)
        ys.append(y[order]), ps.append(p[order]), cs.append(np.full(n, g))
        ids.append(np.array([f"{g}-{i:04d}.jpg" for i in order]))
    out = np.concatenate(ys), np.concatenate(ps), np.concatenate(cs)
    return (*out, np.concatenate(ids)) if with_ids else out


def write_classifiers(folder: Path, cfg: dict, rates: dict, flips: dict | None = None) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, method in enumerate(cfg["classifier"]["methods"]):
        sr0, sr1 = rates[method]
        y, p, c, ids = predictions(sr0, sr1, (flips or {}).get(method, 0.1), seed=k, with_ids=True)
        score = np.clip(p * 0.6 + 0.2 + np.random.default_rng(k).normal(0, 0.1, len(p)), 0, 1)
        io.write_parquet(pd.DataFrame({"image_id": ids, "c": c, "y_true": y, "score": score, "y_pred": p}),
                         folder / method / "predictions.parquet", "predictions",
                         metadata={"method": method, "privileged": 0})
        result = fairness.evaluate(y, p, c, score=score, privileged=0, n_boot=cfg["classifier"]["bootstrap"],
                                   level=cfg["classifier"]["ci_level"], seed=k, allow_undefined=True)
        result.update({"method": method, "protected": cfg["protected"], "outcome": cfg["outcome"],
                       "training": {"source": f"{method} train", "n": 1000, "weighted": method == "reweighing",
                                    "arch": "cnn", "epochs": 1, "seed": k},
                       "selection": {"best_epoch": 1, "valid_accuracy": 0.7}})
        io.write_json(result, folder / method / "metrics.json")
        out[method] = result
    return out


# The embedded synthetic dataset the inputs describe (no pixels are rendered): its recorded
# parameters let the audit redraw each test image's true P(y = 1) for the oracle frontier.
SYNTHETIC = dict(n_images=600, p_protected=0.42, p_outcome_given_protected_0=0.65,
                 p_outcome_given_protected_1=0.25, feature_strength=2.0, split_fractions=(0.8, 0.1, 0.1))


def write_manifest(path: Path, cfg: dict, index: pd.DataFrame, source: str = "synthetic", seed: int = 0) -> dict:
    """The manifest ``fairgen dataset`` writes (fairgen.data.sources.build_manifest) for ``index``;
    for the synthetic source with the parameters of :func:`crops_index_frame`'s draw."""
    from fairgen.data.procedural_celeba import synthetic_parameters
    from fairgen.data.sources import build_manifest

    params = (synthetic_parameters(seed=seed, protected=cfg["protected"], outcome=cfg["outcome"], **SYNTHETIC)
              if source == "synthetic" else {"n_images": len(index)})
    manifest = build_manifest(index, path.parent / "celeba_root", source, cfg["protected"], cfg["outcome"], params)
    io.write_json(manifest, path)
    return manifest


def crops_index_frame(cfg: dict, seed: int = 0) -> pd.DataFrame:
    """The columns of a crops index the report reads (image_id, split, protected, outcome) of a
    600-image embedded synthetic dataset (about 480 / 60 / 60 images per split)."""
    from fairgen.data.procedural_celeba import sample_dataset

    frame = sample_dataset(seed=seed, protected=cfg["protected"], outcome=cfg["outcome"], **SYNTHETIC).frame
    out = frame[["image_id", "split"]].copy()
    for col in (cfg["protected"], cfg["outcome"]):
        out[col] = (frame[col].to_numpy() > 0).astype(np.int8)
    return out


def write_gan_run(folder: Path, run: str, steps: int = 5) -> None:
    import torch

    from fairgen.training.logs import append_jsonl, plot_loss_curves, read_jsonl, save_samples

    rng = np.random.default_rng(len(run))
    for i in range(1, steps + 1):
        append_jsonl({"step": 20 * i, "loss_d": 1.5 - 0.1 * i, "loss_g": 0.8 + 0.05 * i,
                      "d_acc_real": 0.5 + 0.05 * i, "d_acc_fake": 0.55, "g_fool_rate": None if i == 3 else 0.3,
                      "lr_g": 2e-4, "lr_d": 2e-4, "images_per_s": 100.0, "time_s": float(i)}, folder / "log.jsonl")
    plot_loss_curves(read_jsonl(folder / "log.jsonl"), folder / "loss_curve.png", title=run)
    images = torch.from_numpy(rng.uniform(-1, 1, size=(16, 3, 16, 16)).astype(np.float32))
    # the per-(c, y) grid and the training summary (fairgen.stages.train_gan CLASS_GRID, SUMMARY)
    save_samples(images, folder / "class_grid.png", nrow=4)
    c, y = np.arange(64) % 2, (rng.random(64) < 0.45).astype(np.int64)
    io.write_json({"run": run, "steps": 20 * steps, "wall_s": 12.5, "device": "cpu",
                   "generated": quality.label_statistics(c, y), "real_train": quality.label_statistics(c, 1 - c)},
                  folder / "summary.json")
    save_samples(images[:4], folder / "samples" / "step_0000020.png", nrow=2)
    save_samples(images[4:8], folder / "samples" / "step_0000100.png", nrow=2)


def write_synthetic_set(folder: Path, run: str, n: int = 48, p_c1: float = 0.5) -> None:
    rng = np.random.default_rng(len(run) + 7)
    images = rng.integers(0, 255, size=(n, 16, 16, 3), dtype=np.uint8)
    c = (np.arange(n) % 2 == 0).astype(np.int64) if p_c1 == 0.5 else (rng.random(n) < p_c1).astype(np.int64)
    y_prob = rng.random(n)
    write_synthetic(folder, images, c, y_prob, model=run, checkpoint_step=100, seed=1, progress=False)


def write_quality(path: Path, cfg: dict, runs: list[str]) -> dict:
    rng = np.random.default_rng(3)
    real_f, real_c = rng.normal(size=(60, 4)), np.arange(60) % 2
    ref_f, ref_c = rng.normal(size=(60, 4)), np.arange(60) % 2
    train_c = (rng.random(480) < 0.42).astype(np.int64)
    train_y = (rng.random(480) < np.where(train_c == 1, 0.25, 0.65)).astype(np.int64)
    real_stats = quality.label_statistics(train_c, train_y)
    label = "FID (own-CNN features)"
    result = {
        "format": quality.FORMAT, "format_version": quality.FORMAT_VERSION,
        "protected": cfg["protected"], "outcome": cfg["outcome"], "real_split": "test", "n_samples": 60,
        "seed": 0,
        "extractors": {"own_cnn": {"label": label, "note": "own-CNN features; not comparable to published FID.",
                                   "feature_dim": 4}},
        "classifier_accuracy_real": {"c": quality.agreement(rng.random(60), real_c),
                                     "y": quality.agreement(rng.random(60), real_c)},
        "real": {"label_statistics": real_stats, "n_eval": 60,
                 "images_outcome": quality.images_outcome(np.where(real_c == 1, 0.3, 0.7), real_c),
                 "reference_fid": {"own_cnn": quality.fid_by_group(real_f, real_c, ref_f, ref_c, label=label)}},
        "runs": {},
    }
    for k, run in enumerate(runs):
        syn_f, syn_c = rng.normal(loc=0.3 * (k + 1), size=(48, 4)), np.arange(48) % 2
        syn_y = (rng.random(48) < 0.5).astype(np.int64)
        syn_stats = quality.label_statistics(syn_c, syn_y)
        result["runs"][run] = {
            "folder": f"results/synthetic/{run}", "n_synthetic": 48, "n_evaluated": 48,
            "fid": {"own_cnn": quality.fid_by_group(real_f, real_c, syn_f, syn_c, label=label)},
            "label_statistics": {"real_train": real_stats, "synthetic": syn_stats,
                                 "gap_synthetic_minus_real": quality.label_gap(real_stats, syn_stats)},
            "c_conditioning": {**quality.agreement(rng.random(48), syn_c), "chance": 0.5,
                               "classifier": "own-CNN c head trained on real train crops"},
            "y_agreement": {**quality.agreement(rng.random(48), syn_y), "classifier": "own-CNN y head"},
            "images_outcome": quality.images_outcome(syn_y.astype(np.float64), syn_c),
        }
    # attribute coverage from the real functions: glasses and old faces read well, smiles at
    # chance; the first run draws no glasses and only young faces
    arng = np.random.default_rng(4)
    names = ["Eyeglasses", "Young", "Smiling"]
    labels = np.stack([arng.random(400) < 0.1, arng.random(400) < 0.75, arng.random(400) < 0.5], 1).astype(np.uint8)
    probs = labels.astype(np.float64)
    probs[:, 2] = arng.random(400)
    real_c = np.arange(400) % 2
    cov_real = quality.attribute_coverage_real(probs, labels, real_c, names)
    result["attribute_coverage"] = {"classifier": quality.ATTR_HEAD, "attributes": names, "info": {},
                                    "rule": {"min_look_rate": quality.MIN_LOOK_RATE,
                                             "dropped_ratio": quality.DROPPED_RATIO,
                                             "min_balanced_accuracy": quality.MIN_CLASSIFIER_BALANCED_ACCURACY,
                                             "min_positives": quality.MIN_POSITIVES},
                                    "real": cov_real}
    for k, run in enumerate(runs):
        syn = (arng.random((200, 3)) < [0.1, 0.75, 0.5]).astype(np.float64)
        if k == 0:
            syn[:, 0], syn[:, 1] = 0.0, 1.0
        result["runs"][run]["attribute_coverage"] = quality.attribute_coverage_run(syn, np.arange(200) % 2,
                                                                                   cov_real, names)
    io.write_json(result, path)
    quality.write_summary(result, path.parent / quality.OUTPUT_TSV)
    return result


def make_inputs(root: Path, cfg: dict, rates: dict | None = None, flips: dict | None = None,
                source: str = "synthetic", with_optional: bool = True) -> dict:
    """Write every input of ``fairgen audit`` under ``root``; returns the audit() keyword paths."""
    root = Path(root)
    rates = copy.deepcopy(rates or DEFAULT_RATES)
    paths = {"dataset": str(root / "data" / "dataset.json"), "classifiers_dir": str(root / "classifiers")}
    index = crops_index_frame(cfg)
    write_manifest(root / "data" / "dataset.json", cfg, index, source)
    write_classifiers(root / "classifiers", cfg, rates, flips)
    if with_optional:
        io.write_parquet(index, root / "data" / "index.parquet", "crops_index",
                         metadata={"method": "aligned", "resolution": 16})
        io.write_json({"method": "aligned", "resolution": 16, "n_cropped": 600, "n_skipped": 0},
                      root / "data" / "crops_summary.json")
        for run in cfg["gan"]["runs"]:
            write_gan_run(root / "gan" / run, run)
            write_synthetic_set(root / "synthetic" / run, run)
        write_quality(root / "quality" / "quality.json", cfg, list(cfg["gan"]["runs"]))
        methods = cfg["classifier"]["methods"]
        if "real" in methods and len(methods) > 1:
            compare_stage.write_comparison(cfg, [str(root / "classifiers" / m / "predictions.parquet") for m in methods],
                                         str(root / "classifiers" / "comparison.parquet"),
                                         str(root / "classifiers" / "comparison.csv"))
            paths["comparison"] = str(root / "classifiers" / "comparison.parquet")
        paths.update(crops_index=str(root / "data" / "index.parquet"),
                     crops_summary=str(root / "data" / "crops_summary.json"),
                     gan_dir=str(root / "gan"), synthetic_dir=str(root / "synthetic"),
                     quality=str(root / "quality" / "quality.json"))
    return paths

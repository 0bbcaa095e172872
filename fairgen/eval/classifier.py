"""Downstream outcome classifiers: train on real, reweighed or synthetic data; audit on real test.

``fairgen train-classifier --method M`` trains a binary classifier of the outcome y (config
``outcome``) on the training data of method ``M``:

==========================  ==================================================================
``real``                    the real train split
``reweighing``              the real train split with Kamiran & Calders weights w(c, y)
``fgan_dp`` / ``fgan_eqopp``  the synthetic set of that GAN run (labels y and groups c from its
/ ``acgan``                 ``samples.parquet``)
``real_plus_synthetic``     the real train split plus the synthetic set named by
                            ``classifier.synthetic_for_mix``
``real_plus_pairs``         the real train split plus ``classifier.pair_ratio`` x its size in
                            counterfactual pair images (``--pairs``, :mod:`fairgen.data.pairs`), both
                            members of a pair carrying one label (``classifier.pair_label``)
``real_clp``                the real train split; every step also draws
                            ``classifier.pair_batch_size`` unlabelled pairs and adds the
                            counterfactual logit-pairing penalty ``clp_lambda * mean((f(x0) -
                            f(x1))^2)`` (Garg et al. 2019)
                            (with ``classifier.pair_reweigh``, every pair method weighs the real
                            rows by Kamiran & Calders' w(c, y), as ``reweighing`` does)
``real_clp_dann``           ``real_clp`` plus domain confusion: a real-vs-generated head on the
                            classifier's penultimate features behind a gradient-reversal layer
                            of weight ``classifier.domain_lambda`` (Ganin et al. 2016)
==========================  ==================================================================

The network (``classifier.arch: cnn``), the runner and the fit loop are the shared small-CNN
stack of :mod:`fairgen.eval.cnn` (its defaults are this classifier's network; ``resnet18`` runs on
the same runner and loop); this module adds the outcome loss (sample weights and the pair
losses) and the per-epoch selection (:func:`fit`). The pair methods use the pairs in that one
loop: the real batch and the pair batch go through the network in one forward pass, and the
pairs are drawn from their own seeded stream, so the real batches (order, flips) are those of
``real``.

Whatever it trained on, every classifier picks its best epoch by accuracy on the REAL valid
split and is evaluated on the same held-out REAL test split, so the methods are comparable.
The privileged group (for the signed AIF360-style metrics) is the value of c with the higher
base rate P(y=1 | c) in the real train split; metrics.json records which and why.

Outputs in ``--out-dir``: ``predictions.parquet`` (kind ``predictions``: image_id, c, y_true,
score, y_pred), ``metrics.json`` (:func:`fairgen.eval.fairness.evaluate` with bootstrap intervals plus
the run's provenance), ``model.pt`` (weights, loadable with ``weights_only=True``) and
``curve.json`` (per-epoch train loss/accuracy and valid loss/accuracy).

``fairgen compare`` sets every method's predictions beside the ``real`` baseline's on the same
test images (:func:`fairgen.eval.fairness.paired_difference`): the change in accuracy and in each
fairness metric, absolute and relative, with paired bootstrap intervals.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fairgen.common import io
from fairgen.common.config import seed_for
from fairgen.common.errors import ConfigError, DataError
from fairgen.common.registry import method_names, pair_methods, synthetic_methods
from fairgen.data.crops import binary_column, read_crops
from fairgen.eval import cnn
from fairgen.eval.cnn import Runner, build_cnn, last_linear

log = logging.getLogger(__name__)

# (fairgen.common.registry.CLASSIFIER_METHODS)
SYNTHETIC_METHODS = tuple(synthetic_methods())
PAIR_METHODS = tuple(pair_methods())
METHODS = tuple(method_names())
SPLITS = ("train", "valid", "test")
SELECTION = "accuracy on the real valid split (ties: earliest epoch)"
PRIVILEGED_RULE = "the group c with the higher base rate P(y=1 | c) in the real train split (ties: c=1)"
PREDICTION_COLUMNS = ("image_id", "c", "y_true", "score", "y_pred")


# ------------------------------------------------------------------------------------- models


def _resnet18_small():
    import torch.nn as nn
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=1)
    # small inputs (32/64 px): a 3x3 stride-1 stem and no max-pool, as is usual for CIFAR-sized images
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def build_model(arch: str, resolution: int, width: int = 32):
    """The outcome classifier: one logit per image, input float NCHW in [-1, 1].

    ``cnn``: the shared small CNN with its defaults (:func:`fairgen.eval.cnn.build_cnn`:
    conv3x3-BN-ReLU blocks, two per stage, max-pool between stages, channels width, 2 width, ...
    up to 8 width, a last conv block, global average pooling, dropout 0.2 and a linear layer).
    ``resnet18``: torchvision's ResNet-18 (``weights=None``, nothing is downloaded) with a 3x3
    stride-1 stem and no max-pool for small inputs.
    """
    if arch == "cnn":
        return build_cnn(resolution, width=width)
    if arch == "resnet18":
        return _resnet18_small()
    raise ConfigError(f"config key 'classifier.arch': unknown architecture '{arch}' (cnn, resnet18)")


def load_model(path: str | os.PathLike):
    """The classifier saved as ``model.pt`` by ``fairgen train-classifier``
    (:func:`fairgen.stages.train_classifier.train_classifier`; loaded with
    ``weights_only=True``): ``(model, saved dict)``. DataError for a missing or foreign file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: classifier model.pt not found")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model(saved["arch"], saved["resolution"], saved["width"])
        model.load_state_dict(saved["state_dict"])
    except (KeyError, TypeError, RuntimeError, OSError, ConfigError) as e:
        raise DataError(f"{path}: not a classifier model.pt of 'fairgen train-classifier' ({e})") from None
    return model, saved


# --------------------------------------------------------------------------------------- data


@dataclass
class Split:
    """Images (uint8 NHWC) with their outcome y, group c and optional sample weights."""

    images: np.ndarray
    y: np.ndarray
    c: np.ndarray
    image_id: np.ndarray
    source: str
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)


def load_real(cfg: dict, array: str | os.PathLike, index: str | os.PathLike,
              splits: tuple[str, ...] = SPLITS) -> dict[str, Split]:
    """The real crops of ``splits`` (default all: ``{'train', 'valid', 'test'}``) -> :class:`Split`,
    each copied into memory from the memory-mapped array (only the splits asked for: train-gan
    needs only train, which keeps one copy of the crops in memory at CelebA's size).

    Row i of the index describes row i of the array. Raises DataError for a missing file, a
    length mismatch, a non-0/1 label, an unknown split name or an empty split.
    """
    protected, outcome = cfg["protected"], cfg["outcome"]
    images, df, _ = read_crops(array, index, columns=["image_id", "split", protected, outcome])
    split = df["split"].astype(str).to_numpy()
    unknown = np.flatnonzero(~np.isin(split, SPLITS))
    if unknown.size:
        raise DataError(f"{index}, row {unknown[0]}: unknown split '{split[unknown[0]]}' (expected one of {', '.join(SPLITS)})")
    y = binary_column(df, outcome, index)
    c = binary_column(df, protected, index)
    ids = df["image_id"].astype(str).to_numpy()
    out = {}
    for name in SPLITS:
        rows = np.flatnonzero(split == name)
        if rows.size == 0:
            raise DataError(f"{index}: the '{name}' split is empty")
        if name not in splits:
            continue
        out[name] = Split(np.ascontiguousarray(images[rows]), y[rows], c[rows], ids[rows], f"real {name} ({index})")
    return out


def load_synthetic(folders: list[str | os.PathLike], expected_model: str) -> Split:
    """The synthetic sets in ``folders`` (concatenated), each made by the GAN run ``expected_model``."""
    from fairgen.data.synthetic_set import read_synthetic

    if not folders:
        raise ConfigError(f"a synthetic set of GAN run '{expected_model}' is needed: pass --synthetic DIR")
    parts = []
    for folder in folders:
        table, images, _ = read_synthetic(folder)
        models = sorted(set(table["model"]))
        if models != [expected_model]:
            raise DataError(f"{folder}: synthetic set made by {', '.join(models)}, expected GAN run '{expected_model}'")
        ids = np.array([f"{expected_model}/{s}" for s in table["sample_id"]])
        parts.append(Split(images, table["y"].to_numpy(np.int64), table["c"].to_numpy(np.int64), ids,
                           f"synthetic {folder}"))
    return _concat(parts) if len(parts) > 1 else parts[0]


def _concat(parts: list[Split]) -> Split:
    shapes = {p.images.shape[1:] for p in parts}
    if len(shapes) > 1:
        raise DataError("images of different sizes: " + "; ".join(f"{p.source}: {p.images.shape[1:]}" for p in parts))
    weights = None
    if any(p.weight is not None for p in parts):
        weights = np.concatenate([p.weight if p.weight is not None else np.ones(len(p)) for p in parts])
    return Split(np.concatenate([p.images for p in parts]), np.concatenate([p.y for p in parts]),
                 np.concatenate([p.c for p in parts]), np.concatenate([p.image_id for p in parts]),
                 " + ".join(p.source for p in parts), weights)


def training_data(cfg: dict, method: str, real: dict[str, Split], synthetic: list) -> Split:
    """The training set of ``method`` (see the module docstring)."""
    from fairgen.eval.reweighing import reweighing_table, reweighing_weights

    if method not in METHODS:
        raise ConfigError(f"unknown classifier method '{method}' (one of {', '.join(METHODS)})")
    if method in ("real", "reweighing") + PAIR_METHODS and synthetic:
        raise ConfigError(f"method '{method}' trains on no synthetic set; do not pass --synthetic")
    train = real["train"]
    if method in ("real", "real_clp", "real_clp_dann"):  # the pair methods' pairs: see pair_training
        data = train
    elif method == "reweighing":
        table = reweighing_table(train.c, train.y)
        log.info("reweighing weights w(c, y): %s", {f"c={c},y={y}": round(w, 4) for (c, y), w in table.items()})
        data = Split(train.images, train.y, train.c, train.image_id, train.source + " reweighed",
                     reweighing_weights(train.c, train.y))
    elif method in SYNTHETIC_METHODS:
        data = load_synthetic(synthetic, method)
    elif method == "real_plus_synthetic":
        data = _concat([train, load_synthetic(synthetic, cfg["classifier"]["synthetic_for_mix"])])
    else:  # real_plus_pairs: the labelled pairs are added by pair_training
        data = train
    if data.images.shape[1:] != train.images.shape[1:]:
        raise DataError(f"{data.source}: images are {data.images.shape[1:]}, the real crops {train.images.shape[1:]}")
    if len(np.unique(data.y)) < 2:
        raise DataError(f"{data.source}: the training data of method '{method}' has only y={data.y[0]}")
    return data


def pairs_for_ratio(cfg: dict, pairs, n_train: int, where: str):
    """The first ``round(classifier.pair_ratio * n_train / 2)`` pairs of ``pairs`` (so the pair
    images number ``pair_ratio`` times the real train images). DataError naming ``where`` when
    the set holds fewer."""
    n = int(round(cfg["classifier"]["pair_ratio"] * n_train / 2))
    if n > len(pairs):
        raise DataError(f"{where}: classifier.pair_ratio {cfg['classifier']['pair_ratio']} asks for {n} pairs "
                        f"({cfg['classifier']['pair_ratio']} x {n_train} real train images / 2), the set holds "
                        f"{len(pairs)}; lower the ratio or raise pairs.n_pairs")
    return pairs.take(n)


def pair_labels(cfg: dict, pairs, label_model: str | None, device) -> tuple[np.ndarray, str]:
    """One label per pair by ``classifier.pair_label`` (:data:`fairgen.data.pairs.LABEL_RULES`)."""
    from fairgen.data.pairs import LABEL_RULES

    rule = cfg["classifier"]["pair_label"]
    if rule == "generator":
        p = (pairs.y_prob0 + pairs.y_prob1) / 2
    else:
        if not label_model:
            raise ConfigError("classifier.pair_label 'real_classifier' needs the real classifier: pass "
                              "--label-model (model.pt of 'fairgen train-classifier --method real')")
        model, ck = load_model(label_model)
        if ck.get("method") != "real":
            raise DataError(f"{label_model}: classifier of method '{ck.get('method')}', expected 'real'")
        runner = Runner(model, device, cfg["precision"], cfg["classifier"]["batch_size"])
        p = (runner.predict(runner.tensor(pairs.images0), "label pairs c=0", False)
             + runner.predict(runner.tensor(pairs.images1), "label pairs c=1", False)) / 2
    return (p >= 0.5).astype(np.int64), LABEL_RULES[rule]


def pair_training(cfg: dict, method: str, train: Split, pairs_dir: str | None, label_model: str | None,
                  device) -> tuple[Split, PairTerms | None, dict | None]:
    """What a pair method adds to the real train split ``train``: ``(training split, pair
    terms for fit, description)``; the split unchanged and no terms for the other methods."""
    from fairgen.data.pairs import read_pairs

    cc = cfg["classifier"]
    if method not in PAIR_METHODS:
        if pairs_dir:
            raise ConfigError(f"method '{method}' uses no counterfactual pairs; do not pass --pairs")
        return train, None, None
    if not pairs_dir:
        raise ConfigError(f"method '{method}' needs a counterfactual pair set: pass --pairs DIR "
                          "(written by 'fairgen generate-pairs')")
    if cc["pair_reweigh"]:
        from fairgen.eval.reweighing import reweighing_weights

        train = Split(train.images, train.y, train.c, train.image_id, train.source + " reweighed",
                      reweighing_weights(train.c, train.y))
    pairs = read_pairs(pairs_dir)
    if pairs.images0.shape[1:] != train.images.shape[1:]:
        raise DataError(f"{pairs_dir}: pair images are {pairs.images0.shape[1:]}, the real crops "
                        f"{train.images.shape[1:]}")
    if method == "real_plus_pairs":
        used = pairs_for_ratio(cfg, pairs, len(train), str(pairs_dir))
        labels, rule = pair_labels(cfg, used, label_model, device)
        n = len(used)
        ids = np.concatenate([[f"pair{p}/c0" for p in used.pair_id], [f"pair{p}/c1" for p in used.pair_id]])
        added = Split(np.concatenate([used.images0, used.images1]), np.concatenate([labels, labels]),
                      np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)]), ids.astype(object),
                      f"{n} counterfactual pairs {pairs_dir}")
        info = {"pairs": str(pairs_dir), "model": pairs.model, "n_pairs": n, "pair_ratio": cc["pair_ratio"],
                "reweighed_real": cc["pair_reweigh"],
                "label_rule": cc["pair_label"], "label_rule_text": rule,
                "p_y1_pairs": float(labels.mean()) if n else None}
        return (_concat([train, added]) if n else train), None, info
    terms = PairTerms(pairs, cc["clp_lambda"], cc["domain_lambda"] if method == "real_clp_dann" else 0.0,
                      cc["pair_batch_size"], seed_for(cfg, f"classifier/{method}/pairs"), cc["pair_reweigh"])
    return train, terms, terms.describe()


def privileged_group(train: Split) -> tuple[int, dict[str, float]]:
    """The group with the higher base rate P(y=1 | c) in ``train``, and both base rates."""
    rates = {}
    for g in (0, 1):
        mask = train.c == g
        if not mask.any():
            raise DataError(f"{train.source}: no rows of group c={g}, so the privileged group is undefined")
        rates[str(g)] = float(train.y[mask].mean())
    return (0 if rates["0"] > rates["1"] else 1), rates


# ----------------------------------------------------------------------------------- training


def _bce(scores: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


@dataclass
class PairTerms:
    """The pair losses of ``real_clp`` / ``real_clp_dann`` in :func:`fit`: every step draws
    ``batch_size`` pairs of ``pairs`` (with replacement, from the stream seeded by ``seed``) and
    adds ``clp_lambda * mean((f(x0) - f(x1))^2)`` over their logits, and with ``domain_lambda``
    > 0 a real-vs-generated head on the penultimate features behind a gradient reversal of that
    weight (the head learns to tell the domains apart; the features are pushed to hide them)."""

    pairs: "object"  # fairgen.data.pairs.PairSet
    clp_lambda: float
    domain_lambda: float
    batch_size: int
    seed: int
    reweighed: bool = False

    def describe(self) -> dict:
        return {"pairs": self.pairs.source, "n_pairs": len(self.pairs), "clp_lambda": self.clp_lambda,
                "reweighed_real": self.reweighed,
                "domain_lambda": self.domain_lambda, "pair_batch_size": self.batch_size, "seed": self.seed}


def _grad_reverse():
    import torch

    class GradReverse(torch.autograd.Function):
        """Identity forward; the gradient times ``-weight`` backward (Ganin et al. 2016)."""

        @staticmethod
        def forward(ctx, x, weight):
            ctx.weight = weight
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return -ctx.weight * grad, None

    return GradReverse.apply


class _PairStep:
    """The pair batch of one step and its losses (see :class:`PairTerms`)."""

    def __init__(self, terms: PairTerms, runner: Runner, feature_dim: int):
        import torch

        self.terms, self.runner, self.torch = terms, runner, torch
        self.x0 = runner.tensor(terms.pairs.images0)
        self.x1 = runner.tensor(terms.pairs.images1)
        self.gen = torch.Generator().manual_seed(terms.seed)
        self.head = None
        if terms.domain_lambda > 0:
            self.head = torch.nn.Linear(feature_dim, 1).to(runner.device)
            self.reverse = _grad_reverse()

    def parameters(self) -> list:
        return list(self.head.parameters()) if self.head is not None else []

    def inputs(self):
        """The pair images of this step: ``[x0 members; x1 members]`` (each pair mirrored alike)."""
        torch, k = self.torch, self.terms.batch_size
        idx = torch.randint(len(self.terms.pairs), (k,), generator=self.gen).to(self.runner.device)
        flip = (torch.rand(k, generator=self.gen) < 0.5).to(self.runner.device)
        return torch.cat([self.runner.batch(self.x0, idx, flip), self.runner.batch(self.x1, idx, flip)])

    def loss(self, logits, features, n_real: int):
        """The pair losses given the logits (and features) of ``[real; x0; x1]``; also returns the
        detached mean squared logit gap and the domain head's accuracy (for the curve)."""
        import torch.nn.functional as F

        torch, k = self.torch, self.terms.batch_size
        g0, g1 = logits[n_real:n_real + k], logits[n_real + k:]
        gap = (g0 - g1).pow(2).mean()
        loss = self.terms.clp_lambda * gap
        dom_acc = None
        if self.head is not None:
            d = torch.cat([torch.ones(n_real, device=logits.device), torch.zeros(2 * k, device=logits.device)])
            dom = self.head(self.reverse(features, self.terms.domain_lambda)).reshape(-1)
            loss = loss + F.binary_cross_entropy_with_logits(dom, d)
            dom_acc = ((dom.detach() > 0).float() == d).float().mean()
        return loss, gap.detach(), dom_acc


class _OutcomeLoss:
    """The classifier's loss for :func:`fairgen.eval.cnn.fit`: per step the binary cross-entropy of
    y (each example's times its ``train.weight`` when there is one) plus the pair losses of
    ``pair_terms``, whose pair batch joins the real batch in one forward pass. Sums per epoch: the
    cross-entropy (``bce``, per image), correct predictions (``correct``) and, with pairs, the
    squared logit gap (``gap``) and the domain head's accuracy (``domain``), per step."""

    def __init__(self, runner: Runner, train: Split, pair_terms: PairTerms | None):
        import torch

        self.runner = runner
        self.pair_step = None
        if pair_terms is not None:
            self.pair_step = _PairStep(pair_terms, runner, last_linear(runner.model).in_features)
        self.want_features = self.pair_step is not None and self.pair_step.head is not None
        self.y = torch.from_numpy(train.y.astype(np.float32)).to(runner.device)
        self.w = torch.from_numpy(train.weight.astype(np.float32)).to(runner.device) if train.weight is not None else None

    def parameters(self) -> list:
        return self.pair_step.parameters() if self.pair_step is not None else []

    def __call__(self, x, idx):
        import torch
        import torch.nn.functional as F

        if self.pair_step is not None:
            x = torch.cat([x, self.pair_step.inputs()])
        out = self.runner.logits(x, features=self.want_features)
        all_logits, features = out if self.want_features else (out, None)
        logits = all_logits[:len(idx)]
        losses = F.binary_cross_entropy_with_logits(logits, self.y[idx], reduction="none")
        loss = bce = (losses * self.w[idx]).mean() if self.w is not None else losses.mean()
        stats = {"bce": bce.detach() * len(idx), "correct": ((logits.detach() > 0).float() == self.y[idx]).sum()}
        if self.pair_step is not None:
            pair_loss, stats["gap"], dom_acc = self.pair_step.loss(all_logits, features, len(idx))
            loss = bce + pair_loss
            if dom_acc is not None:
                stats["domain"] = dom_acc
        return loss, stats


def fit(cfg: dict, runner: Runner, train: Split, valid: Split, seed: int, progress: bool = True,
        pair_terms: PairTerms | None = None):
    """Train ``runner.model`` with the shared fit loop (:func:`fairgen.eval.cnn.fit`, seeded with
    ``seed``) for ``classifier.epochs`` epochs with random horizontal flips (and random
    translations of up to ``classifier.experimental.shift`` pixels) on :class:`_OutcomeLoss`; keep
    the weights of the epoch with the best real-valid accuracy. Returns the per-epoch curve and
    the best epoch."""
    cc = cfg["classifier"]
    model = runner.model
    loss = _OutcomeLoss(runner, train, pair_terms)
    valid_t = runner.tensor(valid.images)
    curve, best = [], []

    def on_epoch(r: dict) -> None:
        scores = runner.predict(valid_t, "valid", progress)
        val_acc = float(np.mean((scores >= cc["threshold"]) == valid.y))
        seen, steps, sums = max(r["seen"], 1), max(r["steps"], 1), r["sums"]
        curve.append({"epoch": r["epoch"], "train_loss": sums["bce"] / seen, "train_accuracy": sums["correct"] / seen,
                      "valid_loss": _bce(scores, valid.y), "valid_accuracy": val_acc,
                      "seconds": time.perf_counter() - r["started"]})
        if "gap" in sums:
            curve[-1]["pair_logit_gap_sq"] = sums["gap"] / steps
        if "domain" in sums:
            curve[-1]["domain_head_accuracy"] = sums["domain"] / steps
        log.info("epoch %d/%d: train loss %.4f acc %.4f | valid loss %.4f acc %.4f (%.1fs)%s", r["epoch"],
                 cc["epochs"], curve[-1]["train_loss"], curve[-1]["train_accuracy"], curve[-1]["valid_loss"], val_acc,
                 curve[-1]["seconds"],
                 "".join(f" | {k} {curve[-1][k]:.4f}" for k in ("pair_logit_gap_sq", "domain_head_accuracy")
                         if k in curve[-1]))
        if not best or val_acc > best[0]:
            best[:] = [val_acc, r["epoch"], {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}]

    cnn.fit(runner, train.images, loss, seed=seed, lr=cc["lr"], weight_decay=cc["weight_decay"],
            epochs=cc["epochs"], flips=True, shift=cc["experimental"]["shift"], extra_params=loss.parameters(),
            on_epoch=on_epoch, desc="epoch", progress=progress)
    model.load_state_dict(best[2])
    return curve, best[1]


# ------------------------------------------------------------------- comparisons (fairgen compare)


COMPARISON_COLUMNS = ("method", "metric", "baseline", "value", "difference", "difference_lo", "difference_hi",
                      "relative", "relative_lo", "relative_hi", "n_valid")


def read_predictions(path: str) -> tuple[str, int, "object"]:
    df, meta = io.read_parquet(path, "predictions", list(PREDICTION_COLUMNS))
    method, privileged = meta.get("method"), meta.get("privileged")
    if not isinstance(method, str):
        raise DataError(f"{path}: predictions without a 'method' in their metadata")
    if privileged not in (0, 1):
        raise DataError(f"{path}: predictions without the privileged group in their metadata "
                        "(written by an older fairgen: rerun train-classifier)")
    if df["image_id"].duplicated().any():
        dup = df.loc[df["image_id"].duplicated(), "image_id"].iloc[0]
        raise DataError(f"{path}: image_id {dup!r} appears more than once")
    return method, int(privileged), df.set_index("image_id")

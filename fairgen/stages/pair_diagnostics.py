"""``fairgen pair-diagnostics`` (rule ``pair_diagnostics``): what limits the counterfactual-pair
methods: flip success and identity kept of a pair set, and per classifier its c-sensitivity and
how well its features tell real from generated images."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from fairgen.common import io
from fairgen.common.config import seed_for
from fairgen.common.errors import DataError
from fairgen.eval.pair_diagnostics import MAX_PAIRS, c_sensitivity_real, domain_probe

log = logging.getLogger(__name__)


def diagnose(cfg: dict, array: str | os.PathLike, index: str | os.PathLike, pairs: str | os.PathLike,
             classifier: list[str], out_json: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
             progress: bool = True) -> dict:
    """Measure the module docstring's diagnostics and write them to ``out_json``."""
    from fairgen.common.runtime import resolve_device
    from fairgen.data.pairs import read_pairs
    from fairgen.eval.classifier import load_model, load_real
    from fairgen.eval.cnn import Runner
    from fairgen.eval.features import load_or_train_attribute_cnn, load_or_train_own_cnn
    from fairgen.eval.quality import attribute_columns

    cache_dir = Path(cache_dir) if cache_dir else Path(out_json).parent / "cache"
    real = load_real(cfg, array, index)
    train, test = real["train"], real["test"]
    pair_set = read_pairs(pairs)
    pair_set = pair_set.take(min(len(pair_set), MAX_PAIRS))
    n = len(pair_set)
    if n < 4:
        raise DataError(f"{pairs}: {n} pairs; the diagnostics need at least 4")
    result: dict = {"pairs": str(pairs), "n_pairs": n, "real_test": len(test)}

    own = load_or_train_own_cnn(cfg, train.images, train.c, train.y, cache_dir, progress)
    p0 = own.run(pair_set.images0, progress)["p_c"]
    p1 = own.run(pair_set.images1, progress)["p_c"]
    pt = own.run(test.images, progress)["p_c"]
    result["flip_success"] = {
        "both_members": float(np.mean((p0 < 0.5) & (p1 >= 0.5))),
        "reads_c0_on_c0_member": float(np.mean(p0 < 0.5)),
        "reads_c1_on_c1_member": float(np.mean(p1 >= 0.5)),
        "c_reader_accuracy_real_test": float(np.mean((pt >= 0.5) == test.c)),
        "c_reader": "own CNN (c output) trained on the real train crops",
    }

    df, _ = io.read_parquet(index, "crops_index")
    train_rows = np.flatnonzero(df["split"].astype(str).to_numpy() == "train")
    names = attribute_columns(df, cfg, train_rows, str(index))
    if names:
        labels = df[names].to_numpy()[train_rows].astype(np.float32)
        reader = load_or_train_attribute_cnn(cfg, train.images, labels, names, cache_dir, progress)
        a0 = reader.predict(pair_set.images0, progress) >= 0.5
        a1 = reader.predict(pair_set.images1, progress) >= 0.5
        shuffle = np.random.default_rng(seed_for(cfg, "pair_diagnostics/unpaired")).permutation(n)
        per_attr = (a0 == a1).mean(axis=0)
        unpaired = (a0 == a1[shuffle]).mean(axis=0)
        result["identity_kept"] = {
            "agreement_pairs": float(per_attr.mean()), "agreement_unpaired": float(unpaired.mean()),
            "per_attribute": {a: {"pairs": float(p), "unpaired": float(u)} for a, p, u in zip(names, per_attr, unpaired)},
            "attributes": list(names),
        }
    else:
        result["identity_kept"] = None
        log.warning("%s: no attribute besides %s and %s varies in the train split; identity not measured",
                    index, cfg["protected"], cfg["outcome"])

    device = resolve_device(cfg["device"])
    result["classifiers"] = {}
    loaded = [(path, *load_model(path)) for path in classifier]
    methods = [saved.get("method", str(path)) for path, _, saved in loaded]
    for (path, model, _), method in zip(loaded, methods):
        if methods.count(method) > 1:
            method = f"{method} ({Path(path).parent.name})"  # several models of one method: name their folders
        runner = Runner(model, device, cfg["precision"], cfg["classifier"]["batch_size"])
        e0, e1, et = (runner.run(x, ("logits", "features"), f"{method} {what}", progress) for x, what in
                      ((pair_set.images0, "pairs c=0"), (pair_set.images1, "pairs c=1"), (test.images, "real test")))
        l0, l1, lt = e0["logits"], e1["logits"], et["logits"]
        result["classifiers"][method] = {
            "model": str(path),
            "c_sensitivity_pairs": float(np.mean(np.abs(l1 - l0))),
            "c_sensitivity_pairs_signed": float(np.mean(l1 - l0)),
            "pairs_same_side_of_threshold": float(np.mean((l0 >= 0) == (l1 >= 0))),
            "c_sensitivity_real": c_sensitivity_real(lt, test.y, test.c),
            "domain_separability": domain_probe(et["features"], np.concatenate([e0["features"], e1["features"]]),
                                                seed_for(cfg, f"pair_diagnostics/{method}")),
        }
        d = result["classifiers"][method]
        log.info("%s: c-sensitivity pairs %.3f (signed %+.3f), real %+.3f; domain probe accuracy %.3f", method,
                 d["c_sensitivity_pairs"], d["c_sensitivity_pairs_signed"], d["c_sensitivity_real"] or float("nan"),
                 d["domain_separability"]["accuracy"])
    io.write_json(result, out_json)
    return result

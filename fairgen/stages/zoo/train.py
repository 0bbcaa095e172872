"""``fairgen zoo-train`` (rule ``zoo_train``): one zoo GAN run on the shared GAN trainer."""

from __future__ import annotations

import logging
from pathlib import Path

from fairgen.common.io import write_json
from fairgen.data import zoo_data
from fairgen.eval.zoo import (
    TRAIN_SUMMARY,
    build_model,
    check_run,
    read_data,
    run_shape,
    train_config,
)

log = logging.getLogger(__name__)


def train(cfg: dict, model: str, data: str, out_dir: str) -> int:
    """CLI ``zoo-train``: train zoo run ``model`` on the prepared dataset folder ``data``.

    Writes into ``out_dir`` what the trainer writes (checkpoint.pt, log.jsonl, samples/,
    loss_curve.png) plus ``train.json`` (the trainer's summary, run, dataset and data shape).
    Until then the resumable state is in ``OUT.state`` beside ``out_dir`` (not among the rule's
    outputs, which Snakemake deletes before a rerun); running again after an interruption resumes
    from it, and it is removed once ``train.json`` is written.
    """
    from fairgen.training import ArrayBatches, Trainer, seed_everything
    from fairgen.training.trainer import default_state_dir

    run = check_run(model)
    settings = cfg["zoo"][run]
    size, channels = run_shape(cfg, run)
    real = read_data(cfg, data, settings["dataset"])
    real = zoo_data.conform(real, size, channels)
    tc = train_config(cfg, run, {"dataset": real.info["dataset"],
                                 "data_fingerprint": zoo_data.fingerprint(real.images, real.labels)})
    seed_everything(tc.seed)  # reproducible initial weights
    gan = build_model(cfg, run, size, channels, real.n_classes)
    log.info("zoo %s: model %s on %s %s (%d images), %d steps of batch %d", run, gan.name, real.info["dataset"],
             list(real.images.shape[1:]), len(real.labels), tc.steps, tc.batch_size)
    trainer = Trainer(gan, ArrayBatches(real.images, {"label": real.labels}, name=str(data)), out_dir, tc,
                      state_dir=default_state_dir(out_dir))
    summary = trainer.fit()
    summary.update(run=run, dataset=real.info["dataset"], image_shape=[size, size, channels],
                   n_real=int(len(real.labels)), class_names=real.class_names)
    write_json(summary, Path(out_dir) / TRAIN_SUMMARY)
    trainer.clear_state()  # every output is written: nothing left to resume
    log.info("zoo %s: %d steps in %.1f s", run, summary["steps"], summary["wall_s"])
    return 0

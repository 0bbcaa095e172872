"""``fairgen train-gan``: train one Fairness GAN run on the real train crops.

Runs (``--run``) and their fairness variant (:mod:`fairgen.models.fairness_gan`):

=============  ========  ===========================================================
run            variant   G's fairness term
=============  ========  ===========================================================
``fgan_dp``    dp        demographic parity: y should not reveal c
``fgan_eqopp`` eqopp     equality of opportunity: the same, weighted by generated y
``acgan``      none      none (the same model without the fairness term)
=============  ========  ===========================================================

The model is built from the config's ``gan`` section (resolution from the crops array, P(c=1)
from the train split) and trained by the shared :class:`fairgen.training.Trainer` into
``out_dir`` (``checkpoint.pt``, ``log.jsonl``, ``samples/``, ``loss_curve.png``). Afterwards
:data:`CLASS_GRID` shows generated samples by (c, generated y) and :data:`SUMMARY` records the
training summary with the generated and real label statistics.

Interruption and resumption. While training, the resumable state (checkpoint, log, sample grids)
lives in a state folder beside ``out_dir`` (``OUT.state``, see
:func:`fairgen.training.trainer.default_state_dir`), not in ``out_dir``: the files in ``out_dir`` are the outputs, published only when training is done
(each atomically), and Snakemake deletes a job's outputs before it runs the job again, so an
interrupted job (killed, preempted, timed out) could never resume from a checkpoint among them.
Running the same command again resumes from the state and gives the same weights as an
uninterrupted run (same device type). The state is removed once every output is written; a state
that cannot continue this run (other model, settings, or train data: the checkpoint records a
fingerprint of the train images and labels) is discarded with a warning. With no state, a run
already published in ``out_dir`` is continued (e.g. to more steps).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from fairgen.common import io
from fairgen.common.config import seed_for
from fairgen.common.errors import ConfigError, DataError
from fairgen.common.registry import run_variants

log = logging.getLogger(__name__)

#: run name -> FairnessGAN variant
RUN_VARIANTS = run_variants()  # fairgen.common.registry.GAN_RUNS
CLASS_GRID = "class_grid.png"
SUMMARY = "summary.json"
#: generated samples (half at c=0, half at c=1) behind the class grid and the label statistics
N_CLASS_SAMPLES = 1024
#: images shown per (c, y) row of the class grid
PER_ROW = 8
#: generation batch size for them (fixed, so the grid does not depend on the generate section)
CLASS_BATCH = 256


def variant_of(run: str) -> str:
    """The FairnessGAN variant of a run name (ConfigError for an unknown run)."""
    if run not in RUN_VARIANTS:
        raise ConfigError(f"unknown GAN run '{run}'; choose one of {', '.join(RUN_VARIANTS)}")
    return RUN_VARIANTS[run]


def build_model(cfg: dict, run: str, resolution: int, p_c: float):
    """The :class:`~fairgen.models.fairness_gan.FairnessGAN` of ``run`` from ``cfg['gan']``."""
    from fairgen.models.fairness_gan import FairnessGAN

    g, x = cfg["gan"], cfg["gan"]["experimental"]
    if x["mbstd_group"] and g["batch_size"] % x["mbstd_group"]:
        raise ConfigError(f"config key 'gan.experimental.mbstd_group': {x['mbstd_group']} does not divide "
                          f"gan.batch_size {g['batch_size']} (a minibatch-stddev group must not mix real and fake images)")
    return FairnessGAN(resolution=resolution, z_dim=g["z_dim"], width=g["width"], variant=variant_of(run),
                       lambda_fair=g["lambda_fair"], lambda_cx=g["lambda_cx"], lambda_yx=x["lambda_yx"], y_soft=g["y_soft"],
                       y_noise=g["y_noise"], y_from_c=g["y_from_c"], p_c=p_c,
                       penalty=g["fair_penalty"], y_path=x["y_path"], lambda_label=g["lambda_label"],
                       sx_given_c=g["sx_given_c"], sj_given_c=x["sj_given_c"], mbstd_group=x["mbstd_group"],
                       diffaugment=x["diffaugment"])


def train(cfg: dict, run: str, array: str | os.PathLike, index: str | os.PathLike, out_dir: str | os.PathLike,
          state_dir: str | os.PathLike | None = None, progress: bool = True) -> dict:
    """Train run ``run`` on the train split of ``array`` / ``index`` into ``out_dir``; return the
    summary also written to ``out_dir/summary.json``. ``state_dir`` (default ``OUT.state``,
    :func:`~fairgen.training.trainer.default_state_dir`) holds the resumable state until every
    output is written."""
    from fairgen.common import runtime
    from fairgen.data.zoo_data import fingerprint
    from fairgen.eval.classifier import load_real
    from fairgen.eval.quality import label_statistics
    from fairgen.models.fairness_gan import RESOLUTION_BLOCKS
    from fairgen.training import ArrayBatches, TrainConfig, Trainer, seed_everything
    from fairgen.training.trainer import default_state_dir

    variant = variant_of(run)
    out_dir = Path(out_dir)
    io.remove_temporaries(out_dir, (CLASS_GRID, SUMMARY))  # of a run killed while writing them
    real = load_real(cfg, array, index, splits=("train",))["train"]
    _, h, w, _ = real.images.shape
    if h != w or h not in RESOLUTION_BLOCKS:
        raise DataError(f"{array}: crops are {h}x{w}; the Fairness GAN needs square crops of "
                        f"{' or '.join(map(str, RESOLUTION_BLOCKS))} px (crops.resolution)")
    p_c = float(real.c.mean())
    real_stats = label_statistics(real.c, real.y)
    log.info("run %s: %d train crops %dx%d, P(%s=1)=%.3f, P(%s=1|c=0)=%s, P(%s=1|c=1)=%s", run, len(real), h, w,
             cfg["protected"], p_c, cfg["outcome"], real_stats["by_group"]["0"]["p_y1"], cfg["outcome"],
             real_stats["by_group"]["1"]["p_y1"])

    # the train data's fingerprint is part of the run's signature: a state or checkpoint made from
    # other crops is never resumed
    data = fingerprint(real.images, np.stack([real.c, real.y], axis=1))
    tc = TrainConfig.from_config(cfg, stage="gan", extra={"run": run, "data": data}, progress=progress)
    seed_everything(tc.seed)  # reproducible initial weights
    gan = build_model(cfg, run, h, p_c)
    batches = ArrayBatches(real.images, {"c": real.c, "y": real.y}, name=str(array))
    state_dir = Path(state_dir) if state_dir is not None else default_state_dir(out_dir)
    trainer = Trainer(gan, batches, out_dir, tc, state_dir=state_dir)
    summary = trainer.fit()

    with trainer.sampling_weights():  # the weights `fairgen generate` samples from (G's average if kept)
        generated = write_class_grid(cfg, run, gan, out_dir / CLASS_GRID,
                                     real_gap=real_stats["dp_difference_c1_minus_c0"])
    summary.update(runtime=runtime.record(), run=run, variant=variant, protected=cfg["protected"], outcome=cfg["outcome"],
                   real_train=real_stats, generated=generated, class_grid=str(out_dir / CLASS_GRID))
    io.write_json(summary, out_dir / SUMMARY)
    trainer.clear_state()  # every output is written: nothing left to resume
    log.info("run %s: generated P(y=1|c=1) - P(y=1|c=0) = %s (real train: %s)", run,
             generated["dp_difference_c1_minus_c0"], real_stats["dp_difference_c1_minus_c0"])
    return summary


def write_class_grid(cfg: dict, run: str, gan, path: str | os.PathLike, real_gap: float | None = None) -> dict:
    """Draw :data:`N_CLASS_SAMPLES` samples (half per group, G in eval mode) and plot up to
    :data:`PER_ROW` of each (c, generated y) cell as one row; return their label statistics
    (:func:`fairgen.eval.quality.label_statistics` plus the seed)."""
    from fairgen.data.synthetic_set import labels_from_prob
    from fairgen.eval.quality import label_statistics
    from fairgen.training.sampling import balanced_groups, sample

    seed = seed_for(cfg, f"gan_class_grid/{run}")
    c = balanced_groups(N_CLASS_SAMPLES, 0.5, seed)
    device = next(gan.parameters()).device
    images, y_prob = sample(gan, c, batch_size=CLASS_BATCH, seed=seed, device=device,
                            precision=cfg["precision"], progress=False, source=f"run {run}")
    y = labels_from_prob(y_prob)
    stats = label_statistics(c, y, y_prob)
    stats["seed"] = seed
    _plot_class_grid(images, c, y, Path(path), protected=cfg["protected"], outcome=cfg["outcome"],
                     title=f"{run}: generated samples by ({cfg['protected']}, generated {cfg['outcome']})",
                     gap=stats["dp_difference_c1_minus_c0"], real_gap=real_gap)
    return stats


def _plot_class_grid(images: np.ndarray, c: np.ndarray, y: np.ndarray, path: Path, *, protected: str,
                     outcome: str, title: str, gap: float | None, real_gap: float | None) -> None:
    from matplotlib.figure import Figure

    from fairgen.data.crops import contact_sheet

    def fmt(v):
        return "n/a" if v is None else f"{v:+.3f}"

    cells = [(cv, yv) for cv in (0, 1) for yv in (0, 1)]
    fig = Figure(figsize=(PER_ROW * 1.1 + 2.2, len(cells) * 1.25 + 0.8))
    axes = fig.subplots(len(cells), 1)
    for ax, (cv, yv) in zip(axes, cells):
        rows = np.flatnonzero((c == cv) & (y == yv))
        n_group = int((c == cv).sum())
        ax.imshow(np.asarray(contact_sheet(images[rows[:PER_ROW]], cols=PER_ROW)))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"{protected}={cv}\n{outcome}={yv}\n{len(rows)}/{n_group}", rotation=0, ha="right",
                      va="center", fontsize=9)
        if not rows.size:
            ax.text(0.5, 0.5, "none generated", transform=ax.transAxes, ha="center", va="center")
    fig.suptitle(f"{title}\nP({outcome}=1|{protected}=1) - P({outcome}=1|{protected}=0): generated {fmt(gap)}, "
                 f"real train {fmt(real_gap)}", fontsize=10)
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")

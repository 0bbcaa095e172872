"""The one GAN trainer: alternating D/G Adam steps for any :class:`fairgen.models.base.GAN`.

Output folder layout (``out_dir``)::

    checkpoint.pt        latest checkpoint (fairgen.training.checkpoint), rewritten atomically
    log.jsonl            one record per log interval: step, loss_d, loss_g, d_*/g_* metrics, lr, speed
    samples/step_NNNNNNN.png   sample grid from the fixed latents every sample_every steps
    loss_curve.png       loss/metric curves, drawn at the end

Running again with a checkpoint of the same model/config/settings in ``out_dir`` resumes from it
and reproduces the uninterrupted run exactly (same device type, same seed).

A separate ``state_dir`` keeps the resumable state (checkpoint.pt, log.jsonl, samples/) out of
``out_dir`` while training: ``out_dir`` then receives the finished files only at the end, each
written atomically (checkpoint last). This is what a workflow manager needs whose declared
outputs are the files in ``out_dir``: Snakemake deletes a job's outputs before running it again,
so a checkpoint that is an output could never be resumed from. A state that cannot continue the
run (other model, settings or data, unreadable) is discarded with a warning, and
:meth:`Trainer.clear_state` removes the state once the caller's outputs are complete. With no
state of its own, the state starts as a copy of a run already published in ``out_dir``.

Host synchronisation happens only at log / sample / checkpoint steps: per-step losses and
metrics are summed in device tensors, and a device-side "all finite" flag is accumulated; both
are read (one transfer) at log time, and the flag again before any checkpoint is written. A
non-finite loss or weight raises :class:`fairgen.common.errors.TrainingDivergedError` naming the step
range; the previous checkpoint is left untouched.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from fairgen.common.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    FormatVersionError,
    TrainingDivergedError,
)
from fairgen.common.runtime import resolve_device
from fairgen.common.seeds import derive_seed
from fairgen.training import checkpoint as ckpt_mod
from fairgen.training import logs

log = logging.getLogger(__name__)

#: keys of the config's ``gan`` section that map 1:1 onto TrainConfig fields
_GAN_SECTION_KEYS = ("steps", "batch_size", "n_dis", "lr_g", "lr_d", "betas", "lr_decay",
                     "log_every", "sample_every", "checkpoint_every")
#: keys of the ``gan.experimental`` section that map 1:1 onto TrainConfig fields
_GAN_EXPERIMENTAL_KEYS = ("ema_decay",)


@dataclass
class TrainConfig:
    """Training settings. ``lr_g`` / ``lr_d`` / ``betas`` = None take the model's ``default_optim``.

    ``steps`` counts generator steps; each is preceded by ``n_dis`` discriminator steps, each on
    a fresh real batch of ``batch_size``. ``lr_decay='linear'`` decays both learning rates
    linearly to 0 at ``steps``. ``precision='bf16'`` runs forward passes under
    ``torch.autocast(dtype=bfloat16)`` (CPU and CUDA); weights and Adam states stay fp32.
    ``ema_decay`` > 0 keeps an exponential moving average of G's weights (Yazici et al. 2019; as
    in BigGAN), updated after every G step with decay ``min(ema_decay, (1 + t) / (10 + t))`` at
    step t (so early averages are not dominated by the random initial weights); G's buffers
    (batch-norm statistics) are copied, not averaged. Sample grids, the checkpoint's ``G_ema``
    and therefore generation use the average; 0 = off.
    """

    steps: int = 1000
    batch_size: int = 64
    n_dis: int = 1
    lr_g: float | None = None
    lr_d: float | None = None
    betas: tuple[float, float] | None = None
    lr_decay: str = "none"
    ema_decay: float = 0.0
    device: str = "auto"
    precision: str = "fp32"
    seed: int = 0
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    n_fixed: int = 64
    channels_last: bool = True
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in checkpoints, e.g. the run name

    @classmethod
    def from_config(cls, cfg: dict, stage: str = "gan", **overrides) -> "TrainConfig":
        """Settings from a validated fairgen config: its ``gan`` section, ``device``, ``precision``
        and the per-stage seed ``fairgen.common.config.seed_for(cfg, stage)``."""
        from fairgen.common.config import seed_for

        gan = cfg.get("gan", {})
        kw = {k: gan[k] for k in _GAN_SECTION_KEYS if k in gan}
        kw.update({k: v for k, v in gan.get("experimental", {}).items() if k in _GAN_EXPERIMENTAL_KEYS})
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        kw.update(device=cfg.get("device", "auto"), precision=cfg.get("precision", "fp32"), seed=seed_for(cfg, stage))
        kw.update(overrides)
        return cls(**kw)

    def validate(self) -> None:
        for name in ("steps", "batch_size", "n_dis", "log_every", "sample_every", "checkpoint_every", "n_fixed"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"training setting '{name}' must be >= 1, got {getattr(self, name)}")
        if self.lr_decay not in ("none", "linear"):
            raise ConfigError(f"training setting 'lr_decay' must be none or linear, got {self.lr_decay!r}")
        if not 0.0 <= float(self.ema_decay) < 1.0:
            raise ConfigError(f"training setting 'ema_decay' must be in [0, 1), got {self.ema_decay!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"training setting 'precision' must be fp32 or bf16, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"training setting 'device' must be auto, cpu or cuda, got {self.device!r}")

    def run_signature(self, gan) -> dict[str, Any]:
        """The settings a resumed run must share with the checkpoint to reproduce one run."""
        optim = gan.default_optim
        sig = {
            "batch_size": int(self.batch_size), "n_dis": int(self.n_dis),
            "lr_g": float(self.lr_g if self.lr_g is not None else optim["lr_g"]),
            "lr_d": float(self.lr_d if self.lr_d is not None else optim["lr_d"]),
            "betas": [float(b) for b in (self.betas if self.betas is not None else optim["betas"])],
            "lr_decay": self.lr_decay, "precision": self.precision, "seed": int(self.seed),
            "n_fixed": int(self.n_fixed), "extra": dict(self.extra),
        }
        if self.lr_decay == "linear":  # the schedule depends on the total length
            sig["steps"] = int(self.steps)
        if self.ema_decay:  # absent when off, so runs without an average keep their signature
            sig["ema_decay"] = float(self.ema_decay)
        return sig


def default_state_dir(out_dir: str | Path) -> Path:
    """Where a command training into ``out_dir`` keeps the resumable state of an unfinished run:
    ``OUT.state`` beside ``out_dir`` (never among a workflow rule's declared outputs)."""
    out = Path(out_dir)
    if not out.name:  # "." or "/"
        out = out.resolve()
    return out.with_name(out.name + ".state")


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python ``random``. Call before building a model so its
    initial weights are reproducible; the trainer calls it again at the start of training."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _adam(params: list[torch.nn.Parameter], lr: float, betas, device: torch.device) -> torch.optim.Adam:
    """Adam, fused (one kernel for all tensors) where the device supports it."""
    try:
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=True)
    except (RuntimeError, TypeError, ValueError):  # fused unsupported on this device/build
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas))


class Trainer:
    """Train ``gan`` on ``batches`` (a :class:`fairgen.training.batches.BatchSource`) into ``out_dir``.

    ``config`` (or keyword overrides of :class:`TrainConfig` fields) sets the run; :meth:`fit`
    trains (resuming from ``state_dir/checkpoint.pt`` when present) and returns a summary dict.
    ``state_dir`` defaults to ``out_dir`` (see the module docstring for a separate one).
    """

    CHECKPOINT = "checkpoint.pt"
    LOG = "log.jsonl"
    SAMPLES = "samples"
    LOSS_PLOT = "loss_curve.png"

    def __init__(self, gan, batches, out_dir: str | Path, config: TrainConfig | None = None, *,
                 state_dir: str | Path | None = None, **overrides):
        self.gan = gan
        self.batches = batches
        self.out_dir = Path(out_dir)
        self.state_dir = Path(state_dir) if state_dir is not None else self.out_dir
        self.separate_state = self.state_dir.absolute() != self.out_dir.absolute()
        self.cfg = dataclasses.replace(config or TrainConfig(), **overrides)
        self.cfg.validate()
        keys = getattr(batches, "keys", None)
        if keys is not None:
            missing = [k for k in gan.data_keys if k not in keys]
            if missing:
                raise DataError(f"model '{gan.name}' needs batch key(s) {missing}; "
                                f"the data provides {list(keys)}")
        self.checkpoint_path = self.state_dir / self.CHECKPOINT
        self.log_path = self.state_dir / self.LOG
        self.samples: list[str] = []  # file names in SAMPLES

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg, gan = self.cfg, self.gan
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed)
        gan.to(self.device)
        if cfg.channels_last:
            gan.to(memory_format=torch.channels_last)
        gan.train()
        self.batches.bind(self.device, derive_seed(cfg.seed, "batches"))
        self.noise_gen = torch.Generator(device=self.device)
        self.noise_gen.manual_seed(derive_seed(cfg.seed, "noise"))
        fixed_gen = torch.Generator(device=self.device)
        fixed_gen.manual_seed(derive_seed(cfg.seed, "fixed"))
        self.fixed_latent = gan.fixed_latent(cfg.n_fixed, fixed_gen, self.device)

        sig = cfg.run_signature(gan)
        self.signature = sig
        self.g_params = [p for p in gan.G.parameters() if p.requires_grad]
        self.d_params = [p for p in gan.D.parameters() if p.requires_grad]
        if not self.g_params or not self.d_params:
            raise ConfigError(f"model '{gan.name}': G and D both need trainable parameters")
        self.g_ema = None
        if cfg.ema_decay:
            self.g_ema = copy.deepcopy(gan.G).eval().requires_grad_(False)
            self._ema_pairs = _ema_pairs(self.g_ema, gan.G)
        self.opt_g = _adam(self.g_params, sig["lr_g"], sig["betas"], self.device)
        self.opt_d = _adam(self.d_params, sig["lr_d"], sig["betas"], self.device)
        if cfg.lr_decay == "linear":
            def sched(opt):
                return torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=cfg.steps)
            self.sched_g, self.sched_d = sched(self.opt_g), sched(self.opt_d)
        else:
            self.sched_g = self.sched_d = None
        self.step = 0
        self.elapsed_before = 0.0
        self.last_checkpoint_step: int | None = None
        self._remove_temporaries()
        if self.separate_state:
            self._adopt_published()
        if self.checkpoint_path.exists():
            self._resume()
        if self.last_checkpoint_step is None:
            # records of an earlier attempt that never reached a checkpoint are not this run's
            logs.truncate_jsonl(self.log_path, 0)
        self._reset_finite()
        self._reset_interval()

    def _resumable(self) -> dict[str, Any]:
        """The checkpoint at ``checkpoint_path`` if this run can continue from it (else an error)."""
        path = self.checkpoint_path
        ck = ckpt_mod.load_checkpoint(path, map_location=self.device)
        ckpt_mod.check_model(ck, self.gan, path)
        ckpt_mod.check_train(ck, self.signature, path)
        if ck["noise_generator"]["device"] != self.device.type:
            raise CheckpointError(f"{path}: written on {ck['noise_generator']['device']}, cannot resume on "
                                  f"{self.device.type} (random streams differ); use the same device type")
        if self.g_ema is not None and ckpt_mod.generator_weights(ck) != "ema":
            raise CheckpointError(f"{path}: checkpoint has no G_ema (moving average of G) although ema_decay is set")
        if ck["step"] > self.cfg.steps:
            raise CheckpointError(f"{path}: checkpoint is at step {ck['step']}, beyond the requested "
                                  f"{self.cfg.steps} steps")
        return ck

    def _resume(self) -> None:
        path = self.checkpoint_path
        try:
            ck = self._resumable()
        except (CheckpointError, FormatVersionError) as e:
            if not self.separate_state:
                raise
            log.warning("discarding the training state in %s (starting from step 0): %s", self.state_dir, e)
            self.clear_state()
            return
        self.gan.G.load_state_dict(ck["G"])
        self.gan.D.load_state_dict(ck["D"])
        if self.g_ema is not None:
            self.g_ema.load_state_dict(ck["G_ema"])
        self.opt_g.load_state_dict(ck["opt_g"])
        self.opt_d.load_state_dict(ck["opt_d"])
        if self.sched_g is not None:
            self.sched_g.load_state_dict(ck["sched_g"])
            self.sched_d.load_state_dict(ck["sched_d"])
        self.batches.load_state_dict(ck["batches"])
        self.noise_gen.set_state(ck["noise_generator"]["state"].cpu())
        self.fixed_latent = {k: v.to(self.device) for k, v in ck["fixed_latent"].items()}
        ckpt_mod.restore_rng(ck["rng"])
        self.step = self.last_checkpoint_step = int(ck["step"])
        self.elapsed_before = float(ck.get("elapsed_s", 0.0))
        logs.truncate_jsonl(self.log_path, self.step)
        log.info("resuming %s from %s at step %d", self.gan.name, path, self.step)

    def _remove_temporaries(self) -> None:
        """Delete the trainer's temporaries of atomic writes cut short by a killed process (never read)."""
        from fairgen.common.io import remove_temporaries

        for folder in {self.state_dir, self.out_dir}:
            remove_temporaries(folder, (self.CHECKPOINT, self.LOG, self.SAMPLES, self.LOSS_PLOT))
        remove_temporaries(self.state_dir / self.SAMPLES, ("step_*.png",))

    def _adopt_published(self) -> None:
        """An empty state folder starts as a copy of the run published in ``out_dir``, if any
        (so a finished run can be continued to more steps); the checkpoint is copied last."""
        published = self.out_dir / self.CHECKPOINT
        if self.checkpoint_path.exists() or not published.is_file():
            return
        log.info("training state %s starts from the published run %s", self.state_dir, published)
        _copy_run_files(self.out_dir, self.state_dir, (self.SAMPLES, self.LOG, self.CHECKPOINT))

    def clear_state(self) -> None:
        """Remove a separate state folder's checkpoint (first), log and sample grids, and the folder
        itself when that empties it. Call it once the run's outputs are complete. Does nothing when
        the state lives in ``out_dir``, where the checkpoint is an output."""
        if not self.separate_state:
            return
        self.checkpoint_path.unlink(missing_ok=True)
        self.log_path.unlink(missing_ok=True)
        shutil.rmtree(self.state_dir / self.SAMPLES, ignore_errors=True)
        self._remove_temporaries()
        with contextlib.suppress(OSError):
            self.state_dir.rmdir()

    def _reset_finite(self) -> None:
        """Start a new finiteness window (device flag, read at the next log or checkpoint)."""
        self.finite = torch.ones((), dtype=torch.bool, device=self.device)
        self.checked_step = self.step

    def _reset_interval(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.interval_start_step = self.step
        self.interval_start_time = time.perf_counter()

    # ------------------------------------------------------------------ one iteration
    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _accumulate(self, prefix: str, loss: torch.Tensor, metrics: dict[str, torch.Tensor]) -> None:
        loss = loss.detach()
        self.finite = self.finite & torch.isfinite(loss)
        items = {f"loss_{prefix}": loss, **{f"{prefix}_{k}": v for k, v in metrics.items()}}
        for k, v in items.items():
            v = v.detach().float()
            if k in self.sums:
                self.sums[k] += v
                self.counts[k] += 1
            else:
                self.sums[k] = v.clone()
                self.counts[k] = 1

    def _iteration(self) -> None:
        gan, cfg, n = self.gan, self.cfg, self.cfg.batch_size
        fake = None
        for i in range(cfg.n_dis):
            real = self.batches.sample(n)
            latent = gan.sample_latent(n, self.noise_gen, self.device, **gan.condition_from(real))
            with self._autocast():
                # The last D step generates with grad; the G step reuses that fake (one G forward).
                fake = gan.generate(latent) if i == cfg.n_dis - 1 else None
                loss_d, metrics_d = gan.d_loss(real, latent, fake)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            self._accumulate("d", loss_d, metrics_d)
        for p in self.d_params:  # G step: gradients flow through D but D's weights need none
            p.requires_grad_(False)
        try:
            with self._autocast():
                loss_g, metrics_g = gan.g_loss(latent, real, fake)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        finally:
            for p in self.d_params:
                p.requires_grad_(True)
        if self.g_ema is not None:
            self._update_ema()
        self._accumulate("g", loss_g, metrics_g)
        if self.sched_g is not None:
            self.sched_g.step()
            self.sched_d.step()

    @torch.no_grad()
    def _update_ema(self) -> None:
        """One EMA step of G's weights (decay warmed up by the step count, a host-side int: no sync)."""
        t = self.step
        decay = min(float(self.cfg.ema_decay), (1.0 + t) / (10.0 + t))
        averaged, current = self._ema_pairs["params"]
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
        averaged, current = self._ema_pairs["buffers"]
        if averaged:
            torch._foreach_copy_(averaged, current)

    @contextlib.contextmanager
    def sampling_weights(self):
        """Within the block, ``gan.G`` is the generator that samples are drawn from: the moving
        average when ``ema_decay`` is set (in eval mode), else G itself."""
        if self.g_ema is None:
            yield self.gan.G
            return
        trained = self.gan.G
        self.gan.G = self.g_ema
        try:
            yield self.g_ema
        finally:
            self.gan.G = trained

    # ------------------------------------------------------------------ periodic work
    def _diverged(self, values: dict[str, float] | None = None) -> TrainingDivergedError:
        lo, hi = self.checked_step + 1, self.step
        detail = ""
        if values:
            detail = " (" + ", ".join(f"{k}={v:.4g}" for k, v in values.items() if k.startswith("loss_")) + ")"
        where = (f"the last good checkpoint {self.checkpoint_path} (step {self.last_checkpoint_step}) is untouched"
                 if self.last_checkpoint_step is not None else "no checkpoint was written")
        return TrainingDivergedError(
            f"training of '{self.gan.name}' diverged: non-finite loss{detail} between steps {lo} and {hi}; {where}. "
            f"Try a lower learning rate, precision fp32, or check the data for NaN/Inf")

    def _flush_interval(self) -> dict[str, Any] | None:
        """Read the interval's sums (one host sync), append a log record, check finiteness."""
        if self.step == self.interval_start_step:
            return None
        keys = list(self.sums)
        stacked = torch.stack([self.sums[k] / self.counts[k] for k in keys] + [self.finite.float()]).tolist()
        values, finite = dict(zip(keys, stacked[:-1])), bool(stacked[-1])
        now = time.perf_counter()
        dt = now - self.interval_start_time
        n_images = (self.step - self.interval_start_step) * self.cfg.batch_size * self.cfg.n_dis
        record = {"step": self.step, **{k: (v if math.isfinite(v) else None) for k, v in values.items()},
                  "lr_g": self.opt_g.param_groups[0]["lr"], "lr_d": self.opt_d.param_groups[0]["lr"],
                  "images_per_s": n_images / dt if dt > 0 else None,
                  "time_s": self.elapsed_before + now - self.t0}
        logs.append_jsonl(record, self.log_path)
        if not finite:
            raise self._diverged(values)
        self._reset_finite()
        self.last_record = record
        if self.pbar is not None:
            self.pbar.set_postfix({k: f"{values[k]:.3f}" for k in keys if k.startswith("loss_")}, refresh=False)
        self._reset_interval()
        return record

    def _weights_finite(self) -> bool:
        nets = [self.gan.G, self.gan.D] + ([self.g_ema] if self.g_ema is not None else [])
        flags = [torch.isfinite(t).all() for net in nets for t in net.state_dict().values() if t.is_floating_point()]
        return bool(torch.stack(flags).all())

    def _save_checkpoint(self) -> None:
        if not bool(self.finite) or not self._weights_finite():  # never overwrite a good checkpoint with NaN
            raise self._diverged()
        self._reset_finite()
        ck = {
            "model": {"name": self.gan.name, "config": self.gan.config},
            "train": self.signature,
            "step": self.step,
            "G": self.gan.G.state_dict(), "D": self.gan.D.state_dict(),
            "G_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict() if self.sched_g is not None else None,
            "sched_d": self.sched_d.state_dict() if self.sched_d is not None else None,
            "rng": ckpt_mod.capture_rng(),
            "noise_generator": {"device": self.device.type, "state": self.noise_gen.get_state()},
            "batches": self.batches.state_dict(),
            "fixed_latent": dict(self.fixed_latent),
            "elapsed_s": self.elapsed_before + time.perf_counter() - self.t0,
        }
        ckpt_mod.save_checkpoint(ck, self.checkpoint_path)
        self.last_checkpoint_step = self.step

    @torch.no_grad()
    def sample_fixed(self) -> dict[str, torch.Tensor]:
        """Generate from the fixed latents with G (its moving average when ``ema_decay`` is set) in
        eval mode (no BN-statistics updates)."""
        with self.sampling_weights() as G:
            was_training = G.training
            G.eval()
            try:
                with self._autocast():
                    return self.gan.generate(self.fixed_latent)
            finally:
                G.train(was_training)

    def _save_samples(self) -> None:
        path = self.state_dir / self.SAMPLES / f"step_{self.step:07d}.png"
        logs.save_samples(self.sample_fixed()["x"], path, nrow=self.gan.sample_grid_nrow)
        self.samples.append(path.name)

    # ------------------------------------------------------------------ main loop
    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.steps`` (resuming if a checkpoint exists) and return a summary."""
        self._setup()
        cfg = self.cfg
        start = self.step
        self.t0 = time.perf_counter()
        self.last_record = None
        self.pbar = tqdm(total=cfg.steps, initial=start, desc=f"train {self.gan.name}", unit="step",
                         file=sys.stderr, disable=not cfg.progress, dynamic_ncols=True)
        try:
            while self.step < cfg.steps:
                self._iteration()
                self.step += 1
                self.pbar.update(1)
                last = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last:
                    self._flush_interval()
                if self.step % cfg.sample_every == 0 or last:
                    self._save_samples()
                if self.step % cfg.checkpoint_every == 0 or last:
                    self._save_checkpoint()
        finally:
            self.pbar.close()
        if self.separate_state:  # publish the finished run's files into out_dir, the checkpoint last
            _copy_run_files(self.state_dir, self.out_dir, (self.SAMPLES, self.LOG, self.CHECKPOINT))
        wall = time.perf_counter() - self.t0
        records = logs.read_jsonl(self.log_path)
        plot = None
        if records:
            plot = str(logs.plot_loss_curves(records, self.out_dir / self.LOSS_PLOT, title=self.gan.name))
        done = self.step - start
        return {
            "model": self.gan.name, "config": self.gan.config, "train": self.signature,
            "device": str(self.device), "precision": cfg.precision, "threads": torch.get_num_threads(),
            "steps": self.step, "resumed_from": start if start else None, "steps_this_run": done,
            "wall_s": wall, "images_per_s": done * cfg.batch_size * cfg.n_dis / wall if done and wall > 0 else None,
            "last": self.last_record or (records[-1] if records else None),
            "checkpoint": str(self.out_dir / self.CHECKPOINT), "log": str(self.out_dir / self.LOG),
            "samples": [str(self.out_dir / self.SAMPLES / name) for name in self.samples], "loss_curve": plot,
        }


def _ema_pairs(averaged: torch.nn.Module, live: torch.nn.Module) -> dict[str, tuple[list, list]]:
    """Matching (average, live) tensor lists of two copies of one network (a deep copy keeps the
    order): parameters (averaged) and buffers (batch-norm statistics and counts: copied)."""
    return {"params": (list(averaged.parameters()), list(live.parameters())),
            "buffers": (list(averaged.buffers()), list(live.buffers()))}


def _copy_run_files(src: Path, dst: Path, names: tuple[str, ...]) -> None:
    """Copy the files / flat folders ``names`` that exist in ``src`` into ``dst``, each atomically,
    in the given order."""
    from fairgen.common.io import atomic_path

    for name in names:
        source = src / name
        if source.is_dir():
            with atomic_path(dst / name, is_dir=True) as tmp:
                for f in sorted(source.iterdir()):
                    if f.is_file() and not f.name.startswith("."):
                        shutil.copyfile(f, tmp / f.name)
        elif source.is_file():
            with atomic_path(dst / name) as tmp:
                shutil.copyfile(source, tmp)

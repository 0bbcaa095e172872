"""How a torch stage runs: its device, the precision that holds there, and a fixed thread count.

Every ``fairgen`` command that runs torch (those whose config declaration reads ``device``) calls
:func:`configure` before its stage starts (``fairgen.cli``). It

* sets torch's intra-op threads to ``threads`` from config, never to whatever ``--cores`` gives the
  job, so a stage's numbers do not depend on the machine's core count (parallelism across cores
  comes from Snakemake running jobs side by side; each torch rule declares ``threads`` as its
  threads). More threads than this process may use are capped, with a log line;
* resolves ``device`` (``auto`` -> CUDA when torch sees one);
* keeps ``precision: bf16`` only where bfloat16 runs natively (CUDA with bf16, or a CPU with
  AVX512-BF16/AMX through oneDNN); elsewhere it warns and runs fp32, never silently slow.

The effective values replace the requested ones in the stage's config, and :func:`record` gives
what the stage writes into its summary (requested and effective values, and why they differ).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

_RECORD: dict = {}


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def bf16_native(device_type: str) -> bool:
    """Whether bfloat16 autocast runs natively on ``device_type`` (``cpu`` or ``cuda``)."""
    import torch

    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:  # oneDNN's check for AVX512-BF16 / AMX; without them bf16 on CPU is emulated and slow
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_device(name: str):
    """``auto`` -> CUDA if available else CPU; ``cuda`` without a GPU is a ConfigError."""
    import torch

    from fairgen.common.errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but torch sees no CUDA device (use device: auto or cpu)")
    return torch.device(name)


def configure(cfg: dict) -> dict:
    """Apply ``cfg``'s ``threads``, ``device`` and ``precision`` to this process (see the module
    docstring); return ``cfg`` with the effective ``threads`` and ``precision``."""
    import torch

    out = dict(cfg)
    notes = []
    requested_threads = int(cfg.get("threads", 1))
    threads = min(requested_threads, usable_cores())
    if threads < requested_threads:
        notes.append(f"threads {requested_threads} capped at the {threads} usable core(s)")
    torch.set_num_threads(threads)
    device = resolve_device(cfg.get("device", "auto"))
    precision = cfg.get("precision", "fp32")
    if precision == "bf16" and not bf16_native(device.type):
        notes.append(f"precision bf16 is not native on this {device.type} (no bf16 support found); "
                     "running fp32 instead")
        precision = "fp32"
    for note in notes:
        log.warning(note)
    out["threads"] = threads
    if "precision" in cfg:
        out["precision"] = precision
    _RECORD.clear()
    _RECORD.update(device=device.type, threads=threads, threads_requested=requested_threads,
                   precision=precision, precision_requested=cfg.get("precision", "fp32"), notes=notes)
    return out


def record() -> dict:
    """What :func:`configure` applied in this process (empty if it was not called), for summaries."""
    return dict(_RECORD)

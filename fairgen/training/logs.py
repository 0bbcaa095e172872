"""Training logs: a JSONL file of per-interval metrics, sample grids, and a loss-curve plot."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch

from fairgen.common.io import atomic_path

log = logging.getLogger(__name__)


def append_jsonl(record: dict[str, Any], path: str | Path) -> None:
    """Append one JSON line (flushed). A line cut short by a crash is skipped by :func:`read_jsonl`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True, allow_nan=True) + "\n")
        f.flush()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All complete records of a JSONL log ([] if the file is missing)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s, line %d: skipping an incomplete log record", path, i)
    return records


def truncate_jsonl(path: str | Path, max_step: int) -> None:
    """Keep only the records with ``step <= max_step`` (used when resuming from a checkpoint)."""
    path = Path(path)
    if not path.exists():
        return
    keep = [r for r in read_jsonl(path) if r.get("step", 0) <= max_step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in keep))


def save_samples(x: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Write generated samples as one PNG: an image grid for (N, C, H, W) images in [-1, 1]
    (torchvision ``make_grid``), a scatter plot for (N, 2) points."""
    from torchvision.utils import save_image

    x = x.detach().float().cpu()
    path = Path(path)
    with atomic_path(path) as tmp:
        if x.ndim == 4:
            save_image(x, tmp, nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
        elif x.ndim == 2 and x.shape[1] == 2:
            fig, ax = _figure(1, 1, (4, 4))
            ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=2, alpha=0.5)
            ax.set_aspect("equal")
            ax.set_title(path.stem)
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        else:
            raise ValueError(f"cannot draw samples of shape {tuple(x.shape)} (want (N, C, H, W) or (N, 2))")
    return path


def plot_loss_curves(records: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Loss curves (``loss_*``) and the other logged metrics (accuracies etc.) against step."""
    path = Path(path)
    steps = [r["step"] for r in records]
    keys = sorted({k for r in records for k in r if isinstance(r.get(k), (int, float))}
                  - {"step", "time_s", "images_per_s", "lr_g", "lr_d"})
    loss_keys = [k for k in keys if k.startswith("loss_")]
    other = [k for k in keys if not k.startswith("loss_")]
    fig, axes = _figure(1, 2 if other else 1, (12 if other else 6, 4))
    axes = list(axes) if other else [axes]

    def series(k):  # missing or null (non-finite when logged) values are gaps
        return [math.nan if r.get(k) is None else r[k] for r in records]

    for k in loss_keys:
        axes[0].plot(steps, series(k), label=k)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss")
    axes[0].set_title(f"{title} losses".strip())
    if loss_keys:
        axes[0].legend()
    if other:
        for k in other:
            axes[1].plot(steps, series(k), label=k)
        axes[1].set_xlabel("step")
        axes[1].set_title("metrics")
        axes[1].legend(fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def _figure(rows: int, cols: int, size: tuple[float, float]):
    """A pyplot-free Figure (rendered by the Agg canvas on savefig), so no GUI backend is touched."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    axes = fig.subplots(rows, cols)
    return fig, axes

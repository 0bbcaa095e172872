"""``fairgen zoo-data`` (rule ``zoo_data``): one zoo dataset as uint8 images.npy, labels.npy and
info.json (:mod:`fairgen.data.zoo_data`)."""

from __future__ import annotations

import logging

from fairgen.common.errors import ConfigError
from fairgen.data.zoo_data import STANDIN_NOTE, load, write

log = logging.getLogger(__name__)


def prepare(cfg: dict, dataset: str, out_dir: str, size: int | None = None, channels: int | None = None) -> int:
    """CLI ``zoo-data``: load ``dataset`` (at its native shape unless ``size`` / ``channels`` are
    given) and :func:`write` it to ``out_dir``."""
    if size is not None and size < 8:
        raise ConfigError(f"--size must be >= 8, got {size}")
    data = load(cfg, dataset, size, channels)
    info = write(data, out_dir)
    log.info("zoo dataset %s: %d images %s, classes %s -> %s", dataset, info["n_images"], info["shape"],
             info["class_counts"], out_dir)
    if data.info.get("standin"):
        log.warning("%s", STANDIN_NOTE)
    return 0

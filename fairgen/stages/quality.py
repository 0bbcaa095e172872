"""``fairgen quality`` (rule ``quality``): FID (overall and per group), label statistics and
c-conditioning of synthetic sets against the real crops (:mod:`fairgen.eval.quality`)."""

from __future__ import annotations

import logging

from fairgen.eval.quality import evaluate_quality, parse_synthetic, summary_rows

log = logging.getLogger(__name__)


def run(cfg: dict, array: str, index: str, synthetic: list[str], out: str) -> int:
    """CLI target of ``fairgen quality``."""
    result = evaluate_quality(cfg, array, index, parse_synthetic(synthetic or []), out)
    for row in summary_rows(result):
        log.info("%s | %s: FID %s (c=0 %s, c=1 %s), c-conditioning accuracy %s",
                 row["run"], row["measure"], row["fid"], row["fid_c0"], row["fid_c1"],
                 row["c_conditioning_accuracy"] or "-")
    return 0

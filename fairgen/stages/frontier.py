"""``fairgen frontier`` (rule ``frontier``, embedded data only): the oracle accuracy-fairness frontier
of the procedural dataset (:mod:`fairgen.eval.frontier`)."""

from __future__ import annotations

import logging

from fairgen.common import io
from fairgen.eval.frontier import default_bounds, oracle_split, summarize

log = logging.getLogger(__name__)


def run(cfg: dict, dataset: str, index: str, out_json: str, split: str = "test",
        bound: list[float] | None = None) -> int:
    """CLI ``fairgen frontier``: write the frontier JSON (the default grid of bounds plus any
    ``--bound``) and print the Bayes point and the points at the given bounds."""
    data = oracle_split(dataset, index, cfg["protected"], cfg["outcome"], split)
    asked = sorted(set(float(b) for b in bound or []))
    result = {**summarize(data, sorted(set(default_bounds(data.p, data.c)[:-1] + asked))),
              "split": split, "protected": cfg["protected"], "outcome": cfg["outcome"]}
    io.write_json(result, out_json)
    b = result["bayes"]
    print(f"{split} split, {result['n']} images; DP difference of the drawn labels {result['label_dp_difference']:.4f}")
    print(f"Bayes (unconstrained): expected accuracy {b['expected_accuracy']:.4f}, DP difference "
          f"{b['dp_difference']:.4f}, accuracy on the drawn labels {b['accuracy']:.4f}")
    for pt in result["points"]:
        if pt["bound"] in asked:
            print(f"DP difference <= {pt['bound']:g}: expected accuracy {pt['expected_accuracy']:.4f} "
                  f"(DP difference {pt['dp_difference']:.4f}, accuracy on the drawn labels {pt['accuracy']:.4f})")
    log.info("wrote %s", out_json)
    return 0

"""Counterfactual pairs: the same noise drawn through a c-conditional generator at c=0 and at c=1.

``fairgen generate-pairs`` samples ``pairs.n_pairs`` noise draws z from a GAN checkpoint and
writes both members G(z, c=0) and G(z, c=1) of every pair into one dataset folder in the format
of :mod:`fairgen.data.synthetic_set`, with the extra column ``pair_id`` (rows 2k and 2k+1 are pair k,
c=0 first). Each member's ``y_prob``/``y`` is the generator's own outcome for that member; the
pair's label is not fixed here: the classifier methods that use the pairs decide it
(:data:`LABEL_RULES`) and the set's metadata (``pairs``) records how the members were made and
what G's own labels say. No GAN is trained here.

:func:`read_pairs` reads such a folder back as a :class:`PairSet` and refuses a broken one (a
pair_id with one member or with more than two, or two members with the same c).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fairgen.common.errors import DataError

PREVIEW = "previews/pairs.png"  # the first pairs, four a row: G(z, c=0) then G(z, c=1)
PREVIEW_PAIRS = 32

# How a pair's two members get the one label that real_plus_pairs trains them with.
LABEL_RULES = {
    "generator": "mean of the generator's own y_prob over the pair's two members, >= 0.5",
    "real_classifier": "mean of the real classifier's score over the pair's two members, >= 0.5",
}


@dataclass
class PairSet:
    """``n`` pairs: ``images0[k]`` = G(z_k, c=0), ``images1[k]`` = G(z_k, c=1) (uint8 NHWC)."""

    images0: np.ndarray
    images1: np.ndarray
    y_prob0: np.ndarray
    y_prob1: np.ndarray
    pair_id: np.ndarray
    model: str
    source: str

    def __len__(self) -> int:
        return len(self.pair_id)

    def take(self, n: int) -> "PairSet":
        """The first ``n`` pairs (the set's order is already random: one noise draw per pair)."""
        if n > len(self):
            raise DataError(f"{self.source}: {n} pairs asked for, the set holds {len(self)}")
        return PairSet(self.images0[:n], self.images1[:n], self.y_prob0[:n], self.y_prob1[:n],
                       self.pair_id[:n], self.model, self.source)


def read_pairs(folder: str | os.PathLike) -> PairSet:
    """The counterfactual pair set in ``folder``; DataError (naming the file and pair) for a
    set without ``pair_id``, a pair with other than two members, or two members with the same c."""
    from fairgen.data.synthetic_set import PAIR_COLUMN, SAMPLES_FILE, read_synthetic

    table, images, _ = read_synthetic(folder)
    where = Path(folder) / SAMPLES_FILE
    if PAIR_COLUMN not in table.columns:
        raise DataError(f"{where}: not a counterfactual pair set (no '{PAIR_COLUMN}' column; "
                        "make one with 'fairgen generate-pairs')")
    pid = table[PAIR_COLUMN].to_numpy()
    c = table["c"].to_numpy()
    ids, first, counts = np.unique(pid, return_index=True, return_counts=True)
    bad = np.flatnonzero(counts != 2)
    if bad.size:
        k = bad[0]
        raise DataError(f"{where}: pair_id {ids[k]} has {counts[k]} member(s) (row {first[k]}); every pair "
                        "needs exactly two, one with c=0 and one with c=1")
    order = np.lexsort((c, pid))  # by pair, c=0 before c=1
    c0, c1 = order[0::2], order[1::2]
    same = np.flatnonzero(c[c0] == c[c1])
    if same.size:
        k = same[0]
        raise DataError(f"{where}: pair_id {pid[c0[k]]} has both members at c={c[c0[k]]} (rows {c0[k]} and "
                        f"{c1[k]}); a counterfactual pair needs one member at c=0 and one at c=1")
    # pairs in the order of their first row
    by_first = np.argsort(np.minimum(c0, c1), kind="stable")
    c0, c1 = c0[by_first], c1[by_first]
    y_prob = table["y_prob"].to_numpy(np.float64)
    return PairSet(images[c0], images[c1], y_prob[c0], y_prob[c1], pid[c0].astype(np.int64),
                   str(table["model"].iloc[0]), f"pairs {folder}")

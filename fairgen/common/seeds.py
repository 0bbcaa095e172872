"""The one seed derivation: every stochastic step takes a seed derived from the config's ``seed``.

``derive_seed(seed, name)`` gives an independent seed for the stream ``name`` (a stage such as
``"generate/fgan_dp"``, or a sub-stream of a stage such as the trainer's ``"batches"``) from a
parent seed. Stages get theirs from the config (:func:`fairgen.common.config.seed_for`: the
derivation from ``cfg["seed"]`` with the 31-bit modulus, as it always was, so every seed recorded
by earlier runs stays the same); the GAN trainer derives its batch, noise and fixed-latent
streams from its stage seed with the same function and the 63-bit modulus.
"""

from __future__ import annotations

import zlib

#: the default modulus: a 63-bit seed fits torch and numpy generators
MODULUS = 2**63 - 1
#: the modulus of stage seeds (a prime below 2**31: numpy's legacy RandomState takes seeds below 2**32)
STAGE_MODULUS = 2**31 - 1


def derive_seed(seed: int, name: str, modulus: int = MODULUS) -> int:
    """An independent seed for the stream ``name`` derived from ``seed``, below ``modulus`` (stable
    across runs, platforms and Python versions: CRC-32 of the name, not Python's salted ``hash``)."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % modulus

"""The random streams of gym before 0.22, which D4RL's reference scripts drew from.

`env.seed(n)` and `space.seed(n)` there did not seed a RandomState with `n`: they hashed `str(n)` with SHA-512, took
the first 8 bytes as two little-endian 32-bit words and seeded a RandomState with that word list. Reproducing the
stream lets our evaluation start its episodes where D4RL's `REF_MIN` / `REF_MAX` episodes started.
"""

import hashlib
import struct

import numpy as np


def legacy_gym_random_state(seed: int) -> np.random.RandomState:
    """The `np_random` that old gym's `seeding.np_random(seed)` returned."""
    if seed < 0:
        raise ValueError(f"gym seeds are non-negative integers, got {seed}")
    digest = hashlib.sha512(str(seed % 2**64).encode("utf8")).digest()[:8]
    words = list(struct.unpack("<2I", digest))
    while len(words) > 1 and words[-1] == 0:  # gym's bigint → word list drops leading zero words
        words.pop()
    return np.random.RandomState(words)

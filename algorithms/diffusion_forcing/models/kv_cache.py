"""A key/value cache for causal temporal attention (fast autoregressive sampling).

With causal attention only temporal-attention layers mix frames, and a frame at a fixed noise level whose
predecessors are all fixed has fixed activations in every layer. Such frames — context and finished frames,
shown at the stabilisation level — are run through the network once; each temporal-attention layer keeps their
keys and values, and later passes run only the frames still being denoised against them.

Keys are rotated by *absolute* frame positions, so a cache stays valid while the attention window slides along
a long rollout (`evict_before` drops frames that left the window).
"""

import torch
from torch import Tensor, nn


class TemporalKVCache:
    """Per-layer keys and values (B·H·W, heads, T, dim_head) of cached frames at `positions` (T,).

    Before a network pass the sampler sets `store`: how many of the pass's leading frames become cacheable with
    it. Every temporal-attention layer appends exactly those frames; `commit` then records their positions.
    """

    def __init__(self) -> None:
        self._entries: dict[nn.Module, tuple[Tensor, Tensor]] = {}
        self.positions: Tensor | None = None
        self.store = 0

    def __len__(self) -> int:
        return 0 if self.positions is None else len(self.positions)

    def past(self, layer: nn.Module) -> tuple[Tensor, Tensor, Tensor] | None:
        """(keys, values, positions) cached for `layer`, or None before anything is cached."""
        if layer not in self._entries:
            return None
        keys, values = self._entries[layer]
        return keys, values, self.positions

    def append(self, layer: nn.Module, keys: Tensor, values: Tensor) -> None:
        """Keep the first `store` frames of this pass's keys and values (N, heads, T, d)."""
        if self.store == 0:
            return
        keys, values = keys[:, :, : self.store], values[:, :, : self.store]
        if layer in self._entries:
            old_keys, old_values = self._entries[layer]
            keys, values = torch.cat([old_keys, keys], dim=2), torch.cat([old_values, values], dim=2)
        self._entries[layer] = (keys, values)

    def commit(self, positions: Tensor) -> None:
        """After a pass: record the positions of the frames every layer just stored."""
        if self.store == 0:
            return
        stored = positions[: self.store]
        self.positions = stored if self.positions is None else torch.cat([self.positions, stored])
        self.store = 0

    def evict_before(self, position: int) -> None:
        """Forget frames at positions < `position` (they left the attention window)."""
        if self.positions is None:
            return
        keep = self.positions >= position
        self.positions = self.positions[keep]
        self._entries = {layer: (k[:, :, keep], v[:, :, keep]) for layer, (k, v) in self._entries.items()}

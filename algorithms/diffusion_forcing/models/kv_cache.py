"""A key/value cache for causal temporal attention (fast autoregressive sampling).

With causal attention only temporal-attention layers mix frames, and a frame at a fixed noise level whose
predecessors are all fixed has fixed activations in every layer. Such frames — context and finished frames,
shown at the stabilisation level — are run through the network once; each temporal-attention layer keeps their
keys and values, and later passes run only the frames still being denoised against them.

Keys are rotated by *absolute* frame positions, so a cache stays valid while the attention window slides along
a long rollout (`evict_before` drops frames that left the window). Each layer's keys and values live in one
buffer of `capacity` frames allocated on first use, so a pass writes its frames in place instead of
concatenating the whole cache again in every layer, and memory is bounded by the window.
"""

import torch
from torch import Tensor, nn


class TemporalKVCache:
    """Per-layer keys and values (B·H·W, heads, T, dim_head) of the cached frames at `positions` (T,).

    Before a network pass the sampler sets `store`: how many of the pass's leading frames become cacheable with
    it. Every temporal-attention layer writes its frames after the cached ones (`extend`); `commit` then keeps
    the first `store` of them by recording their positions.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._buffers: dict[nn.Module, Tensor] = {}
        self.positions: Tensor | None = None
        self.store = 0

    def __len__(self) -> int:
        return 0 if self.positions is None else len(self.positions)

    def extend(
        self, layer: nn.Module, keys: Tensor, values: Tensor, positions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Keys, values and positions of the cached frames followed by this pass's (N, heads, T, d) frames."""
        cached, new = len(self), keys.shape[2]
        if cached + new > self.capacity:
            raise ValueError(f"{cached} cached + {new} new frames exceed the cache's window of {self.capacity}")
        buffer = self._buffers.get(layer)
        if buffer is None:
            buffer = keys.new_empty(2, *keys.shape[:2], self.capacity, keys.shape[3])
            self._buffers[layer] = buffer
        buffer[0, :, :, cached : cached + new] = keys
        buffer[1, :, :, cached : cached + new] = values
        key_positions = positions if self.positions is None else torch.cat([self.positions, positions])
        return buffer[0, :, :, : cached + new], buffer[1, :, :, : cached + new], key_positions

    def commit(self, positions: Tensor) -> None:
        """After a pass: keep the first `store` of its frames, whose keys every layer has just written."""
        if self.store == 0:
            return
        stored = positions[: self.store]
        self.positions = stored if self.positions is None else torch.cat([self.positions, stored])
        self.store = 0

    def evict_before(self, position: int) -> None:
        """Forget frames at positions < `position` (they left the attention window); the rest move to the front."""
        if self.positions is None:
            return
        dropped = int((self.positions < position).sum())
        if dropped == 0:
            return
        kept = len(self) - dropped
        for buffer in self._buffers.values():
            buffer[:, :, :, :kept] = buffer[:, :, :, dropped : dropped + kept].clone()
        self.positions = self.positions[dropped:]

"""Attention under bf16 autocast on a CPU: written out (PyTorch's fused bf16 CPU kernel is slow), same result."""

import pytest
import torch
import torch.nn.functional as F

from algorithms.diffusion_forcing.models.attention import softmax_attention


def qkv(requires_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(64, 4, 16, 32, generator=generator, requires_grad=requires_grad) for _ in range(3))


CAUSAL = torch.ones(16, 16, dtype=torch.bool).tril()
MASKS = {
    "none": None,
    "causal_bool": CAUSAL,
    "causal_additive": torch.zeros(16, 16).masked_fill(~CAUSAL, float("-inf")),
}


@pytest.fixture
def reference_attention(monkeypatch):
    """PyTorch's fused attention kernel, for expected values; the code under test calling it fails the test."""
    reference = F.scaled_dot_product_attention

    def fused(*args, **kwargs):
        raise AssertionError("the fused kernel ran under CPU bf16 autocast")

    monkeypatch.setattr(F, "scaled_dot_product_attention", fused)
    return reference


@pytest.mark.parametrize("mask", MASKS.values(), ids=MASKS.keys())
def test_bf16_attention_matches_fp32_attention_within_bf16_rounding(
    mask: torch.Tensor | None, reference_attention
) -> None:
    q, k, v = qkv(requires_grad=True)
    expected = reference_attention(q, k, v, attn_mask=mask)
    expected_grads = torch.autograd.grad(expected.square().sum(), (q, k, v))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = softmax_attention(q, k, v, mask)
    grads = torch.autograd.grad(got.float().square().sum(), (q, k, v))
    assert got.dtype == torch.bfloat16
    # bf16 keeps 8 bits of mantissa: outputs of size ~1 round by up to ~1e-2
    torch.testing.assert_close(got.float(), expected, atol=3e-2, rtol=0)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad, atol=0.15, rtol=0.05)


def test_fp32_attention_is_the_fused_kernel_exactly() -> None:
    q, k, v = qkv()
    assert torch.equal(softmax_attention(q, k, v, CAUSAL), F.scaled_dot_product_attention(q, k, v, attn_mask=CAUSAL))


def test_bf16_attention_without_gradients_is_written_out_too(reference_attention) -> None:
    q, k, v = qkv()
    expected = reference_attention(q, k, v, attn_mask=CAUSAL)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = softmax_attention(q, k, v, CAUSAL)
    torch.testing.assert_close(got.float(), expected, atol=3e-2, rtol=0)

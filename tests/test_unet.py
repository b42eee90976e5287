import dataclasses

import pytest
import torch
from torch import nn

from algorithms.diffusion_forcing.models.unet3d import UNet3D, UNet3DConfig
from utils.typed_config import ConfigError

TINY = UNet3DConfig(
    network_size=8,
    attn_heads=2,
    attn_dim_head=8,
    dim_mults=(1, 2),
    resolution=16,
    attn_resolutions=(8, 16),
    frame_wise_norm=True,
)


def randomised(model: nn.Module) -> nn.Module:
    """Zero-initialised output layers hide information flow; give every weight a value."""
    torch.manual_seed(0)
    for p in model.parameters():
        nn.init.normal_(p, std=0.2)
    return model.eval()


def outputs_after_perturbing(model: nn.Module, frame: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, k, cond = torch.randn(2, 5, 3, 16, 16), torch.randint(0, 1000, (2, 5)), torch.randn(2, 5, 4)
    perturbed = x.clone()
    perturbed[:, frame] += torch.randn_like(perturbed[:, frame])
    with torch.no_grad():
        return model(x, k, cond), model(perturbed, k, cond)


def test_shapes() -> None:
    model = UNet3D(TINY, channels=3, external_cond_dim=4, causal=True)
    out = model(torch.randn(2, 5, 3, 16, 16), torch.randint(0, 1000, (2, 5)), torch.randn(2, 5, 4))
    assert out.shape == (2, 5, 3, 16, 16)


def test_causal_future_never_changes_the_past() -> None:
    base, perturbed = outputs_after_perturbing(randomised(UNet3D(TINY, 3, 4, causal=True)), frame=3)
    torch.testing.assert_close(base[:, :3], perturbed[:, :3], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(base[:, 3:], perturbed[:, 3:], atol=1e-3)


def test_non_causal_future_changes_the_past() -> None:
    base, perturbed = outputs_after_perturbing(randomised(UNet3D(TINY, 3, 4, causal=False)), frame=3)
    assert not torch.allclose(base[:, :3], perturbed[:, :3], atol=1e-3)


def test_rotary_positions_are_relative() -> None:
    """Shifting every frame position leaves outputs unchanged: sliding windows may keep absolute positions."""
    model = randomised(UNet3D(TINY, 3, 0, causal=True))
    x, k = torch.randn(1, 4, 3, 16, 16), torch.randint(0, 1000, (1, 4))
    with torch.no_grad():
        torch.testing.assert_close(model(x, k), model(x, k, positions=torch.arange(4) + 37), atol=1e-4, rtol=1e-4)


def test_action_conditioning_changes_output() -> None:
    model = randomised(UNet3D(TINY, 3, 4, causal=True))
    x, k = torch.randn(1, 3, 3, 16, 16), torch.randint(0, 1000, (1, 3))
    with torch.no_grad():
        assert not torch.allclose(model(x, k, torch.zeros(1, 3, 4)), model(x, k, torch.ones(1, 3, 4)))


@pytest.mark.parametrize("attn_resolutions", [(32,), (12,), (8, 12)])
def test_attn_resolutions_must_fit(attn_resolutions: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match=r"attn_resolutions.*feature maps are \[16, 8\]"):
        UNet3DConfig(network_size=8, dim_mults=(1, 2), resolution=16, attn_resolutions=attn_resolutions)


def test_attn_resolutions_above_the_input_are_skipped() -> None:
    config = UNet3DConfig(network_size=8, dim_mults=(1, 2), resolution=16, attn_resolutions=(8, 16, 32, 64))
    model = UNet3D(config, 3, 0, causal=True)
    assert sum(level.spatial is not None for level in model.downs) == 2


def saved_activation_bytes_and_gradients(config: UNet3DConfig) -> tuple[int, list[torch.Tensor]]:
    """Bytes autograd keeps for the backward pass of one training forward, and the parameter gradients."""
    model = randomised(UNet3D(config, 3, 4, causal=True)).train()
    torch.manual_seed(1)
    x, k, cond = torch.randn(2, 5, 3, 16, 16), torch.randint(0, 1000, (2, 5)), torch.randn(2, 5, 4)
    saved = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(x, k, cond).square().mean()
    before_backward = sum(saved)
    loss.backward()
    return before_backward, [p.grad for p in model.parameters()]


def test_activation_checkpointing_keeps_less_and_computes_the_same_gradients() -> None:
    plain_bytes, plain_grads = saved_activation_bytes_and_gradients(TINY)
    light_bytes, light_grads = saved_activation_bytes_and_gradients(
        dataclasses.replace(TINY, use_checkpointing=(True, True))
    )
    assert light_bytes < plain_bytes / 3, (light_bytes, plain_bytes)
    for plain, light in zip(plain_grads, light_grads, strict=True):
        torch.testing.assert_close(light, plain, atol=1e-6, rtol=1e-5)


def test_checkpointing_flags_must_match_the_levels() -> None:
    with pytest.raises(ConfigError, match="use_checkpointing"):
        dataclasses.replace(TINY, use_checkpointing=(True,))

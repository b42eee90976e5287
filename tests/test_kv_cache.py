"""The key/value cache gives the same samples as recomputing every frame, with fewer frames through the network."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from algorithms.diffusion_forcing.models.diffusion import Diffusion, DiffusionConfig
from algorithms.diffusion_forcing.models.kv_cache import TemporalKVCache
from algorithms.diffusion_forcing.models.unet3d import UNet3D
from algorithms.diffusion_forcing.sampling import Sampler
from algorithms.diffusion_forcing.scheduling import SCHEDULING_MATRICES
from tests.test_unet import TINY

WINDOW = 6


def randomised_unet(causal: bool) -> nn.Module:
    """Random (not zero-initialised) weights, so every layer carries information between frames."""
    torch.manual_seed(0)
    model = UNet3D(TINY, channels=3, external_cond_dim=2, causal=causal)
    for p in model.parameters():
        nn.init.normal_(p, std=0.1)
    return model.eval()


class CountingNetwork(nn.Module):
    """Counts the frames (per batch element) that go through the wrapped network, independently of the sampler."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.frames = 0

    def forward(self, x: torch.Tensor, *args: object) -> torch.Tensor:
        self.frames += x.shape[1]
        return self.network(x, *args)


def sampler(network: nn.Module, kind: str, kv_cache: bool, chunk_size: int = 1, eta: float = 0.0) -> Sampler:
    diffusion = Diffusion(DiffusionConfig(sampling_timesteps=3, ddim_sampling_eta=eta, stabilization_level=15))
    counted = CountingNetwork(network)
    return Sampler(diffusion, counted, kind, WINDOW, chunk_size, uncertainty_scale=1.0, kv_cache=kv_cache)


def frames(s: Sampler) -> int:
    return s.network.frames


def rollout(s: Sampler, length: int) -> torch.Tensor:
    torch.manual_seed(1)
    context, cond = torch.rand(2, 2, 3, 16, 16) * 2 - 1, torch.randn(2, length, 2)
    return s.rollout(context, length, cond, torch.Generator().manual_seed(2))


@pytest.mark.parametrize("kind", SCHEDULING_MATRICES)
@pytest.mark.parametrize("chunk_size", [1, 2])
def test_cache_matches_recompute_within_a_window(kind: str, chunk_size: int) -> None:
    network = randomised_unet(causal=True)
    recompute, cached = sampler(network, kind, False, chunk_size), sampler(network, kind, True, chunk_size)
    expected, got = rollout(recompute, WINDOW), rollout(cached, WINDOW)
    assert got.shape == (2, WINDOW, 3, 16, 16)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    assert frames(cached) < frames(recompute)


def test_cache_matches_recompute_with_stochastic_ddim() -> None:
    network = randomised_unet(causal=True)
    recompute, cached = sampler(network, "pyramid", False, eta=1.0), sampler(network, "pyramid", True, eta=1.0)
    torch.testing.assert_close(rollout(cached, WINDOW), rollout(recompute, WINDOW), atol=1e-4, rtol=0)


def test_autoregressive_cache_runs_each_new_frame_once_per_step() -> None:
    """2 context → 6 frames, chunk 1, 3 steps: 4 windows × 3 steps of one noisy frame, plus each clean frame once."""
    network = randomised_unet(causal=True)
    recompute, cached = sampler(network, "autoregressive", False), sampler(network, "autoregressive", True)
    rollout(recompute, WINDOW), rollout(cached, WINDOW)
    assert frames(recompute) == 3 * (3 + 4 + 5 + 6)
    assert frames(cached) == 4 * 3 + 2 + 3
    assert (cached.frame_passes, recompute.frame_passes) == (frames(cached), frames(recompute)), "benchmarks' count"


def test_non_causal_model_falls_back_to_recompute() -> None:
    from algorithms.diffusion_forcing.df_video import DFVideoConfig, DiffusionForcingVideo, VideoDiffusionConfig

    def model(causal: bool) -> DiffusionForcingVideo:
        diffusion = VideoDiffusionConfig(architecture=TINY)
        return DiffusionForcingVideo(
            DFVideoConfig(
                n_frames=4, context_frames=1, x_shape=(3, 16, 16), causal=causal, diffusion=diffusion, kv_cache=True
            )
        )

    assert model(causal=True).sampler.kv_cache
    assert not model(causal=False).sampler.kv_cache


def test_cache_needs_the_frame_wise_norm() -> None:
    """DF v1.5's GroupNorm pools the window's frames, so cached frames would depend on later ones."""
    from algorithms.diffusion_forcing.df_video import DFVideoConfig, VideoDiffusionConfig
    from utils.typed_config import ConfigError

    clip_norm = VideoDiffusionConfig(architecture=replace(TINY, frame_wise_norm=False))
    with pytest.raises(ConfigError, match="kv_cache: is exact only for a strictly causal network"):
        DFVideoConfig(n_frames=4, context_frames=1, x_shape=(3, 16, 16), diffusion=clip_norm, kv_cache=True)


def test_clip_norm_lets_the_future_change_the_past() -> None:
    """Why the option exists: with DF v1.5's norm a causal U-Net's past outputs still see future frames."""
    torch.manual_seed(0)
    model = UNet3D(replace(TINY, frame_wise_norm=False), channels=3, external_cond_dim=2, causal=True).eval()
    x, k, cond = torch.randn(1, 4, 3, 16, 16), torch.randint(0, 1000, (1, 4)), torch.randn(1, 4, 2)
    changed = x.clone()
    changed[:, 3] += 1
    with torch.no_grad():
        assert not torch.allclose(model(x, k, cond)[:, :3], model(changed, k, cond)[:, :3], atol=1e-4)


def test_sliding_windows_keep_the_cache_within_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    network = randomised_unet(causal=True)
    cached = sampler(network, "autoregressive", True)
    sizes = []
    evict = TemporalKVCache.evict_before

    def recording_evict(cache: TemporalKVCache, position: int) -> None:
        evict(cache, position)
        sizes.append(len(cache))
        assert cache.positions is None or int(cache.positions.min()) >= position

    monkeypatch.setattr(TemporalKVCache, "evict_before", recording_evict)
    video = rollout(cached, 3 * WINDOW)
    assert len(sizes) == 3 * WINDOW - 2 and max(sizes) == WINDOW - 2
    recompute = sampler(network, "autoregressive", False)
    expected = rollout(recompute, 3 * WINDOW)
    assert frames(cached) * 4 < frames(recompute)
    # exact in the first window; later the cache keeps keys/values computed when older frames were still visible
    torch.testing.assert_close(video[:, :WINDOW], expected[:, :WINDOW], atol=1e-4, rtol=0)
    drift = (video - expected)[:, WINDOW:].abs().mean().item()
    assert drift < 1e-3 * expected[:, WINDOW:].std().item(), "the rolled cache follows recomputation closely"


@pytest.mark.gpu
def test_cache_matches_recompute_on_cuda_and_runs_in_bf16() -> None:
    network = randomised_unet(causal=True).cuda()
    recompute, cached = sampler(network, "pyramid", False), sampler(network, "pyramid", True)
    for s in (recompute, cached):
        s.diffusion.cuda()
    torch.manual_seed(1)
    context, cond = (torch.rand(2, 2, 3, 16, 16) * 2 - 1).cuda(), torch.randn(2, WINDOW, 2).cuda()
    expected = recompute.rollout(context, WINDOW, cond, torch.Generator("cuda").manual_seed(2))
    got = cached.rollout(context, WINDOW, cond, torch.Generator("cuda").manual_seed(2))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        bf16 = cached.rollout(context, 3 * WINDOW, cond.repeat(1, 3, 1), torch.Generator("cuda").manual_seed(2))
    assert bf16.shape[1] == 3 * WINDOW and torch.isfinite(bf16.float()).all()

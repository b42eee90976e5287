import math

import pytest
import torch

from algorithms.diffusion_forcing.models.diffusion import (
    Diffusion,
    DiffusionConfig,
    make_betas,
    sampling_noise_levels,
)


def diffusion(**kwargs) -> Diffusion:
    return Diffusion(DiffusionConfig(**{"timesteps": 1000, "sampling_timesteps": 10, **kwargs}))


def test_linear_betas_golden() -> None:
    betas = make_betas("linear", 1000)
    assert betas[0].item() == pytest.approx(1e-4)
    assert betas[-1].item() == pytest.approx(0.02)


def test_cosine_alpha_bar_golden() -> None:
    alpha_bar = torch.cumprod(1 - make_betas("cosine", 1000), 0)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert alpha_bar[499].item() == pytest.approx(f(500) / f(0), rel=1e-6)


def test_sigmoid_alpha_bar_golden() -> None:
    """ᾱ_t = (σ(3) − σ(6t/T − 3)) / (σ(3) − σ(−3)): exactly 1/2 half way, 0.8508535 at a quarter."""
    alpha_bar = torch.cumprod(1 - make_betas("sigmoid", 1000), 0)
    assert alpha_bar[499].item() == pytest.approx(0.5, abs=1e-8)  # level k is t = k + 1
    assert alpha_bar[249].item() == pytest.approx(0.8508535, abs=1e-6)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "sigmoid"])
def test_schedules_go_from_clean_to_noise(schedule: str) -> None:
    alpha_bar = torch.cumprod(1 - make_betas(schedule, 1000), 0)
    assert torch.all(alpha_bar[1:] < alpha_bar[:-1])
    assert alpha_bar[0] > 0.99
    assert alpha_bar[-1] < 1e-3


def test_sampling_levels_map_clean_and_noise() -> None:
    levels = sampling_noise_levels(1000, 10)
    assert levels[0].item() == -1 and levels[-1].item() == 999
    assert torch.all(levels[1:] > levels[:-1])


@pytest.mark.parametrize("objective", ["pred_noise", "pred_x0", "pred_v"])
def test_objective_converts_back_to_x0(objective: str) -> None:
    d = diffusion(objective=objective)
    x0, noise = torch.randn(2, 5, 3, 4, 4).clamp(-1, 1), torch.randn(2, 5, 3, 4, 4)
    k = torch.randint(0, 1000, (2, 5))
    x_k = d.q_sample(x0, k, noise)
    x0_hat, noise_hat = d.predict_x0_and_noise(x_k, k, d.target(x0, noise, k))
    torch.testing.assert_close(x0_hat, x0, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(noise_hat, noise, atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize("objective", ["pred_noise", "pred_x0", "pred_v"])
def test_ddim_step_with_perfect_prediction_lands_on_q_sample(objective: str) -> None:
    d = diffusion(objective=objective, clip_denoised=False)
    x0, noise = torch.rand(1, 3, 2, 4, 4) * 2 - 1, torch.randn(1, 3, 2, 4, 4)
    k_from, k_to = torch.tensor([[900, 500, -1]]), torch.tensor([[700, 100, -1]])
    x_from = d.q_sample(x0, k_from, noise)
    x0_hat, _ = d.predict_x0_and_noise(x_from, k_from, d.target(x0, noise, k_from))
    x_to = d.ddim_update(x_from, x0_hat, k_from, k_to)
    torch.testing.assert_close(x_to[:, :2], d.q_sample(x0, k_to, noise)[:, :2], atol=1e-4, rtol=1e-4)
    assert torch.equal(x_to[:, 2], x_from[:, 2]), "a token whose level does not change is untouched"


def test_ddim_step_with_eta_one_golden() -> None:
    """Sigmoid ᾱ 0.5 → 0.8508535 with η = 1: σ² = (1−ᾱ')/(1−ᾱ)·(1−ᾱ/ᾱ') = 0.1230025, and
    x' = √ᾱ'·x̂₀ + √(1−ᾱ'−σ²)·ε̂ + σ·z with z the generator's next clipped draw."""
    d = diffusion(beta_schedule="sigmoid", ddim_sampling_eta=1.0, clip_noise=6.0)
    x0, noise = torch.full((1, 1, 2), 0.5), torch.tensor([[[1.0, -2.0]]])
    k_from, k_to = torch.tensor([[499]]), torch.tensor([[249]])  # levels k are t = k + 1 of the closed form
    x_k = (0.5**0.5) * x0 + (0.5**0.5) * noise
    z = torch.randn((1, 1, 2), generator=torch.Generator().manual_seed(3)).clamp(-6, 6)
    out = d.ddim_update(x_k, x0, k_from, k_to, torch.Generator().manual_seed(3))
    sigma = 0.1230025**0.5
    expected = 0.8508535**0.5 * x0 + (1 - 0.8508535 - 0.1230025) ** 0.5 * noise + sigma * z
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=0)


def test_stabilize_shows_clean_tokens_slightly_noised_in_scale_only() -> None:
    """Clean tokens (k = −1) go in as √ᾱ_{k_s}·x labelled k_s = stabilization_level − 1; noisy ones unchanged."""
    d = diffusion(beta_schedule="sigmoid", stabilization_level=250)
    x, k = torch.ones(1, 2, 3), torch.tensor([[-1, 600]])
    shown, labels = d.stabilize(x, k)
    assert labels.tolist() == [[249, 600]]
    torch.testing.assert_close(shown[0, 0], torch.full((3,), 0.8508535**0.5), atol=1e-6, rtol=0)
    assert torch.equal(shown[0, 1], x[0, 1])


def test_ddim_step_to_clean_returns_x0() -> None:
    d = diffusion(objective="pred_x0")
    x0 = torch.rand(1, 1, 3, 4, 4) * 2 - 1
    x_k = d.q_sample(x0, torch.tensor([[300]]), torch.randn_like(x0))
    out = d.ddim_update(x_k, x0, torch.tensor([[300]]), torch.tensor([[-1]]))
    torch.testing.assert_close(out, x0)


def test_min_snr_weights_for_v() -> None:
    d = diffusion(objective="pred_v", use_fused_snr=False, use_snr=True, snr_clip=5.0)
    k = torch.tensor([[0, 200, 999]])
    a = d.alphas_cumprod[k + 1]
    snr = a / (1 - a)
    torch.testing.assert_close(d.loss_weights(k), snr.clamp(max=5) / (snr + 1))


def test_fused_snr_without_decay_is_min_snr_and_decay_discounts_later_tokens() -> None:
    k = torch.tensor([[10, 600, 600]])
    fused = diffusion(use_fused_snr=True, cum_snr_decay=0.0).loss_weights(k)
    plain = diffusion(use_fused_snr=False, use_snr=True).loss_weights(k)
    torch.testing.assert_close(fused, plain)
    decayed = diffusion(use_fused_snr=True, cum_snr_decay=0.96).loss_weights(k)
    assert decayed[0, 0] == pytest.approx(plain[0, 0].item())
    assert not torch.allclose(decayed[0, 1:], plain[0, 1:]), "a clean predecessor changes a noisy token's weight"


def test_fused_snr_golden() -> None:
    """Sigmoid level 499 has SNR 1, so s = 1/5. After a clean token (c = 1) the fused SNR is
    5·(1 − (1 − 0.96)(1 − 0.2)) = 4.84 and the v weight 4.84 / 5.84; after a token at 499 (c = 0.2) it is
    5·(1 − (1 − 0.96·0.2)(1 − 0.2)) = 1.768 and the weight 1.768 / 2.768."""
    d = diffusion(beta_schedule="sigmoid", objective="pred_v", use_fused_snr=True, cum_snr_decay=0.96)
    weights = d.loss_weights(torch.tensor([[0, 499], [499, 499]]))
    torch.testing.assert_close(weights[:, 1], torch.tensor([4.84 / 5.84, 1.768 / 2.768]), atol=1e-5, rtol=0)


def test_uniform_weights_without_snr() -> None:
    d = diffusion(use_fused_snr=False, use_snr=False)
    assert torch.equal(d.loss_weights(torch.tensor([[1, 500]])), torch.ones(1, 2))


def test_noise_is_clipped() -> None:
    d = diffusion(clip_noise=0.5)
    assert d.clipped_noise((1000,), torch.zeros(1)).abs().max() <= 0.5


def test_loss_mask_ignores_padded_tokens() -> None:
    d = diffusion(use_fused_snr=False)
    target = torch.zeros(1, 2, 3)
    output = torch.stack([torch.zeros(3), torch.ones(3)])[None]
    k = torch.tensor([[5, 5]])
    assert d.loss(output, target, k, torch.tensor([[1.0, 0.0]])).item() == 0.0
    assert d.loss(output, target, k).item() == pytest.approx(0.5)

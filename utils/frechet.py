"""The Fréchet distance between Gaussians fitted to two feature sets: FID (Heusel et al. 2017) and FVD
(Unterthiner et al. 2018) differ only in the network that produces the features."""

import torch
from torch import Tensor


def frechet_distance(features_a: Tensor, features_b: Tensor) -> Tensor:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) for features (N, D), each N ≥ 2, in float64."""
    a, b = features_a.double(), features_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a, sigma_b = torch.cov(a.T), torch.cov(b.T)
    # Tr((Σ_a Σ_b)^½) is the sum of the square roots of the eigenvalues of Σ_a Σ_b, which are real and >= 0.
    eigenvalues = torch.linalg.eigvals(sigma_a @ sigma_b).real.clamp(min=0)
    return (mu_a - mu_b).square().sum() + sigma_a.trace() + sigma_b.trace() - 2 * eigenvalues.sqrt().sum()

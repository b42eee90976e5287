"""The planner samples DF v1.5's guided plans: same checkpoint, starts, goals and noise give the same plans.

Golden values from the original's own `plan` (`fixtures/make_df15_guided_plans.py`, run on the DF v1.5 tiny
planner fixture): goal guidance through the network at guidance_scale 3, pyramid schedule, the clean start token
at the stabilisation level, and zero padding labelled pure noise for the shorter horizon.
"""

from pathlib import Path

import pytest
import torch

from tests.test_original_checkpoints import FIXTURES, build_from_original

GOLDEN = torch.load(Path(__file__).parent / "fixtures" / "df15_guided_plans.pt")
CHECKPOINT = FIXTURES / "df15_planner_tiny.ckpt"


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"no DF v1.5 planner fixture at {CHECKPOINT}")
@pytest.mark.parametrize("horizon", [600, 250])
def test_guided_plans_match_the_original(horizon: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    algorithm = build_from_original(CHECKPOINT, tmp_path, [f"algorithm.guidance_scale={GOLDEN['guidance_scale']}"])
    monkeypatch.setattr(algorithm.diffusion, "clipped_noise", lambda *args, **kwargs: GOLDEN[f"noise_{horizon}"])
    mean, std = algorithm.mean, algorithm.std
    states = torch.cat([GOLDEN["start"] * std + mean, torch.zeros(4, 2)], dim=-1)
    plan = algorithm.plan(states, GOLDEN["goal"] * std + mean, horizon)
    torch.testing.assert_close((plan - mean) / std, GOLDEN[f"plan_{horizon}"], atol=1e-4, rtol=0)

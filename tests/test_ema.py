"""`experiment.ema`: checkpoints hold the warm-up EMA of the weights (closed form) and the raw weights beside it."""

import pytest
import torch

from utils.ema import warmup_ema
from utils.typed_config import ConfigError


def test_warmup_decay_follows_its_closed_form() -> None:
    average, current = torch.zeros(3), torch.ones(3)
    # update n (n = 1 after the first, which copies) uses min(decay, (1 + n) / (10 + n))
    torch.testing.assert_close(warmup_ema(average, current, torch.tensor(1), decay=0.999), torch.full((3,), 9 / 11))
    late = warmup_ema(average, current, torch.tensor(10**6), decay=0.9)
    torch.testing.assert_close(late, torch.full((3,), 0.1))
    counter = torch.tensor(7)
    assert warmup_ema(torch.tensor(3), counter, torch.tensor(5), decay=0.9) is counter, "step counters are copied"


def test_checkpoints_hold_the_average_and_the_raw_weights(tiny: list[str], run_main) -> None:
    run_dir = run_main([*tiny, "experiment.ema.enable=true"])
    first, second = (
        torch.load(run_dir / "checkpoints" / f"step_{s}.ckpt", map_location="cpu", weights_only=False) for s in (1, 2)
    )
    w1, w2, average = first["current_model_state"], second["current_model_state"], second["state_dict"]
    key = "model.out.weight" if "model.out.weight" in w1 else next(k for k in w1 if k.endswith(".weight"))
    assert not torch.equal(w1[key], w2[key])
    # the first update copies w1; the second moves 9/11 of the way to w2
    torch.testing.assert_close(average[key], w2[key] * 9 / 11 + w1[key] * 2 / 11)
    assert int(average["trained_steps"]) == 2
    assert [v.name for v in (run_dir / "videos").glob("*.mp4")] == ["validation_step2_0.mp4"], "counted after EMA"


def test_decay_outside_zero_one_is_refused(tiny: list[str], run_main) -> None:
    with pytest.raises(ConfigError, match="experiment.ema.decay"):
        run_main([*tiny, "experiment.ema.enable=true", "experiment.ema.decay=1.5"])

"""Long-rollout stability: reference-free drift statistics and the `stability` task."""

import json
import math
from pathlib import Path

import pytest
import torch
from torch.nn.functional import avg_pool2d

from algorithms.diffusion_forcing.stability import GROUND_TRUTH, measure_stability
from datasets.video.crafter_video import CrafterDatasetConfig, CrafterVideoDataset
from tests.conftest import compose_config
from utils.drift_metrics import VideoStatistics, drift
from utils.typed_config import build


@pytest.fixture
def clips(tiny: list[str], tmp_path: Path) -> torch.Tensor:
    """Real tiny Crafter clips (B, T, C, H, W) in [-1, 1], 4× the training length."""
    cfg = compose_config(tiny, tmp_path / "run")
    config = build(CrafterDatasetConfig, cfg.dataset, "dataset")
    from dataclasses import replace

    dataset = CrafterVideoDataset(replace(config, validation_multiplier=4), "validation")
    return torch.stack([dataset[i]["videos"] for i in range(len(dataset))])


def pooled(videos: torch.Tensor) -> VideoStatistics:
    return VideoStatistics.per_frame(videos).pooled()


def test_real_frames_do_not_drift_from_themselves(clips: torch.Tensor) -> None:
    frames = (clips + 1) / 2
    assert drift(pooled(frames), pooled(frames)) == {"colour": 0.0, "sharpness": 0.0, "motion": 0.0, "drift": 0.0}


def test_noise_blur_and_frozen_frames_each_raise_their_statistic(clips: torch.Tensor) -> None:
    frames = (clips + 1) / 2
    reference = pooled(frames)
    noisy = (frames + 0.3 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert drift(pooled(noisy), reference)["sharpness"] > 1, "noise: more than twice the gradient energy"
    blurred = avg_pool2d(frames.flatten(0, 1), 3, stride=1, padding=1).reshape(frames.shape)
    assert drift(pooled(blurred), reference)["sharpness"] > 0.5
    frozen = frames[:, :1].expand_as(frames)
    assert drift(pooled(frozen), reference)["motion"] == 1.0


def test_a_model_that_adds_noise_each_step_drifts_more_than_copy_last(clips: torch.Tensor) -> None:
    def noisier_each_frame(context, length, actions, generator):  # noqa: ANN001, ANN202
        steps = torch.arange(1, length - context.shape[1] + 1).reshape(1, -1, 1, 1, 1) ** 0.5
        noise = (
            0.15 * steps * torch.randn(context[:, :1].expand(-1, steps.shape[1], -1, -1, -1).shape, generator=generator)
        )
        return torch.cat([context, context[:, -1:] + noise], dim=1)

    reference = pooled((clips + 1) / 2)
    report = measure_stability({"broken": noisier_each_frame}, clips, None, 2, clips.shape[1] // 4, reference)
    assert report.segment_drift("broken", 4) > 2 * report.segment_drift("copy_last", 4)
    assert report.breaking_frame("broken") is not None and report.breaking_frame(GROUND_TRUTH) is None
    assert report.error["broken"].mean() > report.error["copy_last"].mean()
    assert [row["method"] for row in report.table([1, 4])] == ["broken", "copy_last", GROUND_TRUTH]


def test_stability_task_writes_table_plot_and_numbers(tiny: list[str], run_main) -> None:
    other = run_main([*tiny, "algorithm.noise_level=full_sequence"]) / "checkpoints" / "last.ckpt"
    stability = ["experiment.tasks=[stability]", "experiment.stability.multiple=4", f"load={other}"]
    run_dir = run_main([*tiny, *stability, f"experiment.stability.compare=[{other}]"])
    folder = run_dir / "stability"
    assert (folder / "per_frame.png").stat().st_size > 0
    summary = json.loads((folder / "stability.json").read_text())
    methods = [row["method"] for row in summary["table"]]
    assert methods == ["random_all (this run)", "full_sequence (last)", "copy_last", GROUND_TRUTH]
    assert all(math.isfinite(row[f"drift@{m}x"]) for row in summary["table"] for m in (1, 2, 4))
    assert len(summary["mse"]["copy_last"]) == 4 * 4 - 2, "every generated frame of clips 4× the training length"
    assert "drift threshold" in (folder / "table.md").read_text()

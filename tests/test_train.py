"""The real entry point on tiny configs: train, resume, load + validate, test, debug."""

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import checkpoint_step, run_id


def test_two_step_training_writes_checkpoint_and_run_file(tiny: list[str], run_main) -> None:
    run_dir = run_main(tiny)
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == 2
    assert len(run_id(run_dir)) == 8


def test_resume_continues_step_and_optimizer(tiny: list[str], run_main) -> None:
    first = run_main(tiny)
    resumed = run_main([*tiny, f"resume={run_id(first)}", "experiment.training.max_steps=4"])
    assert run_id(resumed) == run_id(first), "a resumed run keeps its id"
    checkpoint = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 4
    adam_steps = {float(s["step"]) for s in checkpoint["optimizer_states"][0]["state"].values()}
    assert adam_steps == {4.0}, "optimizer moments were restored, not restarted"
    assert checkpoint["lr_schedulers"][0]["last_epoch"] == 4


def test_load_then_validation_writes_video_and_metrics(tiny: list[str], run_main) -> None:
    trained = run_main(tiny)
    ckpt = trained / "checkpoints" / "last.ckpt"
    run_dir = run_main([*tiny, f"load={ckpt}", "experiment.tasks=[validation]"])
    videos = list((run_dir / "videos").glob("validation_*.mp4"))
    assert [v.name for v in videos] == ["validation_step2_0.mp4"], "named by the steps the weights were trained"
    assert videos[0].stat().st_size > 0
    metrics = json.loads((run_dir / "validation_metrics.json").read_text())
    assert {"validation/psnr", "validation/ssim", "validation/mean_colour/mse"} <= set(metrics)
    assert metrics["validation/copy_last/mse"] == pytest.approx(copy_last_mse(tiny), rel=1e-5)
    assert run_id(run_dir) != run_id(trained), "load= starts a new run"


def copy_last_mse(overrides: list[str]) -> float:
    """MSE of repeating each validation clip's last context frame, computed here from the clips themselves."""
    from datasets.video.crafter_video import CrafterDatasetConfig, CrafterVideoDataset
    from tests.conftest import compose_config
    from utils.typed_config import build

    cfg = compose_config(overrides, Path("unused"))
    dataset = CrafterVideoDataset(build(CrafterDatasetConfig, cfg.dataset, "dataset"), "validation")
    n_context = cfg.dataset.context_length
    errors = []
    for clip in (dataset[i]["videos"] for i in range(len(dataset))):
        pixels = (clip + 1) / 2
        errors += [(pixels[t] - pixels[n_context - 1]).pow(2).mean() for t in range(n_context, len(pixels))]
    return float(torch.stack(errors).mean())


def test_training_from_loaded_weights_counts_their_steps_on(tiny: list[str], run_main) -> None:
    first = run_main(tiny)
    run_dir = run_main([*tiny, f"load={first / 'checkpoints' / 'last.ckpt'}", "experiment.tasks=[training,validation]"])
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert int(state["trained_steps"]) == 4, "2 steps before load= and 2 after"
    assert [v.name for v in (run_dir / "videos").glob("*.mp4")] == ["validation_step4_0.mp4"]
    resumed = run_main([*tiny, f"resume={run_id(run_dir)}", "experiment.training.max_steps=3"])
    state = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert int(state["trained_steps"]) == 5


def test_load_by_run_id_and_test_task(tiny: list[str], run_main) -> None:
    trained = run_main(tiny)
    run_dir = run_main([*tiny, f"load={run_id(trained)}", "experiment.tasks=[test]"])
    assert list((run_dir / "videos").glob("test_*.mp4"))
    assert "test/mse" in (run_dir / "test_metrics.json").read_text()


def test_long_rollout_with_validation_multiplier(tiny: list[str], run_main) -> None:
    run_dir = run_main([*tiny, "experiment.tasks=[validation]", "dataset.validation_multiplier=3"])
    import imageio.v3 as iio

    frames = iio.imread(next((run_dir / "videos").glob("*.mp4")), plugin="pyav")
    assert len(frames) == 4 * 3
    (plot,) = (run_dir / "plots").glob("validation_per_frame_step*.png")
    assert iio.imread(plot).std() > 0, "a drawn plot, not a blank image"


def test_debug_logs_gradient_norms(tiny: list[str], run_main, tmp_path: Path) -> None:
    from lightning.pytorch import Trainer

    from algorithms.diffusion_forcing.df_video import DFVideoConfig, DiffusionForcingVideo
    from datasets.video.crafter_video import CrafterDatasetConfig, CrafterVideoDataset
    from tests.conftest import compose_config
    from utils.typed_config import build

    cfg = compose_config([*tiny, "debug=true"], tmp_path / "run")
    algorithm = DiffusionForcingVideo(build(DFVideoConfig, cfg.algorithm, "algorithm"))
    dataset = CrafterVideoDataset(build(CrafterDatasetConfig, cfg.dataset, "dataset"), "training")
    trainer = Trainer(accelerator="cpu", fast_dev_run=1, logger=False, enable_progress_bar=False, detect_anomaly=True)
    trainer.fit(algorithm, torch.utils.data.DataLoader(dataset, batch_size=2))
    assert "grad_2.0_norm_total" in trainer.callback_metrics
    assert any(key.startswith("param_norm/") for key in trainer.callback_metrics)


def test_offline_wandb_run_is_written(tiny: list[str], run_main) -> None:
    run_dir = run_main([*tiny, "wandb.mode=offline"])
    runs = list((run_dir / "wandb").glob(f"offline-run-*-{run_id(run_dir)}"))
    assert runs, "offline wandb run directory named by the run id"
    assert (runs[0] / f"run-{run_id(run_dir)}.wandb").stat().st_size > 0


def test_learning_rate_schedule_warms_up_and_cools_down(tiny: list[str], run_main) -> None:
    from algorithms.diffusion_forcing.df_base import lr_factor

    assert [lr_factor(10, 0, 0, s) for s in (0, 4, 9, 5000)] == [0.1, 0.5, 1.0, 1.0], "DF v1.5: warm-up only"
    assert [lr_factor(10, 100, 1000, s) for s in (899, 950, 999, 1000)] == [1.0, 0.5, 0.01, 0.0]
    cooldown = ["algorithm.warmup_steps=1", "algorithm.lr_cooldown_steps=4", "algorithm.lr_cooldown_end=4"]
    run_dir = run_main([*tiny, *cooldown])
    scheduler = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["lr_schedulers"][0]
    assert scheduler["_last_lr"] == [pytest.approx(5e-4 / 2)], "half way down after 2 of the 4 cool-down steps"
    ends_with_training = run_main([*tiny, "algorithm.lr_cooldown_steps=4"])  # lr_cooldown_end = max_steps = 2
    scheduler = torch.load(ends_with_training / "checkpoints" / "last.ckpt", weights_only=True)["lr_schedulers"][0]
    assert scheduler["_last_lr"] == [0.0]


def test_a_seed_makes_training_repeatable(tiny: list[str], run_main) -> None:
    def weights(run_dir: Path) -> dict[str, torch.Tensor]:
        return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]

    first, second, unseeded = run_main([*tiny, "seed=3"]), run_main([*tiny, "seed=3"]), run_main(tiny)
    assert all(torch.equal(a, b) for a, b in zip(weights(first).values(), weights(second).values(), strict=True))
    assert not torch.equal(weights(first)["model.init_conv.weight"], weights(unseeded)["model.init_conv.weight"])


def test_bf16_mixed_training_runs_the_network_under_bf16_autocast(
    tiny: list[str], run_main, monkeypatch: pytest.MonkeyPatch
) -> None:
    from algorithms.diffusion_forcing.models import attention

    seen = []
    original = attention.softmax_attention

    def recording(q, k, v, mask=None):
        if torch.is_grad_enabled():
            seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else torch.float32)
        return original(q, k, v, mask)

    monkeypatch.setattr(attention, "softmax_attention", recording)
    run_dir = run_main([*tiny, "experiment.training.precision=bf16-mixed", "experiment.tasks=[training]"])
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == 2
    assert seen and set(seen) == {torch.bfloat16}

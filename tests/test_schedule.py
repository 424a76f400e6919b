"""Schedule state (GAN's alternation counter, DANN's progress and reversal weight, TimeGAN's
phase and discriminator cadence) lives in buffers, so ``--resume`` continues the schedule
where an uninterrupted run would be (issue #11 part 5)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ddp_cli  # noqa: F401  (registers the tiny-domains data set)
import factorseq as fs
from factorseq.nn.schedule import ScheduleState

TRAIN = {"batch_size": 16, "tensorboard": False, "progress": False, "val_fraction": 0.0}


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    rng = np.random.default_rng(0)
    t = np.arange(8)
    x = np.sin(t[None, :, None] * rng.uniform(0.2, 0.6, (72, 1, 2))
               + rng.uniform(0, 3, (72, 1, 2)))
    p = tmp_path_factory.mktemp("sched") / "w.npz"
    np.savez(p, data=x.astype(np.float32))
    return str(p)


def straight_and_resumed(tmp_path, model, source, epochs, overrides):
    """The model of an uninterrupted run of ``epochs`` and of one stopped one epoch short and
    resumed."""
    data = fs.DataConfig(source=source, holdout_fraction=0.0)  # every window trains
    a = fs.fit(model, data, {**TRAIN, "epochs": epochs}, overrides, tmp_path / "a")
    fs.fit(model, data, {**TRAIN, "epochs": epochs - 1}, overrides, tmp_path / "b")
    b = fs.fit(model, data, {"epochs": epochs}, None, tmp_path / "b", resume=True)
    assert b.config["training"]["epochs_run"] == epochs
    return a.model, b.model


def test_gan_alternation_continues_across_resume(tmp_path, windows):
    a, b = straight_and_resumed(tmp_path, "gan", windows, 2, {"hidden": 6, "d_steps": 2})
    per_epoch = 72 // 16 + 1  # 5 batches
    assert a.schedule.get("step") == b.schedule.get("step") == 2 * per_epoch


def test_dann_reversal_schedule_continues_across_resume(tmp_path):
    tiny = {"hidden": 8, "layers": 1, "feature_dim": 8, "head_hidden": 8}
    a, b = straight_and_resumed(tmp_path, "dann", "tiny-domains", 3, tiny)
    for key in ("epoch", "max_epochs", "batch", "per_epoch"):
        assert a.schedule.get(key) == b.schedule.get(key), key
    assert a.schedule.get("per_epoch") > 0 and 0 < a.lambd == b.lambd


def test_timegan_phase_and_cadence_continue_across_resume(tmp_path, windows):
    a, b = straight_and_resumed(tmp_path, "timegan", windows, 5, {"hidden": 4, "layers": 2})
    assert a.phase == b.phase == "joint"
    assert a.schedule.get("joint_batches") == b.schedule.get("joint_batches") == 3 * 5


def test_schedule_state_loads_runs_saved_before_it_existed():
    s = ScheduleState(step=0, lambd=0.5)
    s.set("step", 7)
    s.add("lambd", 0.25)
    assert (s.get("step"), s.get("lambd")) == (7, 0.75)
    fresh = ScheduleState(step=0, lambd=0.5)
    fresh.load_state_dict({"step": torch.tensor(3)})  # lambd absent: keeps its start value
    assert (fresh.get("step"), fresh.get("lambd")) == (3, 0.5)

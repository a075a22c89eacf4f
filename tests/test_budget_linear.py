"""--lr-scheduler budget_linear: warm-up over updates, linear decay over training minutes, resumption."""

import pytest
import torch
from omegaconf import OmegaConf

from conftest import run_cli
from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.optim import budget_linear
from fairseq_gmlm.optim.adamw_fused import AdamWFused, AdamWFusedConfig
from fairseq_gmlm.optim.budget_linear import BudgetLinearConfig, BudgetLinearSchedule, budget_linear_lr
from test_scale import logged_updates, train_command


@pytest.mark.parametrize("updates, minutes, expected", [
    (0, 0.0, 0.0), (50, 0.0, 0.5), (100, 0.0, 1.0), (400, 0.0, 1.0),  # warm-up by updates
    (400, 15.0, 0.5), (400, 30.0, 0.0), (400, 45.0, 0.0),  # decay by minutes, none below 0
    (50, 15.0, 0.25),  # both at once
])
def test_budget_linear_lr_warms_up_by_updates_and_decays_by_minutes(updates, minutes, expected):
    assert budget_linear_lr(1.0, updates, 100, minutes, 30.0, 0.0) == pytest.approx(expected)


def test_budget_linear_lr_ends_at_the_end_scale_and_needs_no_warmup():
    assert budget_linear_lr(2e-3, 500, 100, 60.0, 30.0, 0.1) == pytest.approx(2e-4)
    assert budget_linear_lr(2e-3, 500, 100, 15.0, 30.0, 0.1) == pytest.approx(2e-3 * 0.55)
    assert budget_linear_lr(2e-3, 0, 0, 0.0, 30.0, 0.0) == pytest.approx(2e-3)


class Clock:
    def __init__(self):
        self.seconds = 1000.0

    def __call__(self):
        return self.seconds


def schedule(monkeypatch, **config):
    clock = Clock()
    monkeypatch.setattr(budget_linear.time, "monotonic", clock)
    cfg = OmegaConf.structured(BudgetLinearConfig(**{"warmup_updates": 10, "stop_time_hours": 0.5, "lr": [1e-3],
                                                     **config}))
    optimizer = AdamWFused(OmegaConf.structured(AdamWFusedConfig(lr=[1e-3])), [torch.nn.Parameter(torch.ones(2))])
    return BudgetLinearSchedule(cfg, optimizer), optimizer, clock


def test_schedule_decays_over_stop_time_hours_by_default_and_sets_the_optimizer_lr(monkeypatch):
    scheduler, optimizer, clock = schedule(monkeypatch)
    assert scheduler.step_update(0) == 0.0 and optimizer.get_lr() == 0.0
    scheduler.step_update(1)  # the clock starts at the first update
    clock.seconds += 15 * 60  # half of --stop-time-hours 0.5
    assert scheduler.step_update(10) == pytest.approx(0.5e-3)
    assert optimizer.get_lr() == pytest.approx(0.5e-3)
    clock.seconds += 20 * 60
    assert scheduler.step_update(500) == 0.0


def test_resuming_its_own_state_continues_the_minutes_and_the_update_count(monkeypatch):
    scheduler, _, clock = schedule(monkeypatch, decay_minutes=20.0)
    scheduler.step_update(0), scheduler.step_update(1)
    clock.seconds += 5 * 60
    state = scheduler.state_dict()
    assert state["budget_linear_seconds"] == pytest.approx(300) and state["budget_linear_first_update"] == 0

    resumed, _, clock = schedule(monkeypatch, decay_minutes=20.0)
    resumed.step_update(0)  # fairseq builds the schedule at update 0, then loads the checkpoint's state
    resumed.load_state_dict(state)
    assert resumed.step_update(300) == pytest.approx(0.75e-3)  # 5 of 20 minutes spent, warm-up long past
    clock.seconds += 5 * 60
    assert resumed.step_update(301) == pytest.approx(0.5e-3)


def test_resuming_another_schedules_state_starts_afresh_with_warmup(monkeypatch):
    scheduler, _, clock = schedule(monkeypatch, decay_minutes=20.0)
    scheduler.step_update(0)
    scheduler.load_state_dict({"best": 3.5})  # what inverse_sqrt saves
    assert scheduler.best == 3.5
    assert scheduler.step_update(700) == 0.0  # the checkpoint's update count is this schedule's start
    assert scheduler.step_update(705) == pytest.approx(0.5e-3)
    clock.seconds += 10 * 60
    assert scheduler.step_update(800) == pytest.approx(0.5e-3)


@pytest.mark.parametrize("config, message", [
    ({"stop_time_hours": 0.0}, "--stop-time-hours or --decay-minutes"),
    ({"end_lr_scale": 1.5}, "--end-lr-scale"),
    ({"lr": [1e-3, 2e-3]}, "one --lr"),
])
def test_bad_settings_name_the_flag(monkeypatch, config, message):
    with pytest.raises(UsageError, match=message):
        schedule(monkeypatch, **config)


@pytest.mark.slow
def test_fairseq_train_decays_to_the_end_scale_and_resumes_on_it(ding_slice, tmp_path):
    data = ding_slice / "prepared" / "bin"
    flags = ["--lr", "1e-3", "--lr-scheduler", "budget_linear", "--warmup-updates", "4", "--decay-minutes", "0.004",
             "--end-lr-scale", "0.25", "--no-epoch-checkpoints"]
    first = run_cli("fairseq-train", *train_command(data, tmp_path, *flags, "--max-update", "24"))
    rates = [float(values["lr"]) for _, values in sorted(logged_updates(first.stdout).items())]
    assert len(rates) == 24 and max(rates) <= 1e-3
    assert rates[0] <= 0.25e-3 + 1e-9  # the first of 4 warm-up updates
    assert rates[-1] == pytest.approx(0.25e-3)  # 0.24 s of decay are long over after 24 updates
    state = torch.load(tmp_path / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    scheduler_state = state["optimizer_history"][-1]["lr_scheduler_state"]
    assert scheduler_state["budget_linear_seconds"] > 0.24 and scheduler_state["budget_linear_first_update"] == 0

    resumed = run_cli("fairseq-train", *train_command(data, tmp_path, *flags, "--max-update", "28"))
    updates = logged_updates(resumed.stdout)
    assert sorted(updates) == [25, 26, 27, 28]
    assert all(float(values["lr"]) == pytest.approx(0.25e-3) for values in updates.values())  # no second warm-up

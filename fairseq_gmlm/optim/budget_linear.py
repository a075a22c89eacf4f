"""``--lr-scheduler budget_linear``: warm up over updates, then decay linearly to the end of a time budget.

fairseq's schedules decay by update count (``inverse_sqrt``) or need the number of updates in advance
(``polynomial_decay``, ``cosine``). A run bounded by ``--stop-time-hours`` knows its minutes, not its updates, so this
schedule decays by training time: the learning rate at update u, t minutes into the schedule, is

    lr * min(1, u / warmup_updates) * (end + (1 - end) * max(0, 1 - t / decay_minutes))

with ``end`` = ``--end-lr-scale``, u and t counted from the schedule's start. ``--decay-minutes`` defaults to ``--stop-time-hours``; a run resumed from a
checkpoint of another schedule (a teacher trained with ``inverse_sqrt``, say) starts this one afresh, warm-up
included, so give it the minutes left. The minutes already spent travel in the checkpoint, so resuming the same schedule continues it.
Measured against ``inverse_sqrt`` at equal minutes in docs/training.md, "A learning rate that decays to the end
of the budget".
"""

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import List

from fairseq.dataclass import FairseqDataclass
from fairseq.optim.lr_scheduler import FairseqLRScheduler, register_lr_scheduler
from omegaconf import II

from fairseq_gmlm.errors import UsageError


def budget_linear_lr(peak: float, updates: int, warmup_updates: int, minutes: float, decay_minutes: float,
                     end_scale: float) -> float:
    """The learning rate after UPDATES updates and MINUTES minutes of the schedule (the formula above)."""
    warmup = min(1.0, updates / warmup_updates) if warmup_updates > 0 else 1.0
    left = max(0.0, 1.0 - minutes / decay_minutes)
    return peak * warmup * (end_scale + (1.0 - end_scale) * left)


@dataclass
class BudgetLinearConfig(FairseqDataclass):
    warmup_updates: int = field(default=200, metadata={"help": "raise the learning rate linearly from 0 over N updates"})
    decay_minutes: float = field(
        default=-1.0,
        metadata={"help": "training minutes over which the learning rate falls to --end-lr-scale x --lr (default: "
                          "--stop-time-hours); on a run resumed from another schedule's checkpoint, the minutes left"})
    end_lr_scale: float = field(default=0.0, metadata={"help": "the learning rate at the end, as a share of --lr"})
    stop_time_hours: float = II("optimization.stop_time_hours")
    lr: List[float] = II("optimization.lr")


@register_lr_scheduler("budget_linear", dataclass=BudgetLinearConfig)
class BudgetLinearSchedule(FairseqLRScheduler):
    def __init__(self, cfg: BudgetLinearConfig, optimizer):
        super().__init__(cfg, optimizer)
        if isinstance(cfg.lr, Collection) and len(cfg.lr) > 1:
            raise UsageError("--lr-scheduler budget_linear takes one --lr, got " + ",".join(map(str, cfg.lr)))
        self.peak = cfg.lr[0] if isinstance(cfg.lr, Collection) else cfg.lr
        self.decay_minutes = cfg.decay_minutes if cfg.decay_minutes > 0 else cfg.stop_time_hours * 60
        if self.decay_minutes <= 0:
            raise UsageError("--lr-scheduler budget_linear needs a budget: set --stop-time-hours or --decay-minutes")
        if not 0.0 <= cfg.end_lr_scale <= 1.0:
            raise UsageError(f"--end-lr-scale must be in [0, 1], got {cfg.end_lr_scale}")
        self.earlier_seconds = 0.0  # spent in this schedule by the runs this one resumes
        self.first_update = None  # the update count at this schedule's start
        self.started = None  # this process's clock at its first update
        self.optimizer.set_lr(0.0 if cfg.warmup_updates > 0 else self.peak)

    def minutes(self) -> float:
        """Training minutes spent in this schedule, across resumptions."""
        now = 0.0 if self.started is None else time.monotonic() - self.started
        return (self.earlier_seconds + now) / 60

    def state_dict(self):
        return {"best": self.best, "budget_linear_seconds": self.minutes() * 60,
                "budget_linear_first_update": self.first_update}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        # Another schedule's state (a teacher's inverse_sqrt, say) holds neither: this schedule then starts afresh
        # at the checkpoint's update count, warm-up included.
        self.earlier_seconds = state_dict.get("budget_linear_seconds", 0.0)
        self.first_update = state_dict.get("budget_linear_first_update")
        self.started = None

    def step_update(self, num_updates):
        if self.first_update is None:
            self.first_update = num_updates
        if self.started is None and num_updates > self.first_update:
            self.started = time.monotonic()
        lr = budget_linear_lr(self.peak, num_updates - self.first_update, self.cfg.warmup_updates, self.minutes(),
                              self.decay_minutes, self.cfg.end_lr_scale)
        self.optimizer.set_lr(lr)
        return lr

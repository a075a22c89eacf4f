"""``--amp`` off CUDA trains stock tasks in float32: defect 12 in docs/fairseq-fixes.md.

``FairseqTask.train_step``, which ``--task translation`` inherits (how ``t5_ar`` trains), autocasts the
criterion's forward with ``torch.cuda.amp.autocast``, which does nothing for a model on the CPU; the stock
non-autoregressive task ``translation_lev`` (fairseq's CMLM) does not autocast at all. So on a CPU ``--amp`` changed
nothing for either, while ``translation_gmlm`` autocasts its forward to bfloat16 (``precision.autocast_for``), 1.47
times as fast per update on a CPU with AVX512-BF16: an equal-minutes comparison under ``--amp`` would have
favoured the GMLM. ``autocast_stock_train_steps`` runs the criterion of those two tasks' training steps (the
forward and the loss, not the backward) under the autocast that ``--amp`` means on the model's device
(``precision.autocast_for``, as ``translation_gmlm``'s step does): float16 on CUDA, bfloat16 on the CPU. Without
``--amp`` nothing changes.
"""

import functools

from fairseq.optim.amp_optimizer import AMPOptimizer

from fairseq_gmlm.precision import autocast_for


class AutocastCriterion:
    """CRITERION, whose calls (the model's forward and the loss) run under ``autocast``; everything else is the
    criterion's own."""

    def __init__(self, criterion, autocast):
        self.criterion, self.autocast = criterion, autocast

    def __call__(self, *args, **kwargs):
        with self.autocast():
            return self.criterion(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.criterion, name)


def with_amp_forward(train_step):
    """TRAIN_STEP (a task's) with its criterion called under ``--amp``'s autocast where the optimizer is fairseq's
    AMPOptimizer; unchanged otherwise."""
    if getattr(train_step, "fairseq_gmlm", False):
        return train_step

    @functools.wraps(train_step)
    def train_step_with_amp_forward(self, sample, model, criterion, optimizer, *args, **kwargs):
        if isinstance(optimizer, AMPOptimizer):  # only --amp: under --fp16/--bf16 stock tasks keep fairseq's forward
            criterion = AutocastCriterion(criterion, functools.partial(autocast_for, model, optimizer))
        return train_step(self, sample, model, criterion, optimizer, *args, **kwargs)

    train_step_with_amp_forward.fairseq_gmlm = True
    return train_step_with_amp_forward


def autocast_stock_train_steps() -> None:
    """Give ``FairseqTask.train_step`` and ``TranslationLevenshteinTask.train_step`` the forward of ``--amp``.
    Tasks with their own ``train_step`` (``translation_gmlm``) keep it. Idempotent."""
    from fairseq.tasks.fairseq_task import FairseqTask
    from fairseq.tasks.translation_lev import TranslationLevenshteinTask

    for task in (FairseqTask, TranslationLevenshteinTask):
        task.train_step = with_amp_forward(task.train_step)

"""Fixes for defects of fairseq 0.12.3 (the PyPI package ``ve-fairseq``) that the plugin patches into fairseq.

Each module patches one place in fairseq and names the defect it fixes by its number in docs/fairseq-fixes.md,
which describes every defect (symptom, cause, fix, test); defects 8, 9 and 10 are fixed by the task
(``TranslationGMLMTask.get_batch_iterator``, ``reduce_metrics``, the ``upsample_primary`` default) and patch
nothing. ``install`` is called once, from the plugin's ``__init__``, when fairseq imports ``--user-dir
fairseq_gmlm``; it is idempotent.
"""

from fairseq_gmlm.fairseq_fixes.amp_autocast import autocast_stock_train_steps
from fairseq_gmlm.fairseq_fixes.checkpoint_copies import make_checkpoint_copies_atomic
from fairseq_gmlm.fairseq_fixes.checkpoint_loading import allow_fairseq_checkpoint_globals, guard_checkpoint_loading
from fairseq_gmlm.fairseq_fixes.error_reporting import report_usage_errors_briefly
from fairseq_gmlm.fairseq_fixes.launch import install_launch_fixes
from fairseq_gmlm.fairseq_fixes.shared_parameters import catalog_real_parameters_only


def install() -> None:
    allow_fairseq_checkpoint_globals()  # 1: torch >= 2.6 refuses fairseq's checkpoints
    guard_checkpoint_loading()  # 2, 3: unreadable checkpoints named; the task checks what fairseq-train resumes
    make_checkpoint_copies_atomic()  # 4: a kill during a checkpoint copy leaves a truncated checkpoint_last.pt
    report_usage_errors_briefly()  # 5: one line on stderr for wrong use, not a traceback
    install_launch_fixes()  # 6, 7: --bf16 off TPUs; torchrun workers on the CPU form one job
    catalog_real_parameters_only()  # 11: bias-free layers logged as one shared parameter
    autocast_stock_train_steps()  # 12: --amp on the CPU left stock tasks (t5_ar's, CMLM's) in float32

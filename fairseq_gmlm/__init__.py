"""fairseq_gmlm: generative masked language models (PaDIR) for fairseq.

Load with ``--user-dir fairseq_gmlm``. fairseq auto-imports ``tasks/*`` and ``models/*`` under this package's
module path, so the imports below use the same path and each component registers once.
"""

from fairseq_gmlm.checkpoints import (
    allow_fairseq_checkpoint_globals, guard_checkpoint_loading, make_checkpoint_copies_atomic,
)
from fairseq_gmlm.errors import report_usage_errors_briefly
from fairseq_gmlm.launch import install_launch_fixes

allow_fairseq_checkpoint_globals()
guard_checkpoint_loading()
make_checkpoint_copies_atomic()
report_usage_errors_briefly()
install_launch_fixes()

from fairseq_gmlm import criterions, models, optim, tasks  # noqa: E402,F401

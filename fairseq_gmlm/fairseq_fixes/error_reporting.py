"""Wrong use ends with one line on stderr that says what to change, not a traceback: defect 5 in
docs/fairseq-fixes.md.

The ``cli_main`` of fairseq 0.12.3's command-line tools (``fairseq_cli/train.py``, ``generate.py``,
``interactive.py``) catches nothing, so every exception raised after argument parsing reaches the interpreter,
which prints the whole stack, also for a wrong flag value or a dictionary that does not fit. The plugin checks
user input with ``UsageError`` and ``CheckpointError`` (``fairseq_gmlm/errors.py``). ``report_usage_errors_briefly``
installs an excepthook that prints ``<tool>: error: <message>`` instead, for those two kinds when raised by this
package's own code; every other exception keeps its full traceback: a bug (a plain ``ValueError`` too, even one
raised in this package), or an error from inside torch or fairseq. Set ``FAIRSEQ_GMLM_TRACEBACK=1`` to see the
traceback of usage errors too. The exit status stays 1.
"""

import os
import sys

from fairseq_gmlm.errors import USER_ERRORS

# The plugin's package directory (fairseq_gmlm/), one level above this module.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def raised_by_plugin(traceback) -> bool:
    """True when the innermost frame of ``traceback`` is in this package."""
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return os.path.abspath(traceback.tb_frame.f_code.co_filename).startswith(PACKAGE_DIR + os.sep)


def is_usage_error(error: BaseException) -> bool:
    """True for a ``UsageError`` or ``CheckpointError`` (or a subclass) raised by this package's code: the errors
    reported in one line. A plain ``ValueError`` is a bug and keeps its traceback."""
    return isinstance(error, USER_ERRORS) and raised_by_plugin(error.__traceback__)


def report_usage_errors_briefly() -> None:
    """Install the excepthook described in the module docstring. Idempotent."""
    if getattr(sys.excepthook, "fairseq_gmlm", False):
        return
    previous = sys.excepthook

    def excepthook(kind, error, traceback):
        if is_usage_error(error) and not os.environ.get("FAIRSEQ_GMLM_TRACEBACK"):
            print(f"{os.path.basename(sys.argv[0]) or 'python'}: error: {error}", file=sys.stderr)
            return
        previous(kind, error, traceback)

    excepthook.fairseq_gmlm = True
    sys.excepthook = excepthook

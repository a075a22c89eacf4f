"""The plugin's two kinds of user-facing error, raised where the problem is detected.

Both end a fairseq command-line tool with one line on stderr instead of a traceback when raised by this package's
own code (see ``fairseq_fixes/error_reporting.py``); every other exception keeps its full traceback.
"""


class UsageError(ValueError):
    """Wrong use (a bad flag value, an input or dictionary that does not fit): the message says what to change.

    A ``ValueError``, so callers and tests that catch ``ValueError`` keep working."""


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read (truncated, not a checkpoint) or does not fit the data."""


USER_ERRORS = (UsageError, CheckpointError)

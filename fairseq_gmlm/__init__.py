"""fairseq_gmlm: generative masked language models (PaDIR) for fairseq.

Load with ``--user-dir fairseq_gmlm``. Importing the package first installs the plugin's fixes to fairseq 0.12.3
(``fairseq_fixes``, described in docs/fairseq-fixes.md). fairseq auto-imports ``tasks/*`` and ``models/*`` under
this package's module path, so the imports below use the same path and each component registers once.
"""

from fairseq_gmlm import fairseq_fixes

fairseq_fixes.install()

from fairseq_gmlm import criterions, models, optim, tasks  # noqa: E402,F401

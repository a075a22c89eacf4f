#!/usr/bin/env python
"""Old command line of ``gmlm-sweep`` (fairseq_gmlm/cli/sweep.py), kept for existing commands."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fairseq_gmlm.cli.sweep import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

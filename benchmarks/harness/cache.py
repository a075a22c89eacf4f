"""Resuming: a stage whose result file exists is not run again."""

import json
import logging
from pathlib import Path
from typing import Callable

logger = logging.getLogger("benchmark.cache")


def cached_json(path: Path, compute: Callable[[], object]):
    """The JSON stored at PATH, or else COMPUTE()'s result, written to PATH first."""
    if path.exists():
        logger.info("skip: %s exists", path)
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    return result

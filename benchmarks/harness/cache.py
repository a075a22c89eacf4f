"""Resuming: a stage whose result file exists is not run again, unless what it was computed from has changed."""

import json
import logging
from pathlib import Path
from typing import Callable, Optional

logger = logging.getLogger("benchmark.cache")


def inputs_path(path: Path) -> Path:
    """Where the inputs of the result at PATH are kept: result.json -> result.inputs.json."""
    return path.with_name(path.stem + ".inputs.json")


def cached_json(path: Path, compute: Callable[[], object], inputs: Optional[object] = None):
    """The JSON stored at PATH, or else COMPUTE()'s result, written to PATH first.

    INPUTS (JSON-able: the decoding flags of the configurations a stage ran, say) names what the result was computed
    from; it is kept beside the result, and a stored result whose inputs differ, or were not kept, is computed again,
    so that a run folder resumed after a change of flags does not report rows decoded with the old ones."""
    stamp = inputs_path(path)
    if path.exists():
        stored = json.loads(stamp.read_text()) if stamp.exists() else None
        if inputs is None or stored == json.loads(json.dumps(inputs)):
            logger.info("skip: %s exists", path)
            return json.loads(path.read_text())
        logger.info("again: %s was computed from %s, now %s", path, stored, inputs)
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    if inputs is not None:
        stamp.write_text(json.dumps(inputs, indent=1))
    return result

"""Where things are in the repository, and paths and commands as a user reads them in reports: relative to it."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
CORPORA = [str(ROOT / "data" / "ding-de-en"), str(ROOT / "data" / "lohelp-de-en")]  # the default --corpora


def relative(value):
    """VALUE with every string that is an absolute path under the repository root made relative to it."""
    if isinstance(value, dict):
        return {key: relative(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [relative(item) for item in value]
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str) and os.path.isabs(value):
        path = Path(os.path.normpath(value))
        if path.is_relative_to(ROOT):
            return str(path.relative_to(ROOT)) or "."
    return value


def shown(command: list) -> str:
    """COMMAND as a user would type it: tools by name, paths inside the repository relative to it."""
    parts = [Path(part).name if index == 0 else part for index, part in enumerate(command)]
    root = str(ROOT) + os.sep
    return " ".join(quote(part.replace(root, "")) for part in map(str, parts))


def quote(part: str) -> str:
    return f"'{part}'" if re.search(r"[\s()']", part) else part

#!/usr/bin/env bash
# Create or reuse the virtual environment .venv and install what fairseq_gmlm needs (CPU torch 2.13.0 pinned:
# an unpinned torch pulls a multi-GB CUDA build). Usage: source scripts/setup_env.sh [requirements file]
#
# ve-fairseq depends on torchaudio, and pip picks the newest one (2.11.1), which is built for another torch and
# fails to load against 2.13 (OSError: Could not load this library: .../_torchaudio.so). fairseq imports it only
# in its speech tasks; transformers imports it whenever it is installed, so one that does not load breaks every
# program that imports transformers. A torchaudio that does not import is therefore removed (docs/install.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="${1:-$root/requirements.txt}"
if [ ! -x "$root/.venv/bin/python" ]; then
  python3 -m venv "$root/.venv"
fi
# shellcheck disable=SC1091
source "$root/.venv/bin/activate"
stamp="$root/.venv/.installed-$(basename "$requirements")-$(cat "$requirements" "$root/requirements.txt" \
  "$root/pyproject.toml" "$root/scripts/setup_env.sh" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "installing into $root/.venv (log: $root/.venv/install.log)" >&2
  {
    python -m pip install --upgrade pip &&
    python -m pip install torch==2.13.0 &&
    python -m pip install -r "$requirements" &&
    python -m pip install --no-deps -e "$root" &&
    { python -c "import torchaudio" 2>/dev/null || python -m pip uninstall -y torchaudio; }
  } > "$root/.venv/install.log" 2>&1 || { tail -30 "$root/.venv/install.log" >&2; exit 1; }
  touch "$stamp"
fi
set +euo pipefail

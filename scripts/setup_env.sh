#!/usr/bin/env bash
# Create or reuse the virtual environment .venv and install what fairseq_gmlm needs (CPU torch 2.13.0 pinned:
# an unpinned torch pulls a multi-GB CUDA build). Usage: source scripts/setup_env.sh [requirements file]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="${1:-$root/requirements.txt}"
if [ ! -x "$root/.venv/bin/python" ]; then
  python3 -m venv "$root/.venv"
fi
# shellcheck disable=SC1091
source "$root/.venv/bin/activate"
stamp="$root/.venv/.installed-$(basename "$requirements")-$(cat "$requirements" "$root/requirements.txt" "$root/pyproject.toml" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "installing into $root/.venv (log: $root/.venv/install.log)" >&2
  {
    python -m pip install --upgrade pip &&
    python -m pip install torch==2.13.0 &&
    python -m pip install -r "$requirements" &&
    python -m pip install --no-deps -e "$root"
  } > "$root/.venv/install.log" 2>&1 || { tail -30 "$root/.venv/install.log" >&2; exit 1; }
  touch "$stamp"
fi
set +euo pipefail

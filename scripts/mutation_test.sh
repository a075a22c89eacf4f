#!/usr/bin/env bash
# Mutation testing of the pure modules (noising, rejecters, refinement, length head, loss) against their fast
# unit tests, with mutmut 3 as configured in pyproject.toml's [tool.mutmut]. Starts afresh in mutants/
# (git-ignored), then prints the score and every mutant that survived; `mutmut show NAME` prints its diff.
# Usage: scripts/mutation_test.sh [PYTHON]   (default: python; needs `pip install mutmut`)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${1:-python}"
export OMP_NUM_THREADS=1
rm -rf mutants
"$PYTHON" -m mutmut run --max-children "${MUTMUT_CHILDREN:-1}"
"$PYTHON" -m mutmut export-cicd-stats >/dev/null
"$PYTHON" - <<'SCORE'
import json
stats = json.load(open("mutants/mutmut-cicd-stats.json"))
judged = stats["killed"] + stats["survived"] + stats["timeout"] + stats.get("segfault", 0)
print(f"mutation score: {stats['killed'] + stats['timeout']} of {judged} mutants killed "
      f"({100 * (stats['killed'] + stats['timeout']) / max(judged, 1):.1f}%); {stats['survived']} survived, "
      f"{stats['no_tests']} not covered by a fast test")
SCORE
echo "surviving mutants:"
"$PYTHON" -m mutmut results

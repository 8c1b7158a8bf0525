#!/usr/bin/env bash
# Every run behind bench/EXPERIMENT.md, in order; each writes bench/results/<name>.json (and a .log,
# not kept in git). Re-running a line reproduces its numbers (seeded; --resume skips the (method,
# seed) pairs a JSON already holds, so an interrupted run continues where it stopped).
# On a CPU-only machine it uses lavapipe (../shared/lavapipe.sh or scripts/lavapipe.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
  eval "$(bash scripts/lavapipe.sh)"
fi
mkdir -p bench/results
run() { # name, then the experiment's arguments
  local name=$1; shift
  echo "== $name: npm run experiment -- $*"
  npm run -s experiment -- "$@" --json "bench/results/$name.json" --resume 2>&1 | grep --line-buffered -v '^Warning: maxDynamic' > "bench/results/$name.log"
}
only=${1:-all}
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }

# 1. the main table: the default toy base, split-key lookup, every method, 3 seeds
want main && run toy-lookup-d1 --task lookup --difficulty 1 --seeds 3
# 2. the CI preset (tiny base; tests/experiment.test.ts checks this ordering), the untrained methods
#    beside it (the full-trace and detached rows are in the main table)
want tiny && run tiny-lookup-d1 --preset tiny --task lookup --difficulty 1 --methods single,skyline,text,latentmas,diffmas --seeds 3
# 3. message budget (tiny): m latent steps for the latent channels, token budget for text
if want budget; then
  for m in 1 8; do run "tiny-lookup-d1-m$m" --preset tiny --methods latentmas,diffmas --latent-steps "$m" --seeds 3; done
  for b in 2 4; do run "tiny-lookup-d1-text$b" --preset tiny --methods text --text-budget "$b" --seeds 3; done
fi
# 4. difficulty knob (tiny): tables of 3 and 4 entries
if want difficulty; then
  for d in 2 3; do run "tiny-lookup-d$d" --preset tiny --methods single,skyline,text,latentmas,diffmas --difficulty "$d" --seeds 3; done
fi

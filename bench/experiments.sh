#!/usr/bin/env bash
# Every run behind bench/EXPERIMENT.md, in order; each writes bench/results/<name>.json (and a .log,
# not kept in git). Re-running a line reproduces its numbers (seeded; --resume keeps the (method,
# seed) pairs a JSON already holds, so an interrupted run continues where it stopped).
#   bash bench/experiments.sh [all|grid|grid-lookup|grid-relay-arith|main|budget|budget-lookup|budget-relay|relay-m3|steps|steps-d2|steps-d3|steps-m8|ci]
#   (default all; two shells can share a 2-core machine: "grid-lookup main budget-lookup" and
#   "grid-relay-arith budget-relay ci", each section a separate argument)
# On a CPU-only machine it uses lavapipe (scripts/lavapipe.sh); with a GPU, Vulkan finds it.
# Measured on 2 busy cores (2026-12-02): one grid setting (3 seeds, every method, four controls) about
# 56 minutes (toy-lookup-d3: 3376 s), a text budget point 1.5 minutes, a latent budget point (latentmas
# and diffmas, 3 seeds) 15-20 minutes, the CI preset 6 minutes.
# Then: node bench/grid.mjs bench/results/toy-*-d?.json; and, with the grid's m = 4 / B = 16 reports,
#   node bench/budget.mjs --out bench bench/results/toy-lookup-d3.json bench/results/toy-relay-d2.json bench/results/toy-*-budget-*.json
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
sections=("${@:-all}")
want() { # section, then the larger sections it belongs to
  local s
  for s in "${sections[@]}"; do for w in all "$@"; do [ "$s" = "$w" ] && return 0; done; done
  return 1
}

# 1. the grid: the default toy base, every task setting the bases were made for, every method,
#    3 seeds, 512 episodes per split, the four controls (shuffle, zero, noise, rotate); task:difficulty:seeds.
#    5 seeds where 3 left diffmas against diffmas-detached undecided (lookup d2, arith d1), and on lookup
#    d3, which is also the main table: one line per report, since --resume keeps only the seeds asked
#    for and a 3-seed line would drop seeds 4-5
grid() { local t d n; for s in "$@"; do IFS=: read -r t d n <<<"$s"; run "toy-$t-d$d" --task "$t" --difficulty "$d" --seeds "$n"; done; }
main() { grid lookup:3:5; }
want grid-lookup grid && grid lookup:1:3 lookup:2:5 && main
want grid-relay-arith grid && grid relay:1:3 relay:2:3 arith:1:5
# 2. the main table: the grid's lookup d3 setting with 5 seeds (resumes the grid's report: seeds 1-3 are kept)
want main && main
# 3. the budget curve: accuracy against message size on lookup d3 and relay d2; text at B tokens,
#    the latent channels at m latent steps per sender (m = 4 and B = 16 are the grid's own runs);
#    budget's second argument is the seeds at m = 8 (6 on lookup d3, where one seed of the first three jumped)
budget() {
  local t=${1%:*} d=${1#*:}
  for b in 1 2 4 8; do run "toy-$t-d$d-budget-text$b" --task "$t" --difficulty "$d" --methods text --text-budget "$b" --seeds 3; done
  for m in 1 2 8; do run "toy-$t-d$d-budget-m$m" --task "$t" --difficulty "$d" --methods latentmas,diffmas --latent-steps "$m" --seeds "$([ "$m" = 8 ] && echo "$2" || echo 3)"; done
}
want budget-lookup budget && budget lookup:3 6
want budget-relay budget && budget relay:2 3
#    relay d2 at m = 3: does the learned channel carry the 3-letter secret in 6 positions, as text does?
want relay-m3 budget && run toy-relay-d2-budget-m3 --task relay --difficulty 2 --methods latentmas,diffmas --latent-steps 3 --seeds 3
# 3b. more training: diffmas at 1,200 steps (3x the preset) on lookup d2 and d3, where 400 steps end on
#    the values plateau; the same seeds and episodes as the grid, so the grid's 400-step rows compare
steps() { for d in "$@"; do run "toy-lookup-d$d-steps1200" --task lookup --difficulty "$d" --methods diffmas --steps 1200 --seeds 3; done; }
want steps-d2 steps && steps 2
want steps-d3 steps && steps 3
#    and at m = 8 on lookup d3, where 3 of 6 seeds left the plateau within 400 steps (not a budget-*
#    name: budget.mjs would take it for another m = 8 point)
want steps-m8 steps && run toy-lookup-d3-m8-steps1200 --task lookup --difficulty 3 --methods diffmas --latent-steps 8 --steps 1200 --seeds 3
# 4. the CI preset (tiny base; tests/experiment.test.ts checks this ordering)
want ci && run tiny-lookup-d1 --preset tiny --task lookup --difficulty 1 --methods single,skyline,text,latentmas,diffmas --seeds 3
exit 0

#!/usr/bin/env bash
# Every run behind bench/EXPERIMENT.md, in order; each writes bench/results/<name>.json (and a .log,
# not kept in git). Re-running a line reproduces its numbers (seeded; --resume keeps the (method,
# seed) pairs a JSON already holds, so an interrupted run continues where it stopped).
#   bash bench/experiments.sh [all|main|main-base2|main-base1|main-base3|grid|grid-lookup|grid-relay-arith|budget|budget-lookup|budget-relay|relay-m3|steps|steps-d2|steps-d3|steps-m8|text-lr|ablation|latency|latency-lookup|latency-relay|ci]
#   (default all; two shells can share a 2-core machine: "main-base2 grid-lookup budget-lookup" and
#   "main-base1 main-base3 grid-relay-arith budget-relay ci", each section a separate argument)
# The instrument of issue 19: splits keyed by what the senders see, one evaluation set (--eval-seed,
# default 1) for every method and seed, the equally trained baselines (single-trained,
# skyline-trained, text-trained), per-episode outcomes and paired bootstrap statistics, bounds, and
# for the main table the probes and the measured bits. Reports of the earlier instrument are in
# bench/results/old-instrument/ and are not comparable.
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

# 1. the main table: lookup d3, every method, 5 seeds, every control, probes and measured bits, on each
#    of the three toy bases (pretraining seeds 2 = the shipped public/models/toy, 1 and 3 =
#    bench/bases/toy-seed{1,3}, made by scripts/make-models.sh toy --torch --seed S --out DIR)
main() { # base seed, then the base folder (empty: the preset's)
  local name=toy-lookup-d3; [ "$1" = 2 ] || name=toy-base$1-lookup-d3
  run "$name" --task lookup --difficulty 3 --seeds 5 --probe --bits ${2:+--model "$2"}
}
want main main-base2 && main 2
want main main-base1 && main 1 bench/bases/toy-seed1
want main main-base3 && main 3 bench/bases/toy-seed3
# 2. the grid: the shipped toy base, every task setting the bases were made for, every method, 5 seeds,
#    512 episodes per split (fewer where a split holds fewer distinct episodes: relay d1 and arith d1
#    heldout), every control; task:difficulty:seeds. lookup d3 is the main table's report.
grid() { local t d n; for s in "$@"; do IFS=: read -r t d n <<<"$s"; run "toy-$t-d$d" --task "$t" --difficulty "$d" --seeds "$n"; done; }
want grid-lookup grid && grid lookup:1:5 lookup:2:5 && main 2
want grid-relay-arith grid && grid relay:1:5 relay:2:5 arith:1:5
# 3. the budget curve: accuracy against message size on lookup d3 and relay d2; text at B tokens,
#    the latent channels at m latent steps per sender (m = 4 and B = 16 are the grid's own runs);
#    budget's second argument is the seeds at m = 8 (6 on lookup d3, where one seed of the first three jumped)
budget() {
  local t=${1%:*} d=${1#*:}
  for b in 1 2 4 8; do run "toy-$t-d$d-budget-text$b" --task "$t" --difficulty "$d" --methods text,text-trained --text-budget "$b" --seeds 3; done
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
# 3c. text-trained at a lower lr on the main table's setting: at lr 0.003, 2 of 5 seeds stopped at 0.291
#     and 0.666 held-out while 3 reached 0.984; is that the lr or the channel? (same seeds and episodes)
want text-lr && run toy-lookup-d3-text-trained-lr1e-3 --task lookup --difficulty 3 --methods text-trained --lr 0.001 --seeds 5
# 3d. the values plateau (issue 22 item 2): a training ablation of diffmas on lookup d3, 8 seeds per
#     arm (the same seeds and episodes in every arm); node bench/ablation.mjs bench/results/toy-lookup-d3-ablation-*.json
#     counts per arm the seeds whose held-out 95% interval lies wholly above the values-only bound;
#     --against bench/results/toy-lookup-d3.json sets each seed beside the main table's same seed, paired
#     ABLATION_SEEDS=N runs the first N seeds of every arm (a first pass over all arms; the same command
#     with more seeds later resumes each report). The cheap arms come first; the base arm repeats the main
#     table's diffmas runs (seeds 1-5 must reproduce its answers) and goes after them; 5,000 steps last.
ablation() { run "toy-lookup-d3-ablation-$1" --task lookup --difficulty 3 --methods diffmas --seeds "${ABLATION_SEEDS:-8}" --no-controls "${@:2}"; }
if want ablation; then
  ablation slot-offset --latent-slot-offset
  ablation lora32-mlp --rank 32 --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj
  ablation quiz --quiz-loss
  ablation curriculum-d1 --curriculum-from 1
  ablation base
  ablation steps5000-constant --steps 5000 --lr-schedule constant
fi
# 3e. the latency budget (issue 22 item 1): T sequential passes per sender, T = 0 1 2 4 8, on lookup d3
#     and relay d2, 5 seeds: text and text-trained decode T tokens (T = 0: single and single-trained,
#     nothing crosses), latentmas-full and diffmas-full read the prefilled prompt cache plus T latent
#     steps (src/mas/latency.ts; each report's args.latency). permute is left out (the identity at T <= 1).
#     Then: node bench/latency.mjs --out bench bench/results/toy-*-latency-T*.json
latency() { local t=${1%:*} d=${1#*:} T; for T in 0 1 2 4 8; do run "toy-$t-d$d-latency-T$T" --task "$t" --difficulty "$d" --latency "$T" --seeds 5 --controls shuffle,zero,noise,rotate; done; }
want latency-lookup latency && latency lookup:3
want latency-relay latency && latency relay:2
# 4. the CI preset (tiny base; tests/experiment.test.ts checks this ordering)
want ci && run tiny-lookup-d1 --preset tiny --task lookup --difficulty 1 --methods single,skyline,single-trained,skyline-trained,text,text-trained,latentmas,diffmas --seeds 3
exit 0

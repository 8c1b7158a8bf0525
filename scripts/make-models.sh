#!/usr/bin/env bash
# Regenerates the shipped base checkpoints in public/models/ with the pretraining recipe of
# src/model/pretrain.ts (bench/EXPERIMENT.md, "pretraining recipe"), then evaluates each on held-out
# episodes of every task and difficulty (skyline and text channel; `evaluation` in its
# training_args.json, which also records the time it took and the adapter it ran on).
#   bash scripts/make-models.sh [tiny|toy]     (default: both)
# On a CPU-only machine it uses Mesa's lavapipe (scripts/lavapipe.sh), the faster CPU driver: on 2
# cores about 30 minutes for tiny and two hours for toy. With a GPU, set nothing: Vulkan finds it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
  eval "$(bash scripts/lavapipe.sh)"
fi
only=${1:-all}
if [ "$only" = all ] || [ "$only" = tiny ]; then
  npm run -s pretrain -- --preset tiny --steps 10000 --batch 32 --lr 0.003 --seed 1 --out public/models/tiny --force --log-every 250
fi
if [ "$only" = all ] || [ "$only" = toy ]; then
  npm run -s pretrain -- --preset toy --steps 10000 --batch 32 --lr 0.003 --seed 1 --out public/models/toy --force --log-every 250
fi

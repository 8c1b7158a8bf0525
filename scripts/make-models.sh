#!/usr/bin/env bash
# Regenerates the shipped base checkpoints in public/models/ (made on a CPU-only machine, 2 cores:
# tiny in ~3 minutes, toy in ~20 minutes with lavapipe; several times longer on SwiftShader).
# Uses Mesa's lavapipe (../shared/lavapipe.sh) when it is there, the faster CPU driver.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f ../shared/lavapipe.sh ] && [ -z "${VK_ICD_FILENAMES:-}" ]; then eval "$(bash ../shared/lavapipe.sh)"; fi
npm run -s pretrain -- --preset tiny --steps 1200 --batch 16 --seed 1 --out public/models/tiny --force --log-every 100
npm run -s pretrain -- --preset toy --steps 800 --batch 16 --seed 1 --out public/models/toy --force --log-every 100

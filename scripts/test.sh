#!/usr/bin/env bash
# The whole test suite: unit tests (vitest, Dawn for Node on this machine's Vulkan driver) then the
# end-to-end specs (Playwright driving the system Chromium against the built page).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/with-vulkan.sh npx vitest run
npx vite build
npx playwright test

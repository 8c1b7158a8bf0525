#!/usr/bin/env bash
# The whole test suite: unit tests (vitest, Dawn for Node on this machine's Vulkan driver) then the
# end-to-end specs (Playwright driving the system Chromium against the built page).
set -euo pipefail
cd "$(dirname "$0")/.."
long=tests/experiment.test.ts
bash scripts/with-vulkan.sh npx vitest run --exclude "$long"
# The PyTorch companion's tests (python/tests: cross-checks with the engine, two gloo processes) in the
# virtual environment .ci/run makes (.cache/venv); without it they are skipped with a note.
if [ -x .cache/venv/bin/python ]; then
  .cache/venv/bin/python -m pytest -q -p no:cacheprovider python/tests
else
  echo "python tests skipped: no .cache/venv (bash .ci/run makes it; see python/README.md)"
fi
# The experiment test trains DiffMAS for 3 x 200 steps on the tiny base. Without a GPU it runs on lavapipe (Mesa 25
# from Debian's backports, about 7x SwiftShader) when that can be fetched, else on SwiftShader.
(
  if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
    if lvp=$(bash scripts/lavapipe.sh 2>/dev/null); then eval "$lvp"; echo "experiment test on lavapipe"; fi
  fi
  bash scripts/with-vulkan.sh npx vitest run "$long"
)
npx vite build
npx playwright test

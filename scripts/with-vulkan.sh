#!/usr/bin/env bash
# Runs a command with a Vulkan driver Dawn for Node can use. On a machine without a GPU this is the
# SwiftShader driver that Debian's chromium package ships (see ../shared/ci-notes.md). An explicit
# VK_ICD_FILENAMES (a real GPU, or lavapipe from ../shared/lavapipe.sh) is left as it is.
set -euo pipefail
swiftshader=/usr/lib/chromium/vk_swiftshader_icd.json
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$swiftshader" ] \
   && ! ls /usr/share/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
  export VK_ICD_FILENAMES=$swiftshader
  export LD_LIBRARY_PATH=/usr/lib/chromium${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
exec "$@"

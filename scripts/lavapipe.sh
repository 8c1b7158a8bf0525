#!/bin/bash
# Copied from ../shared/lavapipe.sh so that a clean clone (CI) has it; scripts/test.sh uses it for the
# long experiment test, falling back to SwiftShader when it cannot be fetched.
# Optional: a faster CPU WebGPU driver for Node (Dawn) than SwiftShader: Mesa 25's lavapipe from
# Debian's bookworm-backports, unpacked into a private folder (the system's Mesa is not touched).
#   usage: eval "$(bash ../shared/lavapipe.sh [DIR])"     (DIR defaults to ./.cache/lavapipe)
# It prints the two exports (VK_ICD_FILENAMES, LD_LIBRARY_PATH) that point Dawn at it.
# Seen here: a 64x64-tile f32 matmul at 256-512 ran at about 2.1 GFLOP/s, SwiftShader 0.3.
# Chromium cannot use it (it keeps SwiftShader), so e2e tests are unaffected.
set -euo pipefail
dir=$(mkdir -p "${1:-.cache/lavapipe}" && cd "${1:-.cache/lavapipe}" && pwd)
lib="$dir/root/usr/lib/x86_64-linux-gnu"
# bookworm's own Mesa Vulkan package brings the libraries lavapipe 25 links against (LLVM 15, xcb, ...)
dpkg -s mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
if [ ! -f "$lib/libvulkan_lvp.so" ]; then
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" > "$dir/apt/bp.sources"
  o=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/dev/null -o "Dir::Etc::SourceList=$dir/apt/bp.sources"
     -o "Dir::State::Lists=$dir/apt/lists" -o "Dir::Cache=$dir/apt/cache" -o Debug::NoLocking=1)
  apt-get "${o[@]}" update >/dev/null 2>&1
  (cd "$dir/debs" && apt-get "${o[@]}" download mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 >/dev/null 2>&1)
  for f in "$dir"/debs/*.deb; do dpkg -x "$f" "$dir/root"; done
  [ -f "$lib/libvulkan_lvp.so" ] || { echo "lavapipe download failed" >&2; exit 1; }
fi
printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s/libvulkan_lvp.so","api_version":"1.4.305"}}\n' "$lib" > "$dir/lvp_icd.json"
echo "export VK_ICD_FILENAMES=$dir/lvp_icd.json LD_LIBRARY_PATH=$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"

// KV-cache plumbing. Caches are [B, P, W] (W = Hkv*hd): per sequence, positions in order.
// kv_concat_forward copies src [B, n, W] into dst [B, Pd, W] at positions off..off+n (a concat is
// one call per source). kv_concat_backward is its transpose: dsrc[b, i, :] (+)= ddst[b, off + i, :].
// One invocation per element; nothing is saved.

struct Params { B: u32, n: u32, W: u32, Pd: u32, off: u32 }

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn coords(gid: vec3<u32>, nwg: vec3<u32>) -> vec3<u32> {
  // (element index, b, i) from a 2-D grid of 64-wide workgroups.
  let idx = gid.x + gid.y * nwg.x * 64u;
  let per = p.n * p.W;
  return vec3<u32>(idx, idx / max(per, 1u), (idx % max(per, 1u)) / p.W);
}

@compute @workgroup_size(64)
fn kv_concat_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = coords(gid, nwg);
  if (c.x >= p.B * p.n * p.W) { return; }
  let w = c.x % p.W;
  dst[(c.y * p.Pd + p.off + c.z) * p.W + w] = src[c.x];
}

// Here `src` is the gradient of the destination cache and `dst` the gradient of the source.
@compute @workgroup_size(64)
fn kv_concat_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = coords(gid, nwg);
  if (c.x >= p.B * p.n * p.W) { return; }
  let w = c.x % p.W;
  let g = src[(c.y * p.Pd + p.off + c.z) * p.W + w];
  if (ACCUMULATE) { dst[c.x] += g; } else { dst[c.x] = g; }
}

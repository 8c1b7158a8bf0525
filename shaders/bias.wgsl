// Bias family on the rows of y [T, N] (a Linear's output): forward y[t, j] += b[j] in place; backward
// db[j] += sum_t dy[t, j] (the input gradient passes through unchanged). Saves nothing.
// Forward: one invocation per element in 256-wide workgroups, grid-stride over T*N.
// Backward: one invocation per column j, looping over the T rows (no float atomics in WGSL), grid-stride
// over N; each column's sum is one sequential loop, so the result does not depend on the grid.

struct Params { T: u32, N: u32 }

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> fwd_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> fwd_y: array<f32>;

@compute @workgroup_size(256)
fn bias_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = p.T * p.N;
  for (var i = gid.x; i < n; i += nwg.x * WG) {
    fwd_y[i] = fwd_y[i] + fwd_b[i % p.N];
  }
}

@group(0) @binding(1) var<storage, read> bwd_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> bwd_db: array<f32>;

@compute @workgroup_size(256)
fn bias_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var j = gid.x; j < p.N; j += nwg.x * WG) {
    var s = 0.0;
    for (var t = 0u; t < p.T; t++) {
      s += bwd_dy[t * p.N + j];
    }
    bwd_db[j] = bwd_db[j] + s;
  }
}

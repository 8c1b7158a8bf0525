// Cache-to-Cache fuser gate (src/gpu/ops/c2c.ts, src/mas/c2c-fuser.ts). Per layer and K/V the fuser
// maps a received prefix X [n = B*P*W values] to Y = X + s * T, T = X A (a matmul, done apart), with
// s = sigmoid(gate[gi]) read on the GPU (the gate is a trained parameter). Forward and backward:
//   c2c_fuse:       y = x + s * t
//   c2c_fuse_back:  dx = dy (the identity path; the caller adds dT A^T), dt = s * dy
//   c2c_gate_grad:  dgate[gi] += s (1 - s) * sum(t * dy)   (one workgroup: a fixed-order tree sum)
// Elementwise kernels: one invocation per value in 256-wide workgroups, grid-stride.

struct Params { n: u32, gi: u32 }

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;

fn sigmoid(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}

@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read> f_t: array<f32>;
@group(0) @binding(3) var<storage, read> f_gate: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_y: array<f32>;

@compute @workgroup_size(256)
fn c2c_fuse(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = sigmoid(f_gate[p.gi]);
  for (var i = gid.x; i < p.n; i += nwg.x * WG) {
    f_y[i] = fma(s, f_t[i], f_x[i]);
  }
}

@group(0) @binding(1) var<storage, read> b_dy: array<f32>;
@group(0) @binding(2) var<storage, read> b_gate: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_dx: array<f32>;
@group(0) @binding(4) var<storage, read_write> b_dt: array<f32>;

@compute @workgroup_size(256)
fn c2c_fuse_back(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = sigmoid(b_gate[p.gi]);
  for (var i = gid.x; i < p.n; i += nwg.x * WG) {
    let d = b_dy[i];
    b_dx[i] = d;
    b_dt[i] = s * d;
  }
}

@group(0) @binding(1) var<storage, read> g_t: array<f32>;
@group(0) @binding(2) var<storage, read> g_dy: array<f32>;
@group(0) @binding(3) var<storage, read> g_gate: array<f32>;
@group(0) @binding(4) var<storage, read_write> g_dgate: array<f32>;

var<workgroup> partial: array<f32, 256>;

// Dispatched as one workgroup: each invocation sums a strided share, then a tree over the 256 sums.
@compute @workgroup_size(256)
fn c2c_gate_grad(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var i = lid.x; i < p.n; i += WG) {
    acc = fma(g_t[i], g_dy[i], acc);
  }
  partial[lid.x] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid.x < stride) {
      partial[lid.x] = partial[lid.x] + partial[lid.x + stride];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let s = sigmoid(g_gate[p.gi]);
    g_dgate[p.gi] = g_dgate[p.gi] + s * (1.0 - s) * partial[0];
  }
}

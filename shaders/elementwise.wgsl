// Elementwise family over n f32 values. Layout: one invocation per element in 256-wide workgroups on
// a 1-D grid of at most maxComputeWorkgroupsPerDimension workgroups; each invocation walks
// i = gid, gid + 256 * num_workgroups, ... (grid-stride), so any n fits without a 2-D grid.
// No state is saved. Backward of each op is itself an op of this family (docs/engine.md):
//   add:   dA = dC, dB = dC (no kernel)         axpy:  dX += alpha * dY (axpy), dY passes through
//   scale: dX = alpha * dOut (scale)            fill:  no tensor input (d value = sum of dOut)
// `alpha` is the scalar of axpy and scale, the value of fill, and unused by add.

struct Params { n: u32, alpha: f32 }

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;

// add: c = a + b.
@group(0) @binding(1) var<storage, read> add_a: array<f32>;
@group(0) @binding(2) var<storage, read> add_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> add_c: array<f32>;

@compute @workgroup_size(256)
fn ew_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i += nwg.x * WG) {
    add_c[i] = add_a[i] + add_b[i];
  }
}

// axpy: y += alpha * x.
@group(0) @binding(1) var<storage, read> axpy_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> axpy_y: array<f32>;

@compute @workgroup_size(256)
fn ew_axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i += nwg.x * WG) {
    axpy_y[i] = fma(p.alpha, axpy_x[i], axpy_y[i]);
  }
}

// scale: x *= alpha (in place).
@group(0) @binding(1) var<storage, read_write> scale_x: array<f32>;

@compute @workgroup_size(256)
fn ew_scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i += nwg.x * WG) {
    scale_x[i] = p.alpha * scale_x[i];
  }
}

// fill: x = alpha.
@group(0) @binding(1) var<storage, read_write> fill_x: array<f32>;

@compute @workgroup_size(256)
fn ew_fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i += nwg.x * WG) {
    fill_x[i] = p.alpha;
  }
}

// RMSNorm over the rows of x [T, D] with weight w [D] (docs/engine.md):
//   y = x * rrms * w,   rrms = 1 / sqrt(mean(x^2) + eps) per row.
// Backward, with S = sum_j dy_j w_j x_j over the row:
//   dx_i = rrms * w_i * dy_i - (rrms^3 / D) * S * x_i,    dw_i += sum_t dy_ti x_ti rrms_t.
// Row kernels run one invocation per row (64 rows per workgroup, grid-stride over rows when T
// exceeds the grid): our rows are short (D <= a few hundred), so a serial row sum beats a workgroup
// tree reduction, whose barriers dominate on CPU adapters (SwiftShader ran it ~50x slower).

struct Params { T: u32, D: u32, eps: f32 }

override ACCUMULATE: bool = false;  // rmsnorm_backward: dx += ... instead of dx = ...

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;

// rmsnorm_forward: x, w -> y [T, D], rrms [T] (saved for the backward pass).
// One invocation per row.
@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read> f_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_rrms: array<f32>;

@compute @workgroup_size(64)
fn rmsnorm_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var row = gid.x; row < p.T; row += nwg.x * WG) {
    let base = row * p.D;
    var ss = 0.0;
    for (var d = 0u; d < p.D; d++) {
      let v = f_x[base + d];
      ss = fma(v, v, ss);
    }
    let r = inverseSqrt(ss / f32(p.D) + p.eps);
    for (var d = 0u; d < p.D; d++) {
      f_y[base + d] = f_x[base + d] * r * f_w[d];
    }
    f_rrms[row] = r;
  }
}

// rmsnorm_backward: dy, x, w, rrms -> dx [T, D] (overwritten, or accumulated when ACCUMULATE, for the
// residual stream). One invocation per row. dw is left to rmsnorm_backward_dw.
@group(0) @binding(1) var<storage, read> b_dy: array<f32>;
@group(0) @binding(2) var<storage, read> b_x: array<f32>;
@group(0) @binding(3) var<storage, read> b_w: array<f32>;
@group(0) @binding(4) var<storage, read> b_rrms: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dx: array<f32>;

@compute @workgroup_size(64)
fn rmsnorm_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var row = gid.x; row < p.T; row += nwg.x * WG) {
    let base = row * p.D;
    var s = 0.0;
    for (var d = 0u; d < p.D; d++) {
      s = fma(b_dy[base + d] * b_w[d], b_x[base + d], s);
    }
    let r = b_rrms[row];
    let c = r * r * r * s / f32(p.D);
    for (var d = 0u; d < p.D; d++) {
      var g = r * b_w[d] * b_dy[base + d] - c * b_x[base + d];
      if (ACCUMULATE) { g += b_dx[base + d]; }
      b_dx[base + d] = g;
    }
  }
}

// rmsnorm_backward_dw: dy, x, rrms -> dw [D] += sum over rows of dy * x * rrms (parameter gradients
// always accumulate). One invocation per column looping over the T rows (no atomics); neighbouring
// invocations read neighbouring addresses. Grid-stride over columns.
@group(0) @binding(1) var<storage, read> c_dy: array<f32>;
@group(0) @binding(2) var<storage, read> c_x: array<f32>;
@group(0) @binding(3) var<storage, read> c_rrms: array<f32>;
@group(0) @binding(4) var<storage, read_write> c_dw: array<f32>;

@compute @workgroup_size(64)
fn rmsnorm_backward_dw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var d = gid.x; d < p.D; d += nwg.x * 64u) {
    var acc = 0.0;
    for (var t = 0u; t < p.T; t++) {
      let i = t * p.D + d;
      acc = fma(c_dy[i] * c_x[i], c_rrms[t], acc);
    }
    c_dw[d] += acc;
  }
}

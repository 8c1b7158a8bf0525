// RMSNorm over the rows of x [T, D] with weight w [D] (docs/engine.md):
//   y = x * rrms * w,   rrms = 1 / sqrt(mean(x^2) + eps) per row.
// Backward, with S = sum_j dy_j w_j x_j over the row:
//   dx_i = rrms * w_i * dy_i - (rrms^3 / D) * S * x_i,    dw_i += sum_t dy_ti x_ti rrms_t.
// Row kernels run one 256-wide workgroup per row (grid-stride over rows when T exceeds the grid) with
// a tree reduction in workgroup memory (1 KiB) for the row sum.

struct Params { T: u32, D: u32, eps: f32 }

override ACCUMULATE: bool = false;  // rmsnorm_backward: dx += ... instead of dx = ...

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

// Sum of v over the workgroup; call from uniform control flow. Ends with a barrier so the next call
// may overwrite `red` safely.
fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

// rmsnorm_forward: x, w -> y [T, D], rrms [T] (saved for the backward pass).
// One workgroup per row; each invocation strides over the row's columns.
@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read> f_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_rrms: array<f32>;

@compute @workgroup_size(256)
fn rmsnorm_forward(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
  let lid = lid3.x;
  for (var row = wid.x; row < p.T; row += nwg.x) {
    let base = row * p.D;
    var ss = 0.0;
    for (var d = lid; d < p.D; d += WG) {
      let v = f_x[base + d];
      ss = fma(v, v, ss);
    }
    let r = inverseSqrt(wg_sum(ss, lid) / f32(p.D) + p.eps);
    for (var d = lid; d < p.D; d += WG) {
      f_y[base + d] = f_x[base + d] * r * f_w[d];
    }
    if (lid == 0u) { f_rrms[row] = r; }
  }
}

// rmsnorm_backward: dy, x, w, rrms -> dx [T, D] (overwritten, or accumulated when ACCUMULATE, for the
// residual stream). One workgroup per row, one reduction for S. dw is left to rmsnorm_backward_dw.
@group(0) @binding(1) var<storage, read> b_dy: array<f32>;
@group(0) @binding(2) var<storage, read> b_x: array<f32>;
@group(0) @binding(3) var<storage, read> b_w: array<f32>;
@group(0) @binding(4) var<storage, read> b_rrms: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dx: array<f32>;

@compute @workgroup_size(256)
fn rmsnorm_backward(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
  let lid = lid3.x;
  for (var row = wid.x; row < p.T; row += nwg.x) {
    let base = row * p.D;
    var acc = 0.0;
    for (var d = lid; d < p.D; d += WG) {
      acc = fma(b_dy[base + d] * b_w[d], b_x[base + d], acc);
    }
    let s = wg_sum(acc, lid);
    let r = b_rrms[row];
    let c = r * r * r * s / f32(p.D);
    for (var d = lid; d < p.D; d += WG) {
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

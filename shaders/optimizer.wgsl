// Optimizer kernels: global gradient-norm clipping and AdamW, with no CPU readback in between.
// A step records sum_squares once per gradient tensor (slot i of `partials`), then clip_scale once
// (partials -> scale, norm), then adamw once per parameter tensor (reads scale[0]).
// Each entry point declares its own resources; two entry points may reuse binding numbers because no
// single pipeline sees both declarations.

const WG: u32 = 256u;

// ---- sum of squares of one tensor ----------------------------------------------------------------
// Layout: a single workgroup of 256 invocations; invocation t sums x[t], x[t+256], ... into four
// independent accumulators (any n, no dispatch-size limit), then a tree reduction in workgroup memory
// (1 KiB). Writes partials[slot] = sum x^2. Saves nothing else.

struct SumSqParams {
  n: u32,
  slot: u32,
}

@group(0) @binding(0) var<uniform> sq: SumSqParams;
@group(0) @binding(1) var<storage, read> sq_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sq_partials: array<f32>;

var<workgroup> red: array<f32, 256>;

fn reduce_red(t: u32) {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
}

@compute @workgroup_size(256)
fn sum_squares(@builtin(local_invocation_index) t: u32) {
  var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0;
  var i = t;
  // Four elements per round while a whole round fits; n <= 2^30 (the binding limit) so no overflow.
  for (; i + 3u * WG < sq.n; i += 4u * WG) {
    let x0 = sq_x[i]; let x1 = sq_x[i + WG]; let x2 = sq_x[i + 2u * WG]; let x3 = sq_x[i + 3u * WG];
    a0 = fma(x0, x0, a0); a1 = fma(x1, x1, a1); a2 = fma(x2, x2, a2); a3 = fma(x3, x3, a3);
  }
  for (; i < sq.n; i += WG) {
    let x = sq_x[i];
    a0 = fma(x, x, a0);
  }
  red[t] = (a0 + a1) + (a2 + a3);
  workgroupBarrier();
  reduce_red(t);
  if (t == 0u) { sq_partials[sq.slot] = red[0]; }
}

// ---- clip scale ------------------------------------------------------------------------------------
// Layout: a single workgroup of 256 invocations sums partials[0..count) (strided, then a tree reduction).
// norm = grad_scale * sqrt(total) (the norm of the gradient the optimizer will apply, after averaging
// over accumulation steps); scale = min(1, max_norm / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_,
// or 1 when max_norm <= 0 (no clipping). Writes norm[0] and scale[0].

struct ClipParams {
  count: u32,
  max_norm: f32,
  grad_scale: f32,
}

@group(0) @binding(0) var<uniform> cp: ClipParams;
@group(0) @binding(1) var<storage, read> cp_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> cp_scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> cp_norm: array<f32>;

@compute @workgroup_size(256)
fn clip_scale(@builtin(local_invocation_index) t: u32) {
  var acc = 0.0;
  for (var i = t; i < cp.count; i += WG) { acc += cp_partials[i]; }
  red[t] = acc;
  workgroupBarrier();
  reduce_red(t);
  if (t == 0u) {
    let norm = cp.grad_scale * sqrt(red[0]);
    cp_norm[0] = norm;
    var s = 1.0;
    if (cp.max_norm > 0.0) { s = min(1.0, cp.max_norm / (norm + 1e-6)); }
    cp_scale[0] = s;
  }
}

// ---- AdamW -----------------------------------------------------------------------------------------
// Layout: one invocation per element, grid-stride over n (workgroups capped by the wrapper, so any n).
// PyTorch torch.optim.AdamW semantics: g = grad * grad_scale * clip[0]; p *= 1 - lr*wd;
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),
// with bc1 = 1 - b1^t and bc2 = 1 - b2^t computed on the CPU per step. Updates param, m, v in place;
// the gradient is only read (the trainer zeroes it).

struct AdamWParams {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  bc1: f32,
  bc2: f32,
  grad_scale: f32,
}

@group(0) @binding(0) var<uniform> ap: AdamWParams;
@group(0) @binding(1) var<storage, read_write> aw_param: array<f32>;
@group(0) @binding(2) var<storage, read> aw_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> aw_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> aw_v: array<f32>;
@group(0) @binding(5) var<storage, read> aw_clip: array<f32>;

@compute @workgroup_size(256)
fn adamw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * WG;
  let gmul = ap.grad_scale * aw_clip[0];
  let decay = 1.0 - ap.lr * ap.weight_decay;
  let step_size = ap.lr / ap.bc1;
  let bc2_sqrt = sqrt(ap.bc2);
  for (var i = gid.x; i < ap.n; i += stride) {
    let g = aw_grad[i] * gmul;
    let m = ap.beta1 * aw_m[i] + (1.0 - ap.beta1) * g;
    let v = ap.beta2 * aw_v[i] + (1.0 - ap.beta2) * g * g;
    aw_m[i] = m;
    aw_v[i] = v;
    aw_param[i] = aw_param[i] * decay - step_size * m / (sqrt(v) / bc2_sqrt + ap.eps);
  }
}

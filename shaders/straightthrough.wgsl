// Straight-through softmax of a text message token (src/gpu/ops/straightthrough.ts, the trained text
// channel of src/mas/text-rollout.ts). Rows r < R of logits [R, V]; allowed [V] u32 (1: the token may
// be written, 0: masked out: newline and special tokens); inv_tau = 1 / temperature.
//   st_forward:  tokens[r] = the first index of the largest allowed logit (greedy; the forward writes
//       this token), p[r] = softmax(logits[r] * inv_tau) over the allowed tokens (0 on masked ones).
//   st_backward: dlogits[r] = inv_tau * p[r] * (g[r] - <p[r], g[r]>), the gradient of the softmax
//       at temperature tau given g = dJ/dp (the caller's g = E de: the embedding rows dotted with the
//       gradient of the token's input embedding).
//   st_scatter:  dst[r * stride + off] = tokens[r]: puts the written token into a pass's ids.
// One invocation per row (64 rows per workgroup, grid-stride over rows), walking the row serially, as
// crossentropy.wgsl does (tree reductions per row are slow on CPU adapters; R is a batch).

struct Params { R: u32, V: u32, inv_tau: f32, stride: u32, off: u32 }

@group(0) @binding(0) var<uniform> p: Params;

const NEG_BIG: f32 = -3.402823e38;

@group(0) @binding(1) var<storage, read> f_logits: array<f32>;
@group(0) @binding(2) var<storage, read> f_allowed: array<u32>;
@group(0) @binding(3) var<storage, read_write> f_p: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_tokens: array<u32>;

@compute @workgroup_size(64)
fn st_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var row = gid.x; row < p.R; row += nwg.x * 64u) {
    let base = row * p.V;
    var best = 0u;
    var mx = NEG_BIG;
    var found = false;
    for (var j = 0u; j < p.V; j++) {
      let x = f_logits[base + j];
      if (f_allowed[j] != 0u && (!found || x > mx)) { mx = x; best = j; found = true; }
    }
    f_tokens[row] = best;
    // scaled max: inv_tau > 0 keeps the order, so the largest scaled logit is mx * inv_tau
    let smx = mx * p.inv_tau;
    var sum = 0.0;
    for (var j = 0u; j < p.V; j++) {
      if (f_allowed[j] != 0u) { sum += exp(f_logits[base + j] * p.inv_tau - smx); }
    }
    let inv = 1.0 / sum;
    for (var j = 0u; j < p.V; j++) {
      var q = 0.0;
      if (f_allowed[j] != 0u) { q = exp(f_logits[base + j] * p.inv_tau - smx) * inv; }
      f_p[base + j] = q;
    }
  }
}

@group(0) @binding(1) var<storage, read> b_p: array<f32>;
@group(0) @binding(2) var<storage, read> b_g: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_dlogits: array<f32>;

@compute @workgroup_size(64)
fn st_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var row = gid.x; row < p.R; row += nwg.x * 64u) {
    let base = row * p.V;
    var dot = 0.0;
    for (var j = 0u; j < p.V; j++) { dot += b_p[base + j] * b_g[base + j]; }
    for (var j = 0u; j < p.V; j++) {
      b_dlogits[base + j] = p.inv_tau * b_p[base + j] * (b_g[base + j] - dot);
    }
  }
}

@group(0) @binding(1) var<storage, read> s_tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> s_dst: array<u32>;

@compute @workgroup_size(64)
fn st_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var row = gid.x; row < p.R; row += nwg.x * 64u) {
    s_dst[row * p.stride + p.off] = s_tokens[row];
  }
}

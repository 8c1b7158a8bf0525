// Cross-entropy fused with softmax (docs/engine.md) over logits [T, V] with u32 targets [T].
// The ignore label is 0xFFFFFFFF; any target >= V is treated the same way (never read out of bounds):
// loss 0 and a zero gradient row. `inv_count` = 1 / (number of non-ignored rows), from the host.
//   crossentropy_forward_backward: losses[t] = logsumexp(logits[t]) - logits[t, target[t]]
//       and dlogits[t] = (softmax(logits[t]) - onehot(target[t])) * inv_count (both overwritten).
//       One invocation per row (64 rows per workgroup, grid-stride over rows), walking the row three
//       times: max (subtracted for stability), sum of exp, then the gradient. Saves nothing: the
//       gradient is written in the same pass. (A workgroup per row with tree reductions was ~50x
//       slower on CPU adapters, whose barriers are expensive; our vocabularies are small.)
//   crossentropy_loss_sum: loss[0] = inv_count * sum_t losses[t]. One workgroup for any T: each
//       invocation sums a stride of rows, then a tree reduction.

struct Params { T: u32, V: u32, inv_count: f32 }

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
const NEG_BIG: f32 = -3.402823e38;  // about the lowest f32: identity of max

var<workgroup> red: array<f32, 256>;

// Workgroup sum; call from uniform control flow. Ends with a barrier so a next call may overwrite
// `red` safely.
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

@group(0) @binding(1) var<storage, read> f_logits: array<f32>;
@group(0) @binding(2) var<storage, read> f_targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> f_losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_dlogits: array<f32>;

@compute @workgroup_size(64)
fn crossentropy_forward_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                                 @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var row = gid.x; row < p.T; row += nwg.x * 64u) {
    let base = row * p.V;
    var mx = NEG_BIG;
    for (var j = 0u; j < p.V; j++) { mx = max(mx, f_logits[base + j]); }
    var sum = 0.0;
    for (var j = 0u; j < p.V; j++) { sum += exp(f_logits[base + j] - mx); }
    let tgt = f_targets[row];
    let valid = tgt < p.V;
    var loss = 0.0;
    // log(sum) + (max - logit): the difference is taken first, exactly when the two are within a
    // factor 2 (Sterbenz), so a common shift of the logits (|logits| ~ 1e3) costs no precision.
    if (valid) { loss = log(sum) + (mx - f_logits[base + tgt]); }
    f_losses[row] = loss;
    let scale = p.inv_count / sum;
    for (var j = 0u; j < p.V; j++) {
      var g = 0.0;
      if (valid) {
        g = exp(f_logits[base + j] - mx) * scale;
        if (j == tgt) { g -= p.inv_count; }
      }
      f_dlogits[base + j] = g;
    }
  }
}

@group(0) @binding(1) var<storage, read> s_losses: array<f32>;
@group(0) @binding(2) var<storage, read_write> s_loss: array<f32>;

@compute @workgroup_size(256)
fn crossentropy_loss_sum(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  var s = 0.0;
  for (var t = lid; t < p.T; t += WG) { s += s_losses[t]; }
  let total = wg_sum(s, lid);
  if (lid == 0u) { s_loss[0] = total * p.inv_count; }
}

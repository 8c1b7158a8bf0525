// Causal multi-head attention with grouped-query heads and a foreign prefix (docs/engine.md).
// q, o: [B*S, Hq*hd]; k, v: [B*S, Hkv*hd]; prefix k, v: [B, P, Hkv*hd]. Query head h reads kv head
// h / (Hq/Hkv). Query row s of sequence b attends over the P prefix keys of b, then over its own keys
// 0..s; scores are (q . k) * scale. lse and delta: [B, Hq, S].
//
// Every kernel gives one query row (or one key row) to each invocation of a 64-wide workgroup and
// streams the rows it pairs with through workgroup tiles of up to 1024 floats (1024/hd rows), so the
// loads are shared by the 64 invocations; each output element is written by exactly one invocation
// (no float atomics). Backward (FlashAttention-2 style, recomputing probabilities from lse):
//   delta_i = dO_i . O_i;  p_ij = exp(s_ij - lse_i);  dv_j += p_ij dO_i;
//   ds_ij = p_ij (dO_i . v_j - delta_i);  dq_i = scale sum_j ds_ij k_j;  dk_j = scale sum_i ds_ij q_i.
// The backward kernels see one key source at a time (own keys: CAUSAL, L = S; prefix: L = P), so
// each binds at most 8 storage buffers.

struct Params {
  S: u32,      // queries (and own keys) per sequence
  P: u32,      // forward: prefix keys per sequence
  L: u32,      // backward dq/dkv: keys per sequence in the bound key source (S or P)
  Hq: u32,
  Hkv: u32,
  hd: u32,     // head size, <= MAXHD
  scale: f32,  // 1/sqrt(hd)
}

override CAUSAL: bool = true;       // backward: the key source is the sequence's own keys
override ACCUMULATE: bool = false;  // backward: add into the gradient outputs

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> K: array<f32>;   // forward: own keys; backward: key source
@group(0) @binding(3) var<storage, read> V: array<f32>;
// forward
@group(0) @binding(4) var<storage, read> PK: array<f32>;
@group(0) @binding(5) var<storage, read> PV: array<f32>;
@group(0) @binding(6) var<storage, read_write> O: array<f32>;
@group(0) @binding(7) var<storage, read_write> LSE_OUT: array<f32>;
// backward dq / dkv
@group(0) @binding(4) var<storage, read> DO: array<f32>;
@group(0) @binding(5) var<storage, read> LSE: array<f32>;
@group(0) @binding(6) var<storage, read> DELTA: array<f32>;
@group(0) @binding(7) var<storage, read_write> G1: array<f32>;  // dq, or dk
@group(0) @binding(8) var<storage, read_write> G2: array<f32>;  // dv
// backward delta
@group(0) @binding(1) var<storage, read> D_DO: array<f32>;
@group(0) @binding(2) var<storage, read> D_O: array<f32>;
@group(0) @binding(3) var<storage, read_write> D_OUT: array<f32>;

const WG: u32 = 64u;
const MAXHD: u32 = 128u;
const TILE: u32 = 1024u;    // floats per row tile
const MAXROWS: u32 = 512u;  // rows per tile (1024/hd, capped for hd = 1)
var<workgroup> tile_a: array<f32, 1024>;  // keys (forward, dq) or scale*q (dkv), [row][hd]
var<workgroup> tile_b: array<f32, 1024>;  // values (forward, dq) or dO (dkv), [row][hd]
var<workgroup> tile_l: array<f32, 512>;   // dkv: lse of the tile's query rows
var<workgroup> tile_d: array<f32, 512>;   // dkv: delta of the tile's query rows

fn rows_per_tile() -> u32 {
  return min(TILE / p.hd, MAXROWS);
}

// Forward: one invocation per (b, query head h, query row s), grid (ceil(S/64), Hq, B); online softmax
// over P prefix keys then keys 0..s. Writes o and saves lse[b, h, s] = log sum_j exp(s_ij) (scaled
// scores) for the backward, which recomputes the probabilities from it.
@compute @workgroup_size(64)
fn attention_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let hd = p.hd;
  let b = wid.z;
  let h = wid.y;
  let kvh = h / (p.Hq / p.Hkv);
  let kvw = p.Hkv * hd;
  let s0 = wid.x * WG;
  let s = s0 + lid.x;
  let valid = s < p.S;
  let qrow = ((b * p.S + s) * p.Hq + h) * hd;
  var q: array<f32, MAXHD>;
  var acc: array<f32, MAXHD>;
  for (var d = 0u; d < hd; d++) {
    acc[d] = 0.0;
    q[d] = 0.0;
    if (valid) { q[d] = Q[qrow + d] * p.scale; }
  }
  var m = -3.0e38;
  var l = 0.0;
  let n_keys = p.P + min(s0 + WG, p.S);  // keys seen by the block's last row
  let my_keys = p.P + s + 1u;
  let per = rows_per_tile();
  for (var c0 = 0u; c0 < n_keys; c0 += per) {
    let cnt = min(per, n_keys - c0);
    for (var e = lid.x; e < cnt * hd; e += WG) {
      let c = c0 + e / hd;
      let d = e % hd;
      if (c < p.P) {
        let i = (b * p.P + c) * kvw + kvh * hd + d;
        tile_a[e] = PK[i];
        tile_b[e] = PV[i];
      } else {
        let i = (b * p.S + (c - p.P)) * kvw + kvh * hd + d;
        tile_a[e] = K[i];
        tile_b[e] = V[i];
      }
    }
    workgroupBarrier();
    if (valid && my_keys > c0) {
      let lim = min(cnt, my_keys - c0);
      for (var j = 0u; j < lim; j++) {
        let base = j * hd;
        var x = 0.0;
        for (var d = 0u; d < hd; d++) { x = fma(q[d], tile_a[base + d], x); }
        if (x > m) {
          let corr = exp(m - x);
          l *= corr;
          for (var d = 0u; d < hd; d++) { acc[d] *= corr; }
          m = x;
        }
        let w = exp(x - m);
        l += w;
        for (var d = 0u; d < hd; d++) { acc[d] = fma(w, tile_b[base + d], acc[d]); }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let inv = 1.0 / l;
    for (var d = 0u; d < hd; d++) { O[qrow + d] = acc[d] * inv; }
    LSE_OUT[(b * p.Hq + h) * p.S + s] = m + log(l);
  }
}

// Backward step 1: one invocation per (b, h, s), grid (ceil(S/64), Hq, B): delta[b, h, s] = dO . O
// over the head's hd values.
@compute @workgroup_size(64)
fn attention_backward_delta(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z;
  let h = wid.y;
  let s = wid.x * WG + lid.x;
  if (s >= p.S) { return; }
  let row = ((b * p.S + s) * p.Hq + h) * p.hd;
  var x = 0.0;
  for (var d = 0u; d < p.hd; d++) { x = fma(D_DO[row + d], D_O[row + d], x); }
  D_OUT[(b * p.Hq + h) * p.S + s] = x;
}

// Backward dq: one invocation per (b, query head h, query row s), grid (ceil(S/64), Hq, B), looping
// over the keys of one source (own keys 0..s when CAUSAL, else all L prefix keys); writes (or adds)
// dq = scale sum_j ds_ij k_j. Reads the saved lse and the delta of step 1.
@compute @workgroup_size(64)
fn attention_backward_dq(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let hd = p.hd;
  let b = wid.z;
  let h = wid.y;
  let kvh = h / (p.Hq / p.Hkv);
  let kvw = p.Hkv * hd;
  let s0 = wid.x * WG;
  let s = s0 + lid.x;
  let valid = s < p.S;
  let qrow = ((b * p.S + s) * p.Hq + h) * hd;
  var q: array<f32, MAXHD>;
  var g: array<f32, MAXHD>;
  var acc: array<f32, MAXHD>;
  var lse = 0.0;
  var delta = 0.0;
  for (var d = 0u; d < hd; d++) {
    acc[d] = 0.0;
    q[d] = 0.0;
    g[d] = 0.0;
    if (valid) {
      q[d] = Q[qrow + d] * p.scale;
      g[d] = DO[qrow + d];
    }
  }
  if (valid) {
    lse = LSE[(b * p.Hq + h) * p.S + s];
    delta = DELTA[(b * p.Hq + h) * p.S + s];
  }
  var n_keys = p.L;
  var my_keys = p.L;
  if (CAUSAL) {
    n_keys = min(s0 + WG, p.S);
    my_keys = s + 1u;
  }
  let per = rows_per_tile();
  for (var c0 = 0u; c0 < n_keys; c0 += per) {
    let cnt = min(per, n_keys - c0);
    for (var e = lid.x; e < cnt * hd; e += WG) {
      let i = (b * p.L + c0 + e / hd) * kvw + kvh * hd + e % hd;
      tile_a[e] = K[i];
      tile_b[e] = V[i];
    }
    workgroupBarrier();
    if (valid && my_keys > c0) {
      let lim = min(cnt, my_keys - c0);
      for (var j = 0u; j < lim; j++) {
        let base = j * hd;
        var x = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < hd; d++) {
          x = fma(q[d], tile_a[base + d], x);
          dp = fma(g[d], tile_b[base + d], dp);
        }
        let ds = exp(x - lse) * (dp - delta);
        for (var d = 0u; d < hd; d++) { acc[d] = fma(ds, tile_a[base + d], acc[d]); }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    for (var d = 0u; d < hd; d++) {
      var y = acc[d] * p.scale;
      if (ACCUMULATE) { y += G1[qrow + d]; }
      G1[qrow + d] = y;
    }
  }
}

// Backward dk, dv: one invocation per (b, kv head, key row j) of one key source, grid
// (ceil(L/64), Hkv, B), looping over the Hq/Hkv query heads of its group and over the query rows that
// see key j (rows j..S-1 when CAUSAL, else all S); writes (or adds) dk = sum_i ds_ij scale q_i and
// dv = sum_i p_ij dO_i. Reads the saved lse and the delta of step 1.
@compute @workgroup_size(64)
fn attention_backward_dkv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let hd = p.hd;
  let b = wid.z;
  let kvh = wid.y;
  let group = p.Hq / p.Hkv;
  let kvw = p.Hkv * hd;
  let j0 = wid.x * WG;
  let j = j0 + lid.x;
  let valid = j < p.L;
  let krow = (b * p.L + j) * kvw + kvh * hd;
  var k: array<f32, MAXHD>;
  var v: array<f32, MAXHD>;
  var dk: array<f32, MAXHD>;
  var dv: array<f32, MAXHD>;
  for (var d = 0u; d < hd; d++) {
    dk[d] = 0.0;
    dv[d] = 0.0;
    k[d] = 0.0;
    v[d] = 0.0;
    if (valid) {
      k[d] = K[krow + d];
      v[d] = V[krow + d];
    }
  }
  var first = 0u;  // first query row that sees any key of this block
  if (CAUSAL) { first = j0; }
  let per = rows_per_tile();
  for (var gi = 0u; gi < group; gi++) {
    let h = kvh * group + gi;
    let stat = (b * p.Hq + h) * p.S;
    for (var i0 = first; i0 < p.S; i0 += per) {
      let cnt = min(per, p.S - i0);
      for (var e = lid.x; e < cnt * hd; e += WG) {
        let i = ((b * p.S + i0 + e / hd) * p.Hq + h) * hd + e % hd;
        tile_a[e] = Q[i] * p.scale;
        tile_b[e] = DO[i];
      }
      for (var e = lid.x; e < cnt; e += WG) {
        tile_l[e] = LSE[stat + i0 + e];
        tile_d[e] = DELTA[stat + i0 + e];
      }
      workgroupBarrier();
      if (valid) {
        var start = 0u;
        if (CAUSAL && j > i0) { start = j - i0; }
        for (var r = start; r < cnt; r++) {
          let base = r * hd;
          var x = 0.0;
          var dp = 0.0;
          for (var d = 0u; d < hd; d++) {
            x = fma(tile_a[base + d], k[d], x);
            dp = fma(tile_b[base + d], v[d], dp);
          }
          let pr = exp(x - tile_l[r]);
          let ds = pr * (dp - tile_d[r]);
          for (var d = 0u; d < hd; d++) {
            dv[d] = fma(pr, tile_b[base + d], dv[d]);
            dk[d] = fma(ds, tile_a[base + d], dk[d]);
          }
        }
      }
      workgroupBarrier();
    }
  }
  if (valid) {
    for (var d = 0u; d < hd; d++) {
      var yk = dk[d];
      var yv = dv[d];
      if (ACCUMULATE) {
        yk += G1[krow + d];
        yv += G2[krow + d];
      }
      G1[krow + d] = yk;
      G2[krow + d] = yv;
    }
  }
}

// Rotary position embedding, Hugging Face rotate-half convention (docs/engine.md), on x [T, H*hd]:
// for pair i < hd/2 of head h of row t, x1 = x[i], x2 = x[i + hd/2], angle = pos * inv_freq[i] with
// pos = pos_offset + (t mod S) and inv_freq[i] = theta^(-2i/hd), scaled as Llama 3.x does when llama3 is
// set (transformers' _compute_llama3_parameters, in f32 as there; src/reference/rope.ts ropeInvFreq);
//   forward:  x1' = x1 cos - x2 sin,  x2' = x2 cos + x1 sin   (rotation by +angle)
//   backward: the inverse rotation (by -angle) of the incoming gradient, its transpose.
// Nothing is saved: the backward recomputes the angles from the same params.
// cos/sin are evaluated here (reduction in turns to [-pi/4, pi/4], then Taylor polynomials) to f32
// accuracy: WGSL allows built-in sin/cos an absolute error of 2^-11, and SwiftShader's reach 2e-4.

struct Params {
  T: u32,           // rows
  H: u32,           // heads per row
  hd: u32,          // head size (even)
  S: u32,           // sequence length: position = pos_offset + (t mod S)
  pos_offset: u32,
  log2_theta: f32,  // log2(theta), computed in float64 by the wrapper
  sign: f32,        // +1 forward, -1 backward (inverse rotation)
  llama3: u32,      // 1: Llama 3.x frequency scaling with the five fields below
  factor: f32,
  low_freq_factor: f32,
  high_freq_factor: f32,
  old_context: f32, // original_max_position_embeddings
}

override ACCUMULATE: bool = false;  // out-of-place only: dst += rotated src

@group(0) @binding(0) var<uniform> p: Params;
// Out-of-place entry point `rope`: src read, dst written (or added to).
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// In-place entry point `rope_inplace` binds only the one tensor, at binding 1.
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;

const WG: u32 = 64u;
const TWO_PI: f32 = 6.283185307179586;

// (cos, sin) of `turns` full turns: quadrant q = round(4 turns), remainder r in [-pi/4, pi/4] (the
// subtraction is exact), Taylor series to r^10 / r^11 (truncation below 2e-9 there).
fn cos_sin_turns(turns: f32) -> vec2<f32> {
  let q = round(4.0 * turns);
  let r = (turns - 0.25 * q) * TWO_PI;
  let r2 = r * r;
  let s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0 + r2 * (-1.0 / 39916800.0))))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
  let k = u32(i32(q) & 3);  // two's complement: -1 & 3 = 3
  if (k == 0u) { return vec2<f32>(c, s); }
  if (k == 1u) { return vec2<f32>(-s, c); }
  if (k == 2u) { return vec2<f32>(-c, -s); }
  return vec2<f32>(s, -c);
}

struct Pair { i1: u32, i2: u32, c: f32, s: f32, ok: bool }

// One invocation per (row, head, pair); the grid may be 2-D when T*H*hd/2 exceeds one dimension.
fn pair_of(gid: vec3<u32>, nwg: vec3<u32>) -> Pair {
  var r: Pair;
  let half = p.hd / 2u;
  let idx = gid.x + gid.y * nwg.x * WG;
  r.ok = idx < p.T * p.H * half;
  if (!r.ok) { return r; }
  let i = idx % half;
  let th = idx / half;  // t * H + h
  let t = th / p.H;
  let pos = f32(p.pos_offset + t % p.S);
  var inv_freq = exp2(-(f32(2u * i) / f32(p.hd)) * p.log2_theta);
  if (p.llama3 != 0u) {
    let wavelen = TWO_PI / inv_freq;
    if (wavelen > p.old_context / p.low_freq_factor) {
      inv_freq = inv_freq / p.factor;
    } else if (wavelen >= p.old_context / p.high_freq_factor) {
      let smooth_factor = (p.old_context / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
      inv_freq = (1.0 - smooth_factor) * inv_freq / p.factor + smooth_factor * inv_freq;
    }
  }
  // the angle in turns, reduced to [-0.5, 0.5] (exactly): its rounding is the only error of size
  // pos * 2^-24 rad; HF computes pos * inv_freq in f32 too.
  var turns = pos * (inv_freq / TWO_PI);
  turns = turns - round(turns);
  let cs = cos_sin_turns(turns);
  r.c = cs.x;
  r.s = p.sign * cs.y;
  r.i1 = th * p.hd + i;
  r.i2 = r.i1 + half;
  return r;
}

// Out-of-place: one invocation per (row, head, pair); dst = R(sign*angle) src (ACCUMULATE: dst +=).
@compute @workgroup_size(64)
fn rope(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = pair_of(gid, nwg);
  if (!r.ok) { return; }
  let x1 = src[r.i1];
  let x2 = src[r.i2];
  var y1 = x1 * r.c - x2 * r.s;
  var y2 = x2 * r.c + x1 * r.s;
  if (ACCUMULATE) {
    y1 += dst[r.i1];
    y2 += dst[r.i2];
  }
  dst[r.i1] = y1;
  dst[r.i2] = y2;
}

// In place: one invocation per (row, head, pair); buf = R(sign*angle) buf (each pair owned by one invocation).
@compute @workgroup_size(64)
fn rope_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = pair_of(gid, nwg);
  if (!r.ok) { return; }
  let x1 = buf[r.i1];
  let x2 = buf[r.i2];
  buf[r.i1] = x1 * r.c - x2 * r.s;
  buf[r.i2] = x2 * r.c + x1 * r.s;
}

// SwiGLU on [T, F] (docs/engine.md): h = silu(g) * u, silu(z) = z * sigmoid(z).
// Backward (overwrites): dg = dh * u * silu'(g), silu'(z) = s * (1 + z * (1 - s)) with s = sigmoid(z);
// du = dh * silu(g). Nothing is saved: backward recomputes sigmoid(g) from the forward's inputs.
// Layout: one invocation per element (n = T * F) in 256-wide workgroups, grid-stride over n.

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;

// Overflow-free logistic: exp is only taken of non-positive arguments.
fn sigmoid(z: f32) -> f32 {
  if (z >= 0.0) { return 1.0 / (1.0 + exp(-z)); }
  let e = exp(z);
  return e / (1.0 + e);
}

// swiglu_forward: g, u -> h.
@group(0) @binding(1) var<storage, read> f_g: array<f32>;
@group(0) @binding(2) var<storage, read> f_u: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_h: array<f32>;

@compute @workgroup_size(256)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i += nwg.x * WG) {
    let z = f_g[i];
    f_h[i] = z * sigmoid(z) * f_u[i];
  }
}

// swiglu_backward: dh, g, u -> dg, du (both overwritten).
@group(0) @binding(1) var<storage, read> b_dh: array<f32>;
@group(0) @binding(2) var<storage, read> b_g: array<f32>;
@group(0) @binding(3) var<storage, read> b_u: array<f32>;
@group(0) @binding(4) var<storage, read_write> b_dg: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_du: array<f32>;

@compute @workgroup_size(256)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i += nwg.x * WG) {
    let z = b_g[i];
    let s = sigmoid(z);
    let dh = b_dh[i];
    b_dg[i] = dh * b_u[i] * s * (1.0 + z * (1.0 - s));
    b_du[i] = dh * z * s;
  }
}

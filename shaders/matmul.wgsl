// Batched f32 matmul: C[b] = alpha * op(A[b]) * op(B[b]) (+ beta * C[b] when ACCUMULATE).
// op(A) is (M, K): A is stored (M, K) row-major, or (K, M) when TRANS_A. op(B) is (K, N): B is stored
// (K, N), or (N, K) when TRANS_B. The three transformer shapes are NN (x W), NT (x W^T, dX = dY W) and
// TN (dW = dY^T X).
// Layout: one 64x64 tile of C per workgroup of 16x16 invocations, each computing 4x4 outputs at a
// stride of 16 rows/columns (so neighbouring invocations touch neighbouring addresses); K is walked in
// slices of 16 through two 64x16 workgroup tiles (8 KiB, within the 16 KiB default). Edges of odd
// sizes are zero-padded on load and masked on store.

struct Params {
  M: u32, N: u32, K: u32,
  stride_a: u32, stride_b: u32, stride_c: u32,  // elements between consecutive batch matrices
  alpha: f32, beta: f32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

const TILE: u32 = 64u;
const SLICE: u32 = 16u;
var<workgroup> tile_a: array<f32, 1024>;  // [k][m], 16 x 64
var<workgroup> tile_b: array<f32, 1024>;  // [k][n], 16 x 64

fn load_a(base: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  if (TRANS_A) { return A[base + k * p.M + m]; }
  return A[base + m * p.K + k];
}

fn load_b(base: u32, k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  if (TRANS_B) { return B[base + n * p.K + k]; }
  return B[base + k * p.N + n];
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let batch = wid.z;
  let base_a = batch * p.stride_a;
  let base_b = batch * p.stride_b;
  let base_c = batch * p.stride_c;
  let row0 = wid.y * TILE;
  let col0 = wid.x * TILE;
  let tid = lid.y * 16u + lid.x;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }

  for (var k0 = 0u; k0 < p.K; k0 += SLICE) {
    // 1024 values per tile, 4 per invocation; the fast-moving index follows memory order.
    for (var i = 0u; i < 4u; i++) {
      let e = tid + i * 256u;
      if (TRANS_A) {
        let k = e / TILE; let m = e % TILE;
        tile_a[k * TILE + m] = load_a(base_a, row0 + m, k0 + k);
      } else {
        let m = e / SLICE; let k = e % SLICE;
        tile_a[k * TILE + m] = load_a(base_a, row0 + m, k0 + k);
      }
      if (TRANS_B) {
        let n = e / SLICE; let k = e % SLICE;
        tile_b[k * TILE + n] = load_b(base_b, k0 + k, col0 + n);
      } else {
        let k = e / TILE; let n = e % TILE;
        tile_b[k * TILE + n] = load_b(base_b, k0 + k, col0 + n);
      }
    }
    workgroupBarrier();
    for (var k = 0u; k < SLICE; k++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = tile_a[k * TILE + lid.y + 16u * i];
        b[i] = tile_b[k * TILE + lid.x + 16u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let r = row0 + lid.y + 16u * i;
    if (r >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let c = col0 + lid.x + 16u * j;
      if (c >= p.N) { continue; }
      let idx = base_c + r * p.N + c;
      var v = p.alpha * acc[i * 4u + j];
      if (ACCUMULATE) { v += p.beta * C[idx]; }
      C[idx] = v;
    }
  }
}

// matmul_direct: the same contract without workgroup memory or barriers. Each invocation computes a
// 4x4 block of C straight from global memory (8x8 invocations: a 32x32 tile per workgroup). Chosen for
// CPU adapters (SwiftShader, lavapipe), where barriers are expensive and caches do the tiling.
// Written for CPU JITs (5-7x faster on SwiftShader than loops over private arrays):
// - the 4x4 block is 16 named scalars and the loads 8 named scalars: SwiftShader keeps private arrays
//   indexed by loop variables in memory, turning every FMA into a load and a store;
// - row/column indices are clamped into range once, before the k loop, so the loads need no bounds
//   checks (an edge invocation recomputes the last row/column; the store masks them out);
// - the 8 operand offsets advance by a constant stride per k step instead of index products.
fn store_c(base_c: u32, r: u32, c: u32, acc: f32) {
  if (r >= p.M || c >= p.N) { return; }
  let idx = base_c + r * p.N + c;
  var v = p.alpha * acc;
  if (ACCUMULATE) { v += p.beta * C[idx]; }
  C[idx] = v;
}

@compute @workgroup_size(8, 8)
fn matmul_direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let batch = wid.z;
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.M || col0 >= p.N) { return; }
  // Element (r, k) of op(A) is at r * ma + k * sa; (k, c) of op(B) at c * mb + k * sb.
  var ma = p.K; var sa = 1u;
  if (TRANS_A) { ma = 1u; sa = p.M; }
  var mb = 1u; var sb = p.N;
  if (TRANS_B) { mb = p.K; sb = 1u; }
  let base_a = batch * p.stride_a;
  let base_b = batch * p.stride_b;
  var a0 = base_a + row0 * ma;
  var a1 = base_a + min(row0 + 1u, p.M - 1u) * ma;
  var a2 = base_a + min(row0 + 2u, p.M - 1u) * ma;
  var a3 = base_a + min(row0 + 3u, p.M - 1u) * ma;
  var b0 = base_b + col0 * mb;
  var b1 = base_b + min(col0 + 1u, p.N - 1u) * mb;
  var b2 = base_b + min(col0 + 2u, p.N - 1u) * mb;
  var b3 = base_b + min(col0 + 3u, p.N - 1u) * mb;
  var x00 = 0.0; var x01 = 0.0; var x02 = 0.0; var x03 = 0.0;
  var x10 = 0.0; var x11 = 0.0; var x12 = 0.0; var x13 = 0.0;
  var x20 = 0.0; var x21 = 0.0; var x22 = 0.0; var x23 = 0.0;
  var x30 = 0.0; var x31 = 0.0; var x32 = 0.0; var x33 = 0.0;
  for (var k = 0u; k < p.K; k++) {
    let va0 = A[a0]; let va1 = A[a1]; let va2 = A[a2]; let va3 = A[a3];
    let vb0 = B[b0]; let vb1 = B[b1]; let vb2 = B[b2]; let vb3 = B[b3];
    x00 = fma(va0, vb0, x00); x01 = fma(va0, vb1, x01); x02 = fma(va0, vb2, x02); x03 = fma(va0, vb3, x03);
    x10 = fma(va1, vb0, x10); x11 = fma(va1, vb1, x11); x12 = fma(va1, vb2, x12); x13 = fma(va1, vb3, x13);
    x20 = fma(va2, vb0, x20); x21 = fma(va2, vb1, x21); x22 = fma(va2, vb2, x22); x23 = fma(va2, vb3, x23);
    x30 = fma(va3, vb0, x30); x31 = fma(va3, vb1, x31); x32 = fma(va3, vb2, x32); x33 = fma(va3, vb3, x33);
    a0 += sa; a1 += sa; a2 += sa; a3 += sa;
    b0 += sb; b1 += sb; b2 += sb; b3 += sb;
  }
  let bc = batch * p.stride_c;
  let r1 = row0 + 1u; let r2 = row0 + 2u; let r3 = row0 + 3u;
  let c1 = col0 + 1u; let c2 = col0 + 2u; let c3 = col0 + 3u;
  store_c(bc, row0, col0, x00); store_c(bc, row0, c1, x01); store_c(bc, row0, c2, x02); store_c(bc, row0, c3, x03);
  store_c(bc, r1, col0, x10); store_c(bc, r1, c1, x11); store_c(bc, r1, c2, x12); store_c(bc, r1, c3, x13);
  store_c(bc, r2, col0, x20); store_c(bc, r2, c1, x21); store_c(bc, r2, c2, x22); store_c(bc, r2, c3, x23);
  store_c(bc, r3, col0, x30); store_c(bc, r3, c1, x31); store_c(bc, r3, c2, x32); store_c(bc, r3, c3, x33);
}

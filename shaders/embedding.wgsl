// Embedding lookup (docs/engine.md): out[t, :] = W[ids[t], :], ids u32 [T], W [V, D], out [T, D].
// Out-of-range ids (ids[t] >= V) never read W: the forward writes a row of zeros for them and the
// backward gives them no gradient. Nothing is saved (backward reads ids again).

struct Params { T: u32, D: u32, V: u32 }

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
const BW: u32 = 64u;  // embedding_backward: columns per workgroup, ids per workgroup tile

// embedding_forward: ids, W -> out [T, D] (overwritten). One invocation per output element in
// 256-wide workgroups, grid-stride over T * D.
@group(0) @binding(1) var<storage, read> f_ids: array<u32>;
@group(0) @binding(2) var<storage, read> f_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_out: array<f32>;

@compute @workgroup_size(256)
fn embedding_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = p.T * p.D;
  for (var i = gid.x; i < n; i += nwg.x * WG) {
    let t = i / p.D;
    let d = i - t * p.D;
    let id = f_ids[t];
    var v = 0.0;
    if (id < p.V) { v = f_w[id * p.D + d]; }
    f_out[i] = v;
  }
}

// embedding_backward: ids, dOut -> dW [V, D] += sum over t with ids[t] == v of dOut[t, :].
// No atomics: one invocation per (v, d). A workgroup owns one vocabulary row v (grid y, stride over V)
// and 64 consecutive columns (grid x, stride over D); it walks the ids in tiles of 64 staged in
// workgroup memory, so the match test is the same for the whole workgroup and dOut is read only on
// matching rows, 64 neighbouring floats at a time.
@group(0) @binding(1) var<storage, read> b_ids: array<u32>;
@group(0) @binding(2) var<storage, read> b_dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_dw: array<f32>;

var<workgroup> tile_ids: array<u32, 64>;

@compute @workgroup_size(64)
fn embedding_backward(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
  let lid = lid3.x;
  for (var v = wid.y; v < p.V; v += nwg.y) {
    for (var c0 = wid.x * BW; c0 < p.D; c0 += nwg.x * BW) {
      let d = c0 + lid;
      var acc = 0.0;
      for (var t0 = 0u; t0 < p.T; t0 += BW) {
        let t = t0 + lid;
        var id = 0xFFFFFFFFu;
        if (t < p.T) { id = b_ids[t]; }
        tile_ids[lid] = id;
        workgroupBarrier();
        let m = min(BW, p.T - t0);
        if (d < p.D) {
          for (var j = 0u; j < m; j++) {
            if (tile_ids[j] == v) { acc += b_dout[(t0 + j) * p.D + d]; }
          }
        }
        workgroupBarrier();
      }
      if (d < p.D) { b_dw[v * p.D + d] += acc; }
    }
  }
}

// GPT-2 encoder: token + learned position embedding, forward and backward.
// forward:   out[p, c] = wte[min(tokens[p], V-1), c] + wpe[p % T, c]
//            tokens: u32 [BT]; wte: [V, C]; wpe: [maxT, C]; out: [BT, C]   (p = b*T + t)
// backward (ACCUMULATE, no atomics, fixed order => bitwise deterministic):
//   dwte:  dwte[v, c] += sum_{p in positions(v), increasing} dout[p, c]
//          over a host-built CSR index (TokenIndex): idx = [uniq: BT][offsets: BT+1][positions: BT] u32, where
//          uniq[0..K) are the distinct tokens (increasing), positions[offsets[k]..offsets[k+1]) the positions of
//          uniq[k] (increasing; offsets are absolute indices into the positions section). One thread per
//          (k, column): work is K*C threads, B*T*C loads in total, independent of V.
//   dwpe:  dwpe[t, c] += sum_{b = 0..B-1} dout[b*T + t, c]   one thread per (t, column).
// Vocabulary ranges: a wte/dwte larger than one storage binding (GPT-2's 50257 x 768 f32 is 154 MB) is bound as
// views of whole rows [v0, V - vAfter) (forward) or [v0, ..) holding the distinct tokens uniq[k0 .. k0 + items/Cw)
// (dwte), one launch per range; row indices inside the kernel are relative to v0. One range over the whole table is
// v0 = 0, vAfter = 0, k0 = 0: the two fields that were padding are zero, the params bytes are today's.
// Template (src/gpu/wgsl.ts): VEC4 (C % 4 == 0) gives each thread one vec4 column group, Cw = C/4; otherwise one
// column, Cw = C. All entries: 256 threads, i = (wg.y * num_wg.x + wg.x) * 256 + lid.x; items are row-major
// (row, column group).

//#define VEC4 false
//#if VEC4
alias VT = vec4f;
//#else
alias VT = f32;
//#endif

// Forward and dwpe. vAfter: rows of the vocabulary after this launch's range (0 for the last range, and for dwpe).
struct Params { items: u32, T: u32, Cw: u32, V: u32, B: u32, BT: u32, v0: u32, vAfter: u32 }
// dwte. k0: the first distinct token (index into uniq) of this launch's range; items = (its distinct tokens) * Cw.
struct WteParams { items: u32, T: u32, Cw: u32, V: u32, B: u32, BT: u32, v0: u32, k0: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(0) var<uniform> pw: WteParams;

fn gid(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 { return (wg.y * nwg.x + wg.x) * 256u + lid.x; }

// ---- forward
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> wte: array<VT>;
@group(0) @binding(3) var<storage, read> wpe: array<VT>;
@group(0) @binding(4) var<storage, read_write> out: array<VT>;

@compute @workgroup_size(256)
fn encoder_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_id) lid: vec3u) {
  let i = gid(wg, nwg, lid);
  if (i >= p.items) { return; }
  let row = i / p.Cw;
  let c = i - row * p.Cw;
  // Ids >= V read the last row, which lies in the last range (vAfter = 0); each row is written by exactly one range.
  let tok = min(tokens[row], p.V - 1u);
  if (tok < p.v0 || tok >= p.V - p.vAfter) { return; }
  let t = row % p.T;
  out[i] = wte[(tok - p.v0) * p.Cw + c] + wpe[t * p.Cw + c];
}

// ---- backward: dwte (items = K * Cw)
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read> dout: array<VT>;
@group(0) @binding(3) var<storage, read_write> dwte: array<VT>;

@compute @workgroup_size(256)
fn encoder_backward_wte(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                        @builtin(local_invocation_id) lid: vec3u) {
  let i = gid(wg, nwg, lid);
  if (i >= pw.items) { return; }
  let kl = i / pw.Cw;
  let c = i - kl * pw.Cw;
  let k = pw.k0 + kl;
  // The host picked k0 and items so that every uniq[k] here lies in this launch's rows (>= v0).
  let v = min(idx[k], pw.V - 1u) - pw.v0;
  let start = idx[pw.BT + k];
  let end = idx[pw.BT + k + 1u];
  let pos0 = 2u * pw.BT + 1u;
  var acc = VT(0.0);
  for (var j = start; j < end; j++) {
    acc += dout[idx[pos0 + j] * pw.Cw + c];
  }
  dwte[v * pw.Cw + c] += acc;
}

// ---- backward: dwpe (items = T * Cw)
@group(0) @binding(1) var<storage, read> pdout: array<VT>;
@group(0) @binding(2) var<storage, read_write> dwpe: array<VT>;

@compute @workgroup_size(256)
fn encoder_backward_wpe(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                        @builtin(local_invocation_id) lid: vec3u) {
  let i = gid(wg, nwg, lid);
  if (i >= p.items) { return; }
  let stride = p.T * p.Cw;
  var acc = VT(0.0);
  for (var b = 0u; b < p.B; b++) {
    acc += pdout[b * stride + i];
  }
  dwpe[i] += acc;
}

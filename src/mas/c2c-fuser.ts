// Cache-to-Cache (C2C, method 'c2c'): a learned fuser per layer maps the K/V a receiver reads from its
// senders (the full trace, as diffmas-full passes it: the sender's prompt and latent positions) into
// the receiver's cache; both bases stay frozen and only the fuser trains.
//
// Per layer l and for K and V apart (X: the received prefix rows [B*P, W], W = Hkv * hd, every kv
// head side by side):
//   T = X A_l            A_l [W, W] (in, out), a full projector across the kv heads
//   Y = X + s_l * T      s_l = sigmoid(gate_l), the learned gate of that layer (K and V each their own)
// The receiver attends over Y (its prefix) and its own K/V, as the latent methods do.
// Init: A = 0 and gate = 0 (s = 1/2). Every agent here shares one base, so a sender's K/V are already in
// the receiver's layout: identity is the right start, and at step 0 c2c answers exactly as
// latentmas-full does. The residual form X + s X A is that identity start (A = 0) with a projector
// that can move anywhere; the gate's gradient is 0 until A leaves 0 (after the first step).
// Backward: dX = dY + (s dY) A^T, dA += X^T (s dY), dgate += s (1 - s) sum(T * dY).
//
// The weights as data (one safetensors file, c2c_fuser.safetensors, beside a run's adapters; src/storage/c2c-fuser.ts):
//   layers.{l}.k.A, layers.{l}.v.A  [W, W] float32      gate [L, 2] float32 (column 0: K, 1: V)
import type { Dispatch, Gpu, Tensor } from '../gpu/runtime';
import { prepareFuse, prepareFuseBackward, prepareGateGrad } from '../gpu/ops/c2c';
import { prepareMatmul } from '../gpu/ops/matmul';
import type { TrainParam } from '../model/train';

export const fuserKey = (layer: number, kind: 'k' | 'v'): string => `layers.${layer}.${kind}.A`;
export const GATE_KEY = 'gate';

/** The fuser's weights by name (fuserKey, GATE_KEY), float32. */
export type FuserWeights = Map<string, Float32Array>;

/** The fuser at init: every A = 0, every gate logit = 0. */
export function initialFuser(L: number, W: number): FuserWeights {
  const out: FuserWeights = new Map();
  for (let l = 0; l < L; l++) for (const kind of ['k', 'v'] as const) out.set(fuserKey(l, kind), new Float32Array(W * W));
  out.set(GATE_KEY, new Float32Array(2 * L));
  return out;
}

/** Throws unless `w` holds exactly the fuser of L layers of width W (names and sizes). */
export function checkFuser(w: ReadonlyMap<string, ArrayLike<number>>, L: number, W: number): void {
  const want = initialFuser(L, W);
  for (const [k, v] of want) {
    const got = w.get(k);
    if (!got) throw new Error(`c2c fuser: tensor ${k} is missing (a fuser for ${L} layers of K/V width ${W})`);
    if (got.length !== v.length) throw new Error(`c2c fuser: tensor ${k} has ${got.length} values, expected ${v.length} (${L} layers, K/V width ${W})`);
  }
  const extra = [...w.keys()].filter((k) => !want.has(k));
  if (extra.length) throw new Error(`c2c fuser: unexpected tensor ${extra[0]} (a fuser for ${L} layers holds ${[...want.keys()].length})`);
}

/** Layers and K/V width of a fuser (its gate holds 2 per layer; each A is W x W). */
export function fuserDims(w: ReadonlyMap<string, ArrayLike<number>>): { L: number; W: number } {
  const gate = w.get(GATE_KEY);
  const a = w.get(fuserKey(0, 'k'));
  if (!gate || !a) throw new Error('c2c fuser: the gate or layers.0.k.A is missing');
  return { L: gate.length / 2, W: Math.round(Math.sqrt(a.length)) };
}

/** Shapes of the fuser's tensors (for the safetensors file). */
export function fuserShape(key: string, L: number, W: number): number[] {
  return key === GATE_KEY ? [L, 2] : [W, W];
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Reference forward of one (layer, K or V): y = x + s x A over rows [R, W]; returns y and t = x A. */
export function refFuse(x: ArrayLike<number>, A: ArrayLike<number>, gate: number, R: number, W: number): { y: Float64Array; t: Float64Array } {
  const s = sigmoid(gate);
  const t = new Float64Array(R * W);
  const y = new Float64Array(R * W);
  for (let r = 0; r < R; r++) {
    for (let j = 0; j < W; j++) {
      let acc = 0;
      for (let i = 0; i < W; i++) acc += x[r * W + i] * A[i * W + j];
      t[r * W + j] = acc;
      y[r * W + j] = x[r * W + j] + s * acc;
    }
  }
  return { y, t };
}

/** Reference backward of refFuse: dx, dA and dgate from dy. */
export function refFuseBackward(
  x: ArrayLike<number>, t: ArrayLike<number>, A: ArrayLike<number>, gate: number, dy: ArrayLike<number>, R: number, W: number,
): { dx: Float64Array; dA: Float64Array; dgate: number } {
  const s = sigmoid(gate);
  const dx = new Float64Array(R * W);
  const dA = new Float64Array(W * W);
  let dot = 0;
  for (let r = 0; r < R; r++) {
    for (let i = 0; i < W; i++) {
      let acc = 0;
      for (let j = 0; j < W; j++) acc += dy[r * W + j] * A[i * W + j];
      dx[r * W + i] = dy[r * W + i] + s * acc;
      for (let j = 0; j < W; j++) dA[i * W + j] += s * x[r * W + i] * dy[r * W + j];
    }
    for (let j = 0; j < W; j++) dot += t[r * W + j] * dy[r * W + j];
  }
  return { dx, dA, dgate: s * (1 - s) * dot };
}

/** The fuser's parameters and gradients on the GPU (one per run). */
export class C2cFuserGpu {
  /** A[l] = [K, V] projectors [W, W]; dA the same. */
  readonly A: [Tensor, Tensor][];
  readonly dA: [Tensor, Tensor][];
  /** Gate logits [L, 2] and their gradient. */
  readonly gate: Tensor;
  readonly dgate: Tensor;

  constructor(
    readonly gpu: Gpu,
    readonly L: number,
    readonly W: number,
    weights: FuserWeights = initialFuser(L, W),
  ) {
    checkFuser(weights, L, W);
    const kinds = ['k', 'v'] as const;
    this.A = Array.from({ length: L }, (_, l) => kinds.map((k) => gpu.tensor([W, W], `c2c A ${k} l${l}`, weights.get(fuserKey(l, k)))) as [Tensor, Tensor]);
    this.dA = Array.from({ length: L }, (_, l) => kinds.map((k) => gpu.tensor([W, W], `c2c dA ${k} l${l}`)) as [Tensor, Tensor]);
    this.gate = gpu.tensor([L * 2], 'c2c gate', weights.get(GATE_KEY));
    this.dgate = gpu.tensor([L * 2], 'c2c dgate');
  }

  /** The optimizer's parameters: every projector (weight decay as the run's adapters), then the gates (none). */
  trainParams(): TrainParam[] {
    const out: TrainParam[] = [];
    this.A.forEach((pair, l) => pair.forEach((t, i) => out.push({ name: fuserKey(l, i === 0 ? 'k' : 'v'), param: t, grad: this.dA[l][i], decay: true })));
    out.push({ name: GATE_KEY, param: this.gate, grad: this.dgate, decay: false });
    return out;
  }

  async read(): Promise<FuserWeights> {
    const out: FuserWeights = new Map();
    for (let l = 0; l < this.L; l++) {
      out.set(fuserKey(l, 'k'), await this.gpu.read(this.A[l][0]));
      out.set(fuserKey(l, 'v'), await this.gpu.read(this.A[l][1]));
    }
    out.set(GATE_KEY, await this.gpu.read(this.gate));
    return out;
  }

  write(weights: ReadonlyMap<string, Float32Array>): void {
    checkFuser(weights, this.L, this.W);
    for (let l = 0; l < this.L; l++) {
      this.gpu.write(this.A[l][0], weights.get(fuserKey(l, 'k'))!);
      this.gpu.write(this.A[l][1], weights.get(fuserKey(l, 'v'))!);
    }
    this.gpu.write(this.gate, weights.get(GATE_KEY)!);
  }

  destroy(): void {
    for (const t of [...this.A.flat(), ...this.dA.flat(), this.gate, this.dgate]) this.gpu.destroy(t);
  }
}

interface KVs {
  k: Tensor[];
  v: Tensor[];
}

/**
 * One receiver's fused prefix in a rollout: the senders' traces are assembled into `raw`, the fuser
 * writes `pre` (what the receiver's passes read); backward, from dPre (the passes' prefix gradient)
 * it gives dRaw (routed to the senders) and accumulates the fuser's gradients. Tensors and dispatches
 * go to the rollout's `own` and `prep` (destroyed with it).
 */
export class FusedPrefix {
  readonly raw: KVs;
  /** T = X A per layer, kept for the gate's gradient. */
  readonly t: KVs;
  readonly dRaw: KVs | null;
  readonly forward: Dispatch[] = [];
  readonly backward: Dispatch[] = [];

  constructor(
    gpu: Gpu, fuser: C2cFuserGpu, B: number, P: number, pre: KVs, dPre: KVs | null, label: string,
    own: (t: Tensor) => Tensor, prep: (d: Dispatch) => Dispatch,
  ) {
    const { L, W } = fuser;
    const R = B * P;
    const n = R * W;
    const kv = (what: string): KVs => ({
      k: Array.from({ length: L }, (_, l) => own(gpu.tensor([B, P, W], `${label} ${what} K l${l}`))),
      v: Array.from({ length: L }, (_, l) => own(gpu.tensor([B, P, W], `${label} ${what} V l${l}`))),
    });
    this.raw = kv('received');
    this.t = kv('fuser XA');
    this.dRaw = dPre ? kv('d received') : null;
    const dt = dPre ? own(gpu.tensor([B, P, W], `${label} fuser dT`)) : null;
    for (let l = 0; l < L; l++) {
      (['k', 'v'] as const).forEach((kind, i) => {
        const gi = 2 * l + i;
        const x = this.raw[kind][l];
        const t = this.t[kind][l];
        this.forward.push(prep(prepareMatmul(gpu, x, fuser.A[l][i], t, R, W, W, { layout: 'nn' })));
        this.forward.push(prep(prepareFuse(gpu, x, t, fuser.gate, gi, pre[kind][l], n)));
        if (dPre && dt && this.dRaw) {
          const dy = dPre[kind][l];
          this.backward.push(prep(prepareGateGrad(gpu, t, dy, fuser.gate, gi, fuser.dgate, n)));
          this.backward.push(prep(prepareFuseBackward(gpu, dy, fuser.gate, gi, this.dRaw[kind][l], dt, n)));
          this.backward.push(prep(prepareMatmul(gpu, dt, fuser.A[l][i], this.dRaw[kind][l], R, W, W, { layout: 'nt', accumulate: true })));
          this.backward.push(prep(prepareMatmul(gpu, x, dt, fuser.dA[l][i], W, W, R, { layout: 'tn', accumulate: true })));
        }
      });
    }
  }
}

// Causal GQA attention over a foreign prefix (shaders/attention.wgsl). The forward saves the per-row
// log-sum-exp lse [B, Hq, S]; the backward recomputes the probabilities from it (FlashAttention-2
// style) in five kernels: delta = rowsum(dO * O), dq over own keys, dq over prefix keys (adds),
// dk/dv over own keys, dprefixK/dprefixV (the prefix dispatches are skipped when P = 0).
import code from '../../../shaders/attention.wgsl?raw';
import { cdiv, type Dispatch, type Gpu, type KernelSpec, type ParamValues, type Tensor } from '../runtime';

export interface AttentionDims {
  /** Sequences. */
  B: number;
  /** Tokens per sequence (queries and own keys). */
  S: number;
  /** Prefix (foreign cached) keys per sequence; 0 for none. */
  P: number;
  /** Query heads. */
  Hq: number;
  /** Key/value heads; Hq must be a multiple of Hkv. */
  Hkv: number;
  /** Head size, 1..128. */
  hd: number;
}

export interface AttentionForwardTensors {
  /** [B*S, Hq*hd], already rotated. */
  q: Tensor;
  /** [B*S, Hkv*hd], k already rotated. */
  k: Tensor;
  v: Tensor;
  /** [B, P, Hkv*hd]; when P = 0 any tensor (never read). */
  prefixK: Tensor;
  prefixV: Tensor;
  /** Output [B*S, Hq*hd]. */
  o: Tensor;
  /** Output, saved for backward: log-sum-exp of the scaled scores per row, [B, Hq, S]. */
  lse: Tensor;
}

export interface AttentionBackwardTensors extends AttentionForwardTensors {
  /** Incoming gradient of o, [B*S, Hq*hd]. */
  dO: Tensor;
  /** Scratch [B, Hq, S] (rowsum(dO * o)); may be shared by all layers. */
  delta: Tensor;
  /** Outputs: dq [B*S, Hq*hd], dk and dv [B*S, Hkv*hd], dprefixK and dprefixV [B, P, Hkv*hd]
   * (when P = 0 the prefix gradients may be any tensors; they are not written). */
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
  dprefixK: Tensor;
  dprefixV: Tensor;
}

export interface AttentionBackwardOptions {
  /** dq += instead of dq = (default overwrite). */
  accumulateQ?: boolean;
  /** dk, dv += instead of = (default overwrite). */
  accumulateKV?: boolean;
  /** dprefixK, dprefixV += instead of = (default overwrite). */
  accumulatePrefix?: boolean;
}

/** Largest head size the kernels hold in registers (shaders/attention.wgsl MAXHD). */
export const ATTENTION_MAX_HD = 128;
const WG = 64;

const PARAMS = [
  ['S', 'u32'], ['P', 'u32'], ['L', 'u32'], ['Hq', 'u32'], ['Hkv', 'u32'], ['hd', 'u32'], ['scale', 'f32'],
] as const;

type Kernel = 'forward' | 'delta' | 'dq' | 'dkv';

export function attentionSpec(kernel: Kernel, causal = true, accumulate = false): KernelSpec {
  const base = { code, params: PARAMS };
  if (kernel === 'forward') {
    return { ...base, name: 'attention_forward', entryPoint: 'attention_forward', bindings: ['read', 'read', 'read', 'read', 'read', 'write', 'write'] };
  }
  if (kernel === 'delta') {
    return { ...base, name: 'attention_backward_delta', entryPoint: 'attention_backward_delta', bindings: ['read', 'read', 'write'] };
  }
  const bindings: KernelSpec['bindings'] =
    kernel === 'dq'
      ? ['read', 'read', 'read', 'read', 'read', 'read', 'write']
      : ['read', 'read', 'read', 'read', 'read', 'read', 'write', 'write'];
  return {
    ...base,
    name: `attention_backward_${kernel}_${causal ? 'own' : 'prefix'}${accumulate ? '_acc' : ''}`,
    entryPoint: `attention_backward_${kernel}`,
    bindings,
    constants: { CAUSAL: causal, ACCUMULATE: accumulate },
  };
}

function checkDims(d: AttentionDims, what: string): void {
  for (const k of ['B', 'S', 'P', 'Hq', 'Hkv', 'hd'] as const) {
    const v = d[k];
    if (!Number.isInteger(v) || v < (k === 'P' ? 0 : 1)) {
      throw new Error(`${what}: ${k} must be an integer >= ${k === 'P' ? 0 : 1}, got ${k}=${v}`);
    }
  }
  if (d.Hq % d.Hkv !== 0) {
    throw new Error(`${what}: query heads Hq=${d.Hq} must be a multiple of key/value heads Hkv=${d.Hkv}`);
  }
  if (d.hd > ATTENTION_MAX_HD) throw new Error(`${what}: head size hd=${d.hd} exceeds the kernels' maximum ${ATTENTION_MAX_HD}`);
}

function need(t: Tensor, n: number, name: string, what: string, d: AttentionDims): void {
  if (t.size < n) {
    throw new Error(
      `${what}: ${name} (${t.label}) has ${t.size} values, needs ${n} for B=${d.B} S=${d.S} P=${d.P} Hq=${d.Hq} Hkv=${d.Hkv} hd=${d.hd}`,
    );
  }
}

/** Each output must have a buffer of its own: WebGPU forbids binding a written buffer twice in one
 * dispatch, and an output sharing an input's buffer would corrupt that input for later kernels.
 * Inputs may share buffers with each other (e.g. one placeholder for both prefix tensors at P = 0). */
function checkDistinct(what: string, outputs: [string, Tensor][], all: [string, Tensor][]): void {
  for (const [name, t] of outputs) {
    for (const [other, u] of all) {
      if (other !== name && u.buffer === t.buffer) {
        throw new Error(`${what}: output ${name} (${t.label}) shares its buffer with ${other} (${u.label}); outputs need tensors of their own`);
      }
    }
  }
}

function params(d: AttentionDims, L: number): ParamValues {
  return { S: d.S, P: d.P, L, Hq: d.Hq, Hkv: d.Hkv, hd: d.hd, scale: 1 / Math.sqrt(d.hd) };
}

function checkForward(t: AttentionForwardTensors, d: AttentionDims, what: string): void {
  checkDims(d, what);
  const { B, S, P, Hq, Hkv, hd } = d;
  need(t.q, B * S * Hq * hd, 'q', what, d);
  need(t.k, B * S * Hkv * hd, 'k', what, d);
  need(t.v, B * S * Hkv * hd, 'v', what, d);
  need(t.prefixK, B * P * Hkv * hd, 'prefixK', what, d);
  need(t.prefixV, B * P * Hkv * hd, 'prefixV', what, d);
  need(t.o, B * S * Hq * hd, 'o', what, d);
  need(t.lse, B * Hq * S, 'lse', what, d);
}

/** Prepares o = attention(q, k, v; prefix) and saves lse, once per shape. */
export function prepareAttentionForward(gpu: Gpu, t: AttentionForwardTensors, dims: AttentionDims): Dispatch[] {
  checkForward(t, dims, 'attention_forward');
  const { B, S, Hq } = dims;
  // the prefix tensors are bound even when P = 0, so they too must not be o or lse
  const all: [string, Tensor][] = [
    ['q', t.q], ['k', t.k], ['v', t.v], ['prefixK', t.prefixK], ['prefixV', t.prefixV], ['o', t.o], ['lse', t.lse],
  ];
  checkDistinct('attention_forward', [['o', t.o], ['lse', t.lse]], all);
  return [
    gpu.prepare(attentionSpec('forward'), [t.q, t.k, t.v, t.prefixK, t.prefixV, t.o, t.lse], params(dims, S), [cdiv(S, WG), Hq, B]),
  ];
}

/** Prepares the backward: dq, dk, dv, dprefixK, dprefixV from dO and the forward's o and lse. */
export function prepareAttentionBackward(
  gpu: Gpu, t: AttentionBackwardTensors, dims: AttentionDims, o: AttentionBackwardOptions = {},
): Dispatch[] {
  const what = 'attention_backward';
  checkForward(t, dims, what);
  const { B, S, P, Hq, Hkv, hd } = dims;
  need(t.dO, B * S * Hq * hd, 'dO', what, dims);
  need(t.delta, B * Hq * S, 'delta', what, dims);
  need(t.dq, B * S * Hq * hd, 'dq', what, dims);
  need(t.dk, B * S * Hkv * hd, 'dk', what, dims);
  need(t.dv, B * S * Hkv * hd, 'dv', what, dims);
  need(t.dprefixK, B * P * Hkv * hd, 'dprefixK', what, dims);
  need(t.dprefixV, B * P * Hkv * hd, 'dprefixV', what, dims);
  const inputs: [string, Tensor][] = [['q', t.q], ['k', t.k], ['v', t.v], ['o', t.o], ['lse', t.lse], ['dO', t.dO]];
  const outputs: [string, Tensor][] = [['delta', t.delta], ['dq', t.dq], ['dk', t.dk], ['dv', t.dv]];
  if (P > 0) {
    inputs.push(['prefixK', t.prefixK], ['prefixV', t.prefixV]);
    outputs.push(['dprefixK', t.dprefixK], ['dprefixV', t.dprefixV]);
  }
  checkDistinct(what, outputs, [...inputs, ...outputs]);
  const own = params(dims, S);
  const pre = params(dims, P);
  const qGrid = [cdiv(S, WG), Hq, B];
  const out: Dispatch[] = [
    gpu.prepare(attentionSpec('delta'), [t.dO, t.o, t.delta], own, qGrid),
    gpu.prepare(attentionSpec('dq', true, o.accumulateQ ?? false), [t.q, t.k, t.v, t.dO, t.lse, t.delta, t.dq], own, qGrid),
  ];
  if (P > 0) {
    out.push(gpu.prepare(attentionSpec('dq', false, true), [t.q, t.prefixK, t.prefixV, t.dO, t.lse, t.delta, t.dq], pre, qGrid));
  }
  out.push(
    gpu.prepare(attentionSpec('dkv', true, o.accumulateKV ?? false), [t.q, t.k, t.v, t.dO, t.lse, t.delta, t.dk, t.dv], own, [cdiv(S, WG), Hkv, B]),
  );
  if (P > 0) {
    out.push(
      gpu.prepare(
        attentionSpec('dkv', false, o.accumulatePrefix ?? false),
        [t.q, t.prefixK, t.prefixV, t.dO, t.lse, t.delta, t.dprefixK, t.dprefixV], pre, [cdiv(P, WG), Hkv, B],
      ),
    );
  }
  return out;
}

/** One-off attention forward recorded into the open command buffer. */
export function attentionForward(gpu: Gpu, t: AttentionForwardTensors, dims: AttentionDims): void {
  for (const d of prepareAttentionForward(gpu, t, dims)) gpu.recordOnce(d);
}

/** One-off attention backward recorded into the open command buffer. */
export function attentionBackward(
  gpu: Gpu, t: AttentionBackwardTensors, dims: AttentionDims, o: AttentionBackwardOptions = {},
): void {
  for (const d of prepareAttentionBackward(gpu, t, dims, o)) gpu.recordOnce(d);
}

// RoPE (shaders/rope.wgsl), HF rotate-half, on x [T, H*hd]: forward rotates by +angle, backward by
// -angle (the transpose). Out-of-place (src !== dst, optionally accumulating into dst) or in place
// (pass the same tensor twice).
import code from '../../../shaders/rope.wgsl?raw';
import type { RopeScaling } from '../../reference/rope';
import { cdiv, type Dispatch, type Gpu, type KernelSpec, type ParamValues, type Tensor } from '../runtime';

export interface RopeDims {
  /** Rows (B*S). */
  T: number;
  /** Heads per row. */
  H: number;
  /** Head size, even. */
  hd: number;
  /** Sequence length: row t has position posOffset + (t mod S). */
  S: number;
  /** Position of the first token of every sequence (default 0). */
  posOffset?: number;
  /** RoPE base (default 10000). */
  theta?: number;
  /** Llama 3.x frequency scaling (transformers' rope_type "llama3"); default none. */
  scaling?: RopeScaling | null;
}

export interface RopeOptions {
  /** Out-of-place only: dst += rotated src instead of dst = rotated src. */
  accumulate?: boolean;
}

const PARAMS = [
  ['T', 'u32'], ['H', 'u32'], ['hd', 'u32'], ['S', 'u32'], ['pos_offset', 'u32'],
  ['log2_theta', 'f32'], ['sign', 'f32'],
  ['llama3', 'u32'], ['factor', 'f32'], ['low_freq_factor', 'f32'], ['high_freq_factor', 'f32'], ['old_context', 'f32'],
] as const;

const WG = 64;

export function ropeSpec(inPlace: boolean, accumulate: boolean): KernelSpec {
  return inPlace
    ? { name: 'rope_inplace', code, entryPoint: 'rope_inplace', bindings: ['write'], params: PARAMS }
    : {
        name: accumulate ? 'rope_acc' : 'rope',
        code,
        entryPoint: 'rope',
        bindings: ['read', 'write'],
        params: PARAMS,
        constants: { ACCUMULATE: accumulate },
      };
}

/** Checks the dims and returns the uniform params (use with Dispatch.setParams to change posOffset). */
export function ropeParams(dims: RopeDims, backward: boolean, what = backward ? 'rope_backward' : 'rope_forward'): ParamValues {
  const { T, H, hd, S } = dims;
  const posOffset = dims.posOffset ?? 0;
  const theta = dims.theta ?? 10000;
  for (const [k, v] of [['T', T], ['H', H], ['hd', hd], ['S', S], ['posOffset', posOffset]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${what}: ${k} must be a non-negative integer, got ${v}`);
  }
  if (hd < 2 || hd % 2 !== 0) throw new Error(`${what}: head size hd must be even and >= 2, got hd=${hd}`);
  if (S < 1) throw new Error(`${what}: sequence length S must be >= 1, got S=${S}`);
  if (T % S !== 0) throw new Error(`${what}: rows T=${T} are not a whole number of sequences of S=${S}`);
  if (!(theta > 0) || !Number.isFinite(theta)) throw new Error(`${what}: theta must be positive, got ${theta}`);
  const sc = dims.scaling;
  if (sc) {
    const { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: old } = sc;
    if (sc.rope_type !== 'llama3') throw new Error(`${what}: rope_type ${JSON.stringify(sc.rope_type)} is not implemented (only "llama3")`);
    if (!(factor > 0 && lo > 0 && hi > lo && old > 0) || ![factor, lo, hi, old].every(Number.isFinite)) {
      throw new Error(`${what}: llama3 scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0, got ${JSON.stringify(sc)}`);
    }
  }
  return {
    T, H, hd, S, pos_offset: posOffset, log2_theta: Math.log2(theta), sign: backward ? -1 : 1,
    llama3: sc ? 1 : 0, factor: sc?.factor ?? 1, low_freq_factor: sc?.low_freq_factor ?? 1,
    high_freq_factor: sc?.high_freq_factor ?? 2, old_context: sc?.original_max_position_embeddings ?? 1,
  };
}

function prepareRope(gpu: Gpu, src: Tensor, dst: Tensor, dims: RopeDims, o: RopeOptions, backward: boolean): Dispatch[] {
  const what = backward ? 'rope_backward' : 'rope_forward';
  const params = ropeParams(dims, backward, what);
  const n = dims.T * dims.H * dims.hd;
  for (const [t, name] of [[src, 'input'], [dst, 'output']] as const) {
    if (t.size < n) {
      throw new Error(`${what}: ${name} (${t.label}) has ${t.size} values, needs ${n} for T=${dims.T} H=${dims.H} hd=${dims.hd}`);
    }
  }
  const inPlace = src === dst;
  if (inPlace && o.accumulate) throw new Error(`${what}: accumulate needs distinct input and output, got ${src.label} twice`);
  const pairs = n / 2;
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const groups = cdiv(pairs, WG);
  const wg = groups <= max ? [groups, 1, 1] : [max, cdiv(groups, max), 1];
  const spec = ropeSpec(inPlace, o.accumulate ?? false);
  return [gpu.prepare(spec, inPlace ? [dst] : [src, dst], params, wg)];
}

/** Prepares y = RoPE(x) (y === x: in place; accumulate: y += RoPE(x)). */
export function prepareRopeForward(gpu: Gpu, x: Tensor, y: Tensor, dims: RopeDims, o: RopeOptions = {}): Dispatch[] {
  return prepareRope(gpu, x, y, dims, o, false);
}

/** Prepares dx = RoPE^T(dy), the rotation by -angle (dx === dy: in place; accumulate: dx += ...). */
export function prepareRopeBackward(gpu: Gpu, dy: Tensor, dx: Tensor, dims: RopeDims, o: RopeOptions = {}): Dispatch[] {
  return prepareRope(gpu, dy, dx, dims, o, true);
}

/** One-off RoPE forward recorded into the open command buffer. */
export function ropeForward(gpu: Gpu, x: Tensor, y: Tensor, dims: RopeDims, o: RopeOptions = {}): void {
  for (const d of prepareRopeForward(gpu, x, y, dims, o)) gpu.recordOnce(d);
}

/** One-off RoPE backward recorded into the open command buffer. */
export function ropeBackward(gpu: Gpu, dy: Tensor, dx: Tensor, dims: RopeDims, o: RopeOptions = {}): void {
  for (const d of prepareRopeBackward(gpu, dy, dx, dims, o)) gpu.recordOnce(d);
}

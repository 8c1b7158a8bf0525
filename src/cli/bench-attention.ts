// Bench section 'attention': causal GQA attention forward + backward (the five backward kernels of
// src/gpu/ops/attention.ts) in query tokens per second, beside the same in tfjs ops (tf.grads over
// bench-tfjs-llama.ts's tfAttention) and the float64 CPU reference.
import type { Gpu, Tensor } from '../gpu/runtime';
import { prepareAttentionBackward, prepareAttentionForward, type AttentionDims } from '../gpu/ops/attention';
import { attentionBackwardRef, attentionRef } from '../reference/attention';
import type { Tensor as TfTensor } from '@tensorflow/tfjs-core';
import { formatRow, makeRow, randData, tfSync, timeCandidateStats, timeOnce, type BenchContext, type BenchRow } from './bench-util';
import { attentionMask, tfAttention } from './bench-tfjs-llama';

/** Parses 'BxSxPxHqxHkvxhd', e.g. '16x56x0x4x2x16'. */
export function parseAttentionShape(s: string): AttentionDims {
  const v = s.split('x').map(Number);
  if (v.length !== 6 || v.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new Error(`attention shape '${s}' must be BxSxPxHqxHkvxhd (6 integers), e.g. 16x56x0x4x2x16`);
  }
  const [B, S, P, Hq, Hkv, hd] = v;
  if (B < 1 || S < 1 || Hq < 1 || Hkv < 1 || hd < 2 || Hq % Hkv !== 0) {
    throw new Error(`attention shape '${s}': need B, S, Hq, Hkv >= 1, hd >= 2 and Hq a multiple of Hkv`);
  }
  return { B, S, P, Hq, Hkv, hd };
}

export function attentionShapeName(d: AttentionDims): string {
  const kind = d.Hq === d.Hkv ? 'MHA' : `GQA${d.Hq / d.Hkv}`;
  return `B${d.B} S${d.S} P${d.P} Hq${d.Hq} Hkv${d.Hkv} hd${d.hd} ${kind}`;
}

export async function benchAttention(gpu: Gpu, ctx: BenchContext, shapes: AttentionDims[]): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const tf = ctx.tf;
  for (const d of shapes) {
    const { B, S, P, Hq, Hkv, hd } = d;
    const T = B * S;
    const q = randData(T * Hq * hd, 11, 0.5);
    const k = randData(T * Hkv * hd, 12, 0.5);
    const v = randData(T * Hkv * hd, 13);
    const pk = randData(Math.max(1, B * P * Hkv * hd), 14, 0.5);
    const pv = randData(Math.max(1, B * P * Hkv * hd), 15);
    const dO = randData(T * Hq * hd, 16);

    // ours
    const owned: Tensor[] = [];
    const t = (n: number, label: string, data?: Float32Array) => {
      const x = gpu.tensor([Math.max(1, n)], `bench attention ${label}`, data);
      owned.push(x);
      return x;
    };
    const tq = t(q.length, 'q', q), tk = t(k.length, 'k', k), tv = t(v.length, 'v', v);
    const tpk = t(pk.length, 'prefixK', pk), tpv = t(pv.length, 'prefixV', pv);
    const to = t(T * Hq * hd, 'o'), tlse = t(B * Hq * S, 'lse'), tdO = t(dO.length, 'dO', dO), tdelta = t(B * Hq * S, 'delta');
    const tdq = t(T * Hq * hd, 'dq'), tdk = t(T * Hkv * hd, 'dk'), tdv = t(T * Hkv * hd, 'dv');
    const tdpk = t(B * P * Hkv * hd, 'dprefixK'), tdpv = t(B * P * Hkv * hd, 'dprefixV');
    const fwd = prepareAttentionForward(gpu, { q: tq, k: tk, v: tv, prefixK: tpk, prefixV: tpv, o: to, lse: tlse }, d);
    const bwd = prepareAttentionBackward(gpu, {
      q: tq, k: tk, v: tv, prefixK: tpk, prefixV: tpv, o: to, lse: tlse, dO: tdO, delta: tdelta,
      dq: tdq, dk: tdk, dv: tdv, dprefixK: tdpk, dprefixV: tdpv,
    }, d);
    const fns: Record<string, () => Promise<void>> = {
      ours: async () => {
        gpu.record(...fwd, ...bwd);
        await gpu.sync();
      },
    };

    // tfjs: o = attention(...), gradients of sum(o * dO) for q, k, v (and the prefix)
    let tfInputs: TfTensor[] = [];
    let tfMask: TfTensor | null = null;
    let tfdO: TfTensor | null = null;
    if (tf) {
      const mask = (tfMask = attentionMask(tf, d));
      tfInputs = [tf.tensor2d(q, [T, Hq * hd]), tf.tensor2d(k, [T, Hkv * hd]), tf.tensor2d(v, [T, Hkv * hd])];
      if (P > 0) tfInputs.push(tf.tensor2d(pk, [B * P, Hkv * hd]), tf.tensor2d(pv, [B * P, Hkv * hd]));
      tfdO = tf.tensor2d(dO, [T, Hq * hd]);
      const f = (...xs: TfTensor[]) => tfAttention(tf, xs[0], xs[1], xs[2], P > 0 ? xs[3] : null, P > 0 ? xs[4] : null, mask, d);
      const gradsFn = tf.grads(f);
      const dy = tfdO;
      fns.tfjs = async () => {
        const gs = gradsFn(tfInputs, dy);
        await tfSync(tf);
        gs.forEach((g) => g.dispose());
      };
    }
    const st = await timeCandidateStats(fns, ctx.minMs, ctx.rounds);
    const ms = { ours: st.ours.median, tfjs: st.tfjs?.median ?? NaN };
    const tps = (m: number) => (T / m) * 1000;
    const extra: Record<string, number | string> = {};
    if (tf) extra.ratioBest = st.tfjs.best / st.ours.best;
    let reference: number | null = tf ? tps(ms.tfjs) : null;
    let refName = 'tfjs-backend-webgpu';
    if (ctx.cpu) {
      const cms = await timeOnce(() => {
        attentionRef(q, k, v, pk, pv, d);
        attentionBackwardRef(q, k, v, pk, pv, dO, d);
      });
      extra.cpuTokensPerS = tps(cms);
      if (!tf) {
        reference = tps(cms);
        refName = 'CPU reference (f64)';
      }
    }
    rows.push(makeRow('attention', `fwd+bwd ${attentionShapeName(d)}`, 'tokens/s', tps(ms.ours), reference, refName, extra));
    ctx.log(formatRow(rows[rows.length - 1]));
    [...fwd, ...bwd].forEach((x) => x.destroy());
    owned.forEach((x) => gpu.destroy(x));
    [...tfInputs, tfMask, tfdO].forEach((x) => x?.dispose());
  }
  return rows;
}


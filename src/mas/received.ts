// Where each sender's latent steps sit in a receiver's prefix, and the RoPE frequencies of the keys:
// what the permute control (controls.ts) and the probes (measures.ts) need to read a received prefix.
import type { ModelConfig } from '../model/config';
import type { Rollout } from './rollout';

export interface LatentBlock {
  /** Rollout index of the sender. */
  pred: number;
  /** First latent slot of that sender in the receiver's prefix. */
  offset: number;
  /** Its latent steps (consecutive slots and RoPE positions). */
  m: number;
}

/** The latent slots of each sender in agent `agent`'s prefix (after the sender's prompt positions in a full trace). */
export function latentBlocks(ro: Rollout, agent: number): LatentBlock[] {
  const ar = ro.agents[agent];
  if (!ar) throw new Error(`latentBlocks: no agent ${agent} in the rollout`);
  const out: LatentBlock[] = [];
  ar.spec.preds.forEach((p, i) => {
    let off = ar.offsets[i];
    let first = -1;
    let m = 0;
    for (const blk of ro.agents[p].blocks) {
      if (blk.kind === 'latent') {
        if (first < 0) first = off;
        m += blk.n;
      }
      off += blk.n;
    }
    if (m > 0) out.push({ pred: p, offset: first, m });
  });
  return out;
}

/**
 * inv_freq of a head of size hd: theta^(-2i/hd), i < hd/2 (the rotate-half pairs), as the engine's
 * RoPE uses them. A RoPE scaling (rope_parameters) is refused: this project's engine has none.
 */
export function keyFrequencies(config: ModelConfig, hd: number): Float64Array {
  if ((config as { rope_parameters?: unknown }).rope_parameters) throw new Error('keyFrequencies: a scaled RoPE (rope_parameters) is not handled by the permute control');
  const out = new Float64Array(hd / 2);
  for (let i = 0; i < hd / 2; i++) out[i] = Math.pow(config.rope_theta, (-2 * i) / hd);
  return out;
}

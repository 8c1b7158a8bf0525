// Where each sender's latent steps sit in a receiver's prefix, and the RoPE frequencies of the keys:
// what the permute control (controls.ts) and the probes (measures.ts) need to read a received prefix.
import type { ModelConfig } from '../model/config';
import { ropeInvFreq } from '../reference/rope';
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
 * inv_freq of a head of size hd (the rotate-half pairs i < hd/2) as the engine's RoPE uses them:
 * theta^(-2i/hd), with Llama 3.x's frequency scaling when the config has rope_parameters
 * (src/reference/rope.ts ropeInvFreq, the formula model.ts hands its RoPE dispatches).
 */
export function keyFrequencies(config: ModelConfig, hd: number): Float64Array {
  return ropeInvFreq(hd, config.rope_theta, config.rope_parameters ?? null);
}

// What a message holds and how many bits it needs, as plain data (ExperimentReport.probes and .bits,
// the worker's probe of the open run, the page's latent view). Made by src/mas/measures.ts.
import type { MethodName } from './run-types';

/** Linear probes from received K/V to the senders' content (probe.ts has the exact probe). */
export interface ProbeReport {
  method: MethodName;
  seed: number;
  /** Training episodes (train split) the probes were fitted on, and held-out ones they were scored on. */
  trainEpisodes: number;
  heldoutEpisodes: number;
  /** The ridge strengths tried (per row, on standardised features), chosen per target on a fold of the training rows. */
  lambdas: number[];
  /** Every target, with its chance: the held-out accuracy of the training rows' most frequent class, and 1 / classes. */
  targets: { name: string; classes: number; chance: number; uniform: number }[];
  layers: number;
  /** Each receiver's senders with latent steps and their latent positions. */
  edges: { receiver: string; sender: string; positions: number }[];
  /** One per (edge, latent position 1..m, layer, K or V): held-out accuracy and chosen lambda per target (targets' order). */
  cells: { receiver: string; sender: string; position: number; layer: number; kind: 'k' | 'v'; accuracy: number[]; lambda: number[] }[];
}

/** The received K/V quantised to k bits per float at evaluation (quantize.ts has the schemes). */
export interface BitsReport {
  method: MethodName;
  seed: number;
  split: 'heldout';
  episodes: number;
  /** Accuracy without quantisation (float32 as the engine computes). */
  unquantized: number;
  levels: { bits: number; accuracy: number; bitsPerPosition: number; scaleBitsPerPosition: number }[];
  /** Floats of one received position (every layer's K and V). */
  floatsPerPosition: number;
  /** log2 of the vocabulary: the bits of one text token. */
  textBitsPerToken: number;
  /** How far accuracy may fall (one point). */
  tolerance: number;
  /** The smallest k within tolerance (k and every wider width tried), and its bits per position; null when none is. */
  smallest: number | null;
  bitsPerPosition: number | null;
}

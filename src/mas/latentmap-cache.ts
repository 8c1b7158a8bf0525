// The latent map of a loaded base, computed once (issue 23 item 4): the ridge solve reads the whole
// vocabulary's embedding and output rows (seconds on a 49k-token base), and a run bundle per (method,
// seed) asked for it again each time. Keyed by the loaded weights themselves (one base loaded is one
// key; the map is a function of those weights and the kind alone), held weakly so a base dropped from
// memory takes its maps with it. Hashing the weights for a digest key would itself cost a read of
// every byte on each call.
import { computeLatentMap, type LatentMap, type LatentMapKind } from './latentmap';
import type { ModelConfig } from '../model/config';

const cache = new WeakMap<object, Map<string, LatentMap>>();

/** computeLatentMap(config, weights, kind), computed once per weights object, kind, D and V. */
export function cachedLatentMap(
  config: Pick<ModelConfig, 'hidden_size' | 'vocab_size' | 'tie_word_embeddings'>,
  weights: ReadonlyMap<string, ArrayLike<number>>,
  kind: LatentMapKind,
): LatentMap {
  let byKind = cache.get(weights);
  if (!byKind) {
    byKind = new Map();
    cache.set(weights, byKind);
  }
  const key = `${kind}:${config.hidden_size}:${config.vocab_size}:${config.tie_word_embeddings ? 1 : 0}`;
  let m = byKind.get(key);
  if (!m) {
    m = computeLatentMap(config, weights, kind);
    byKind.set(key, m);
  }
  return m;
}

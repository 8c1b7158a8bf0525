// Llama 3.x's RoPE scaling from a GGUF file. llama.cpp's converter does not store the rope_parameters
// of a Llama 3.1 / 3.2 model: it stores their effect, a rope_freqs tensor of one factor per frequency
// (convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors). The parameters are recovered by
// recomputing the factors for the scaling Meta's Llama 3.x configs use (low_freq_factor 1,
// high_freq_factor 4, original_max_position_embeddings 8192, factor the largest stored one) and
// requiring them to match; anything else is refused rather than run with a guess.
import type { Llama3RopeParameters } from '../model/config';
import { GgufError } from './gguf';

/** The factors convert_hf_to_gguf.py writes for a llama3 scaling (float32, as it computes the frequencies). */
export function llama3RopeFactors(p: Omit<Llama3RopeParameters, 'rope_type'>, headDim: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  const low = p.original_max_position_embeddings / p.low_freq_factor;
  const high = p.original_max_position_embeddings / p.high_freq_factor;
  for (let i = 0; i < headDim / 2; i++) {
    const freq = Math.fround(1 / Math.fround(p.rope_theta ** Math.fround((2 * i) / headDim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < high) out[i] = 1;
    else if (wavelen > low) out[i] = p.factor;
    else {
      const smooth = (p.original_max_position_embeddings / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
      out[i] = 1 / ((1 - smooth) / p.factor + smooth);
    }
  }
  return out;
}

/** Meta's Llama 3.x settings besides the factor (3.1: factor 8; 3.2: factor 32). */
const CANDIDATES = [{ low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 }];
/** Relative agreement required: the factors are float32, recomputed here in float64 from float32 frequencies. */
const TOLERANCE = 1e-5;

export function llama3FromRopeFreqs(factors: Float32Array, theta: number, headDim: number): Llama3RopeParameters {
  if (factors.length !== headDim / 2) {
    throw new GgufError(`rope_freqs.weight has ${factors.length} factors; RoPE over heads of ${headDim} needs ${headDim / 2}`);
  }
  let factor = 0;
  for (const x of factors) factor = Math.max(factor, x);
  for (const c of CANDIDATES) {
    const p = { rope_theta: theta, factor, ...c };
    const want = llama3RopeFactors(p, headDim);
    if (want.every((w, i) => Math.abs(w - factors[i]) <= TOLERANCE * Math.abs(w))) return { rope_type: 'llama3', ...p };
  }
  throw new GgufError(
    'the file scales RoPE by per-frequency factors (rope_freqs.weight) that are not Llama 3.x\'s scaling ' +
      '(low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings 8192); this engine cannot run them',
  );
}

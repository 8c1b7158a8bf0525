// RoPE's settings in a config.json (issue 20 item 1), for src/storage/checkpoint.ts's validateConfig:
// transformers 5 writes rope_parameters, older versions a top-level rope_theta and rope_scaling; both
// are read as transformers 5 reads them, and only what this engine computes is accepted.
import type { Llama3RopeParameters } from '../model/config';

/** The largest finite float32: the engine computes in f32. */
const F32_MAX = 3.4028234663852886e38;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The rope_type values transformers knows, so a misspelt one is told apart from one not implemented here. */
const TRANSFORMERS_ROPE_TYPES = ['default', 'linear', 'dynamic', 'yarn', 'longrope', 'llama3', 'proportional'];

/**
 * RoPE's settings as transformers 5 reads them (PreTrainedConfig.convert_rope_params_to_dict and
 * standardize_rope_params): transformers 5 writes rope_parameters {rope_type, rope_theta, ...}, older
 * versions a top-level rope_theta and rope_scaling. rope_scaling, when set, stands in for
 * rope_parameters; a rope_theta inside wins over the top-level one (default 10000); rope_type (or its
 * old name type) defaults to "default"; llama3's original_max_position_embeddings comes from the
 * top level, then the dict, then max_position_embeddings. "default" and "llama3" are implemented; any
 * other type is refused by name rather than computed as plain RoPE. `fail` throws the caller's error;
 * `show` renders a value as config.json has it.
 */
export function readRope(
  cfg: Record<string, unknown>, maxPos: number, fail: (message: string) => never, show: (v: unknown) => string,
): { theta: number; llama3: Llama3RopeParameters | null } {
  const scaling = cfg.rope_scaling ?? null;
  const from = scaling !== null ? 'rope_scaling' : 'rope_parameters';
  const p = scaling ?? cfg.rope_parameters ?? {};
  if (!isObject(p)) fail(`config.json: ${from} must be an object like {"rope_type": "default", "rope_theta": 10000}, got ${show(p)}`);
  const params = p as Record<string, unknown>;
  const nested = Object.keys(params).filter((k) => isObject(params[k]));
  if (nested.length) {
    fail(`config.json: ${from} holds per-layer-type settings (${nested.join(', ')}); one RoPE for every layer is all this engine runs`);
  }
  const type = params.rope_type ?? params.type ?? 'default';
  const num = (field: string, v: unknown, where = `${from}.${field}`): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > F32_MAX) {
      fail(`config.json: ${where} must be a positive number${typeof v === 'number' && v > F32_MAX ? ` at most ${F32_MAX} (the engine computes in float32)` : ''}, got ${show(v)}`);
    }
    return v as number;
  };
  const theta = params.rope_theta !== undefined && params.rope_theta !== null
    ? num('rope_theta', params.rope_theta)
    : num('rope_theta', cfg.rope_theta ?? 10000, 'rope_theta');
  const partial = params.partial_rotary_factor ?? cfg.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1) {
    fail(`config.json: partial_rotary_factor ${show(partial)} is not supported (RoPE over the whole head only)`);
  }
  if (type === 'default') return { theta, llama3: null };
  if (type !== 'llama3') {
    const known = typeof type === 'string' && TRANSFORMERS_ROPE_TYPES.includes(type);
    fail(
      `config.json: ${from} rope_type ${show(type)} is ${known ? 'not supported' : 'not a RoPE type transformers knows'}: this engine ` +
        'runs "default" (plain RoPE with rope_theta) and "llama3" (Llama 3.x\'s frequency scaling) only',
    );
  }
  const factor = num('factor', params.factor);
  const low = num('low_freq_factor', params.low_freq_factor);
  const high = num('high_freq_factor', params.high_freq_factor);
  if (!(high > low)) fail(`config.json: ${from}.high_freq_factor ${high} must be above low_freq_factor ${low} (llama3 interpolates between them)`);
  const oldField = cfg.original_max_position_embeddings !== undefined ? 'original_max_position_embeddings' : `${from}.original_max_position_embeddings`;
  const old = cfg.original_max_position_embeddings ?? params.original_max_position_embeddings ?? maxPos;
  if (typeof old !== 'number' || !Number.isInteger(old) || old < 1) fail(`config.json: ${oldField} must be an integer >= 1, got ${show(old)}`);
  return {
    theta,
    llama3: {
      rope_type: 'llama3', rope_theta: theta, factor, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: old as number,
    },
  };
}

// The bench's real-shape section (src/cli/bench-real.ts) on a tiny shape: its rows (tokens/s, the
// lm_head's share, memory against the estimate) are well formed, the measured peak stays within the
// estimate shown before a run, and senders that skip their lm_head hold less memory.
import { describe, expect, it } from 'vitest';
import { benchReal, byteTokenizer } from '../src/cli/bench-real';
import type { ModelConfig } from '../src/model/config';
import { testGpu } from './helpers';

describe('bench section real', () => {
  it('times a DiffMAS step, the lm_head alone, and checks the memory against its estimate', async () => {
    const gpu = await testGpu();
    const lines: string[] = [];
    const shape: ModelConfig = {
      model_type: 'llama', hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1, head_dim: 8,
      vocab_size: 1000, rope_theta: 100000, rms_norm_eps: 1e-5, tie_word_embeddings: true, max_position_embeddings: 2048,
    };
    const { rows, checks } = await benchReal(gpu, { minMs: 1, rounds: 1, trainRounds: 1, cpu: false, tf: null, log: (l) => lines.push(l) }, { shape, shapeName: 'tiny', batch: 2, latentSteps: 1, steps: 1 });
    expect(rows.map((r) => r.name)).toEqual(['diffmas tiny B2 (senders compute logits)', 'diffmas tiny B2 (senders skip lm_head)']);
    for (const r of rows) {
      expect(r.ours).toBeGreaterThan(0);
      expect(r.extra!.lmHeadShare as number).toBeGreaterThan(0);
      expect(r.extra!.lmHeadShare as number).toBeLessThan(1);
    }
    // fewer lm_head dispatches and less memory once senders skip theirs
    expect(rows[1].extra!.lmHeadDispatches).toBeLessThan(rows[0].extra!.lmHeadDispatches as number);
    expect(rows[1].extra!.peakMB).toBeLessThan(rows[0].extra!.peakMB as number);
    for (const c of checks) expect(c.ok, `${c.name}: ${JSON.stringify(c.values)}`).toBe(true);
    expect(lines.join('\n')).toMatch(/lm_head [\d.]+% of the step/);
    expect(byteTokenizer().encode('tbl:a3k7\n')).toHaveLength(9);
  });
});
